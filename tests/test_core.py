"""The facts in ``pytest_fcp.core``, each defined once: what they say, that their readers follow them, and that
no other module writes one of them again."""

from __future__ import annotations

import ast
import datetime as dt
import pathlib

import pytest

from pytest_fcp.core import cache_states, freshness, markets, sources
from pytest_fcp.core.freshness import FRESHNESS, FRESHNESS_HOURS, is_old
from pytest_fcp.core.hosts import LOCAL_URL, is_local, is_local_url
from pytest_fcp.core.markets import (
    CHECKSUM_SUFFIX,
    DEFAULT_PAGE_LIMIT,
    MARKETS,
    MAX_PAGE_LIMIT,
    REST_HOSTS,
    VISION_HOST,
    VISION_URL,
    checksum_key,
    default_symbol,
    vision_key,
)
from pytest_fcp.core.sources import RATE_LIMIT_STATUSES, is_rate_limited
from tests.conftest import utc

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pytest_fcp"


# --- rate limits ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "limited"),
    [(429, True), (418, True), (200, False), (403, False), (404, False), (500, False), (503, False), (None, False)],
)
def test_429_and_418_are_the_rate_limited_statuses(status, limited):
    assert is_rate_limited(status) is limited


def test_the_rate_limit_readers_follow_the_one_definition(monkeypatch):
    from pytest_fcp.report.flow import status_class

    assert [status_class({"status": s}) for s in (429, 418, 503)] == ["rl", "rl", "s5"]
    monkeypatch.setattr(sources, "RATE_LIMIT_STATUSES", (503,))  # a planted change of the one definition
    assert [status_class({"status": s}) for s in (429, 418, 503)] == ["s4", "s4", "rl"]
    assert RATE_LIMIT_STATUSES == (429, 418)  # the module-level name this test imported is untouched


# --- this machine --------------------------------------------------------------------------------------------
LOCAL = ["localhost", "LocalHost", "127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "[::1]", None]
NOT_LOCAL = [
    "data.binance.vision",
    "api.binance.com",
    "localhost.example.com",
    "127.0.0.1.example.com",
    "128.0.0.1",
    "126.255.255.255",
    "1270.0.0.1",
    "10.0.0.1",
    "::2",
    "[::2]",
    "",
]


@pytest.mark.parametrize("host", LOCAL)
def test_loopback_hosts_are_this_machine(host):
    assert is_local(host)


@pytest.mark.parametrize("host", NOT_LOCAL)
def test_other_hosts_are_not_this_machine(host):
    assert not is_local(host)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/x",
        "https://localhost:8443/x?y=1",
        "http://LOCALHOST",
        "http://127.0.0.1:9/",
        "http://127.1.2.3/",
        "http://[::1]:9/x",
        "https://[::1]#f",
        "http://localhost.example.com/x",
        "http://127.0.0.1.example.com/x",
        "http://128.0.0.1/",
        "http://127.0.0.256/",
        "https://data.binance.vision/data/spot",
        "http://[::2]/",
    ],
)
def test_the_local_url_pattern_agrees_with_the_host_predicate(url):
    assert bool(LOCAL_URL.match(url)) is is_local_url(url)


def test_a_url_without_a_host_is_not_a_local_url():
    assert not is_local_url("/api/v3/klines")


# --- the 48 h rule -------------------------------------------------------------------------------------------
def test_freshness_hours_is_the_rule_in_hours():
    assert dt.timedelta(hours=FRESHNESS_HOURS) == FRESHNESS


def test_the_health_scan_reads_too_recent_exactly_where_the_rule_says(tmp_path):
    from pytest_fcp.health.files import check_day_file

    day = dt.date(2024, 1, 3)
    edge = freshness.day_end(day) + FRESHNESS  # the first moment the day is old
    empty = tmp_path / "2024-01-03.arrow"
    empty.write_bytes(b"")
    at_edge = check_day_file(str(empty), 0, day, "1h", "reference", markets.to_ms(edge))
    just_before = check_day_file(str(empty), 0, day, "1h", "reference", markets.to_ms(edge) - 1)
    assert is_old(day, edge) and "too_recent" not in at_edge.issues
    assert not is_old(day, edge - dt.timedelta(milliseconds=1)) and "too_recent" in just_before.issues
    assert f"< {FRESHNESS_HOURS} h" in just_before.detail


def test_fuzzed_caches_hold_only_days_the_rule_calls_old():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from pytest_fcp.fuzz.strategies import cache_states

    now = utc(2024, 1, 10, 12)
    days = [dt.date(2024, 1, d) for d in range(5, 11)]  # 5-7 ended 48 h before now; 8-10 did not
    seen: set[dt.date] = set()

    @settings(max_examples=60, database=None, derandomize=True, deadline=None)
    @given(st.data())
    def prop(data: st.DataObject) -> None:
        cached, faults = data.draw(cache_states(days, now))
        touched = {*cached, *(d for f in faults for d in (f.days or ()))}
        assert all(is_old(day, now) for day in touched)
        seen.update(touched)

    prop()
    assert seen == {day for day in days if is_old(day, now)} == {dt.date(2024, 1, d) for d in (5, 6, 7)}


# --- markets: hosts, keys, limits, symbols -------------------------------------------------------------------
def test_vision_url_is_https_on_the_vision_host():
    assert f"https://{VISION_HOST}" == VISION_URL


def test_the_rest_hosts_are_the_markets_hosts_in_order():
    assert tuple(spec.rest_host for spec in MARKETS.values()) == REST_HOSTS
    assert all(spec.rest_url.startswith(f"https://{spec.rest_host}/") for spec in MARKETS.values())


@pytest.mark.parametrize("market", list(MARKETS))
def test_a_checksum_key_parses_as_the_zips_checksum(market):
    from pytest_fcp.world.vision import parse_key

    key = vision_key(market, default_symbol(market), "1h", dt.date(2024, 1, 3))
    zip_obj, checksum_obj = parse_key(key), parse_key(checksum_key(key))
    assert checksum_key(key) == key + CHECKSUM_SUFFIX
    assert zip_obj is not None and checksum_obj is not None
    assert (zip_obj.obj, checksum_obj.obj) == ("zip", "checksum")
    assert (checksum_obj.market, checksum_obj.symbol, checksum_obj.day) == (market, zip_obj.symbol, zip_obj.day)
    assert parse_key(key + ".SHA256") is None


def test_the_short_page_fault_keeps_up_to_the_largest_page():
    from pytest_fcp.faults import FaultSpecError, fault

    assert max(spec.max_limit for spec in MARKETS.values()) == MAX_PAGE_LIMIT
    fault("rest.short_page", keep=MAX_PAGE_LIMIT)
    with pytest.raises(FaultSpecError, match="keep"):
        fault("rest.short_page", keep=MAX_PAGE_LIMIT + 1)


@pytest.mark.parametrize(
    ("market", "symbol"), [("spot", "BTCUSDT"), ("futures_usdt", "BTCUSDT"), ("futures_coin", "BTCUSD_PERP")]
)
def test_each_market_has_a_default_symbol_the_world_trades(market, symbol):
    from pytest_fcp.world.truth import SyntheticTruth

    assert default_symbol(market) == symbol
    assert SyntheticTruth.shared(0).has_symbol(market, symbol)


# --- cache state words ---------------------------------------------------------------------------------------
def test_the_broken_states_are_the_day_states_but_valid_and_missing():
    assert set(cache_states.BROKEN_STATES) == set(cache_states.DAY_STATES) - {"valid", "missing"}


def test_the_path_order_lists_each_path_word_once_in_path_order():
    assert cache_states.PATH_ORDER == ("hit", "miss", "corrupt", "partial", "stale")
    assert set(cache_states.PATH_ORDER) == set(cache_states.PATH_WORDS.values())


# --- no fact written twice -----------------------------------------------------------------------------------
#: Literals that are facts of ``pytest_fcp.core``; another module must name the core definition instead.
FACT_STRINGS = {
    VISION_HOST: "core.markets.VISION_HOST",
    VISION_URL: "core.markets.VISION_URL",
    CHECKSUM_SUFFIX: "core.markets.CHECKSUM_SUFFIX",
    **{host: "core.markets.REST_HOSTS / MARKETS" for host in REST_HOSTS},
    **{name: "core.hosts.is_local" for name in ("localhost", "127.0.0.1", "::1", "[::1]")},
    "BTCUSD_PERP": "core.markets.default_symbol",
}
#: Where a fact may stand as a literal all the same: the fault table's faults answer with the rate-limit
#: statuses; the golden truth's file table names the series its recorded files hold.
ALLOWED = {("faults/table.py", 429), ("faults/table.py", 418), ("world/truth.py", "BTCUSD_PERP")}


def _facts_written_again(package: pathlib.Path) -> list[str]:
    found: list[tuple[str, int, str]] = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if rel.startswith("core/"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Constant):
                continue
            if (rel, node.value) in ALLOWED:
                continue
            if isinstance(node.value, str) and node.value in FACT_STRINGS:
                found.append((rel, node.lineno, f"{node.value!r} (use {FACT_STRINGS[node.value]})"))
            elif type(node.value) is int and node.value in RATE_LIMIT_STATUSES:
                found.append((rel, node.lineno, f"{node.value} (use core.sources.is_rate_limited)"))
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "hours" and getattr(node.value, "value", None) == 48:
                found.append((rel, node.value.lineno, "hours=48 (use core.freshness.FRESHNESS)"))
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "FRESHNESS":
                found.append((rel, node.lineno, f"FRESHNESS.{node.attr} (use core.freshness's helpers)"))
    return [f"{rel}:{line}: {what}" for rel, line, what in sorted(found)]


def test_no_module_outside_core_writes_a_core_fact_again():
    assert _facts_written_again(PACKAGE) == []


def test_a_fact_written_again_is_named(tmp_path):
    package = tmp_path / "pkg"
    (package / "core").mkdir(parents=True)
    (package / "core" / "markets.py").write_text('VISION_HOST = "data.binance.vision"\n')  # the definition
    (package / "world.py").write_text(
        'HOST = "data.binance.vision"\n'
        "def limited(status):\n    return status in (418, 429)\n"
        "def hours():\n    return FRESHNESS.total_seconds() // 3600\n"
        'LOCAL = ("localhost", "[::1]")\n'
        "AGE = dt.timedelta(hours=48)\n"
    )
    (package / "faults").mkdir()
    (package / "faults" / "table.py").write_text("RATE = 429\n")  # a fault's own status: allowed
    assert _facts_written_again(package) == [
        "world.py:1: 'data.binance.vision' (use core.markets.VISION_HOST)",
        "world.py:3: 418 (use core.sources.is_rate_limited)",
        "world.py:3: 429 (use core.sources.is_rate_limited)",
        "world.py:5: FRESHNESS.total_seconds (use core.freshness's helpers)",
        "world.py:6: '[::1]' (use core.hosts.is_local)",
        "world.py:6: 'localhost' (use core.hosts.is_local)",
        "world.py:7: hours=48 (use core.freshness.FRESHNESS)",
    ]


@pytest.mark.parametrize("market", list(MARKETS))
def test_rest_pages_follow_the_default_and_the_largest_limit(tmp_path, market):
    import httpx

    from pytest_fcp.world import World

    spec, start = MARKETS[market], markets.to_ms(utc(2024, 1, 1))
    params = {"symbol": default_symbol(market), "interval": "1m", "startTime": start}
    with World(tmp_path / "cache", utc(2024, 1, 10, 12), market=market, symbol=params["symbol"]):
        unnamed = httpx.get(spec.rest_url, params=params).json()
        largest = httpx.get(spec.rest_url, params={**params, "limit": MAX_PAGE_LIMIT + 1}).json()
    assert len(unnamed) == DEFAULT_PAGE_LIMIT
    assert len(largest) == spec.max_limit <= MAX_PAGE_LIMIT


# --- module:attr specs --------------------------------------------------------------------------------------
def test_resolve_object_follows_a_dotted_attribute_path():
    import os.path

    from pytest_fcp.core.objects import resolve_object

    assert resolve_object("os:path.join") is os.path.join
    assert resolve_object("pytest_fcp.core.markets:MARKETS") is MARKETS


@pytest.mark.parametrize(
    ("spec", "missing", "message"),
    [
        ("no_such_module_fcp:x", "module", "cannot import module 'no_such_module_fcp' (No module named"),
        ("os:path.no_such_name", "attribute", "module 'os' has no attribute 'path.no_such_name'"),
        ("os:", "attribute", "module 'os' has no attribute ''"),
    ],
)
def test_resolve_object_says_which_part_failed(spec, missing, message):
    from pytest_fcp.core.objects import ObjectSpecError, resolve_object

    with pytest.raises(ObjectSpecError) as raised:
        resolve_object(spec)
    assert raised.value.missing == missing and str(raised.value).startswith(message)
    assert (raised.value.module, raised.value.attr) == tuple(spec.split(":", 1))
    assert isinstance(raised.value.__cause__, ImportError) == (missing == "module")


def test_every_module_attr_spec_is_resolved_by_the_core_helper():
    # the engine loader, the --fcp-engine check and the example-database option read specs through it
    from pytest_fcp.engines import EngineLoadError, load_engine
    from pytest_fcp.fuzz.database import DatabaseSpecError, load_database
    from pytest_fcp.plugin.invocation import check_engine

    with pytest.raises(EngineLoadError, match="module 'os' has no attribute 'nosuch'"):
        load_engine("os:nosuch")
    with pytest.raises(DatabaseSpecError, match="module 'os' has no attribute 'nosuch'"):
        load_database("os:nosuch")
    with pytest.raises(pytest.UsageError, match="pytest-fcp: --fcp-engine os:nosuch: module 'os' has no attribute"):
        check_engine("os:nosuch")
