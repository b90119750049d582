"""Steering the fuzz search towards empty coverage cells: wider interval draws, ``target()`` on new cells, the
option that turns it off, and the replay line that keeps it off."""

from __future__ import annotations

import pathlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_fcp.core.markets import MARKETS
from pytest_fcp.fuzz.search import fuzz_engine
from pytest_fcp.fuzz.strategies import WIDE_EXCLUDED, scenarios

NARROW = {"1m", "1h", "4h", "1d"}


def _intervals(strategy: st.SearchStrategy, n: int = 120) -> set[str]:
    seen: set[str] = set()

    @settings(max_examples=n, database=None, derandomize=True, suppress_health_check=list(HealthCheck), deadline=None)
    @given(strategy)
    def draw(scenario):  # type: ignore[no-untyped-def]
        seen.add(scenario.interval)

    draw()
    return seen


def test_wide_draws_reach_intervals_the_default_never_draws() -> None:
    assert _intervals(scenarios()) <= NARROW
    wide = _intervals(scenarios(wide=True))
    assert wide - NARROW, wide
    every = {i for m in MARKETS.values() for i in m.intervals}
    assert wide <= every - WIDE_EXCLUDED


def test_steered_search_reaches_more_cells_than_unsteered_on_the_same_seed(tmp_path: pathlib.Path) -> None:
    from pytest_fcp.plugin.fuzz_items import coverage_cells

    runs = {
        steer: fuzz_engine(
            "reference", examples=25, seed_value=2, cells=coverage_cells(), steer=steer, workdir=tmp_path / str(steer)
        )
        for steer in (False, True)
    }
    assert all(r.passed and r.cells for r in runs.values())
    assert runs[True].cells > runs[False].cells
    weighted = fuzz_engine(
        "reference", examples=5, seed_value=2, cells=coverage_cells(), empty=[("market x interval", "spot", "1h")]
    )
    assert weighted.empty_cells in (0, 1) and weighted.cells >= weighted.empty_cells


def test_fuzz_steer_option(pytester: pytest.Pytester) -> None:
    bad = pytester.runpytest("-p", "no:xdist", "--fcp-fuzz", "--fcp-engine=reference", "--fcp-fuzz-steer=maybe")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*ERROR: pytest-fcp: --fcp-fuzz-steer must be on or off (true / false), not 'maybe'*"])
    alone = pytester.runpytest("-p", "no:xdist", "--fcp-engine=reference", "--fcp-fuzz-steer=off")
    assert alone.ret == pytest.ExitCode.USAGE_ERROR
    off = pytester.runpytest(
        "-p", "no:xdist", "--fcp-fuzz", "--fcp-engine=reference", "--fcp-fuzz-examples=3", "--fcp-fuzz-db=none",
        "--fcp-fuzz-steer=off", "--fcp-coverage",
    )  # fmt: skip
    off.assert_outcomes(passed=1)
    # at most 3 (a duplicate draw runs once: Hypothesis 6.100, the floor, draws 2 distinct of 3 here)
    off.stdout.fnmatch_lines(["reference: passed, [123] scenarios in *", "fcp coverage: * of * reachable cells*"])
