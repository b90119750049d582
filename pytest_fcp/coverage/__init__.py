"""The coverage map of the FCP space: which cells (pairs of dimension values that decide an engine's path)
a run's judged fetches exercised, and which reachable cells stayed empty.

:mod:`~pytest_fcp.coverage.dimensions` defines the dimensions, the projections that matter and which cells
are reachable (from the fault table, the markets, the cache states); :mod:`~pytest_fcp.coverage.cells` maps
one fetch to its cells; :mod:`~pytest_fcp.coverage.collect` gathers them per test and per run.
"""

from __future__ import annotations

from pytest_fcp.coverage.cells import fault_hits, fetch_cells, run_cells
from pytest_fcp.coverage.collect import CoverageMap, cell_key, collecting, note, parse_key
from pytest_fcp.coverage.dimensions import PROJECTIONS, TARGETS, Cell, Projection, fault_targets, reachable_cells

__all__ = [
    "PROJECTIONS",
    "TARGETS",
    "Cell",
    "CoverageMap",
    "Projection",
    "cell_key",
    "collecting",
    "fault_hits",
    "fault_targets",
    "fetch_cells",
    "note",
    "parse_key",
    "reachable_cells",
    "run_cells",
]
