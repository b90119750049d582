"""pytest-fcp: prove an engine's Failover Control Protocol (cache -> Binance Vision -> REST) under failure.

The public surface is small and importable without the heavy parts (moto, pyarrow, respx load on use):

* fixtures ``fcp_world``, ``fcp_engine``, ``fcp_trace`` and the marker ``@pytest.mark.fcp(...)``
  (see ``pytest --markers`` and ``pytest --fixtures``);
* :func:`fault` to build a scoped fault, :class:`World` to run an engine in the simulated world by hand;
* ``pytest --fcp-scenarios`` runs the scenario catalog; the ``fcp`` command checks a real cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["FAULTS", "Fault", "FaultSpecError", "World", "__version__", "fault"]

if TYPE_CHECKING:
    from pytest_fcp.faults import FAULTS, Fault, FaultSpecError, fault
    from pytest_fcp.world import World

_LAZY = {
    "FAULTS": "pytest_fcp.faults",
    "Fault": "pytest_fcp.faults",
    "FaultSpecError": "pytest_fcp.faults",
    "fault": "pytest_fcp.faults",
    "World": "pytest_fcp.world",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pytest_fcp' has no attribute {name!r}")
