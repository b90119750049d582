"""``--fcp-coverage``: the cells of the FCP space each test exercised, gathered into the run's coverage map.

Registered only when coverage is on. While a test runs, a collector is open
(:func:`pytest_fcp.coverage.collecting`): every scenario run (scenario items, each fuzz example) adds its
cells, and a marker test's world adds its fetches at the end of the call. The cells travel on the report
(``report.fcp_cells``, a list of strings, so pytest-xdist ships them to the controller like the traces); the
controller counts them, prints the empty reachable cells at the end, writes ``--fcp-coverage-json`` and hands
the map to the HTML report.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Generator
from typing import Any

import pytest

from pytest_fcp.plugin.settings import WORLD_KEY, RunSettings

__all__ = ["CELLS_KEY", "CoverageReport"]

CELLS_KEY = pytest.StashKey[list[str]]()  # on an item: the cells its call exercised, as cell keys


class CoverageReport:
    """Collects each test's cells (where it runs) and the run's map (on the controller)."""

    def __init__(self, run: RunSettings) -> None:
        from pytest_fcp.coverage import CoverageMap

        self.run = run
        self.map = CoverageMap()
        self.tests = 0
        self.written: pathlib.Path | None = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        """Open a collector around the test; add its marker world's fetches; keep the cells on the item."""
        from pytest_fcp.coverage import cell_key, collecting, note

        with collecting() as cells:
            try:
                return (yield)
            finally:
                world = item.stash.get(WORLD_KEY, None)
                if world is not None:
                    note(world.spec, world.results)
                item.stash[CELLS_KEY] = sorted(cell_key(c) for c in cells)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        """Attach the call's cells to its report (``report.fcp_cells``)."""
        report = yield
        if report.when == "call":
            cells = item.stash.get(CELLS_KEY, None)
            if cells:
                report.fcp_cells = cells
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Count a test's cells (controller only)."""
        cells = getattr(report, "fcp_cells", None)
        if cells and not self.run.worker:
            self.tests += 1
            self.map.add_keys(cells)

    def data(self) -> dict[str, Any]:
        """The full map as plain data, with how many tests contributed."""
        return {**self.map.to_data(), "tests": self.tests}

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write ``--fcp-coverage-json`` (controller only)."""
        target = self.run.coverage_json
        if self.run.worker or target is None:
            return
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.data(), indent=1) + "\n", encoding="utf-8")
        tmp.replace(target)
        self.written = target

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Print the coverage line and, per projection, the empty reachable cells."""
        if self.run.worker:
            return
        for line in self.map.lines():
            terminalreporter.write_line(line)
        if self.written is not None:
            terminalreporter.write_line(f"fcp: coverage map written to {self.written}")
