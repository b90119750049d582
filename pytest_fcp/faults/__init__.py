"""The fault library: the fault table (what each fault is and does) and scheduled faults (scope, attempts).

See :mod:`pytest_fcp.faults.table` and :mod:`pytest_fcp.faults.schedule`.
"""

from pytest_fcp.faults.schedule import Attempts, Fault, FaultSchedule, fault
from pytest_fcp.faults.table import FAULTS, Effect, FaultKind, FaultSpecError, faults_for_source

__all__ = [
    "FAULTS",
    "Attempts",
    "Effect",
    "Fault",
    "FaultKind",
    "FaultSchedule",
    "FaultSpecError",
    "fault",
    "faults_for_source",
]
