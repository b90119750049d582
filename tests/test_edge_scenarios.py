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
LEAP = [s for s in load_file(catalog_dir() / "calendar.toml") if s.name.startswith("leap_day_")]

#: defect -> (scenarios, the scenarios that must fail it, the check each failure names, words of its reason)
CASES: dict[str, tuple[list[Scenario], set[str], str, str]] = {
    "NeverReadsBackRestDays": (
        EDGES,
        {"rest_days_read_back_from_cache", "vision_and_rest_days_fetched_twice"},
        "sources",
        "rows tagged rest; expected cache",
    ),
    "RestDaysInNanoseconds": (EDGES, {"vision_and_rest_days_fetched_twice"}, "outcome", "raised ArrowInvalid"),
    "IgnoresRetryAfterOnLaterPages": (
        EDGES,
        {"http429_on_a_later_page", "http418_on_a_later_page", "http429_on_a_later_page_of_old_days"},
        "rate_limit",
        "(hammering)",
    ),
    "DropsAFailedRange": (
        EDGES,
        {"rest_fails_for_the_second_of_two_ranges", "rest_fails_for_the_first_of_two_ranges"},
        "outcome",
        "could not be obtained from any source (expected DataSourceError)",
    ),
    "TrustsAZipWhoseChecksumFailed": (
        EDGES,
        {"checksum_times_out", "checksum_connection_refused_once"},
        "cache",
        "cached the rows of a Vision zip that could not be verified",
    ),
    "ExpiresMonthOldCache": (
        EDGES,
        {"cache_a_month_old", "cache_a_year_old_beside_vision"},
        "sources",
        "rows tagged vision; expected cache",
    ),
    "NoLeapDay": (LEAP, {"leap_day_1h_vision", "leap_day_1d_cache", "leap_day_1m_vision"}, "rows", "missing"),
    "DropsTheFormingBar": (EDGES, {"forming_bar_at_now", "forming_4h_bar"}, "rows", "1 bar(s) missing"),
    "AcceptsADayOneBarShort": (
        EDGES,
        {"cached_1h_day_one_bar_short_at_end", "cached_1m_day_one_bar_short_at_start", "cached_1d_day_one_bar_short"},
        "rows",
        "1 bar(s) missing",
    ),
    "CountsCsvLinesWithNext": (
        EDGES,
        {"vision_1d_file_for_1h", "vision_4h_file_for_1m"},
        "outcome",
        "raised StopIteration",
    ),
    "UnpacksTwelveFields": (
        EDGES,
        {"rest_rows_with_13_fields", "rest_rows_with_11_fields", "rest_rows_with_5_fields"},
        "outcome",
        "raised ValueError",
    ),
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
    scenarios, expected, check, words = CASES[defect]
    failures = _failures(scenarios, DEFECTS[defect], tmp_path)
    assert expected <= set(failures), f"{defect} passed {sorted(expected - set(failures))}"
    for name in expected:
        assert any(v.startswith(f"[{check}]") and words in v for v in failures[name]), (name, failures[name])


def test_the_themes_are_silent_on_the_reference_engine(tmp_path: pathlib.Path) -> None:
    assert _failures([*EDGES, *LEAP], "reference", tmp_path) == {}


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
