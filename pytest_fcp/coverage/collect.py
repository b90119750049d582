"""Collecting cells while a test runs, and the map of a whole run: exercised and empty reachable cells.

:func:`collecting` opens a collector for the running test; :func:`note` (called by
:func:`~pytest_fcp.scenarios.runner.run_scenario` and by the plugin for marker tests) adds the cells of one
engine's fetches to it. Nothing is collected when no collector is open. :class:`CoverageMap` is plain data
in and out, so the map travels between processes and into the HTML report as lists of strings.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_fcp.coverage.cells import run_cells
from pytest_fcp.coverage.dimensions import PROJECTIONS, Cell, beyond_scenario_limits, reachable_cells

if TYPE_CHECKING:
    from pytest_fcp.world.observation import Observation
    from pytest_fcp.world.spec import WorldSpec

__all__ = ["CoverageMap", "cell_key", "collecting", "note", "parse_key"]

_SEP = " | "
_active = threading.local()


def cell_key(cell: Cell) -> str:
    """A cell as one string (``fault x target | rest.http429 | REST later page``): JSON- and xdist-safe."""
    return _SEP.join(cell)


def parse_key(key: str) -> Cell:
    """The cell a :func:`cell_key` string names."""
    projection, a, b = key.split(_SEP)
    return projection, a, b


@contextlib.contextmanager
def collecting() -> Iterator[set[Cell]]:
    """Collect the cells :func:`note` reports while the block runs (in this thread) into the yielded set."""
    previous = getattr(_active, "cells", None)
    cells: set[Cell] = set()
    _active.cells = cells
    try:
        yield cells
    finally:
        _active.cells = previous


def note(spec: WorldSpec, results: Sequence[Observation]) -> None:
    """Add the cells of one engine's fetches in one world to the open collector, if any."""
    cells = getattr(_active, "cells", None)
    if cells is not None and results:
        cells |= run_cells(spec, results)


class CoverageMap:
    """The run's map: which reachable cells of each projection were exercised, and by how many tests."""

    def __init__(self, exercised: Iterable[Cell] = ()) -> None:
        self.counts: dict[Cell, int] = {}
        self.add(exercised)

    def add(self, cells: Iterable[Cell]) -> None:
        """Count one test's cells (each cell once per call)."""
        for cell in set(cells):
            self.counts[cell] = self.counts.get(cell, 0) + 1

    def add_keys(self, keys: Iterable[str]) -> None:
        """Count one test's cells given as :func:`cell_key` strings (as they travel in reports)."""
        self.add(parse_key(k) for k in keys)

    def empty(self) -> list[Cell]:
        """The reachable cells no test exercised, in report order."""
        return [c for c in reachable_cells() if c not in self.counts]

    def summary(self) -> str:
        """One line: ``fcp coverage: X of Y reachable cells exercised``."""
        reachable = reachable_cells()
        done = sum(1 for c in reachable if c in self.counts)
        return f"fcp coverage: {done} of {len(reachable)} reachable cells exercised"

    def gaps(self) -> list[Cell]:
        """The empty reachable cells a scenario can reach within its limits (:meth:`empty` minus the rest)."""
        return [c for c in self.empty() if not beyond_scenario_limits(c)]

    def lines(self, per_projection: int = 12) -> list[str]:
        """The summary, then per projection its count and its empty cells (at most ``per_projection`` named);
        the empty cells only a request longer than a scenario may make reaches come last, apart."""
        empty, gaps = self.empty(), self.gaps()
        tail = (
            "; empty:"
            if gaps
            else "; no reachable cell is empty"
            if not empty
            else "; no cell a scenario can reach is empty"
        )
        out = [self.summary() + tail]
        for projection in PROJECTIONS:
            cells = projection.cells()
            missing = [c for c in cells if c not in self.counts]
            head = f"  {projection.name}: {len(cells) - len(missing)} of {len(cells)}"
            named = [c for c in missing if not beyond_scenario_limits(c)]
            if not named:
                out.append(head)
                continue
            listed = ", ".join(f"{a} x {b}" for _, a, b in named[:per_projection])
            more = f", ... and {len(named) - per_projection} more" if len(named) > per_projection else ""
            out.append(f"{head}; empty: {listed}{more}")
        beyond = [c for c in empty if beyond_scenario_limits(c)]
        if beyond:
            listed = ", ".join(f"{a} x {b}" for _, a, b in beyond)
            out.append(f"  empty, a longer request than a scenario may make: {listed}")
        return out

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> CoverageMap:
        """A map read back from :meth:`to_data` (or ``--fcp-coverage-json``): its exercised cells and counts."""
        loaded = cls()
        for projection in data.get("projections", ()):
            for cell in projection.get("cells", ()):
                if cell.get("tests"):
                    loaded.counts[(projection["name"], cell["a"], cell["b"])] = int(cell["tests"])
        return loaded

    def to_data(self) -> dict[str, Any]:
        """The full map as plain data: per projection, its dimensions and every reachable cell's test count."""
        projections = []
        for projection in PROJECTIONS:
            dims = projection.name.split(" x ", 1)
            cells = [{"a": a, "b": b, "tests": self.counts.get((p, a, b), 0)} for p, a, b in projection.cells()]
            projections.append(
                {
                    "name": projection.name,
                    "rows": dims[0],
                    "columns": dims[1],
                    "row_values": list(projection.first),
                    "column_values": list(projection.second),
                    "cells": cells,
                    "exercised": sum(1 for c in cells if c["tests"]),
                    "reachable": len(cells),
                }
            )
        reachable = sum(p["reachable"] for p in projections)
        exercised = sum(p["exercised"] for p in projections)
        return {"reachable": reachable, "exercised": exercised, "projections": projections}
