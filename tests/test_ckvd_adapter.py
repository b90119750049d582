"""Offline tests of the ckvd engine adapter (``pytest_fcp.engines.ckvd``).

respx stands in for Binance (``assert_all_mocked=True`` plus a catch-all route that fails the test), and
``time.sleep`` is patched, so nothing leaves the process and ckvd's retries cost no time. The tests pin down
what the *adapter* promises - argument mapping, ckvd's real cache path, a faithful conversion, log capture -
not whether ckvd itself is correct (its defects are listed in ``.scratch/ckvd_notes.md``). Symbols are
chosen so ckvd's Vision client, which always downloads its built-in BTCUSDT/1h series, serves what is asked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import io
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import respx

pytest.importorskip("ckvd")

import pandas as pd
import polars as pl
from ckvd import Interval, MarketType

from pytest_fcp.core.markets import INTERVALS, day_bounds_ms, vision_key
from pytest_fcp.engines import CACHE_SCHEMA, FETCH_SCHEMA, Engine, load_engine
from pytest_fcp.engines import ckvd as adapter

DAY = dt.date(2024, 1, 1)
STEP_MS = 3_600_000
HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore"
)
SYMBOL = {"spot": "BTCUSDT", "futures_usdt": "BTCUSDT", "futures_coin": "BTCUSD_PERP"}
VISION_DIR = {"spot": "spot", "futures_usdt": "futures/um", "futures_coin": "futures/cm"}


def utc(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def grid_ms(day: dt.date) -> list[int]:
    start, end = day_bounds_ms(day)
    return list(range(start, end, STEP_MS))


def bar(open_ms: int) -> tuple[float, float, float, float, float]:
    k = open_ms // STEP_MS
    o = 100 + (k % 400) * 0.25
    return o, o + 1, o - 1, o + 0.5, float(1 + k % 7)


def day_table(day: dt.date) -> pa.Table:
    """The simulated market's 1h bars of ``day`` (CACHE_SCHEMA)."""
    times = grid_ms(day)
    bars = [bar(t) for t in times]
    return pa.table(
        [pa.array(times).cast(CACHE_SCHEMA.field("open_time").type)]
        + [pa.array([b[i] for b in bars], pa.float64()) for i in range(5)],
        schema=CACHE_SCHEMA,
    )


def vision_zip(symbol: str, day: dt.date, *, header: bool) -> bytes:
    lines = [HEADER] if header else []
    for t in grid_ms(day):
        o, h, lo, c, v = bar(t)
        lines.append(f"{t},{o:.8f},{h:.8f},{lo:.8f},{c:.8f},{v:.8f},{t + STEP_MS - 1},10.0,5,0.5,5.0,0")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{symbol}-1h-{day.isoformat()}.csv", "\n".join(lines) + "\n")
    return buffer.getvalue()


class FakeBinance:
    """Vision objects by URL path; REST answered by ``rest`` (unset: any REST request fails the test)."""

    def __init__(self, router: respx.Router) -> None:
        self.objects: dict[str, bytes] = {}
        self.calls: list[str] = []
        self.rest: Callable[[httpx.Request], httpx.Response] | None = None
        router.route(host="data.binance.vision").mock(side_effect=self._vision)
        for host in ("api.binance.com", "fapi.binance.com", "dapi.binance.com"):
            router.route(host=host).mock(side_effect=self._rest)
        router.route().mock(side_effect=self._unexpected)

    def publish(self, market: str, day: dt.date) -> None:
        symbol = SYMBOL[market]
        payload = vision_zip(symbol, day, header=market != "spot")
        key = "/" + vision_key(market, symbol, "1h", day)
        self.objects[key] = payload
        self.objects[key + ".CHECKSUM"] = (
            f"{hashlib.sha256(payload).hexdigest()}  {symbol}-1h-{day.isoformat()}.zip".encode()
        )

    def _vision(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request.url.path)
        if request.url.path in self.objects:
            return httpx.Response(200, content=self.objects[request.url.path])
        return httpx.Response(404, content=b"<Error><Code>NoSuchKey</Code></Error>")

    def _rest(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(str(request.url))
        if self.rest is None:
            raise AssertionError(f"unexpected REST request {request.url}")
        return self.rest(request)

    @staticmethod
    def _unexpected(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"request outside the fake Binance: {request.url}")


@pytest.fixture
def binance() -> Iterator[FakeBinance]:
    with (
        respx.mock(assert_all_mocked=True, assert_all_called=False) as router,
        mock.patch("time.sleep"),
    ):
        yield FakeBinance(router)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[adapter.CkvdEngine]:
    eng = adapter.create(tmp_path / "cache")
    yield eng
    eng.close()


# --- loading ----------------------------------------------------------------------------------------------


def test_module_imports_without_ckvd_and_create_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import pytest_fcp.engines

    monkeypatch.setitem(sys.modules, "ckvd", None)  # "import ckvd" now raises ImportError
    monkeypatch.delitem(sys.modules, "pytest_fcp.engines.ckvd")
    monkeypatch.setattr(pytest_fcp.engines, "ckvd", adapter)  # the re-import rebinds it; restore afterwards
    module = importlib.import_module("pytest_fcp.engines.ckvd")
    with pytest.raises(ImportError, match=r"pip install 'pytest-fcp\[ckvd\]'"):
        module.create(tmp_path)


def test_entry_point_gives_an_engine(tmp_path: Path) -> None:
    factory = load_engine("ckvd")
    assert factory is adapter.create
    eng = factory(tmp_path)
    try:
        assert isinstance(eng, Engine)
    finally:
        eng.close()


# --- mapping ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("market", "market_type"),
    [("spot", "SPOT"), ("futures_usdt", "FUTURES_USDT"), ("futures_coin", "FUTURES_COIN")],
)
def test_market_and_interval_mapping(engine: adapter.CkvdEngine, market: str, market_type: str) -> None:
    assert engine.market_type(market) is MarketType[market_type]
    manager = engine.manager(market)
    assert manager.market_type is MarketType[market_type]
    assert manager.cache_dir == engine.cache_dir
    assert engine.manager(market) is manager  # one instance per market
    assert {name: engine.interval(name) for name in INTERVALS} == {name: Interval(name) for name in INTERVALS}


def test_unknown_market_or_interval_is_a_clear_error(engine: adapter.CkvdEngine, binance: FakeBinance) -> None:
    start, end = utc(DAY), utc(DAY + dt.timedelta(days=1))
    with pytest.raises(ValueError, match=r"unknown market 'options'.*spot, futures_usdt, futures_coin"):
        engine.fetch("BTCUSDT", "options", "1h", start, end)
    with pytest.raises(ValueError, match="unknown market"):
        engine.cache_file("BTCUSDT", "margin", "1h", DAY)
    with pytest.raises(ValueError, match=r"unknown interval '7m'"):
        engine.fetch("BTCUSDT", "spot", "7m", start, end)
    assert binance.calls == []


# --- fetch and conversion ---------------------------------------------------------------------------------


def test_fetch_passes_get_data_the_documented_arguments(tmp_path: Path) -> None:
    start, end = utc(DAY), utc(DAY + dt.timedelta(days=1))
    frame = pd.DataFrame(
        {
            "open": [1.0],
            "high": [2.0],
            "low": [0.5],
            "close": [1.5],
            "volume": [3.0],
            "_data_source": ["REST"],
        },
        index=pd.DatetimeIndex([start], name="open_time"),
    )
    frame.attrs["_rate_limited"] = True
    for auto_reindex in (True, False):
        eng = adapter.CkvdEngine(tmp_path, auto_reindex=auto_reindex)
        try:
            with mock.patch.object(eng.manager("spot"), "get_data", return_value=frame) as get_data:
                table = eng.fetch("BTCUSDT", "spot", "1h", start, end)
            get_data.assert_called_once_with(
                "BTCUSDT", start, end, Interval.HOUR_1, include_source_info=True, auto_reindex=auto_reindex
            )
            assert table.to_pylist() == [
                {"open_time": start, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 3.0,
                 "source": "rest"}
            ]  # fmt: skip
            assert eng.last_attrs == {"_rate_limited": True}
        finally:
            eng.close()


def test_conversion_keeps_every_row_as_ckvd_returned_it() -> None:
    day0 = pd.Timestamp("2024-01-01", tz="UTC")
    hour = dt.timedelta(hours=1)
    times = [
        day0 + 3 * hour,
        day0,
        day0,
        day0 - hour,
        day0 + 25 * hour,
        day0 + hour,
    ]  # unsorted, dup, outside
    frame = pd.DataFrame(
        {
            "open": [1.0, 2.0, 2.5, float("nan"), 4.0, 5.0],
            "high": [1.0] * 6,
            "low": [1.0] * 6,
            "close": [1.0] * 6,
            "volume": [1.0] * 6,
            "_data_source": ["CACHE", "VISION", "REST", float("nan"), "MIXED", "Vision"],
        },
        index=pd.DatetimeIndex(times, name="open_time"),
    )
    table = adapter.frame_to_table(frame)
    assert table.schema == FETCH_SCHEMA
    assert [t.to_pydatetime() for t in times] == table["open_time"].to_pylist()
    assert table["source"].to_pylist() == ["cache", "vision", "rest", None, "mixed", "Vision"]
    assert table["open"].null_count == 0  # NaN stays NaN, it does not become null
    assert pc.is_nan(table["open"]).to_pylist() == [False, False, False, True, False, False]
    assert table["open"].to_pylist()[:3] == [1.0, 2.0, 2.5]


def test_conversion_refuses_to_round_and_reports_missing_columns() -> None:
    late = pd.DatetimeIndex([pd.Timestamp("2024-01-01T00:00:00.000500", tz="UTC")], name="open_time")
    prices = {name: [1.0] for name in ("open", "high", "low", "close", "volume")}
    with pytest.raises(adapter.CkvdConversionError, match="sub-millisecond"):
        adapter.frame_to_table(pd.DataFrame(prices, index=late))
    with pytest.raises(adapter.CkvdConversionError, match="volume"):
        adapter.frame_to_table(pd.DataFrame({"open": [1.0]}, index=late.floor("ms")))
    assert adapter.frame_to_table(pd.DataFrame()).equals(FETCH_SCHEMA.empty_table())


def test_errors_propagate_unchanged(engine: adapter.CkvdEngine, binance: FakeBinance) -> None:
    binance.rest = lambda request: httpx.Response(500, text="down")  # no Vision file, REST keeps failing
    manager = engine.manager("spot")
    raised: list[BaseException] = []
    real_get_data = manager.get_data

    def spy(*args: Any, **kwargs: Any) -> Any:
        try:
            return real_get_data(*args, **kwargs)
        except BaseException as exc:
            raised.append(exc)
            raise

    with mock.patch.object(manager, "get_data", side_effect=spy), pytest.raises(BaseException) as info:
        engine.fetch("BTCUSDT", "spot", "1h", utc(DAY), utc(DAY + dt.timedelta(days=1)))
    assert raised and info.value is raised[0]
    assert any("klines" in call for call in binance.calls)


# --- cache files ------------------------------------------------------------------------------------------


def test_cache_file_uses_ckvds_layout(engine: adapter.CkvdEngine) -> None:
    root = engine.cache_dir / "data"
    assert engine.cache_file("btcusdt", "spot", "1h", DAY) == (
        root / "spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-01.arrow"
    )
    assert engine.cache_file("ETHUSDT", "futures_usdt", "5m", DAY) == (
        root / "futures/um/daily/klines/ETHUSDT/5m/ETHUSDT-5m-2024-01-01.arrow"
    )
    assert engine.cache_file("BTCUSD_PERP", "futures_coin", "1d", DAY) == (
        root / "futures/cm/daily/klines/BTCUSD_PERP/1d/BTCUSD_PERP-1d-2024-01-01.arrow"
    )


@pytest.mark.parametrize(
    ("symbol", "market", "interval"),
    [("btcusdt", "spot", "1h"), ("ETHUSDT", "futures_usdt", "5m"), ("BTCUSD_PERP", "futures_coin", "1d"),
     ("BTCUSD", "futures_coin", "1h")],
)  # fmt: skip
def test_cache_file_agrees_with_the_declared_layout(
    engine: adapter.CkvdEngine, symbol: str, market: str, interval: str
) -> None:
    """What a cache scan reads (CACHE_LAYOUT) is where ckvd's own path function puts the file."""
    declared = adapter.CACHE_LAYOUT.path(engine.cache_dir, symbol, market, interval, DAY)
    assert engine.cache_file(symbol, market, interval, DAY) == declared
    series = adapter.CACHE_LAYOUT.series_of(declared.parent.as_posix())
    assert series is not None and series[0] == market and series[2] == interval
    assert adapter.CACHE_LAYOUT.day_of_file(declared.name, series[1], interval) == DAY


@pytest.mark.parametrize("market", ["spot", "futures_usdt", "futures_coin"])
def test_fetch_from_vision_and_cache_file_is_the_file_ckvd_wrote(
    engine: adapter.CkvdEngine, binance: FakeBinance, market: str
) -> None:
    binance.publish(market, DAY)
    symbol = SYMBOL[market]
    table = engine.fetch(symbol, market, "1h", utc(DAY), utc(DAY + dt.timedelta(days=1)))

    assert table.schema == FETCH_SCHEMA
    assert table.drop_columns(["source"]).equals(day_table(DAY))
    assert set(table["source"].to_pylist()) == {"vision"}
    path = engine.cache_file(symbol, market, "1h", DAY)
    assert sorted(engine.cache_dir.rglob("*.arrow")) == [path]
    assert pl.read_ipc(path)["open"].to_list() == day_table(DAY)["open"].to_pylist()
    key = "/" + vision_key(market, symbol, "1h", DAY)
    # days are downloaded in parallel threads: only the order within one day is fixed
    assert [call for call in binance.calls if DAY.isoformat() in call] == [key, key + ".CHECKSUM"]


def test_write_cache_writes_what_ckvd_writes_after_a_vision_download(tmp_path: Path, binance: FakeBinance) -> None:
    with adapter.create(tmp_path / "vision") as fetched, adapter.create(tmp_path / "written") as written:
        binance.publish("spot", DAY)
        fetched.fetch("BTCUSDT", "spot", "1h", utc(DAY), utc(DAY + dt.timedelta(days=1)))
        written.write_cache("BTCUSDT", "spot", "1h", DAY, day_table(DAY))
        by_ckvd = pl.read_ipc(fetched.cache_file("BTCUSDT", "spot", "1h", DAY))
        by_adapter = pl.read_ipc(written.cache_file("BTCUSDT", "spot", "1h", DAY))

    assert by_adapter.schema == by_ckvd.schema
    filled = ["quote_asset_volume", "count", "taker_buy_volume", "taker_buy_quote_volume"]
    assert by_adapter.drop(filled).equals(by_ckvd.drop(filled))  # incl. close_time = open_time + 1h - 1ms
    assert by_adapter["quote_asset_volume"].to_list() == (by_adapter["volume"] * by_adapter["close"]).to_list()
    assert set(by_adapter["count"].to_list()) == {0}


def test_write_cache_keeps_rows_of_other_days_and_empty_tables(engine: adapter.CkvdEngine) -> None:
    good = day_table(DAY)
    odd = pa.concat_tables([good.slice(0, 3), good.slice(1, 1), day_table(DAY + dt.timedelta(days=1)).slice(0, 1)])
    engine.write_cache("BTCUSDT", "spot", "1h", DAY, odd)
    path = engine.cache_file("BTCUSDT", "spot", "1h", DAY)
    assert sorted(engine.cache_dir.rglob("*.arrow")) == [path]
    stored = pl.read_ipc(path)
    assert stored["open_time"].dt.epoch("ms").to_list() == odd["open_time"].cast(pa.int64()).to_pylist()

    engine.write_cache("BTCUSDT", "spot", "1h", DAY, CACHE_SCHEMA.empty_table())
    assert pl.read_ipc(path).height == 0


def test_write_cache_then_fetch_reads_only_the_cache(engine: adapter.CkvdEngine, binance: FakeBinance) -> None:
    engine.write_cache("BTCUSDT", "spot", "1h", DAY, day_table(DAY))
    table = engine.fetch("BTCUSDT", "spot", "1h", utc(DAY), utc(DAY + dt.timedelta(days=1)))
    assert binance.calls == []
    assert table.schema == FETCH_SCHEMA
    assert table["open_time"].cast(pa.int64()).to_pylist() == grid_ms(DAY)
    assert set(table["source"].to_pylist()) <= {"cache", None}  # None: a NaN row ckvd padded in


@pytest.mark.xfail(
    reason="ckvd 4.6.1 returns cache hits as NaN rows (timestamp-precision bug, .scratch/ckvd_notes.md §5)",
    strict=False,
)
def test_write_cache_then_fetch_returns_the_written_rows_tagged_cache(
    engine: adapter.CkvdEngine, binance: FakeBinance
) -> None:
    engine.write_cache("BTCUSDT", "spot", "1h", DAY, day_table(DAY))
    table = engine.fetch("BTCUSDT", "spot", "1h", utc(DAY), utc(DAY + dt.timedelta(days=1)))
    assert binance.calls == []
    assert table.drop_columns(["source"]).equals(day_table(DAY))
    assert set(table["source"].to_pylist()) == {"cache"}


def test_real_cache_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import platformdirs

    monkeypatch.setenv("CKVD_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert adapter.real_cache_root() == tmp_path / "elsewhere" / "data"
    monkeypatch.delenv("CKVD_CACHE_DIR")
    expected = Path(platformdirs.user_cache_path("crypto-kline-vision-data", "eon-labs")) / "data"
    assert adapter.real_cache_root() == expected
    assert not (tmp_path / "elsewhere").exists()


# --- logging and lifecycle --------------------------------------------------------------------------------


def test_log_sink_receives_ckvd_records_across_engine_constructions(
    engine: adapter.CkvdEngine, binance: FakeBinance
) -> None:
    records: list[dict[str, Any]] = []
    engine.set_log_sink(records.append)
    binance.publish("spot", DAY)
    binance.publish("futures_usdt", DAY)

    engine.fetch("BTCUSDT", "spot", "1h", utc(DAY), utc(DAY + dt.timedelta(days=1)))
    assert any("Checksum verification passed" in r["message"] for r in records)
    assert all(set(r) == {"level", "message", "module", "time"} for r in records)
    assert all(r["module"].startswith("ckvd.") and r["time"].tzinfo == dt.UTC for r in records)

    seen = len(records)  # the futures manager is built now, and its constructor drops every loguru sink
    engine.fetch("BTCUSDT", "futures_usdt", "1h", utc(DAY), utc(DAY + dt.timedelta(days=1)))
    assert any("futures/um" in r["message"] for r in records[seen:])

    engine.set_log_sink(None)
    seen = len(records)
    engine.fetch("BTCUSDT", "spot", "1h", utc(DAY), utc(DAY + dt.timedelta(days=1)))
    assert len(records) == seen


def test_log_sink_level_must_be_a_loguru_level(tmp_path: Path) -> None:
    engine = adapter.CkvdEngine(tmp_path)
    with pytest.raises(ValueError, match="unknown log level 'loud'; loguru knows TRACE, DEBUG, INFO"):
        engine.set_log_sink(print, level="loud")
    engine.set_log_sink(print, level="warning")  # any case
    engine.close()


def test_loguru_library_directories_are_worked_out_once_and_stay_right(monkeypatch: pytest.MonkeyPatch) -> None:
    from loguru._better_exceptions import ExceptionFormatter

    real = ExceptionFormatter.__dict__["_get_lib_dirs"]
    want = ExceptionFormatter._get_lib_dirs()
    with adapter._lib_dirs_once():
        assert ExceptionFormatter._get_lib_dirs() == want
        assert ExceptionFormatter._get_lib_dirs() == want  # the remembered answer
        monkeypatch.setattr(sys, "path", [p for p in sys.path if "site-packages" not in p])
        narrower = ExceptionFormatter._get_lib_dirs()
        assert narrower == real.__func__() and narrower != want  # another sys.path, another answer
    assert ExceptionFormatter.__dict__["_get_lib_dirs"] is real


def test_close_closes_ckvd_and_is_idempotent(tmp_path: Path) -> None:
    eng = adapter.create(tmp_path)
    manager = eng.manager("spot")
    eng.close()
    assert manager.vision_client is None and manager.rest_client is None
    eng.close()
