"""The matrix theme and the coverage map of the whole catalog: the generated file is its generator's, the
bundled catalog leaves no reachable cell empty that a scenario can reach, and taking away the one scenario
that reaches a cell makes the map report it (the check, both ways)."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import subprocess
import sys
from unittest import mock

import pytest

from pytest_fcp.core.limits import SCENARIO_LIMITS
from pytest_fcp.core.markets import day_bounds_ms
from pytest_fcp.coverage import CoverageMap, parse_key, reachable_cells
from pytest_fcp.coverage.dimensions import beyond_scenario_limits
from pytest_fcp.world import rest, vision
from pytest_fcp.world.truth import SyntheticTruth

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: A cell only one bundled scenario reaches, by design of scripts/gen_matrix.py.
ALONE = ("fault x interval", "cache.duplicate_rows", "1s")
ALONE_BY = "broken_1s_cache_files_day_after_day"


def test_the_matrix_theme_is_what_its_generator_writes() -> None:
    script = ROOT / "scripts" / "gen_matrix.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_cells_beyond_a_scenario_s_limits_are_derived_from_the_limits() -> None:
    assert not beyond_scenario_limits(("shape x interval", "a month or more", "1s"))  # 2,592,000 bars
    assert not beyond_scenario_limits(("shape x interval", "longer than any page", "1d"))  # 1,501 days
    assert not beyond_scenario_limits(("shape x interval", "one bar", "1s"))
    assert not beyond_scenario_limits(("fault x interval", "rest.http429", "1s"))
    assert not [c for c in reachable_cells() if beyond_scenario_limits(c)]  # the limits leave no reachable cell out
    smaller = {"bars": 2_000_000, "request_days": 1_000}
    with mock.patch.dict(SCENARIO_LIMITS, smaller):
        assert beyond_scenario_limits(("shape x interval", "a month or more", "1s"))  # 2.6 million bars
        assert beyond_scenario_limits(("shape x interval", "longer than any page", "1d"))  # 1,501 days
        assert not beyond_scenario_limits(("shape x interval", "longer than any page", "12h"))  # 751 days
        assert not beyond_scenario_limits(("shape x interval", "a month or more", "1m"))  # 43,200 bars


def test_fast_spot_rendering_is_byte_for_byte_the_general_one() -> None:
    truth = SyntheticTruth(3)
    for market, interval in (("spot", "1s"), ("spot", "1h"), ("futures_usdt", "1m")):
        day = dt.date(2024, 2, 29)
        table = truth.klines(market, "BTCUSDT", interval, *day_bounds_ms(day)).slice(0, 500)
        assert rest._rendered_table(table, market) == rest._rendered(rest.kline_rows(table, market))
    table = truth.klines("spot", "BTCUSDT", "1s", *day_bounds_ms(day)).slice(0, 50)
    lines = vision.csv_bytes(table, "spot", "1s", day).decode().splitlines()
    cols = table.to_pydict()
    for i, line in enumerate(lines):
        t = cols["open_time"][i]
        prices = [vision._fmt(cols[k][i], 8) for k in ("open", "high", "low", "close", "volume")]
        tail = [vision._fmt(cols["quote_volume"][i], 8), str(cols["count"][i])]
        tail += [vision._fmt(cols[k][i], 8) for k in ("taker_buy_volume", "taker_buy_quote_volume")]
        assert line == ",".join([str(t), *prices, str(t + 999), *tail, "0"])


def test_one_second_rest_bars_come_an_hour_at_a_time_and_join_up() -> None:
    truth = SyntheticTruth(3)
    day = dt.date(2024, 2, 29)
    start = day_bounds_ms(day)[0]
    lo, upper = start + 3_599_000 - 5_000, start + 3_600_000 + 5_000  # across 01:00
    blocks = rest._blocks(truth, "spot", "BTCUSDT", "1s", day, lo, upper)
    assert len(blocks) == 2 and all(len(times) == 3600 for times, _ in blocks)
    times = [t for block, _ in blocks for t in block]
    assert times == list(range(start, start + 7_200_000, 1000))
    assert len(rest._blocks(truth, "spot", "BTCUSDT", "1m", day, lo, upper)) == 1  # a minute up: the whole day


class _KeepCells:
    """Keeps each test's cells as its report carries them (``report.fcp_cells``)."""

    def __init__(self) -> None:
        self.cells: dict[str, list[str]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" and getattr(report, "fcp_cells", None):
            self.cells[report.nodeid] = report.fcp_cells


def test_the_catalog_leaves_no_cell_a_scenario_can_reach_empty(pytester: pytest.Pytester) -> None:
    target = pytester.path / "map.json"
    keep = _KeepCells()
    result = pytester.runpytest_inprocess(
        "--fcp-scenarios", "--fcp-engine=reference", "-n", "0", "-p", "no:randomly",
        "--fcp-coverage", f"--fcp-coverage-json={target}", plugins=[keep],
    )  # fmt: skip
    result.assert_outcomes(passed=len(keep.cells))
    loaded = CoverageMap.from_data(json.loads(target.read_text()))
    assert loaded.gaps() == []
    assert loaded.empty() == []  # every reachable cell, those of the longest requests a scenario may make too
    total = len(reachable_cells())
    line = f"fcp coverage: {total} of {total} reachable cells exercised; no reachable cell is empty"
    result.stdout.fnmatch_lines([line])

    # the other way: without the one scenario that reaches a cell, the map reports that cell
    alone = [n for n in keep.cells if ALONE_BY in n]
    assert len(alone) == 1
    rest_of_catalog = CoverageMap()
    for nodeid, keys in keep.cells.items():
        if nodeid not in alone:
            rest_of_catalog.add_keys(keys)
    assert ALONE in rest_of_catalog.gaps()
    assert set(rest_of_catalog.gaps()) <= {parse_key(k) for k in keep.cells[alone[0]]}
    fault_line = next(line for line in rest_of_catalog.lines() if line.startswith("  fault x interval"))
    assert "cache.duplicate_rows x 1s" in fault_line
