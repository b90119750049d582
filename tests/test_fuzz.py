"""Property-based fault schedules (pytest_fcp.fuzz): strategies, TOML round trip, correct engines pass,
engines with one planted defect are found, shrunk and saved as a scenario that reproduces the defect."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib
import ssl
from typing import Any

import httpx
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings

from pytest_fcp.core.markets import days_between
from pytest_fcp.engines import CACHE_SCHEMA
from pytest_fcp.engines.reference import DataSourceError, RateLimitError, ReferenceEngine, _SourceFailed
from pytest_fcp.fuzz.save import render_scenario, save_scenario
from pytest_fcp.fuzz.search import fuzz_engine, run_once
from pytest_fcp.fuzz.strategies import scenarios
from pytest_fcp.scenarios.loader import load_file, parse_file
from pytest_fcp.scenarios.model import Scenario

ALT = "tests.engines.alt_engine:create"


# --- engines with one planted defect -----------------------------------------------------------------------
_SSL: list[ssl.SSLContext] = []


class Reference(ReferenceEngine):
    """The reference engine, sharing one SSL context (loading the CA store is most of an engine's start)."""

    def __init__(self, cache_dir: pathlib.Path) -> None:
        if not _SSL:
            _SSL.append(ssl.create_default_context())
        super().__init__(cache_dir, httpx.Client(timeout=30.0, verify=_SSL[0]))


class NoFallbackAfter403(Reference):
    """(a) Vision 403 ends the fetch with DataSourceError instead of falling back to REST."""

    def _vision_day(self, spec: Any, symbol: str, interval: str, day: dt.date) -> pa.Table:
        try:
            return super()._vision_day(spec, symbol, interval, day)
        except _SourceFailed as exc:
            if "HTTP 403" in str(exc):
                raise DataSourceError(f"Vision refused {day}: {exc}") from exc
            raise


class CorruptCacheCrashes(Reference):
    """(b) A cache file that exists but is not readable Arrow crashes the fetch instead of being a miss."""

    def read_cache(self, symbol: str, market: str, interval: str, day: dt.date) -> pa.Table | None:
        path = self.cache_file(symbol, market, interval, day)
        if path.exists():
            pa.ipc.open_file(pa.BufferReader(path.read_bytes())).read_all()  # raises on a broken file
        return super().read_cache(symbol, market, interval, day)


class RetryAfterIgnored(Reference):
    """(c) A 429 / 418 is retried at once, twice, without waiting Retry-After."""

    def _rest_get(self, spec: Any, params: dict[str, str | int]) -> Any:
        for attempt in range(3):
            try:
                return super()._rest_get(spec, params)
            except RateLimitError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


class PartialDayTrusted(Reference):
    """(d) A readable cache file with the right columns is trusted even when it lacks bars of the day."""

    def read_cache(self, symbol: str, market: str, interval: str, day: dt.date) -> pa.Table | None:
        table = super().read_cache(symbol, market, interval, day)
        if table is not None:
            return table
        path = self.cache_file(symbol, market, interval, day)
        try:
            table = pa.ipc.open_file(pa.BufferReader(path.read_bytes())).read_all()
        except Exception:
            return None
        fields = [(f.name, f.type) for f in table.schema]
        if table.num_rows and fields == [(f.name, f.type) for f in CACHE_SCHEMA]:
            return pa.Table.from_arrays(table.columns, schema=CACHE_SCHEMA)
        return None


def no_fallback_after_403(cache_dir: pathlib.Path) -> ReferenceEngine:
    return NoFallbackAfter403(cache_dir)


def corrupt_cache_crashes(cache_dir: pathlib.Path) -> ReferenceEngine:
    return CorruptCacheCrashes(cache_dir)


def retry_after_ignored(cache_dir: pathlib.Path) -> ReferenceEngine:
    return RetryAfterIgnored(cache_dir)


def partial_day_trusted(cache_dir: pathlib.Path) -> ReferenceEngine:
    return PartialDayTrusted(cache_dir)


def _days(scenario: Scenario) -> set[dt.date]:
    return {d for r in scenario.requests for d in days_between(r.start, r.end)}


# --- strategies and the TOML round trip -------------------------------------------------------------------
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(scenarios())
def test_generated_scenarios_round_trip_through_toml(scenario: Scenario) -> None:
    text = render_scenario(scenario)
    (loaded,) = parse_file(text, file="fuzz.toml", theme="fuzz")
    assert loaded == dataclasses.replace(scenario, file="fuzz.toml", theme="fuzz")
    assert all(r.start < scenario.now for r in scenario.requests)
    assert scenario.expect.outcome == () and not scenario.expect.skip_checks


def test_save_scenario_writes_a_catalog_file(tmp_path: pathlib.Path) -> None:
    scenario = _sample_scenario()
    path = save_scenario(scenario, tmp_path / "found", header="why\nit failed")
    assert path.name == f"{scenario.name}.toml"
    (loaded,) = load_file(path)
    assert loaded == dataclasses.replace(scenario, file=str(path), theme=path.stem)


def _sample_scenario() -> Scenario:
    (scenario,) = parse_file(
        """
[[scenario]]
name = "sample"
description = "a \\"quoted\\" description"
now = "2024-01-10T12:00:00Z"
interval = "4h"
faults = [{ id = "vision.http403", door = "https" },
          { id = "rest.http429", days = ["2024-01-09"], attempts = "first:2", retry_after = 5 },
          { id = "cache.zero_byte", days = ["2024-01-03"] }, { id = "vision.http500", door = "s3" }]
cached = ["2024-01-02"]
request = [{ start = "2024-01-02T03:30:00Z", end = "2024-01-10T06:00:00Z" },
           { start = "2024-01-02", end = "2024-01-04" }]
[scenario.expect]
outcome = ["data", "DataSourceError"]
sources = { "2024-01-02" = "cache", default = ["vision", "rest"] }
requests = { rest = ">=1" }
skip_checks = ["needed_only"]
""",
        file="sample.toml",
        theme="sample",
    )
    return scenario


# --- correct engines pass ---------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ["reference", ALT])
def test_correct_engines_pass(engine: str, tmp_path: pathlib.Path) -> None:
    result = fuzz_engine(engine, examples=30, derandomize=True, seed_value=1, workdir=tmp_path)
    assert result.passed, result.report()
    assert result.examples >= 15  # duplicates are run once (Hypothesis 6.100, the floor, draws 19 distinct of 30)
    print(f"{engine}: {result.examples} examples, {result.rate:.2f} examples/s")


# --- planted defects are found, shrunk and saved ---------------------------------------------------
@pytest.mark.parametrize(
    "factory",
    [
        no_fallback_after_403,
        corrupt_cache_crashes,
        retry_after_ignored,
        partial_day_trusted,
    ],
)
def test_planted_defect_is_found_and_shrunk(factory: Any, tmp_path: pathlib.Path) -> None:
    result = fuzz_engine(
        factory,
        examples=400,
        derandomize=True,
        seed_value=1,
        shrink_budget=20.0,
        save_dir=tmp_path / "found",
        workdir=tmp_path / "work",
    )
    assert not result.passed, f"{factory.__name__} was not found in {result.examples} examples"
    scenario = result.scenario
    assert scenario is not None and result.saved is not None
    report = result.report()
    assert "[[scenario]]" in report and "path:" in report and "--fcp-seed=1" in report
    print(
        f"{factory.__name__}: found after {result.generated} examples; shrunk to {len(scenario.faults)} "
        f"fault(s) over {len(_days(scenario))} day(s): {scenario.description}"
    )
    assert len(scenario.faults) <= 2, report
    assert len(_days(scenario)) <= 4, report  # two on current Hypothesis; its 6.100 floor's shrinker stops at four
    (saved,) = load_file(result.saved)
    verdicts, _ = run_once(saved, factory, seed=1, workdir=tmp_path)
    assert verdicts, f"the saved scenario passes on {factory.__name__}:\n{report}"
    verdicts, path = run_once(saved, "reference", seed=1, workdir=tmp_path)
    assert not verdicts, f"the saved scenario fails on the reference engine: {verdicts} ({path})"


# --- the --fcp-fuzz plugin as a user runs it ------------------------------------------------------------
def test_fuzz_plugin_finds_saves_and_replays(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert(pathlib.Path(__file__).resolve().parent.parent)  # the planted defects above
    defect = "tests.test_fuzz:retry_after_ignored"
    args = ["-p", "no:xdist", "--fcp-seed=3", "--fcp-fuzz", "--fcp-fuzz-examples=150"]
    result = pytester.runpytest(*args, f"--fcp-engine={defect}", "--fcp-fuzz-save=found")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*fcp fuzz ?tests.test_fuzz:retry_after_ignored?*", "*replay with --fcp-seed=3*", "*[[]scenario]]*"]
    )
    result.stdout.fnmatch_lines(["*FAIL ?rate_limit? sent a REST request *s after a 429*"])
    saved = sorted((pytester.path / "found").glob("*.toml"))
    assert len(saved) == 1
    replay = ["-p", "no:xdist", "--fcp-scenarios", "--fcp-no-bundled", "--fcp-scenarios-dir=found"]
    pytester.runpytest(*replay, f"--fcp-engine={defect}").assert_outcomes(failed=1)
    pytester.runpytest(*replay, "--fcp-engine=reference").assert_outcomes(passed=1)
    # the same engine, correct: the fuzz item passes and the header shows the seed
    ok = pytester.runpytest(*args, "--fcp-engine=reference", "--fcp-fuzz-examples=20")
    ok.assert_outcomes(passed=1)
    ok.stdout.fnmatch_lines(["fcp: seed=3*", "*= FCP fuzz =*", "reference: passed, * scenarios in *examples/s*seed 3)"])
