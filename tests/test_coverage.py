"""The coverage map: reachable cells from the fault table and the markets, the cells of one fetch (each
dimension, on hand-built observations), and ``--fcp-coverage`` in a run, in one process and under xdist."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
from unittest import mock

import pyarrow as pa
import pytest

from pytest_fcp.core.cache_states import DayFileState
from pytest_fcp.core.limits import SCENARIO_LIMITS
from pytest_fcp.core.markets import MARKETS, MAX_PAGE_LIMIT, to_ms
from pytest_fcp.coverage import CoverageMap, collecting, fault_hits, fetch_cells, note, reachable_cells, run_cells
from pytest_fcp.coverage.cells import calendar_edges, clock_labels, lifetime_labels, shape_labels
from pytest_fcp.coverage.dimensions import TARGETS, fault_targets, is_reachable
from pytest_fcp.faults import FAULTS, fault
from pytest_fcp.world.answer import Target
from pytest_fcp.world.observation import FetchRequest, Observation
from pytest_fcp.world.recorder import RequestRecord
from pytest_fcp.world.spec import WorldSpec


def utc(text: str) -> dt.datetime:
    """An aware UTC datetime from an ISO date or date-time."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


NOW = utc("2024-01-10T12:00:00")
HOUR = 3_600_000


def observe(
    start: str,
    end: str,
    *,
    now: dt.datetime = NOW,
    interval: str = "1h",
    market: str = "spot",
    requests: tuple[RequestRecord, ...] = (),
    before: dict[dt.date, str] | None = None,
    published: frozenset[dt.date] = frozenset(),
    table: pa.Table | None = None,
    rows: dict[dt.date | None, dict[str, int]] | None = None,
) -> Observation:
    """A hand-built observation of one fetch (only what the cells read is filled in)."""
    request = FetchRequest("BTCUSDT", market, interval, utc(start), utc(end))
    states = {d: DayFileState((before or {}).get(d, "missing")) for d in request.days}
    return Observation(
        request, now, table, None, (), requests, (), (), states, states, pa.table({}), published,
        rows_per_day=rows or {},
    )  # fmt: skip


def rest(
    index: int, start_ms: int, end_ms: int, fault_id: str | None = None, *, at: dt.datetime = NOW
) -> RequestRecord:
    """A REST klines request for ``[start_ms, end_ms]`` answered (or not) by a fault."""
    url = f"https://api.binance.com/api/v3/klines?symbol=BTCUSDT&interval=1h&startTime={start_ms}&endTime={end_ms}"
    return RequestRecord(index, "rest", "https", "GET", url, Target(), 1, 200, None, None, at, 0.0, fault_id)


def vision(index: int, obj: str, fault_id: str | None) -> RequestRecord:
    """A Vision request for a zip or its .CHECKSUM."""
    url = "https://data.binance.vision/data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-01.zip"
    target = Target("spot", "BTCUSDT", "1h", (dt.date(2024, 1, 1),), obj)
    return RequestRecord(index, "vision", "https", "GET", url, target, 1, 403, None, None, NOW, 0.0, fault_id)


def test_reachable_cells_come_from_the_fault_table_and_the_markets() -> None:
    cells = set(reachable_cells())
    for fid, kind in FAULTS.items():
        assert {t for p, f, t in cells if p == "fault x target" and f == fid} == set(fault_targets(kind))
    assert fault_targets(FAULTS["vision.missing_checksum"]) == ("Vision .CHECKSUM",)
    assert not is_reachable(("fault x target", "vision.truncated_zip", "Vision .CHECKSUM"))
    assert is_reachable(("fault x target", "vision.read_timeout", "Vision .CHECKSUM"))
    assert fault_targets(FAULTS["cache.write_fails"]) == ("cache write",)
    assert fault_targets(FAULTS["cache.partial_day"]) == ("cache read",)
    assert set(fault_targets(FAULTS["rest.http429"])) == {t for t in TARGETS if t.startswith("REST")}
    assert not is_reachable(("market x interval", "futures_usdt", "1s"))
    assert is_reachable(("market x interval", "spot", "1s"))
    assert not is_reachable(("shape x interval", "bars within a day", "1d"))
    assert is_reachable(("shape x interval", "one bar", "1d"))
    assert not is_reachable(("no such projection", "a", "b"))
    assert len(cells) == len(reachable_cells())  # no cell twice


def test_rest_first_later_page_and_one_of_several_ranges() -> None:
    day = to_ms(utc("2024-01-09"))
    paged = observe("2024-01-09", "2024-01-10T12:00:00", requests=(
        rest(1, day, day + 10 * HOUR),
        rest(2, day + 11 * HOUR, day + 30 * HOUR, "rest.http429"),
        rest(3, day + 11 * HOUR, day + 30 * HOUR),
    ))  # fmt: skip
    assert fault_hits(WorldSpec(NOW), paged) == {("rest.http429", "REST later page")}
    first = observe("2024-01-09", "2024-01-10T12:00:00", requests=(rest(1, day, day + 10 * HOUR, "rest.http500"),))
    assert fault_hits(WorldSpec(NOW), first) == {("rest.http500", "REST first page")}
    ranges = observe("2024-01-08", "2024-01-10T12:00:00", requests=(
        rest(1, day - DAY, day - DAY + 5 * HOUR),
        rest(2, day + 5 * HOUR, day + 9 * HOUR, "rest.http503"),
    ))  # fmt: skip
    assert fault_hits(WorldSpec(NOW), ranges) == {
        ("rest.http503", "REST first page"),
        ("rest.http503", "REST one of several ranges"),
    }
    cells = fetch_cells(WorldSpec(NOW), ranges)
    assert ("fault x interval", "rest.http503", "1h") in cells


DAY = 86_400_000


def test_vision_zip_and_checksum_and_no_fault() -> None:
    obs = observe(
        "2024-01-01", "2024-01-02", requests=(vision(1, "checksum", "vision.read_timeout"), vision(2, "zip", None))
    )
    assert fault_hits(WorldSpec(NOW), obs) == {("vision.read_timeout", "Vision .CHECKSUM")}
    obs = observe("2024-01-01", "2024-01-02", requests=(vision(1, "zip", "vision.http403"),))
    assert fault_hits(WorldSpec(NOW), obs) == {("vision.http403", "Vision zip")}
    assert fault_hits(WorldSpec(NOW), observe("2024-01-01", "2024-01-02", requests=(vision(1, "zip", None),))) == set()


def test_cache_read_and_cache_write() -> None:
    day = dt.date(2024, 1, 2)
    spec = WorldSpec(NOW, faults=(fault("cache.partial_day", days=[day]),), cached=(day,))
    assert fault_hits(spec, observe("2024-01-02", "2024-01-03", before={day: "partial"})) == {
        ("cache.partial_day", "cache read")
    }
    assert fault_hits(spec, observe("2024-01-03", "2024-01-04")) == set()  # the fetch never needed that day
    writes = WorldSpec(NOW, faults=(fault("cache.write_fails"),))
    assert fault_hits(writes, observe("2024-01-02", "2024-01-03")) == {("cache.write_fails", "cache write")}
    young = observe("2024-01-10", "2024-01-10T12:00:00")  # nothing an engine may cache: no write to fail
    assert fault_hits(writes, young) == set()


@pytest.mark.parametrize(
    ("day", "edges"),
    [
        ("2024-02-29", ["month end", "29 Feb"]),
        ("2023-12-31", ["month end", "year end"]),
        ("2024-01-31", ["month end"]),
        ("2023-02-28", ["month end"]),
        ("2024-02-28", ["none"]),
        ("2024-01-15", ["none"]),
    ],
)
def test_calendar_edges(day: str, edges: list[str]) -> None:
    assert calendar_edges(dt.date.fromisoformat(day)) == edges


def test_clock_labels() -> None:
    on_grid = observe("2024-01-09", "2024-01-10T12:00:00")
    assert clock_labels(WorldSpec(NOW), on_grid) == ["on grid", "zone UTC"]
    off = utc("2024-01-10T23:30:05")
    forming = observe("2024-01-10", "2024-01-11", now=off)
    assert clock_labels(WorldSpec(off, local_tz="Asia/Tokyo"), forming) == [
        "off grid", "forming bar", "late UTC day", "zone east of UTC",
    ]  # fmt: skip
    closed = observe("2024-01-10", "2024-01-10T22:00:00", now=off)  # the forming bar is not asked for
    assert "forming bar" not in clock_labels(WorldSpec(off), closed)
    early = utc("2024-01-10T00:15:00")
    waited = observe(
        "2024-01-09", "2024-01-10", now=early, requests=(rest(1, 0, 0, at=early + dt.timedelta(seconds=30)),)
    )
    labels = clock_labels(WorldSpec(early, local_tz="America/New_York"), waited)
    assert labels == ["off grid", "clock step", "early UTC day", "zone west of UTC"]


def test_shape_labels() -> None:
    assert shape_labels(observe("2024-01-01", "2024-01-03")) == ["aligned to days", "several days"]
    assert shape_labels(observe("2024-01-01T05:00:00", "2024-01-01T06:00:00")) == ["mid-day on grid", "one bar"]
    assert shape_labels(observe("2024-01-01T05:00:07", "2024-01-01T09:00:00")) == [
        "off grid by seconds",
        "bars within a day",
    ]
    long = observe("2023-10-01", "2024-01-01")
    assert shape_labels(long) == ["aligned to days", "a month or more", "longer than any page"]
    assert MAX_PAGE_LIMIT < 92 * 24  # 92 days of hours: more bars than any page
    assert shape_labels(observe("2023-10-01", "2024-01-01", interval="1d")) == ["aligned to days", "a month or more"]
    assert shape_labels(observe("2024-01-01", "2024-01-02", interval="1d")) == ["aligned to days", "one bar"]


def test_lifetime_and_origin_of_cached_days() -> None:
    day = dt.date(2024, 1, 5)
    spec = WorldSpec(NOW)
    first = observe("2024-01-05", "2024-01-06", rows={day: {"rest": 24}})
    again = observe("2024-01-05", "2024-01-06", now=NOW + dt.timedelta(minutes=5), before={day: "valid"})
    assert lifetime_labels(first, ()) == ["first fetch"]
    assert lifetime_labels(again, (first,)) == ["again minutes later"]
    cells = run_cells(spec, [first, again])
    assert ("lifetime x origin", "again minutes later", "rest") in cells
    assert ("lifetime x cache state", "again minutes later", "valid") in cells
    assert ("lifetime x cache state", "first fetch", "missing") in cells
    later = observe(
        "2024-01-05", "2024-01-06", now=NOW + dt.timedelta(days=3), before={day: "valid"}, published=frozenset({day})
    )
    assert lifetime_labels(later, (first,)) == ["again days later", "after Vision published"]
    seeded = fetch_cells(WorldSpec(NOW, cached=(day,)), again, (observe("2024-01-01", "2024-01-02"),))
    assert ("lifetime x origin", "again minutes later", "seeded") in seeded


def test_age_and_cache_state_cells() -> None:
    obs = observe("2023-11-30", "2023-12-01", before={dt.date(2023, 11, 30): "stale"})
    cells = fetch_cells(WorldSpec(NOW), obs)
    assert ("age x cache state", "a month and more", "stale") in cells
    assert ("cache state x interval", "stale", "1h") in cells
    assert ("calendar x interval", "month end", "1h") in cells
    assert ("market x interval", "spot", "1h") in cells
    young = fetch_cells(WorldSpec(NOW), observe("2024-01-10", "2024-01-10T06:00:00"))
    assert ("age x cache state", "young", "missing") in young


def test_collector_and_map() -> None:
    obs = observe("2024-01-01", "2024-01-02")
    note(WorldSpec(NOW), [obs])  # no collector open: nothing happens
    with collecting() as cells:
        note(WorldSpec(NOW), [obs])
        note(WorldSpec(NOW), [])
    assert cells == fetch_cells(WorldSpec(NOW), obs)
    coverage = CoverageMap(cells)
    data = coverage.to_data()
    assert data["exercised"] == len(cells & set(reachable_cells())) and data["reachable"] == len(reachable_cells())
    assert coverage.summary() == f"fcp coverage: {data['exercised']} of {data['reachable']} reachable cells exercised"
    assert ("market x interval", "spot", "3m") in coverage.empty()
    assert ("market x interval", "spot", "1h") not in coverage.empty()
    market_line = next(line for line in coverage.lines() if line.startswith("  market x interval"))
    assert market_line.startswith(f"  market x interval: 1 of {sum(len(m.intervals) for m in MARKETS.values())}")
    assert "spot x 1s" in market_line and "spot x 1h" not in market_line
    again = CoverageMap.from_data(json.loads(json.dumps(data)))
    assert again.counts == {c: 1 for c in cells if is_reachable(c)} and again.empty() == coverage.empty()


SCENARIO = """
description = "one REST failure"

[defaults]
now = "2024-01-10T12:00:00Z"

[[scenario]]
name = "rest_500_first"
description = "REST fails once, then serves."
faults = [{ id = "rest.http500", attempts = "first:1" }]
request = { start = "2024-01-09", end = "2024-01-10T12:00:00Z" }

[[scenario]]
name = "vision_403"
description = "Vision refuses the old day."
faults = ["vision.http403"]
request = { start = "2024-01-05", end = "2024-01-06" }
"""

TEST_FILE = """
import datetime as dt

import pytest

@pytest.mark.fcp(now="2024-01-10T12:00:00Z", interval="4h")
def test_marker(fcp_world, fcp_engine):
    fcp_world.fetch(dt.datetime(2024, 1, 5, tzinfo=dt.UTC), dt.datetime(2024, 1, 6, tzinfo=dt.UTC))
"""


def _run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict]:
    target = pytester.path / "map.json"
    result = pytester.runpytest(
        "--fcp-engine=reference", "--fcp-scenarios", "--fcp-no-bundled", "--fcp-scenarios-dir=own",
        "--fcp-coverage", f"--fcp-coverage-json={target}", "-p", "no:randomly", *args,
    )  # fmt: skip
    return result, json.loads(target.read_text())


def _exercised(data: dict) -> set[tuple[str, str, str]]:
    return {(p["name"], c["a"], c["b"]) for p in data["projections"] for c in p["cells"] if c["tests"]}


def test_fcp_coverage_in_one_process_and_under_xdist(pytester: pytest.Pytester) -> None:
    (pytester.path / "own").mkdir()
    (pytester.path / "own" / "tiny.toml").write_text(SCENARIO)
    result, data = _run(pytester, "-n", "0")
    exercised = _exercised(data)
    assert ("fault x target", "rest.http500", "REST first page") in exercised
    assert ("fault x target", "vision.http403", "Vision zip") in exercised
    assert ("fault x target", "rest.http500", "REST later page") not in exercised
    assert data["tests"] == 2
    line = f"fcp coverage: {data['exercised']} of {data['reachable']} reachable cells exercised; empty:"
    result.stdout.fnmatch_lines([line, "  fault x target: 2 of *; empty: vision.http403 x Vision .CHECKSUM, *"])
    parallel, again = _run(pytester, "-n", "2")
    assert _exercised(again) == exercised and again["tests"] == 2
    parallel.stdout.fnmatch_lines([line])


def test_fcp_coverage_counts_marker_tests_and_reads_the_ini(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_marker=TEST_FILE)
    pytester.makeini("[pytest]\nfcp_coverage = true\n")
    result = pytester.runpytest("--fcp-engine=reference", "-n", "0", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["fcp coverage: * of * reachable cells exercised; empty:", "  market x interval: 1 of *"]
    )
    result = pytester.runpytest("--fcp-engine=reference", "-n", "0", "--fcp-coverage-json=nodir/map.json")
    result.stderr.fnmatch_lines(["ERROR: pytest-fcp: --fcp-coverage-json nodir/map.json: no such directory *"])


def test_the_html_report_maps_exercised_empty_and_unreachable_cells() -> None:
    from pytest_fcp.report import render_report

    coverage = CoverageMap([("market x interval", "spot", "1h"), ("market x interval", "spot", "1h")])
    coverage.add([("market x interval", "spot", "1h")])
    page = render_report({"tests": [], "engines": ["reference"], "coverage": coverage.to_data()})
    assert f"Coverage map: 1 of {len(reachable_cells())} reachable cells exercised" in page
    market = page[page.index('id="cov-market-x-interval"') :].split("</details>", 1)[0]
    assert market.count('class="hit"') == 1 and 'title="2 test(s)">2<' in market
    assert market.count('class="na"') == 2  # 1s on both futures markets
    assert market.count('class="empty"') == sum(len(m.intervals) for m in MARKETS.values()) - 1
    assert "Coverage map" not in render_report({"tests": [], "engines": ["reference"]})


def test_fcp_html_shows_the_map_when_coverage_is_on(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_marker=TEST_FILE)
    pytester.runpytest("--fcp-engine=reference", "-n", "0", "--fcp-coverage", "--fcp-html=r.html")
    page = (pytester.path / "r.html").read_text()
    assert 'id="cov-market-x-interval"' in page and 'title="1 test(s)">1<' in page
    result = pytester.runpytest("--fcp-engine=reference", "-n", "0", "--fcp-html=r.html")
    assert "Coverage map" not in (pytester.path / "r.html").read_text()
    result.stdout.no_fnmatch_line("fcp coverage:*")  # off unless asked for


def test_fuzz_examples_record_cells(pytester: pytest.Pytester) -> None:
    target = pytester.path / "map.json"
    pytester.runpytest(
        "--fcp-engine=reference", "--fcp-fuzz", "--fcp-fuzz-examples=3", "-n", "0", f"--fcp-coverage-json={target}"
    )
    data = json.loads(target.read_text())
    assert data["tests"] == 1 and data["exercised"] > 0
    assert {c for c in _exercised(data) if c[0] == "lifetime x cache state" and c[1] == "first fetch"}


def test_recorded_fetches_of_one_engine_asked_again_days_later(tmp_path: pathlib.Path) -> None:
    from pytest_fcp.scenarios.model import Request, Scenario
    from pytest_fcp.scenarios.runner import run_scenario

    span = (utc("2024-01-07"), utc("2024-01-10T12:00:00"))
    scenario = Scenario(
        "again", "asked again days later", NOW, (Request(*span), Request(*span, at=NOW + dt.timedelta(days=3)))
    )
    with collecting() as cells:
        run = run_scenario(scenario, "reference", tmp_path / "cache")
    assert run.passed, run.summary()
    assert cells == run_cells(run.world.spec, run.results)
    assert ("lifetime x origin", "again days later", "vision") in cells  # written after Vision served it
    assert ("lifetime x cache state", "again days later", "valid") in cells
    assert ("lifetime x cache state", "after Vision published", "valid") in cells
    assert ("lifetime x cache state", "first fetch", "missing") in cells
    assert ("age x cache state", "young", "missing") in cells and ("age x cache state", "old", "valid") in cells
    assert not {c for c in cells if c[0] == "fault x target"}  # no fault in this world


def test_the_map_names_cells_beyond_a_scenario_s_limits_apart() -> None:
    beyond = ("shape x interval", "longer than any page", "1d")
    reachable = [c for c in reachable_cells() if c != beyond]
    coverage = CoverageMap(reachable)
    assert coverage.empty() == [beyond] and coverage.gaps() == [beyond]  # today's limits reach it: a gap
    with mock.patch.dict(SCENARIO_LIMITS, {"request_days": 1_000}):  # limits a 1,501-day request breaks
        assert coverage.empty() == [beyond] and coverage.gaps() == []
        lines = coverage.lines()
        assert lines[0].endswith("; no cell a scenario can reach is empty")
        assert lines[-1] == "  empty, a longer request than a scenario may make: longer than any page x 1d"
        shape = next(line for line in lines if line.startswith("  shape x interval"))
        assert "empty" not in shape
        short = CoverageMap([c for c in reachable if c != ("shape x interval", "one bar", "1d")])
        assert short.gaps() == [("shape x interval", "one bar", "1d")] and short.lines()[0].endswith("; empty:")
    assert CoverageMap(reachable_cells()).lines()[0].endswith("; no reachable cell is empty")
