"""The simulated world and the engine adapters, end to end (issue: simulated Binance world)."""

from __future__ import annotations

import datetime as dt
import pathlib
import time

import pyarrow as pa
import pytest

from pytest_fcp.engines import FETCH_SCHEMA, load_engine
from pytest_fcp.faults import fault
from pytest_fcp.world import World
from tests.conftest import ALT, run_in_threads, utc

MARKETS = [("spot", "BTCUSDT"), ("futures_usdt", "BTCUSDT"), ("futures_coin", "BTCUSD_PERP")]
NOW = utc(2024, 1, 10, 12)
CKVD_COLD = (
    "ckvd 4.6.1 does not return exactly [start, end) from Vision: it pads the range (auto_reindex) and asks "
    "Vision for the day after the range"
)


def engines() -> list:
    return [
        pytest.param("reference", id="reference"),
        pytest.param(ALT, id="alt"),
        pytest.param("ckvd", id="ckvd", marks=pytest.importorskip("ckvd") and ()),
    ]


def truth_rows(world: World, start: dt.datetime, end: dt.datetime) -> list[tuple]:
    t = world.expected(start, end)
    return list(
        zip(
            t["open_time"].to_pylist(),
            *(t[c].to_pylist() for c in ("open", "high", "low", "close", "volume")),
            strict=False,
        )
    )


def result_rows(table: pa.Table) -> list[tuple]:
    times = table["open_time"].cast(pa.int64()).to_pylist()
    return list(zip(times, *(table[c].to_pylist() for c in ("open", "high", "low", "close", "volume")), strict=False))


@pytest.fixture(params=["reference", ALT, "ckvd"], ids=["reference", "alt", "ckvd"])
def engine_name(request: pytest.FixtureRequest) -> str:
    if request.param == "ckvd":
        pytest.importorskip("ckvd")
    return request.param


@pytest.mark.parametrize(("market", "symbol"), MARKETS)
def test_cold_fetch_is_the_truth_from_vision_then_cache(engine_name, market, symbol, tmp_path, request):
    if engine_name == "ckvd":
        request.applymarker(pytest.mark.xfail(reason=CKVD_COLD, strict=True))
    start, end = utc(2024, 1, 2), utc(2024, 1, 6)
    with World(tmp_path / "cache", NOW, market=market, symbol=symbol) as world:
        world.create_engine(load_engine(engine_name))
        first = world.fetch(start, end)
        assert first.ok, first.error
        assert first.table.schema.field("open_time").type == FETCH_SCHEMA.field("open_time").type
        assert result_rows(first.table) == truth_rows(world, start, end)
        assert set(first.table["source"].to_pylist()) == {"vision"}
        before = len(world.trace.requests())
        second = world.fetch(start, end)
        assert second.ok, second.error
        assert result_rows(second.table) == truth_rows(world, start, end)
        assert set(second.table["source"].to_pylist()) == {"cache"}
        assert len(world.trace.requests()) == before, "a cached range must cost no request"


@pytest.mark.parametrize(("market", "symbol"), MARKETS)
def test_days_younger_than_48h_come_from_rest(engine_name, market, symbol, tmp_path, request):
    if engine_name == "ckvd":
        request.applymarker(
            pytest.mark.xfail(reason="ckvd 4.6.1 asks Vision for days younger than 48 h and caches them", strict=True)
        )
    start, end = utc(2024, 1, 9), utc(2024, 1, 10, 6)
    with World(tmp_path / "cache", NOW, market=market, symbol=symbol) as world:
        world.create_engine(load_engine(engine_name))
        result = world.fetch(start, end)
        assert result.ok, result.error
        assert result_rows(result.table) == truth_rows(world, start, end)
        assert set(result.table["source"].to_pylist()) == {"rest"}
        assert world.trace.requests("vision") == []
        assert all(not world.cache_state(d).valid for d in result.days)


def test_vision_files_follow_binance_conventions(tmp_path):
    import io
    import zipfile

    import httpx

    with World(tmp_path / "c", utc(2025, 1, 10, 12), market="spot"):
        get = httpx.Client().get
        spot = get("https://data.binance.vision/data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2025-01-02.zip")
        csv = zipfile.ZipFile(io.BytesIO(spot.content)).read("BTCUSDT-1h-2025-01-02.csv").decode().splitlines()
        first = csv[0].split(",")
        assert len(first) == 12 and first[0] == "1735776000000000"  # microseconds from 2025 on, no header
        assert int(first[6]) == int(first[0]) + 3_600_000_000 - 1
        fut = get("https://data.binance.vision/data/futures/um/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-12-30.zip")
        lines = zipfile.ZipFile(io.BytesIO(fut.content)).read("BTCUSDT-1h-2024-12-30.csv").decode().splitlines()
        assert lines[0].startswith("open_time,open,high,low,close,volume,close_time")
        assert int(lines[1].split(",")[6]) == int(lines[1].split(",")[0]) + 3_600_000 - 1
        checksum = get(
            "https://data.binance.vision/data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2025-01-02.zip.CHECKSUM"
        )
        import hashlib

        assert checksum.text == f"{hashlib.sha256(spot.content).hexdigest()}  BTCUSDT-1h-2025-01-02.zip\n"
        missing = get("https://data.binance.vision/data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2025-01-09.zip")
        assert missing.status_code == 404 and b"<Code>NoSuchKey</Code>" in missing.content  # not yet published
        coin = get(
            "https://data.binance.vision/data/futures/cm/daily/klines/BTCUSD_PERP/1h/BTCUSD_PERP-1h-2025-01-02.zip"
        )
        assert coin.status_code == 200


def test_rest_follows_binance_semantics(tmp_path):
    import httpx

    with World(tmp_path / "c", NOW) as world:
        get = httpx.Client().get
        page = get(
            "https://api.binance.com/api/v3/klines",
            params={
                "symbol": "BTCUSDT",
                "interval": "1h",
                "startTime": 1704844800000,
                "endTime": 1704855600000,
            },
        )
        rows = page.json()
        assert [r[0] for r in rows] == [1704844800000 + i * 3_600_000 for i in range(4)]  # endTime inclusive
        assert all(isinstance(r[1], str) and len(r) == 12 for r in rows)
        assert int(page.headers["X-MBX-USED-WEIGHT-1M"]) > 0
        future = get(
            "https://api.binance.com/api/v3/klines",
            params={"symbol": "BTCUSDT", "interval": "1h", "startTime": 1704844800000},
        )
        assert max(r[0] for r in future.json()) <= int(world.now.timestamp() * 1000)  # nothing after now
        limited = get(
            "https://fapi.binance.com/fapi/v1/klines",
            params={"symbol": "BTCUSDT", "interval": "1m", "startTime": 1704067200000, "limit": 5000},
        )
        assert len(limited.json()) == 1500  # futures cap
        bad = get("https://api.binance.com/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "7m"})
        assert bad.status_code == 400 and bad.json() == {"code": -1120, "msg": "Invalid interval."}
        bad = get("https://dapi.binance.com/dapi/v1/klines", params={"symbol": "NOPE", "interval": "1h"})
        assert bad.json()["code"] == -1121


def test_unserved_url_is_a_violation_naming_the_url(tmp_path):
    import httpx

    with World(tmp_path / "c", NOW) as world:
        with pytest.raises(httpx.ConnectError, match=r"https://example\.org/secret"):
            httpx.get("https://example.org/secret")
        with pytest.raises(OSError, match="blocked"):
            import socket

            socket.create_connection(("1.1.1.1", 443), timeout=1)
        assert any("https://example.org/secret" in v for v in world.violations)


def test_clients_share_one_tls_context_per_setting_while_a_world_runs(tmp_path):
    import ssl

    import httpx
    import httpx._transports.default as transports

    def context(client: httpx.Client) -> ssl.SSLContext:
        return client._transport._pool._ssl_context  # type: ignore[attr-defined]

    real = transports.create_ssl_context
    own = ssl.create_default_context()
    with World(tmp_path / "c", NOW):
        first, second = httpx.Client(), httpx.Client(timeout=3)
        insecure, mine = httpx.Client(verify=False), httpx.Client(verify=own)
        assert context(first) is context(second)
        assert context(first).verify_mode == ssl.CERT_REQUIRED and context(first).check_hostname
        assert context(first).cert_store_stats()["x509_ca"] > 0  # the real CA bundle, loaded once
        assert context(insecure) is not context(first) and context(insecure).verify_mode == ssl.CERT_NONE
        assert context(mine) is own  # a client's own context is left as it is
    assert transports.create_ssl_context is real
    assert context(httpx.Client()) is not context(httpx.Client())  # outside a world httpx is untouched


def test_real_user_cache_is_never_touched(tmp_path, monkeypatch):
    import platformdirs

    real_home = tmp_path / "real-home"
    monkeypatch.setenv("XDG_CACHE_HOME", str(real_home / ".cache"))
    real_cache = pathlib.Path(platformdirs.user_cache_dir("crypto-kline-vision-data"))
    for name in ("reference", ALT) + (("ckvd",) if _has_ckvd() else ()):
        with World(tmp_path / name, NOW) as world:
            world.create_engine(load_engine(name))
            assert world.fetch(utc(2024, 1, 3), utc(2024, 1, 4)).ok or name == "ckvd"
            inside = pathlib.Path(platformdirs.user_cache_dir("crypto-kline-vision-data"))
            assert inside.is_relative_to(world.sandbox.home)  # engines defaulting to platformdirs land here
    assert not real_home.exists(), f"something wrote to the real cache location {real_cache}"


def _has_ckvd() -> bool:
    try:
        import ckvd  # noqa: F401
    except ImportError:
        return False
    return True


def test_backoff_costs_no_real_time(engine_name, tmp_path):
    # REST fails twice with 503 on recent days, then recovers: engines that retry sleep, virtually.
    faults = [
        fault("rest.http503", attempts="first:2"),
        fault("rest.http429", attempts="nth:3", retry_after=300),
    ]
    with World(tmp_path / "c", NOW, faults=faults) as world:
        world.create_engine(load_engine(engine_name))
        virtual0, real0 = world.now, time.perf_counter()
        assert time.sleep == world.clock.sleep
        world.fetch(utc(2024, 1, 9), utc(2024, 1, 10, 6))
        slept = sum(e.data["seconds"] for e in world.trace.of_kind("sleep"))
        assert slept == sum(world.clock.slept)  # every sleep went through the virtual clock
        assert (world.now - virtual0).total_seconds() >= slept - 1e-5
        assert time.perf_counter() - real0 < 60 + slept / 10 or not slept
    assert time.sleep.__module__ == "time" or time.sleep.__name__ == "sleep"  # restored after the world


def test_world_rejects_bad_configuration(tmp_path):
    from pytest_fcp.world import WorldError

    with pytest.raises(WorldError, match="unknown market 'margin'"):
        World(tmp_path, NOW, market="margin")
    with pytest.raises(WorldError, match="does not exist on futures_usdt"):
        World(tmp_path, NOW, market="futures_usdt", interval="1s")
    with pytest.raises(WorldError, match="naive"):
        World(tmp_path, dt.datetime(2024, 1, 1))
    with pytest.raises(WorldError, match="golden truth has no"):
        World(tmp_path, NOW, truth="golden", interval="1m")
    with pytest.raises(WorldError, match="unknown log level 'LOUD'; allowed: TRACE, DEBUG, INFO"):
        World(tmp_path, NOW, log_level="LOUD")


class _LoggingEngine:
    """The reference engine plus a log sink, in the two forms an engine may offer."""

    def __init__(self, cache_dir: pathlib.Path, takes_level: bool) -> None:
        self.inner = load_engine("reference")(cache_dir)
        self.calls: list[tuple] = []
        if takes_level:
            self.set_log_sink = lambda callback, level="INFO": self.calls.append((callback, level))
        else:
            self.set_log_sink = lambda callback: self.calls.append((callback,))

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


@pytest.mark.parametrize("takes_level", [True, False], ids=["with-level", "callback-only"])
def test_world_hands_the_log_level_to_engines_that_take_it(tmp_path, takes_level):
    with World(tmp_path / "c", NOW, log_level="debug") as world:
        engine = world.create_engine(lambda cache_dir: _LoggingEngine(cache_dir, takes_level))
        assert world.log_level == "DEBUG"
        ((callback, *level),) = engine.calls
        assert level == (["DEBUG"] if takes_level else [])
        callback({"level": "DEBUG", "message": "hello", "module": "x"})
        assert [e.data["message"] for e in world.trace.of_kind("log")] == ["hello"]


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_ckvd_records_below_the_log_level_are_not_traced(tmp_path, level):
    pytest.importorskip("ckvd")
    with World(tmp_path / "c", NOW, log_level=level) as world:
        world.create_engine(load_engine("ckvd"))
        world.fetch(utc(2024, 1, 3), utc(2024, 1, 4))
        levels = {e.data["level"] for e in world.trace.of_kind("log")}
    assert "INFO" in levels
    assert ("DEBUG" in levels) == (level == "DEBUG")


def test_one_world_at_a_time_and_teardown_always_completes(tmp_path):
    import socket

    from pytest_fcp.world import WorldError

    first = World(tmp_path / "a", NOW)
    first.start()
    with pytest.raises(WorldError, match="another simulated world is still active"):
        World(tmp_path / "b", NOW).start()
    first.poll_cache = lambda quiet=False: (_ for _ in ()).throw(OSError("boom"))  # a failing teardown step
    with pytest.raises(OSError, match="boom"):
        first.stop()
    # every other step still ran: real sockets, real sleep and the real clock are back
    from pytest_fcp.world import network

    assert socket.socket.connect is network._real_connect and time.sleep.__name__ == "sleep"
    assert dt.datetime.now(dt.UTC) - NOW > dt.timedelta(days=1)
    with World(tmp_path / "c", NOW):  # and a new world can start
        pass


def test_engine_log_lines_land_in_the_trace(tmp_path):
    pytest.importorskip("ckvd")
    with World(tmp_path / "c", NOW, faults=[fault("vision.http403")]) as world:
        world.create_engine(load_engine("ckvd"))
        world.fetch(utc(2024, 1, 3), utc(2024, 1, 4))
        logs = world.trace.of_kind("log")
        assert logs, "ckvd's loguru records were not captured"
        assert all(e.data["module"].startswith("ckvd") for e in logs)
        first_http = world.trace.requests()[0].index
        assert any(e.index > first_http for e in logs)  # interleaved with the requests, in order


def test_a_sleep_imported_by_name_is_virtual_in_every_later_world(tmp_path):
    # Modules that did ``from time import sleep`` before or between worlds sleep on the virtual clock too.
    import sys
    import types

    def sleeper(name: str) -> types.ModuleType:
        module = types.ModuleType(name)
        module.sleep = time.sleep  # what ``from time import sleep`` leaves in a module
        sys.modules[name] = module
        return module

    early = sleeper("fcp_test_early_sleeper")
    try:
        with World(tmp_path / "a", NOW) as world:
            assert early.sleep == world.clock.sleep  # checked first: a real sleep here would take an hour
            early.sleep(3600)
            assert world.now == NOW + dt.timedelta(hours=1) and world.clock.slept == [3600.0]
        late = sleeper("fcp_test_late_sleeper")  # imported after a world has already scanned the modules
        with World(tmp_path / "b", NOW) as world:
            assert late.sleep == world.clock.sleep and early.sleep == world.clock.sleep
            real0 = time.perf_counter()
            late.sleep(7200)
            early.sleep(60)
            assert time.perf_counter() - real0 < 1
            assert world.clock.slept == [7200.0, 60.0]
            assert [e.data["seconds"] for e in world.trace.of_kind("sleep")] == [7200.0, 60.0]
        assert early.sleep is time.sleep is late.sleep  # the real one again
    finally:
        sys.modules.pop("fcp_test_early_sleeper", None)
        sys.modules.pop("fcp_test_late_sleeper", None)


@pytest.mark.parametrize("inotify", [True, False], ids=["inotify", "snapshots"])
def test_the_cache_observer_sees_what_happens_to_files(tmp_path, monkeypatch, inotify):
    import os

    from pytest_fcp.world.cache import CacheObserver, CacheSandbox

    if not inotify:  # the portable way: compare snapshots of the tree
        monkeypatch.setitem(__import__("sys").modules, "inotify_simple", None)
    sandbox = CacheSandbox(tmp_path / "cache")
    (sandbox.root / "old.arrow").write_bytes(b"1")
    observer = CacheObserver(sandbox)
    try:
        day = sandbox.root / "data" / "spot" / "BTCUSDT-1h-2024-01-03.arrow"
        day.parent.mkdir(parents=True)  # a new tree: its files count even if written before it is watched
        day.write_bytes(b"first")
        first = observer.poll()
        assert ("write", "data/spot/BTCUSDT-1h-2024-01-03.arrow") in first
        temporary = day.with_suffix(".tmp")
        temporary.write_bytes(b"second, longer")
        os.replace(temporary, day)  # the atomic way: a temporary file renamed over the old one
        (sandbox.root / "old.arrow").unlink()
        events = observer.poll()
        assert ("replace", "data/spot/BTCUSDT-1h-2024-01-03.arrow") in events
        assert ("delete", "old.arrow") in events
        assert not [rel for op, rel in events if rel.endswith(".tmp") and op != "delete"]  # renamed away
        if inotify:
            day.read_bytes()
            assert observer.poll() == [("read", "data/spot/BTCUSDT-1h-2024-01-03.arrow")]
            day.read_bytes()
            observer.ignore_own_reads({"data/spot/BTCUSDT-1h-2024-01-03.arrow"})
            assert observer.poll() == []  # the harness's own look is not the engine's read
        assert observer.poll() == []
    finally:
        observer.close()


def test_every_host_reaches_its_door(tmp_path):
    import httpx

    with World(tmp_path / "c", NOW) as world:
        vision = httpx.get("https://data.binance.vision/data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-03.zip")
        assert vision.status_code == 200 and vision.content[:2] == b"PK"
        for host, path in (("api", "/api/v3"), ("fapi", "/fapi/v1"), ("dapi", "/dapi/v1")):
            symbol = "BTCUSD_PERP" if host == "dapi" else "BTCUSDT"
            rest = httpx.get(f"https://{host}.binance.com{path}/klines", params={"symbol": symbol, "interval": "1h"})
            assert rest.status_code == 200 and rest.json(), host
        with pytest.raises(httpx.ConnectError, match="not served"):
            httpx.get("https://api.binance.com/api/v3/ping")  # a REST host, but not the klines path
        assert [e.data["source"] for e in world.trace.requests()] == ["vision", "rest", "rest", "rest"]
        assert world.violations == ["GET https://api.binance.com/api/v3/ping"]


def test_trace_indexes_stay_unique_when_engine_threads_record(tmp_path):
    # ckvd fetches Vision files from a thread pool: the handlers record events from several threads at once.
    with World(tmp_path / "c", NOW) as world:

        def busy() -> None:
            for _ in range(2000):
                world.trace.record("log", message="from a worker")
                world.poll_cache()

        run_in_threads(*[busy] * 6)
        assert [e.index for e in world.trace.events] == list(range(len(world.trace.events)))
        assert len(world.trace.of_kind("log")) == 12_000


def test_sleeps_in_many_engine_threads_all_advance_the_clock(tmp_path):
    with World(tmp_path / "c", NOW) as world:
        sleep = time.sleep  # what an engine thread calls; checked first, so a real sleep never happens
        assert sleep == world.clock.sleep

        def sleeper() -> None:
            for _ in range(200):
                sleep(1)

        def delayed() -> None:
            for _ in range(2000):
                world.clock.advance(1)

        run_in_threads(*[sleeper] * 6, *[delayed] * 6)
        assert world.now == NOW + dt.timedelta(seconds=1200 + 12_000)  # no sleep or simulated delay lost
        assert len(world.trace.of_kind("sleep")) == 1200


def test_a_start_that_fails_half_way_undoes_what_it_started(tmp_path, monkeypatch):
    import os

    from pytest_fcp.world.network import SealedNetwork, active_network
    from pytest_fcp.world.vision import BUCKET, s3_backend

    real_sleep = time.sleep
    before = os.environ.get("CKVD_CACHE_DIR")

    def broken(self):
        raise RuntimeError("network failed to start")

    monkeypatch.setattr(SealedNetwork, "start", broken)
    world = World(tmp_path / "cache", NOW)
    with pytest.raises(RuntimeError, match="network failed to start"):
        world.start()
    assert os.environ.get("CKVD_CACHE_DIR") == before  # the environment is back
    assert time.sleep is real_sleep  # the clock's sleep patch is gone
    assert abs(time.time() - dt.datetime.now(dt.UTC).timestamp()) < 5 and time.time() > NOW.timestamp() + 86_400
    assert active_network() is None
    assert BUCKET not in s3_backend().buckets
    world.stop()  # stopping a world that never started is harmless


def test_fetch_returns_an_immutable_observation_with_structured_records(tmp_path):
    import dataclasses

    with World(tmp_path / "cache", NOW, faults=[fault("vision.http403", days=["2024-01-03"])]) as world:
        world.create_engine(load_engine("reference"))
        obs = world.fetch(utc(2024, 1, 2), utc(2024, 1, 5))
    with pytest.raises(dataclasses.FrozenInstanceError):
        obs.table = None  # type: ignore[misc]
    assert obs.ok and obs.rows_by_source() == {"vision": 48, "rest": 24}
    assert [e.kind for e in obs.events][:1] == ["request"] and obs.events[-1].kind == "outcome"
    blocked = [r for r in obs.requests if r.status == 403]
    assert len(blocked) == 1
    assert (blocked[0].source, blocked[0].door, blocked[0].days, blocked[0].fault) == (
        "vision",
        "https",
        (dt.date(2024, 1, 3),),
        "vision.http403",
    )
    assert blocked[0].target.obj in ("zip", "checksum") and blocked[0].attempt == 1
    rest = [r for r in obs.requests if r.source == "rest"]
    assert rest and all(dt.date(2024, 1, 3) in r.days for r in rest) and rest[0].target.weight == 2
    assert [(f.id, f.day, f.attempt) for f in obs.firings] == [("vision.http403", dt.date(2024, 1, 3), 1)]
    assert {d: s.status for d, s in obs.cache_before.items()} == dict.fromkeys(obs.days, "missing")
    assert {d: s.status for d, s in obs.cache_after.items()} == dict.fromkeys(obs.days, "valid")
    assert obs.published == frozenset(obs.days) and obs.expected.num_rows == 72


@pytest.mark.parametrize(("engine", "state"), [("reference", "corrupt"), ("ckvd", "valid")])
def test_a_cache_fault_in_the_engines_own_format_is_no_fault_for_it(engine, state, tmp_path):
    if engine == "ckvd":
        pytest.importorskip("ckvd")
    day = dt.date(2024, 1, 3)
    with World(tmp_path / "cache", NOW, faults=[fault("cache.ns_timestamps", days=[day])]) as world:
        world.create_engine(load_engine(engine))  # ckvd keeps nanosecond times itself; reference milliseconds
        assert world.cache_state(day).status == state
        assert [e.data["id"] for e in world.trace.of_kind("fault")] == (
            ["cache.ns_timestamps"] if state != "valid" else []
        )
