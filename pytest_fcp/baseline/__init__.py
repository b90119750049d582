"""Behaviour baselines: per engine and scenario, what a run did (record), its file (store) and the differ (diff).

Pure: imports only the standard library; the plugin produces the records and wires the flags.
"""

from pytest_fcp.baseline.diff import Change, compare, first_line, render
from pytest_fcp.baseline.record import DayRow, FetchRecord, Record, RecordError, Totals
from pytest_fcp.baseline.store import (
    Baseline,
    BaselineError,
    LegacyBaselineError,
    load_baseline,
    read_legacy_expectations,
    render_baseline,
    update_baseline,
    validate_ids,
    write_baseline,
)

__all__ = [
    "Baseline",
    "BaselineError",
    "Change",
    "DayRow",
    "FetchRecord",
    "LegacyBaselineError",
    "Record",
    "RecordError",
    "Totals",
    "compare",
    "first_line",
    "load_baseline",
    "read_legacy_expectations",
    "render",
    "render_baseline",
    "update_baseline",
    "validate_ids",
    "write_baseline",
]
