"""Setups that undo themselves or test nothing are refused, in scenario files and in the marker alike; the
fields that used to be silent no-ops now do what they say (the marker's ``cached``, a cache fault's series)."""

from __future__ import annotations

import datetime as dt
import pathlib

import pytest

from pytest_fcp.engines import load_engine
from pytest_fcp.faults import FaultSpecError, fault
from pytest_fcp.faults.rules import cache_fault_series, setup_conflicts, unreached
from pytest_fcp.scenarios import ScenarioError
from pytest_fcp.scenarios.loader import parse_file
from pytest_fcp.world import World
from tests.conftest import utc

pytest_plugins = ["pytester"]

NOW = utc(2024, 1, 10, 12)
SERIES = ("BTCUSDT", "spot", "1h")
D2, D3, D4 = dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)
ONE_REQUEST = [(SERIES, [D2, D3, D4], NOW)]


# --- the rules ---------------------------------------------------------------------------------------
def test_a_consistent_setup_has_no_conflict() -> None:
    faults = [
        fault("cache.zero_byte", days=[D3]),
        fault("cache.partial_day", days=[D4]),
        fault("cache.zero_byte", days=[D3], symbol="ETHUSDT"),  # another series' file
        fault("cache.write_fails"),
        fault("vision.truncated_zip", days=[D4]),
        fault("vision.missing_checksum", days=[D4]),  # the zip fault leaves the checksum alone
        fault("vision.http403", days=[D3]),
        fault("vision.http500", days=[D3, D4]),  # fires on D4, where the 403 does not
        fault("rest.http429", attempts="first:1"),
        fault("rest.http500"),  # the 429 recovers: the 500 answers from the second attempt
    ]
    assert setup_conflicts(faults, [D2], SERIES, NOW) == []
    assert unreached(faults, [D2], SERIES, [*ONE_REQUEST, (("ETHUSDT", "spot", "1h"), [D3], NOW)]) == []


@pytest.mark.parametrize(
    ("faults", "cached", "field", "words"),
    [
        ([fault("cache.zero_byte", days=[D3])], [D2, D3], "cached[1]", "also broken by faults[0] (cache.zero_byte)"),
        (
            [fault("cache.zero_byte", days=[D3]), fault("cache.stale_day", days=[D2, D3])],
            [],
            "faults[1].days",
            "2024-01-03 already has faults[0] (cache.zero_byte)",
        ),
        (
            [fault("cache.write_fails"), fault("cache.read_only_dir")],
            [],
            "faults[1]",
            "both make every cache write fail",
        ),
        (
            [fault("cache.write_fails", error="EIO"), fault("cache.write_fails")],
            [],
            "faults[1]",
            "both make every cache write fail",
        ),
        (
            [fault("vision.http403"), fault("vision.http500", days=[D3])],
            [],
            "faults[1]",
            "vision.http500 never fires: faults[0] (vision.http403, every attempt)",
        ),
        (
            [fault("rest.http500", days=[D3, D4]), fault("rest.http429", days=[D4], symbol="BTCUSDT")],
            [],
            "faults[1]",
            "rest.http429 never fires",
        ),
        ([fault("vision.http403", door="s3"), fault("vision.http404", door="s3")], [], "faults[1]", "never fires"),
        ([], [dt.date(2024, 1, 10)], "cached[0]", "2024-01-10 has not ended by now"),
    ],
)
def test_a_setup_that_undoes_itself_is_named(faults: list, cached: list, field: str, words: str) -> None:
    (found,) = setup_conflicts(faults, cached, SERIES, NOW)
    assert found.field == field and words in found.message, found


@pytest.mark.parametrize(
    ("faults", "cached", "field", "words"),
    [
        ([fault("vision.http403", days=[D3])], [D3], "faults[0].days", "is cached (a valid old day"),
        ([fault("rest.http500", days=[D2, D3])], [D2, D3], "faults[0].days", "no rest request is made for it"),
        ([fault("vision.http403", days=["2024-01-06"])], [], "faults[0].days", "outside every request"),
        ([fault("rest.http500", days=[D3], market="futures_usdt")], [], "faults[0].market", "not the market"),
        ([], ["2024-01-06"], "cached[0]", "outside every request"),
    ],
)
def test_a_fault_or_cached_day_no_request_reaches_is_named(faults: list, cached: list, field: str, words: str) -> None:
    cached = [dt.date.fromisoformat(str(d)) for d in cached]
    found, *_ = unreached(faults, cached, SERIES, ONE_REQUEST)
    assert found.field == field and words in found.message, found


def test_reach_is_judged_per_request_series_and_freshness() -> None:
    futures = ("BTCUSDT", "futures_usdt", "1h")
    requests = [(SERIES, [D2], NOW), (futures, [D3], NOW)]
    (found,) = unreached([fault("vision.http403", days=[D2], market="futures_usdt")], [], SERIES, requests)
    assert found.field == "faults[0].days" and "outside the fault's market, symbol or interval" in found.message
    assert unreached([fault("vision.http403", days=[D3], market="futures_usdt")], [], SERIES, requests) == []
    recent = dt.date(2024, 1, 9)  # younger than 48 h: a cached file of it is not served, REST is asked
    assert unreached([fault("rest.http500", days=[recent])], [recent], SERIES, [(SERIES, [recent], NOW)]) == []
    # another series asks for the cached day: the fault can fire there
    other = [*ONE_REQUEST, (("ETHUSDT", "spot", "1h"), [D3], NOW)]
    assert unreached([fault("vision.http403", days=[D3])], [D3], SERIES, other) == []


def test_a_whole_directory_fault_takes_no_series() -> None:
    for key, value in (("market", "spot"), ("symbol", "BTCUSDT"), ("interval", "1h")):
        with pytest.raises(FaultSpecError, match=f"acts on the whole cache directory and takes no {key}"):
            fault("cache.write_fails", **{key: value})
    assert fault("cache.zero_byte", days=[D3], symbol="ETHUSDT").symbol == "ETHUSDT"


def test_a_cache_fault_breaks_the_file_of_its_own_series(tmp_path: pathlib.Path) -> None:
    item = fault("cache.zero_byte", days=[D3], symbol="ETHUSDT")
    assert cache_fault_series(item, SERIES) == ("ETHUSDT", "spot", "1h")
    assert cache_fault_series(fault("cache.zero_byte", days=[D3], market="futures_coin"), SERIES) == (
        "BTCUSD_PERP",
        "futures_coin",
        "1h",
    )
    with World(tmp_path / "cache", NOW, faults=[item]) as world:
        world.create_engine(load_engine("reference"))
        assert world.cache_state(D3, symbol="ETHUSDT").size == 0
        assert world.cache_state(D3).status == "missing"  # the world's own series is untouched


# --- scenario files ------------------------------------------------------------------------------------
HEAD = '[[scenario]]\nname = "s"\ndescription = "d"\nnow = "2024-01-10T12:00:00Z"\n'
REQUEST = 'request = { start = "2024-01-02", end = "2024-01-05" }\n'


@pytest.mark.parametrize(
    ("body", "where", "words"),
    [
        (
            'cached = ["2024-01-03"]\nfaults = [{ id = "cache.zero_byte", days = ["2024-01-03"] }]\n',
            "[cached[0]]",
            "also broken by faults[0] (cache.zero_byte)",
        ),
        (
            'faults = [{ id = "cache.zero_byte", days = ["2024-01-03"] }, '
            '{ id = "cache.random_bytes", days = ["2024-01-03"] }]\n',
            "[faults[1].days]",
            "one cache fault per day",
        ),
        ('faults = ["cache.read_only_dir", "cache.write_fails"]\n', "[faults[1]]", "keep one"),
        ('faults = ["rest.http503", "rest.http500"]\n', "[faults[1]]", "rest.http500 never fires"),
        (
            'cached = ["2024-01-03"]\nfaults = [{ id = "vision.http403", days = ["2024-01-03"] }]\n',
            "[faults[0].days]",
            "served from cache",
        ),
        (
            'faults = [{ id = "cache.write_fails", symbol = "BTCUSDT" }]\n',
            "[faults[0]]",
            "takes no symbol",
        ),
    ],
)
def test_a_scenario_that_undoes_itself_is_a_collection_error(body: str, where: str, words: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_file(HEAD + body + REQUEST, file="bad.toml", theme="bad")
    message = str(info.value)
    assert message.startswith(f"bad.toml::s {where}: ") and words in message and "\n" not in message, message


@pytest.mark.parametrize("table", ["sources", "cache_after"])
def test_expect_names_only_days_of_the_last_request(table: str) -> None:
    value = '"vision"' if table == "sources" else '"valid"'
    two = 'request = [{ start = "2024-01-02", end = "2024-01-03" }, { start = "2024-01-04", end = "2024-01-05" }]\n'
    text = HEAD + two + f'[scenario.expect]\n{table} = {{ "2024-01-02" = {value} }}\n'
    with pytest.raises(ScenarioError, match=rf"\[expect\.{table}\.2024-01-02\]: 2024-01-02 is not a day of the last"):
        parse_file(text, file="bad.toml", theme="bad")
    (ok,) = parse_file(text.replace('"2024-01-02" =', '"2024-01-04" ='), file="ok.toml", theme="ok")
    assert set(getattr(ok.expect, table)) == {"2024-01-04"}


def test_an_expect_day_in_basic_iso_form_is_the_same_day() -> None:
    text = HEAD + REQUEST + '[scenario.expect]\nsources = { "20240103" = "vision" }\n'
    (scenario,) = parse_file(text, file="ok.toml", theme="ok")
    assert scenario.expect.sources == {"2024-01-03": frozenset({"vision"})}  # the runner looks days up so


# --- the marker ----------------------------------------------------------------------------------------
MARKER_TEST = """
import datetime as dt
import pytest

@pytest.mark.fcp(now="2024-01-10T12:00:00Z", cached=["2024-01-03"])
def test_cached(fcp_world, fcp_engine):
    obs = fcp_world.fetch(dt.datetime(2024, 1, 2, tzinfo=dt.UTC), dt.datetime(2024, 1, 5, tzinfo=dt.UTC))
    assert obs.ok
    day = dt.date(2024, 1, 3)
    assert obs.cache_before[day].status == "valid"
    assert obs.sources_by_day()[day] == {"cache"}
    asked = {d for r in obs.requests for d in r.days}
    assert day not in asked, asked
    assert {r.source for r in obs.requests} == {"vision"}
"""


def test_the_markers_cached_day_is_served_from_cache(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MARKER_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider", "-n", "0", "--fcp-engine=reference")
    result.assert_outcomes(passed=1)


def test_without_cached_the_day_comes_from_vision(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MARKER_TEST.replace(', cached=["2024-01-03"]', ""))
    result = pytester.runpytest("-p", "no:cacheprovider", "-n", "0", "--fcp-engine=reference")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*assert 'missing' == 'valid'*"])


def test_a_baseline_recorded_from_the_marker_knows_the_cached_day(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user="""
        import datetime as dt
        import pytest

        @pytest.mark.fcp(now="2024-01-10T12:00:00Z", cached=["2024-01-03"], engines=["reference"])
        def test_warm(fcp_world, fcp_engine, fcp_baseline):
            fcp_world.fetch(dt.datetime(2024, 1, 2, tzinfo=dt.UTC), dt.datetime(2024, 1, 5, tzinfo=dt.UTC))
            fcp_baseline.assert_match()
        """
    )
    pytester.runpytest("-p", "no:cacheprovider", "-n", "0", "--fcp-update-baselines").assert_outcomes(passed=1)
    text = (pytester.path / "fcp_baselines" / "reference.toml").read_text()
    assert '2024-01-03 = { cache_before = "valid", vision = "", rest = "", rows = "cache 24"' in text, text
    assert '2024-01-02 = { cache_before = "missing", vision = "https 200 x2"' in text, text


MARKER_CONFLICTS = [
    (
        'cached=["2024-01-03"], faults=[{"id": "cache.zero_byte", "days": ["2024-01-03"]}]',
        "@pytest.mark.fcp cached[0]: 2024-01-03 is also broken by faults[0] (cache.zero_byte)",
    ),
    (
        'faults=[{"id": "cache.zero_byte", "days": ["2024-01-03"]}, {"id": "cache.truncated", "days": ["2024-01-03"]}]',
        "@pytest.mark.fcp faults[1].days: 2024-01-03 already has faults[0] (cache.zero_byte)",
    ),
    ('faults=["vision.http403", "vision.http404"]', "@pytest.mark.fcp faults[1]: vision.http404 never fires"),
    ('faults=["cache.read_only_dir", "cache.write_fails"]', "@pytest.mark.fcp faults[1]: cache.write_fails and"),
    ('cached=["2024-01-10"]', "@pytest.mark.fcp cached[0]: 2024-01-10 has not ended by now"),
    ('cached=["2024-02-30"]', "@pytest.mark.fcp cached[0]: '2024-02-30' is not a day"),
]


def test_a_marker_that_undoes_itself_fails_its_test_in_one_line(pytester: pytest.Pytester) -> None:
    tests = "\n".join(
        f'@pytest.mark.fcp(now="2024-01-10T12:00:00Z", {args})\ndef test_{i}(fcp_world): pass\n'
        for i, (args, _) in enumerate(MARKER_CONFLICTS)
    )
    pytester.makepyfile("import pytest\n\n" + tests)
    result = pytester.runpytest("-p", "no:cacheprovider", "-n", "0")
    result.assert_outcomes(errors=len(MARKER_CONFLICTS))
    out = result.stdout.str()
    assert "Traceback" not in out
    for i, (_, message) in enumerate(MARKER_CONFLICTS):
        prefix = f"pytest-fcp: bad world for test_a_marker_that_undoes_itself_fails_its_test_in_one_line.py::test_{i}: "
        assert any(
            line.startswith("E   " + prefix + message) or (prefix + message) in line for line in out.splitlines()
        ), (
            i,
            message,
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ('faults="vision.http403"', "@pytest.mark.fcp: faults must be a list, e.g. faults=['vision.http403']"),
        ('cached="2024-01-03"', "@pytest.mark.fcp: cached must be a list, e.g. cached=['2024-01-03']"),
        ('engines="reference"', "@pytest.mark.fcp: engines must be a list, e.g. engines=['reference']"),
        ("engines=[1]", "@pytest.mark.fcp: engines must be a list of engine names, got [1]"),
    ],
)
def test_a_marker_list_given_as_one_value_is_refused(pytester: pytest.Pytester, args: str, message: str) -> None:
    pytester.makepyfile(f"import pytest\n\n@pytest.mark.fcp({args})\ndef test_x(fcp_world, fcp_engine): pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-n", "0", "--fcp-engine=reference")
    result.assert_outcomes(errors=1)
    assert message in result.stdout.str() and "Traceback" not in result.stdout.str()


# --- parameters with which a fault changes nothing ------------------------------------------------------
@pytest.mark.parametrize(
    ("fault_id", "params", "words"),
    [
        ("cache.truncated", {"days": [D3], "keep": 1}, "keep 1 keeps the whole file"),
        ("vision.truncated_zip", {"keep": 1.0}, "keep 1.0 keeps the whole file"),
        ("rest.out_of_range", {"extra": 0}, "extra 0 adds no bar"),
        ("vision.slow", {"delay": 0}, "delay 0 delays nothing"),
    ],
)
def test_a_parameter_that_leaves_the_answer_as_it_was_is_refused(fault_id: str, params: dict, words: str) -> None:
    with pytest.raises(FaultSpecError, match=f"{words}: the fault would change nothing"):
        fault(fault_id, **params)
    (name,) = (k for k in params if k != "days")
    nearly = {**params, name: 0.99 if name == "keep" else 1}
    assert fault(fault_id, **nearly).param(name) == nearly[name]


@pytest.mark.parametrize(
    ("item", "field"),
    [
        (fault("vision.wrong_symbol", other="BTCUSDT"), "faults[0].other"),
        (fault("vision.wrong_interval", other="1h", days=[D3]), "faults[0].other"),
    ],
)
def test_a_swapped_file_that_is_the_right_one_is_refused(item, field: str) -> None:
    (found,) = setup_conflicts([item], [], SERIES, NOW)
    assert found.field == field and "the swapped file is the right one" in found.message
    assert setup_conflicts([item], [], ("ETHUSDT", "spot", "4h"), NOW) == []


def test_a_swapped_file_of_a_requested_series_is_refused() -> None:
    item = fault("vision.wrong_symbol", days=[D3])  # other: ETHUSDT
    assert setup_conflicts([item], [], SERIES, NOW) == [] and unreached([item], [], SERIES, ONE_REQUEST) == []
    eth = [*ONE_REQUEST, (("ETHUSDT", "spot", "1h"), [D3], NOW)]
    (found,) = unreached([item], [], SERIES, eth)
    assert found.field == "faults[0].other" and "'ETHUSDT' is the symbol asked for" in found.message
    assert unreached([fault("vision.wrong_symbol", days=[D3], symbol="BTCUSDT")], [], SERIES, eth) == []


GOLDEN = '[[scenario]]\nname = "g"\ndescription = "d"\ntruth = "golden"\nnow = "2024-01-12T12:00:00Z"\n'


@pytest.mark.parametrize(
    ("body", "where", "words"),
    [
        ('request = { start = "2024-01-06", end = "2024-01-09" }\n', "[request]", "2024-01-08 is outside the golden"),
        (
            'request = [{ start = "2024-01-02", end = "2024-01-03" }, '
            '{ start = "2024-01-02", end = "2024-01-03", symbol = "ETHUSDT" }]\n',
            "[request[1]]",
            "the golden truth has no spot ETHUSDT 1h",
        ),
        ('interval = "4h"\nrequest = { start = "2024-01-02", end = "2024-01-03" }\n', "[truth]", "no spot BTCUSDT 4h"),
    ],
)
def test_a_golden_request_the_recorded_week_cannot_answer_is_refused(body: str, where: str, words: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_file(GOLDEN + body, file="bad.toml", theme="bad")
    assert str(info.value).startswith(f"bad.toml::g {where}: ") and words in str(info.value), str(info.value)
    (ok,) = parse_file(GOLDEN + 'request = { start = "2024-01-01", end = "2024-01-08" }\n', file="ok.toml", theme="ok")
    assert ok.truth == "golden"


def test_cached_days_are_seeded_before_the_cache_directory_turns_read_only(tmp_path: pathlib.Path) -> None:
    """Seeding first, whole-directory faults last: a read-only cache can hold cached days."""
    with World(tmp_path / "cache", NOW, faults=[fault("cache.read_only_dir")], cached=[D2]) as world:
        world.create_engine(load_engine("reference"))
        obs = world.fetch(utc(2024, 1, 2), utc(2024, 1, 5))
        assert obs.ok and obs.rows_by_source() == {"cache": 24, "vision": 48}
        assert [obs.cache_after[d].status for d in (D2, D3, D4)] == ["valid", "missing", "missing"]


def test_a_scenario_built_in_python_meets_the_same_rules(tmp_path: pathlib.Path) -> None:
    from pytest_fcp.scenarios.model import Request, Scenario
    from pytest_fcp.scenarios.runner import run_scenario

    request = (Request(utc(2024, 1, 2), utc(2024, 1, 5)),)
    bad = Scenario("py", "d", NOW, request, faults=(fault("cache.zero_byte", days=[D3]),), cached=(D3,))
    with pytest.raises(ScenarioError, match=r"^python/py \[cached\[0\]\]: 2024-01-03 is also broken by faults\[0\]"):
        run_scenario(bad, "reference", tmp_path / "cache")
    good = Scenario("py", "d", NOW, request, faults=(fault("cache.zero_byte", days=[D3]),), cached=(D2,))
    assert run_scenario(good, "reference", tmp_path / "cache").passed
