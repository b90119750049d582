"""The ``edges`` and ``calendar`` themes: silent on the reference engine, and each fails a planted defect in
its situation, naming the cause."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from pytest_fcp.faults import fault
from pytest_fcp.scenarios.loader import catalog_dir, load_file
from pytest_fcp.scenarios.model import Scenario
from pytest_fcp.scenarios.runner import run_scenario
from pytest_fcp.world.rest import RestApi
from tests.engines.edge_defects import DEFECTS

ROOT = pathlib.Path(__file__).resolve().parent.parent
EDGES = load_file(catalog_dir() / "edges.toml")
CALENDAR = load_file(catalog_dir() / "calendar.toml")
#: Every calendar scenario fetches a month's last day: 29 February, 30 April, 31 December.
MONTH_ENDS = {s.name for s in CALENDAR}
LEAP_DAYS = {s.name for s in CALENDAR if s.name.startswith("leap_day_")}

#: defect -> (the scenarios of its situation, which must fail naming the check, words of the reason)
CASES: dict[str, tuple[set[str], str, str]] = {
    "NeverReadsBackRestDays": (
        {"rest_days_read_back_from_cache", "vision_and_rest_days_fetched_twice"},
        "sources",
        "rows tagged rest; expected cache",
    ),
    "RestDaysInNanoseconds": ({"vision_and_rest_days_fetched_twice"}, "outcome", "raised ArrowInvalid"),
    "IgnoresRetryAfterOnLaterPages": (
        {"http429_on_a_later_page", "http418_on_a_later_page", "http429_on_a_later_page_of_old_days"},
        "rate_limit",
        "(hammering)",
    ),
    "DropsAFailedRange": (
        {"rest_fails_for_the_second_of_two_ranges", "rest_fails_for_the_first_of_two_ranges"},
        "outcome",
        "could not be obtained from any source (expected DataSourceError)",
    ),
    "TrustsAZipWhoseChecksumFailed": (
        {"checksum_times_out", "checksum_connection_refused_once", "checksum_connection_reset"},
        "cache",
        "cached the rows of a Vision zip that could not be verified",
    ),
    "ReadsAResetPageAsTheLastPage": ({"rest_connection_reset_on_a_later_page"}, "rows", "bar(s) missing"),
    "ExpiresMonthOldCache": (
        {"cache_a_month_old", "cache_a_year_old_beside_vision"},
        "sources",
        "rows tagged vision; expected cache",
    ),
    "NoLeapDay": (LEAP_DAYS, "rows", "missing"),
    "SkipsEachMonthsLastDay": (MONTH_ENDS, "rows", "missing"),
    "DropsTheFormingBar": ({"forming_bar_at_now", "forming_4h_bar"}, "rows", "1 bar(s) missing"),
    "AcceptsADayOneBarShort": (
        {"cached_1h_day_one_bar_short_at_end", "cached_1m_day_one_bar_short_at_start", "cached_1d_day_one_bar_short"},
        "rows",
        "1 bar(s) missing",
    ),
    "CountsCsvLinesWithNext": ({"vision_1d_file_for_1h", "vision_4h_file_for_1m"}, "outcome", "raised StopIteration"),
    "UnpacksTwelveFields": (
        {"rest_rows_with_13_fields", "rest_rows_with_11_fields", "rest_rows_with_5_fields"},
        "outcome",
        "raised ValueError",
    ),
}

#: The other scenarios of the two themes a defect also fails, and why; every scenario not named here passes.
ALSO_FAILS: dict[str, set[str]] = {
    # the retried .CHECKSUM is verified, but this engine never retries: it caches the zip unverified
    "TrustsAZipWhoseChecksumFailed": {"checksum_connection_reset_once"},
    # a 5-field page is unreadable: REST fails for the range, which this engine drops
    "DropsAFailedRange": {"rest_rows_with_5_fields"},
    # its later-page loop lets the client's ReadError out of the fetch
    "IgnoresRetryAfterOnLaterPages": {"rest_connection_reset_on_a_later_page"},
    # the calendar's REST scenarios with now inside an 8h or 1d bar
    "DropsTheFormingBar": {
        f"{edge}_{interval}_rest" for edge in ("leap_day", "month_end", "year_end") for interval in ("8h", "1d")
    },
    # fetched again, its nanosecond REST days and millisecond rows do not concatenate: ArrowInvalid
    "RestDaysInNanoseconds": {"rest_days_read_back_from_cache"},
}


def _failures(scenarios: list[Scenario], engine: object, root: pathlib.Path) -> dict[str, list[str]]:
    """Scenario name -> its verdicts, for every scenario the engine fails."""
    found: dict[str, list[str]] = {}
    for i, scenario in enumerate(scenarios):
        run = run_scenario(scenario, engine, root / str(i))
        if not run.passed:
            found[scenario.name] = [str(v) for v in run.verdicts]
    return found


def test_every_defect_has_a_case() -> None:
    assert set(CASES) == set(DEFECTS)


@pytest.mark.parametrize("defect", sorted(CASES))
def test_a_planted_defect_fails_its_situation_naming_the_cause(defect: str, tmp_path: pathlib.Path) -> None:
    expected, check, words = CASES[defect]
    failures = _failures([*EDGES, *CALENDAR], DEFECTS[defect], tmp_path)
    assert set(failures) == expected | ALSO_FAILS.get(defect, set()), f"{defect}: {sorted(failures)}"
    for name in expected:
        assert any(v.startswith(f"[{check}]") and words in v for v in failures[name]), (name, failures[name])


def test_a_month_end_defect_fails_the_month_and_year_ends_of_every_interval() -> None:
    from pytest_fcp.core.markets import INTERVALS

    for edge in ("year_end", "leap_day", ""):  # 29 February is February's end, so every scenario is a month end
        reached = {s.interval for s in CALENDAR if s.name.startswith(edge)}
        assert reached == set(INTERVALS), (edge, sorted(set(INTERVALS) - reached))
    assert CASES["SkipsEachMonthsLastDay"][0] == MONTH_ENDS


def test_the_themes_are_silent_on_the_reference_engine(tmp_path: pathlib.Path) -> None:
    assert _failures([*EDGES, *CALENDAR], "reference", tmp_path) == {}


@pytest.mark.parametrize("fields", [13, 11, 5, 1])
def test_rest_row_fields_reshapes_every_row(fields: int) -> None:
    rows = [
        (t, json.dumps([t, "1.0", "2.0", "0.5", "1.5", "10.0", t + 59_999, "15.0", 3, "5.0", "7.5", "0"]).encode())
        for t in (0, 60_000)
    ]
    reshaped = RestApi._rows_fields(None, fault("rest.row_fields", fields=fields), rows)  # type: ignore[arg-type]
    assert [t for t, _ in reshaped] == [0, 60_000]
    for (_, before), (_, after) in zip(rows, reshaped, strict=True):
        row = json.loads(after)
        assert len(row) == fields
        assert row[: min(fields, 12)] == json.loads(before)[: min(fields, 12)]


def test_rest_row_fields_refuses_binance_own_count() -> None:
    with pytest.raises(ValueError, match="fields 12 is Binance's own field count"):
        fault("rest.row_fields", fields=12)


def test_the_calendar_theme_is_what_its_generator_writes() -> None:
    script = ROOT / "scripts" / "gen_calendar.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
