"""Behaviour baselines catch careless FCP changes: each planted change turns the scenario run red with a diff
that names it, the unchanged engines stay green run after run, and the baseline files' life cycle (partial
update, migration, bad files) and the ``fcp_baseline`` fixture work as documented.

A change is planted by a small plugin module written into the test directory and loaded with ``-p name``, so
it applies in pytest-xdist workers too.
"""

from __future__ import annotations

import re
import textwrap

import pytest

pytest_plugins = ["pytester"]

SCENARIOS = ["--fcp-scenarios", "-p", "no:cacheprovider", "-W", "ignore"]
XDIST = ["-p", "xdist", "-n", "2"]
CHANGED_LINE = re.compile(r"^\s+(WORSE|BETTER|CHANGED|NEW FAILING) ", re.M)

# --- planted changes --------------------------------------------------------------------------------------

#: The summary line's count of the engine's warnings, kept in the traces.
WARNINGS = r"(; \d+ engine warnings, in the traces)?"


CKVD_NO_REST = """
import ckvd.core.sync.crypto_kline_vision_data as m

m.process_rest_step = lambda **kw: kw["result_df"]
"""

CKVD_NO_CACHE_WRITE = """
import ckvd.utils.for_core.ckvd_cache_utils as m

m.save_to_cache = lambda **kw: None
"""

CKVD_HALF_PAGES = """
from ckvd.core.providers.binance.rest_data_client import RestDataClient

RestDataClient.CHUNK_SIZE = RestDataClient.CHUNK_SIZE // 2
"""

REFERENCE_NO_CACHE_WRITE = """
from pytest_fcp.engines.reference import ReferenceEngine

ReferenceEngine._store = lambda self, *args, **kwargs: None
"""

REFERENCE_VISION_RETRY = r"""
from pytest_fcp.engines import reference

_get = reference.ReferenceEngine._vision_get

def _twice(self, url):
    try:
        return _get(self, url)
    except reference._SourceFailed:
        return _get(self, url)


reference.ReferenceEngine._vision_get = _twice
"""

REFERENCE_REST_AFTER_VISION = """
from pytest_fcp.engines import reference

_day = reference.ReferenceEngine._vision_day


def _and_rest(self, spec, symbol, interval, day):
    table = _day(self, spec, symbol, interval, day)
    lo, hi = reference.day_bounds_ms(day)
    self._rest_get(spec, {"symbol": symbol, "interval": interval, "startTime": lo, "endTime": hi - 1, "limit": 1000})
    return table


reference.ReferenceEngine._vision_day = _and_rest
"""


def _plant(pytester: pytest.Pytester, name: str, code: str) -> list[str]:
    """Write the plugin module ``name`` into the test directory; the arguments that load it."""
    pytester.makepyfile(**{name: textwrap.dedent(code)})
    return ["-p", name]


def _out(result: pytest.RunResult) -> str:
    return result.stdout.str()


def _summary(result: pytest.RunResult) -> list[str]:
    """The lines of the ``FCP conformance`` section."""
    out = _out(result)
    assert "FCP conformance" in out, out[-3000:]
    section = out[out.index("FCP conformance") :].splitlines()[1:]
    return [line for line in section if line.strip() and not line.startswith(("=", "fcp: "))]


# --- ckvd -------------------------------------------------------------------------------------------------


@pytest.fixture
def ckvd() -> None:
    """Skip when crypto-kline-vision-data is not installed."""
    pytest.importorskip("ckvd")


@pytest.mark.usefixtures("ckvd")
def test_ckvd_without_rest_fallback_is_red_on_the_whole_catalog(pytester: pytest.Pytester) -> None:
    plant = _plant(pytester, "no_rest", CKVD_NO_REST)
    result = pytester.runpytest(*SCENARIOS, "--fcp-engine=ckvd", "--fcp-seed=11", *XDIST, *plant)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "rest_errors/http500_no_source_left on ckvd behaves worse than its baseline (*ckvd.toml)",
            "  2024-01-09: rest 500 x3 -> (none)",
            "  2024-01-10: rest 500 x3 -> (none)",
            "  totals: rest 3 -> 0, rest_weight 6 -> 0, retries 2 -> 0, sleeps 2 -> 0",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "basics/recent_days_from_rest on ckvd behaves worse than its baseline (*ckvd.toml)",
            "  outcome data -> RuntimeError",
        ]
    )
    summary = _summary(result)
    assert re.fullmatch(
        r"ckvd: \d+ conforming, \d+ known failures unchanged, \d+ worse.* \(\d+ scenarios" + WARNINGS + r"\)",
        summary[0],
    )
    assert "  WORSE basics/recent_days_from_rest: outcome data -> RuntimeError (+18 more)" in summary, summary
    assert any(line.startswith("  WORSE rest_errors/http500_no_source_left: ") for line in summary), summary


@pytest.mark.usefixtures("ckvd")
def test_ckvd_without_cache_writes_shows_the_days_left_uncached(pytester: pytest.Pytester) -> None:
    plant = _plant(pytester, "no_cache_write", CKVD_NO_CACHE_WRITE)
    chosen = ["-k", "cold_fetch_from_vision or recent_days_from_rest"]
    result = pytester.runpytest(*SCENARIOS, "--fcp-engine=ckvd", "--fcp-seed=12", *chosen, *plant)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "basics/cold_fetch_from_vision on ckvd behaves worse than its baseline (*ckvd.toml)",
            "  newly failing [cache] 2024-01-02: a complete old day served by Vision was not cached",
            "  2024-01-02: cache_after valid -> missing",
            "  2024-01-03: cache_after valid -> missing",
            "  2024-01-04: cache_after valid -> missing",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "basics/recent_days_from_rest on ckvd behaves differently from its baseline (*ckvd.toml)",
            "  2024-01-09: cache_after valid -> missing",
            "  2024-01-10: cache_after partial -> missing",
        ]
    )
    summary = _summary(result)
    assert re.fullmatch(r"ckvd: 0 conforming, 1 worse, 1 changed \(2 scenarios" + WARNINGS + r"\)", summary[0]), summary
    assert any(line.startswith("  WORSE basics/cold_fetch_from_vision: newly failing [cache] ") for line in summary)


@pytest.mark.usefixtures("ckvd")
def test_ckvd_with_halved_rest_pages_shows_more_requests(pytester: pytest.Pytester) -> None:
    plant = _plant(pytester, "half_pages", CKVD_HALF_PAGES)
    result = pytester.runpytest(*SCENARIOS, "--fcp-engine=ckvd", "--fcp-seed=13", "-k", "one_minute_recent", *plant)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "markets/one_minute_recent on ckvd behaves differently from its baseline (*ckvd.toml)",
            "  2024-01-09: rest 200 x2 -> 200 x3",
            "  2024-01-10: rest 200 x1 -> 200 x2",
            "  totals: rest 2 -> 4, rest_weight 4 -> 8",
        ]
    )
    assert "  CHANGED markets/one_minute_recent: 2024-01-09: rest 200 x2 -> 200 x3 (+2 more)" in _summary(result)


# --- the reference engine ---------------------------------------------------------------------------------


def test_reference_without_cache_writes_is_red(pytester: pytest.Pytester) -> None:
    plant = _plant(pytester, "ref_no_cache", REFERENCE_NO_CACHE_WRITE)
    chosen = ["-k", "cold_fetch_from_vision"]
    result = pytester.runpytest(*SCENARIOS, "--fcp-engine=reference", "--fcp-seed=21", *chosen, *plant)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "basics/cold_fetch_from_vision on reference behaves worse than its baseline (*reference.toml)",
            "  newly failing *",
            "  2024-01-02: cache_after valid -> missing",
            "  2024-01-03: cache_after valid -> missing",
            "  2024-01-04: cache_after valid -> missing",
        ]
    )
    assert any(line.startswith("  WORSE basics/cold_fetch_from_vision: newly failing ") for line in _summary(result))


def test_reference_retrying_vision_is_red_with_xdist(pytester: pytest.Pytester) -> None:
    plant = _plant(pytester, "ref_vision_retry", REFERENCE_VISION_RETRY)
    chosen = ["-k", "http403_falls_back_to_rest"]
    result = pytester.runpytest(*SCENARIOS, "--fcp-engine=reference", "--fcp-seed=22", *chosen, *XDIST, *plant)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "vision_errors/http403_falls_back_to_rest on reference behaves differently from its baseline (*)",
            "  2024-01-02: vision https 403 x1 -> https 403 x2",
            "  2024-01-03: vision https 403 x1 -> https 403 x2",
            "  2024-01-04: vision https 403 x1 -> https 403 x2",
            "  totals: vision 3 -> 6, retries 0 -> 3",
        ]
    )
    summary = _summary(result)
    assert (
        "  CHANGED vision_errors/http403_falls_back_to_rest: 2024-01-02: vision https 403 x1 -> https 403 x2 (+3 more)"
        in (summary)
    ), summary


def test_reference_asking_rest_after_vision_is_red(pytester: pytest.Pytester) -> None:
    plant = _plant(pytester, "ref_rest_after_vision", REFERENCE_REST_AFTER_VISION)
    chosen = ["-k", "cold_fetch_from_vision"]
    result = pytester.runpytest(*SCENARIOS, "--fcp-engine=reference", "--fcp-seed=23", *chosen, *plant)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "basics/cold_fetch_from_vision on reference behaves worse than its baseline (*reference.toml)",
            "  2024-01-02: rest (none) -> 200 x1",
            "  2024-01-03: rest (none) -> 200 x1",
            "  2024-01-04: rest (none) -> 200 x1",
            "  totals: rest 0 -> 3, rest_weight 0 -> 6",
        ]
    )
    assert any(line.startswith("  WORSE basics/cold_fetch_from_vision: ") for line in _summary(result))


# --- unchanged engines stay green -------------------------------------------------------------------------


def test_unchanged_engines_are_green_three_runs_in_a_row(pytester: pytest.Pytester) -> None:
    pytest.importorskip("ckvd")
    summaries = []
    for seed, extra in ((101, []), (202, []), (303, XDIST)):
        args = [*SCENARIOS, "--fcp-engine=ckvd", "--fcp-engine=reference", f"--fcp-seed={seed}", *extra]
        result = pytester.runpytest(*args)
        out = _out(result)
        assert result.ret == pytest.ExitCode.OK, out[-5000:]
        assert not CHANGED_LINE.search(out), out[-5000:]
        summary = _summary(result)
        totals = [line for line in summary if not line.startswith(" ")]
        assert len(totals) == 2, summary
        assert re.fullmatch(
            r"ckvd: \d+ conforming, \d+ known failures unchanged \(\d+ scenarios" + WARNINGS + r"\)",
            totals[0],
        )
        assert re.fullmatch(r"reference: \d+ conforming(, \d+ known failures unchanged)? \(\d+ scenarios\)", totals[1])
        summaries.append(summary)
    assert summaries[0] == summaries[1] == summaries[2]


# --- baseline files ---------------------------------------------------------------------------------------

TINY = """
[defaults]
now = "2024-01-10T12:00:00Z"

[[scenario]]
name = "my_403"
description = "Vision blocked: REST serves the old days."
faults = ["vision.http403"]
request = { start = "2024-01-03", end = "2024-01-05" }
[scenario.expect]
outcome = "data"
sources = { default = "rest" }

[[scenario]]
name = "wrong_source"
description = "Expects Vision where REST serves: a known failure."
faults = ["vision.http403"]
request = { start = "2024-01-03", end = "2024-01-04" }
[scenario.expect]
outcome = "data"
sources = { default = "vision" }
"""


@pytest.fixture
def tiny(pytester: pytest.Pytester) -> list[str]:
    """A one-file scenario directory ``mine`` and the arguments that run it alone on the reference engine."""
    directory = pytester.path / "mine"
    directory.mkdir()
    (directory / "mine.toml").write_text(TINY)
    base = pytester.path / "base"
    dirs = [f"--fcp-scenarios-dir={directory}", "--fcp-no-bundled", f"--fcp-baseline-dir={base}"]
    return [*SCENARIOS, *dirs, "--fcp-engine=reference"]


def _entry(text: str, scenario: str) -> str:
    """The lines of ``scenario``'s entry (its tables up to the next scenario) in a baseline file's text."""
    blocks = re.split(r'\n(?=\["[^"]+"\]$)', text, flags=re.M)
    found = [block for block in blocks if block.startswith(f'["{scenario}"]')]
    assert found, text
    return found[0]


def _usage_error(result: pytest.RunResult, *fragments: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, _out(result)
    lines = [line for line in result.stderr.lines if line.strip()]
    assert len(lines) == 1, result.stderr.str()
    assert lines[0].startswith("ERROR: pytest-fcp: "), lines
    for fragment in fragments:
        assert fragment in lines[0], lines
    assert "Traceback" not in result.stderr.str() + _out(result)
    assert "passed" not in _out(result) and "failed" not in _out(result)


def test_partial_update_keeps_the_other_entries(pytester: pytest.Pytester, tiny: list[str]) -> None:
    pytester.runpytest(*tiny, "--fcp-update-baselines").assert_outcomes(passed=2)
    path = pytester.path / "base" / "reference.toml"
    text = path.read_text()
    kept = _entry(text, "mine/wrong_source")
    assert "rest = 1," in _entry(text, "mine/my_403")
    path.write_text(text.replace("rest = 1,", "rest = 7,", 1))  # my_403's totals now disagree with the engine
    result = pytester.runpytest(*tiny)
    result.assert_outcomes(failed=1, xfailed=1)
    result.stdout.fnmatch_lines(["*mine/my_403 on reference behaves differently*", "  totals: rest 7 -> 1"])
    pytester.runpytest(*tiny, "--fcp-update-baselines", "-k", "my_403").assert_outcomes(passed=1)
    after = path.read_text()
    assert _entry(after, "mine/wrong_source") == kept
    assert after == text
    pytester.runpytest(*tiny).assert_outcomes(passed=1, xfailed=1)


OTHER_THEME = """
["other/elsewhere"]
outcome = "data"
failures = []
totals = { vision = 1, rest = 0, rest_weight = 0, retries = 0, sleeps = 0 }
["other/elsewhere".days]
2024-01-03 = { cache_before = "missing", vision = "https 200 x1", rest = "", rows = "vision 24", cache_after = "valid" }
"""


@pytest.mark.parametrize("workers", [["-n", "0"], XDIST], ids=["serial", "xdist"])
def test_full_update_keeps_the_entries_of_scenarios_it_did_not_run(
    pytester: pytest.Pytester, tiny: list[str], workers: list[str]
) -> None:
    pytester.runpytest(*tiny, "--fcp-update-baselines").assert_outcomes(passed=2)
    path = pytester.path / "base" / "reference.toml"
    text = path.read_text()
    path.write_text(text + OTHER_THEME)  # a theme this run does not load: neither used nor unused here
    pytester.runpytest(*tiny, *workers).assert_outcomes(passed=1, xfailed=1)
    result = pytester.runpytest(*tiny, *workers, "--fcp-update-baselines", "--fcp-prune-baselines")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["fcp: baseline written to *reference.toml: 0 added, 0 changed, 2 unchanged, 1 kept*"])
    assert "unused baseline entr" not in _out(result)
    assert _entry(path.read_text(), "other/elsewhere") == _entry(text + OTHER_THEME, "other/elsewhere")


def test_old_expectations_file_is_a_usage_error_then_migrated(pytester: pytest.Pytester, tiny: list[str]) -> None:
    base = pytester.path / "base"
    base.mkdir()
    (base / "reference.toml").write_text('[expected_failures]\n"mine/wrong_source" = "sources"\n')
    _usage_error(pytester.runpytest(*tiny, *XDIST), "old expectations format", "--fcp-update-baselines")
    pytester.runpytest(*tiny, "--fcp-update-baselines").assert_outcomes(passed=2)
    text = (base / "reference.toml").read_text()
    assert "expected_failures" not in text and "format = 1" in text and '["mine/my_403"]' in text
    pytester.runpytest(*tiny).assert_outcomes(passed=1, xfailed=1)


@pytest.mark.parametrize("workers", [["-n", "0"], XDIST], ids=["serial", "xdist"])
def test_unused_entries_are_reported_then_pruned(
    pytester: pytest.Pytester, tiny: list[str], workers: list[str]
) -> None:
    pytester.runpytest(*tiny, "--fcp-update-baselines").assert_outcomes(passed=2)
    path = pytester.path / "base" / "reference.toml"
    text = path.read_text()
    ghosts = "".join("\n" + _entry(text, "mine/my_403").replace('"mine/my_403"', f'"mine/{n}"') for n in ("b", "a"))
    path.write_text(text + ghosts)
    result = pytester.runpytest(*tiny, *workers)
    result.assert_outcomes(passed=1, xfailed=1)
    assert result.ret == pytest.ExitCode.OK
    unused = "fcp: 2 unused baseline entries in base/reference.toml: mine/a, mine/b  (remove them with "
    result.stdout.fnmatch_lines([unused + "--fcp-update-baselines --fcp-prune-baselines)"])
    selected = pytester.runpytest(*tiny, *workers, "-k", "my_403")  # deselected: defined, so never unused
    selected.stdout.fnmatch_lines([unused + "*"])
    assert "wrong_source" not in selected.stdout.str().partition("unused")[2]
    strict = pytester.runpytest(*tiny, *workers, "--fcp-unused-baselines=fail")
    assert strict.ret == pytest.ExitCode.TESTS_FAILED
    kept = pytester.runpytest(*tiny, *workers, "--fcp-update-baselines")  # an update alone never drops entries
    kept.stdout.fnmatch_lines(
        ["fcp: baseline written to *: 0 added, 0 changed, 2 unchanged, 2 kept (not run)", unused + "*"]
    )
    assert all(f'["mine/{n}"]' in path.read_text() for n in ("a", "b"))
    pruned = pytester.runpytest(*tiny, *workers, "--fcp-update-baselines", "--fcp-prune-baselines")
    pruned.assert_outcomes(passed=2)
    pruned.stdout.fnmatch_lines(
        ["fcp: baseline written to *: 0 added, 0 changed, 2 unchanged, 0 kept (not run), 2 pruned (mine/a, mine/b)"]
    )
    assert path.read_text() == text and "unused baseline entr" not in _out(pruned)
    pytester.runpytest(*tiny).assert_outcomes(passed=1, xfailed=1)


def test_prune_without_update_is_a_usage_error(pytester: pytest.Pytester, tiny: list[str]) -> None:
    (pytester.path / "base").mkdir()
    _usage_error(pytester.runpytest(*tiny, "--fcp-prune-baselines"), "--fcp-prune-baselines", "--fcp-update-baselines")
    pytester.makeini("[pytest]\nfcp_unused_baselines = loud\n")
    _usage_error(pytester.runpytest(*tiny), "fcp_unused_baselines = 'loud'", "allowed: report or fail")


def test_broken_baseline_is_a_usage_error_then_rewritten(pytester: pytest.Pytester, tiny: list[str]) -> None:
    base = pytester.path / "base"
    base.mkdir()
    (base / "reference.toml").write_text('format = 1\nengine = "reference"\n["mine/my_403"\n')
    _usage_error(pytester.runpytest(*tiny), "reference.toml", "not valid TOML", "--fcp-update-baselines")
    pytester.runpytest(*tiny, "--fcp-update-baselines").assert_outcomes(passed=2)  # as the message advises
    assert '["mine/my_403"]' in (base / "reference.toml").read_text()
    pytester.runpytest(*tiny).assert_outcomes(passed=1, xfailed=1)


# --- the fcp_baseline fixture -----------------------------------------------------------------------------

USER_TEST = """
import datetime as dt
import pytest


@pytest.mark.fcp(engines=["reference"])
def test_cold_days(fcp_world, fcp_engine, fcp_baseline):
    fcp_world.fetch(dt.datetime(2024, 1, 2, tzinfo=dt.UTC), dt.datetime(2024, 1, 4, tzinfo=dt.UTC))
    fcp_baseline.assert_match()


@pytest.mark.fcp(faults=["vision.http403"], engines=["reference"])
def test_vision_blocked(fcp_world, fcp_engine, fcp_baseline):
    fcp_world.fetch(dt.datetime(2024, 1, 2, tzinfo=dt.UTC), dt.datetime(2024, 1, 3, tzinfo=dt.UTC))
    fcp_baseline.assert_match()
"""


@pytest.mark.parametrize("workers", [[], XDIST], ids=["serial", "xdist"])
def test_fcp_baseline_fixture_records_passes_and_catches_a_change(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    args = ["-p", "no:cacheprovider", "--fcp-seed=31", *workers]
    first = pytester.runpytest(*args)
    first.assert_outcomes(failed=2)
    first.stdout.fnmatch_lines(["*no baseline for test_user.py::test_cold_days on reference*--fcp-update-baselines*"])
    recorded = pytester.runpytest(*args, "--fcp-update-baselines")
    recorded.assert_outcomes(passed=2)
    path = pytester.path / "fcp_baselines" / "reference.toml"
    recorded.stdout.fnmatch_lines([f"fcp: test baselines written to {path}"])
    text = path.read_text()
    assert '["test_user.py::test_cold_days"]' in text and '["test_user.py::test_vision_blocked"]' in text
    pytester.runpytest(*args).assert_outcomes(passed=2)
    planted = pytester.runpytest(*args, *_plant(pytester, "ref_no_cache", REFERENCE_NO_CACHE_WRITE))
    planted.assert_outcomes(failed=2)
    planted.stdout.fnmatch_lines(
        [
            f"*test_user.py::test_cold_days on reference differs from its baseline ({path}):",
            "newly failing *",
            "*2024-01-02: cache_after valid -> missing",
            "*2024-01-03: cache_after valid -> missing",
        ]
    )
    planted.stdout.fnmatch_lines(
        ["*test_user.py::test_vision_blocked on reference differs*", "*2024-01-02: cache_after valid -> missing"]
    )
    assert path.read_text() == text  # a plain run never writes
    pytester.runpytest(*args).assert_outcomes(passed=2)
