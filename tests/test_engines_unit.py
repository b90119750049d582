"""Focused unit tests of the two bundled engines: the reference engine and the alternative test engine.

A tiny stand-in for Binance is built here: respx serves Vision over HTTPS and the REST klines endpoints,
moto serves the same Vision objects through the S3 API, time-machine freezes *now* and ``time.sleep`` is
patched (so retries and rate-limit waits cost no real time). Every test runs against both engines unless
it pins down a choice only one of them makes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import random
import zipfile
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import boto3
import httpx
import pyarrow as pa
import pytest
import respx
import time_machine
from moto import mock_aws

from pytest_fcp.core.markets import (
    MARKETS,
    day_bounds_ms,
    interval_ms,
    market_spec,
    to_ms,
    vision_file_name,
    vision_key,
)
from pytest_fcp.engines import CACHE_SCHEMA, FETCH_SCHEMA, Engine, error_kind
from pytest_fcp.engines import reference as ref
from tests.engines import alt_engine as alt

NOW = dt.datetime(2025, 3, 10, 12, 0, tzinfo=dt.UTC)
NOW_MS = to_ms(NOW)
OLD = dt.date(2025, 3, 1)  # ended long ago: on Vision, cacheable; spot files in microseconds
OLD_MS_FILE = dt.date(2024, 6, 1)  # spot files still in milliseconds
RECENT = dt.date(2025, 3, 9)  # ended less than 48 h before NOW
LISTED = dt.date(2020, 1, 1)  # the simulated market has no bars before this day
BUCKET = "data.binance.vision"
HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore"
)
SYMBOLS = {"BTCUSDT", "ETHUSDT", "BTCUSD_PERP"}


def utc(day: dt.date, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC)


def truth(interval: str, start_ms: int, end_ms: int) -> list[list[Any]]:
    """The market's bars with ``start_ms <= open_time < end_ms`` as Binance REST rows (strings for prices)."""
    step = interval_ms(interval)
    first = -(-max(start_ms, day_bounds_ms(LISTED)[0]) // step) * step
    rows = []
    for t in range(first, end_ms, step):
        k = t // step
        o = 100 + (k % 400) * 0.25
        c = o + (0.5 if k % 2 else -0.25)
        hi, lo, vol = max(o, c) + 1, min(o, c) - 1, 1 + k % 7
        rows.append([t, f"{o:.2f}", f"{hi:.2f}", f"{lo:.2f}", f"{c:.2f}", f"{vol:.3f}", t + step - 1,
                     "123.4", 5, "0.5", "61.7", "0"])  # fmt: skip
    return rows


def day_csv(
    market: str, symbol: str, interval: str, day: dt.date, *, unit: int | None = None, close_offset: int = -1
) -> bytes:
    """The day's Vision CSV: header for futures, microseconds for spot from 2025 on (``unit`` overrides)."""
    spec = market_spec(market)
    if unit is None:
        unit = 1000 if spec.micros_from is not None and day >= spec.micros_from else 1
    lines = [HEADER] if spec.csv_header else []
    for row in truth(interval, *day_bounds_ms(day)):
        fields = [row[0] * unit, *row[1:6], (row[6] + 1) * unit + close_offset, *row[7:]]
        lines.append(",".join(map(str, fields)))
    return ("\n".join(lines) + "\n").encode()


def make_zip(member: str, data: bytes) -> bytes:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, data)
    return sink.getvalue()


def checksum_of(body: bytes, name: str) -> bytes:
    return f"{hashlib.sha256(body).hexdigest()}  {name}\n".encode()


class Binance:
    """Simulated Vision (HTTPS via respx and S3 via moto, same objects) and REST klines (respx)."""

    def __init__(self, router: respx.MockRouter, s3: Any) -> None:
        self.objects: dict[str, bytes] = {}
        self.vision_gets: list[str] = []
        self.rest_calls: list[dict[str, str]] = []
        #: answers served before the simulated truth: a response, or an exception class to raise
        self.rest_script: list[httpx.Response | type[httpx.HTTPError]] = []
        self.rest_noise = False  # add out-of-range and duplicated rows to every page
        self.s3 = s3
        router.route(host="data.binance.vision").mock(side_effect=self._vision)
        for spec in MARKETS.values():
            router.get(host=spec.rest_host, path=spec.rest_path).mock(side_effect=self._rest)

    def put(self, key: str, body: bytes) -> None:
        self.objects[key] = body
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body, ACL="public-read")

    def unpublish_all(self) -> None:
        for key in list(self.objects):
            self.s3.delete_object(Bucket=BUCKET, Key=key)
        self.objects.clear()

    def publish(
        self,
        market: str,
        symbol: str,
        interval: str,
        day: dt.date,
        *,
        csv: bytes | None = None,
        member: str | None = None,
        body: bytes | None = None,
        checksum: bytes | bool | None = True,
    ) -> None:
        """Publish the day's zip (+ CHECKSUM of the published body unless ``checksum`` says otherwise)."""
        key = vision_key(market, symbol, interval, day)
        name = key.rsplit("/", 1)[-1]
        if body is None:
            member = member or f"{symbol}-{interval}-{day.isoformat()}.csv"
            body = make_zip(member, csv if csv is not None else day_csv(market, symbol, interval, day))
        self.put(key, body)
        if checksum is True:
            self.put(key + ".CHECKSUM", checksum_of(body, name))
        elif isinstance(checksum, bytes):
            self.put(key + ".CHECKSUM", checksum)

    def _vision(self, request: httpx.Request) -> httpx.Response:
        key = request.url.path.lstrip("/")
        self.vision_gets.append(key)
        if key in self.objects:
            return httpx.Response(200, content=self.objects[key])
        return httpx.Response(404, text=f"<Error><Code>NoSuchKey</Code><Key>{key}</Key></Error>")

    def _rest(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        self.rest_calls.append(params)
        if self.rest_script:
            answer = self.rest_script.pop(0)
            if isinstance(answer, httpx.Response):
                return answer
            raise answer("simulated", request=request)
        if params["symbol"] not in SYMBOLS:
            return httpx.Response(400, json={"code": -1121, "msg": "Invalid symbol."})
        start, end, limit = int(params["startTime"]), int(params["endTime"]), int(params.get("limit", 500))
        rows = truth(params["interval"], start, min(end, NOW_MS) + 1)[:limit]
        if self.rest_noise and rows:
            step = interval_ms(params["interval"])
            before = truth(params["interval"], start - 2 * step, start)
            after = truth(params["interval"], end + 1, end + 1 + 2 * step)
            rows = before + [r for row in rows for r in (row, row)] + after
        return httpx.Response(200, json=rows)


def rate_limited(status: int = 429, retry_after: int = 30) -> httpx.Response:
    body = {"code": -1003, "msg": "Too many requests."}
    return httpx.Response(status, json=body, headers={"Retry-After": str(retry_after)})


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    """moto's S3 with the Vision bucket; one per module, emptied after each test."""
    with mock_aws():
        client = boto3.client("s3", region_name="ap-northeast-1")
        location = {"LocationConstraint": "ap-northeast-1"}
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration=location)
        yield client


@pytest.fixture
def binance(s3: Any) -> Iterator[Binance]:
    with time_machine.travel(NOW, tick=False), respx.mock(assert_all_called=False) as router:
        world = Binance(router, s3)
        yield world
        world.unpublish_all()


@pytest.fixture
def sleeps() -> Iterator[mock.MagicMock]:
    with mock.patch("time.sleep") as sleep:
        yield sleep


ENGINES: dict[str, Callable[[Any], Any]] = {"reference": ref.create, "alt": alt.create}


@pytest.fixture(params=list(ENGINES))
def engine(request: pytest.FixtureRequest, tmp_path: Any, binance: Binance, sleeps: mock.MagicMock) -> Iterator[Any]:
    made = ENGINES[request.param](tmp_path / "cache")
    yield made
    made.close()


def engine_name(engine: Any) -> str:
    return "reference" if isinstance(engine, ref.ReferenceEngine) else "alt"


def fetch(engine: Any, start: dt.datetime, end: dt.datetime, *, market: str = "spot", symbol: str = "BTCUSDT",
          interval: str = "1h") -> pa.Table:  # fmt: skip
    table = engine.fetch(symbol, market, interval, start, end)
    assert table.schema.equals(FETCH_SCHEMA)
    times = table["open_time"].cast(pa.int64()).to_pylist()
    assert times == sorted(set(times)), "rows must be sorted by open_time without duplicates"
    assert all(to_ms(start) <= t < to_ms(end) for t in times)
    return table


def assert_truth(table: pa.Table, interval: str, start: dt.datetime, end: dt.datetime) -> None:
    """The table holds exactly the simulated market's bars of ``[start, end)`` (up to now)."""
    rows = truth(interval, to_ms(start), min(to_ms(end), NOW_MS + 1))
    assert table["open_time"].cast(pa.int64()).to_pylist() == [r[0] for r in rows]
    for index, name in enumerate(["open", "high", "low", "close", "volume"], start=1):
        assert table[name].to_pylist() == [float(r[index]) for r in rows], name


def sources(table: pa.Table) -> set[str]:
    return set(table["source"].to_pylist())


def truth_table(interval: str, day: dt.date) -> pa.Table:
    rows = truth(interval, *day_bounds_ms(day))
    columns = [pa.array([r[0] for r in rows], pa.int64()).cast(CACHE_SCHEMA.field("open_time").type)]
    columns += [pa.array([float(r[i]) for r in rows], pa.float64()) for i in range(1, 6)]
    return pa.table(columns, schema=CACHE_SCHEMA)


# --- both engines ------------------------------------------------------------------------------------


def test_engines_satisfy_the_protocol(engine: Any) -> None:
    assert isinstance(engine, Engine)


@pytest.mark.parametrize(
    ("market", "symbol", "day"),
    [
        ("spot", "BTCUSDT", OLD),  # microsecond timestamps
        ("spot", "BTCUSDT", OLD_MS_FILE),  # millisecond timestamps
        ("futures_usdt", "BTCUSDT", OLD),  # header row
        ("futures_coin", "BTCUSD_PERP", OLD),
    ],
)
def test_vision_day_is_served_verified_and_cached(
    engine: Any, binance: Binance, market: str, symbol: str, day: dt.date
) -> None:
    binance.publish(market, symbol, "1h", day)
    start, end = utc(day, 3), utc(day, 20)
    table = fetch(engine, start, end, market=market, symbol=symbol)
    assert sources(table) == {"vision"}
    assert_truth(table, "1h", start, end)
    assert binance.rest_calls == []
    assert engine.cache_file(symbol, market, "1h", day).is_file()
    binance.unpublish_all()
    again = fetch(engine, utc(day), utc(day + dt.timedelta(days=1)), market=market, symbol=symbol)
    assert sources(again) == {"cache"}
    assert_truth(again, "1h", utc(day), utc(day + dt.timedelta(days=1)))


def _corrupt(kind: str, engine: Any, good: pa.Table) -> None:
    path = engine.cache_file("BTCUSDT", "spot", "1h", OLD)
    path.parent.mkdir(parents=True, exist_ok=True)

    def ipc_file(table: pa.Table) -> None:
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)

    if kind == "zero_bytes":
        path.write_bytes(b"")
    elif kind == "random_bytes":
        path.write_bytes(random.Random(7).randbytes(4096))
    elif kind == "arrow_stream":
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, good.schema) as writer:
            writer.write_table(good)
    elif kind == "truncated":
        engine.write_cache("BTCUSDT", "spot", "1h", OLD, good)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "wrong_types":
        ipc_file(pa.table({n: good[n].cast(pa.string()) if n != "open_time" else good[n] for n in good.schema.names}))
    elif kind == "ns_timestamps":
        ipc_file(good.set_column(0, "open_time", good["open_time"].cast(pa.timestamp("ns", tz="UTC"))))
    elif kind == "missing_column":
        ipc_file(good.drop_columns(["close"]))
    elif kind == "partial_day":
        engine.write_cache("BTCUSDT", "spot", "1h", OLD, good.slice(0, 12))
    elif kind == "nan_price":
        closes = good["close"].to_pylist()
        closes[5] = float("nan")
        engine.write_cache("BTCUSDT", "spot", "1h", OLD, good.set_column(4, "close", pa.array(closes)))
    elif kind == "off_grid":
        shifted = pa.array([t + 60_000 for t in good["open_time"].cast(pa.int64()).to_pylist()], pa.int64())
        engine.write_cache("BTCUSDT", "spot", "1h", OLD, good.set_column(0, "open_time", shifted.cast(good[0].type)))
    elif kind == "unreadable":
        path.mkdir()  # a directory where the file should be: opening it fails even for root
    else:
        raise AssertionError(kind)


CACHE_FAULTS = [
    "zero_bytes", "random_bytes", "arrow_stream", "truncated", "wrong_types", "ns_timestamps",
    "missing_column", "partial_day", "nan_price", "off_grid", "unreadable",
]  # fmt: skip


@pytest.mark.parametrize("kind", CACHE_FAULTS)
def test_corrupt_cache_is_a_miss_and_gets_replaced(engine: Any, binance: Binance, kind: str) -> None:
    _corrupt(kind, engine, truth_table("1h", OLD))
    binance.publish("spot", "BTCUSDT", "1h", OLD)
    start, end = utc(OLD), utc(OLD + dt.timedelta(days=1))
    table = fetch(engine, start, end)
    assert sources(table) == {"vision"}
    assert_truth(table, "1h", start, end)
    if kind != "unreadable":  # the directory in the way cannot be replaced by a file
        binance.unpublish_all()
        again = fetch(engine, start, end)
        assert sources(again) == {"cache"}
        assert_truth(again, "1h", start, end)


def test_reference_read_cache_never_raises(tmp_path: Any) -> None:
    engine = ref.create(tmp_path)
    good = truth_table("1h", OLD)
    for kind in CACHE_FAULTS:
        path = engine.cache_file("BTCUSDT", "spot", "1h", OLD)
        if path.is_file():
            path.unlink()
        _corrupt(kind, engine, good)
        assert engine.read_cache("BTCUSDT", "spot", "1h", OLD) is None, kind
    engine.close()


def _bad_payloads(market: str, symbol: str, interval: str, day: dt.date) -> dict[str, dict[str, Any]]:
    good = day_csv(market, symbol, interval, day)
    member = f"{symbol}-{interval}-{day.isoformat()}.csv"
    lines = good.decode().splitlines(keepends=True)
    altered = good.replace(b",1", b",2")
    truncated = make_zip(member, good)[:300]
    other = day_csv(market, "ETHUSDT", interval, day)
    published = checksum_of(make_zip(member, good), vision_file_name(symbol, interval, day))
    return {
        "checksum_mismatch": {"body": make_zip(member, altered), "checksum": published},
        "missing_checksum": {"checksum": False},
        "not_a_zip": {"body": b"<html><body>Service Unavailable</body></html>"},
        "truncated_zip": {"body": truncated},
        "wrong_symbol": {"csv": other, "member": f"ETHUSDT-{interval}-{day.isoformat()}.csv"},
        "wrong_interval": {"member": f"{symbol}-1m-{day.isoformat()}.csv"},
        "two_members": {"body": _two_member_zip(member, good)},
        "missing_row": {"csv": "".join(lines[:5] + lines[6:]).encode()},
        "bad_close_time": {"csv": day_csv(market, symbol, interval, day, close_offset=0)},
        "empty_csv": {"csv": b""},
    }


def _two_member_zip(member: str, data: bytes) -> bytes:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w") as archive:
        archive.writestr(member, data)
        archive.writestr("extra.csv", data)
    return sink.getvalue()


@pytest.mark.parametrize("kind", list(_bad_payloads("spot", "BTCUSDT", "1h", OLD)))
def test_bad_vision_payload_falls_back_to_rest(engine: Any, binance: Binance, kind: str) -> None:
    binance.publish("spot", "BTCUSDT", "1h", OLD, **_bad_payloads("spot", "BTCUSDT", "1h", OLD)[kind])
    start, end = utc(OLD), utc(OLD + dt.timedelta(days=1))
    table = fetch(engine, start, end)
    assert sources(table) == {"rest"}
    assert_truth(table, "1h", start, end)
    # whatever was cached holds the truth, never the bad payload
    binance.unpublish_all()
    binance.rest_script = [httpx.Response(503)] * 10
    try:
        again = fetch(engine, start, end)
    except Exception as exc:
        assert error_kind(exc) == "DataSourceError"
    else:
        assert_truth(again, "1h", start, end)


def test_recent_days_skip_vision_and_are_not_cached(engine: Any, binance: Binance) -> None:
    binance.publish("spot", "BTCUSDT", "1h", RECENT)  # even if it were there, it must not be asked for
    start, end = utc(RECENT), utc(RECENT + dt.timedelta(days=1))
    table = fetch(engine, start, end)
    assert sources(table) == {"rest"}
    assert_truth(table, "1h", start, end)
    assert binance.vision_gets == []
    assert not engine.cache_file("BTCUSDT", "spot", "1h", RECENT).exists()


def test_result_is_exactly_start_to_end_across_sources(engine: Any, binance: Binance) -> None:
    day1, day2, day3 = OLD, OLD + dt.timedelta(days=1), OLD + dt.timedelta(days=2)
    engine.write_cache("BTCUSDT", "spot", "1h", day1, truth_table("1h", day1))
    binance.publish("spot", "BTCUSDT", "1h", day2)  # day3 is not published: REST
    start = utc(day1, 5, 30)
    end = utc(day3, 7, 0) + dt.timedelta(milliseconds=1)
    table = fetch(engine, start, end)
    assert_truth(table, "1h", start, end)
    by_source = {s: 0 for s in ("cache", "vision", "rest")}
    for s in table["source"].to_pylist():
        by_source[s] += 1
    assert by_source == {"cache": 18, "vision": 24, "rest": 8}


def test_rest_rows_outside_the_range_or_duplicated_do_not_leak(engine: Any, binance: Binance) -> None:
    binance.rest_noise = True
    start, end = utc(RECENT, 2), utc(RECENT, 9)
    table = fetch(engine, start, end)
    assert_truth(table, "1h", start, end)


def test_rest_is_paged_with_max_limit(engine: Any, binance: Binance) -> None:
    start, end = NOW - dt.timedelta(hours=36), NOW - dt.timedelta(hours=1)
    table = fetch(engine, start, end, interval="1m")
    assert table.num_rows == 35 * 60
    assert_truth(table, "1m", start, end)
    assert len(binance.rest_calls) >= 3
    assert {call["limit"] for call in binance.rest_calls} == {"1000"}


def test_never_asks_rest_beyond_now(engine: Any, binance: Binance) -> None:
    start, end = NOW - dt.timedelta(hours=5), NOW + dt.timedelta(days=2)
    table = fetch(engine, start, end)
    assert_truth(table, "1h", start, end)
    assert binance.rest_calls
    assert all(int(call["endTime"]) <= NOW_MS for call in binance.rest_calls)


def test_invalid_symbol_is_a_data_source_error(engine: Any, binance: Binance) -> None:
    with pytest.raises(Exception, match="Invalid symbol") as info:
        fetch(engine, utc(RECENT), utc(RECENT, 5), symbol="NOPE")
    assert error_kind(info.value) == "DataSourceError"


def test_garbage_json_fails_rest(engine: Any, binance: Binance) -> None:
    binance.rest_script = [httpx.Response(200, text='[[1704067200000,"42000.1","4')] * 5
    with pytest.raises(Exception) as info:
        fetch(engine, utc(RECENT), utc(RECENT, 5))
    assert error_kind(info.value) == "DataSourceError"


def test_every_source_failing_names_the_day(engine: Any, binance: Binance, sleeps: mock.MagicMock) -> None:
    binance.rest_script = [httpx.Response(503)] * 10
    with pytest.raises(Exception, match="2025-03-01") as info:
        fetch(engine, utc(OLD, 1), utc(OLD, 4))
    assert error_kind(info.value) == "DataSourceError"
    assert "503" in str(info.value)
    assert len(binance.rest_calls) == 3  # both engines make three attempts
    assert sleeps.call_count == 2


@pytest.mark.parametrize("failure", [httpx.ConnectError, httpx.ReadTimeout, httpx.Response(502)])
def test_transient_rest_failures_are_retried(
    engine: Any, binance: Binance, sleeps: mock.MagicMock, failure: Any
) -> None:
    binance.rest_script = [failure, failure]
    start, end = utc(RECENT), utc(RECENT, 6)
    assert_truth(fetch(engine, start, end), "1h", start, end)
    assert sleeps.call_count == 2


def test_unwritable_cache_does_not_fail_the_fetch(tmp_path: Any, binance: Binance, sleeps: Any) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    binance.publish("spot", "BTCUSDT", "1h", OLD)
    for factory in ENGINES.values():
        engine = factory(blocker)
        start, end = utc(OLD), utc(OLD + dt.timedelta(days=1))
        table = fetch(engine, start, end)
        assert sources(table) == {"vision"}
        assert_truth(table, "1h", start, end)
        engine.close()


def test_write_cache_is_what_fetch_reads(engine: Any, binance: Binance) -> None:
    engine.write_cache("ETHUSDT", "futures_usdt", "4h", OLD, truth_table("4h", OLD))
    path = engine.cache_file("ETHUSDT", "futures_usdt", "4h", OLD)
    assert pa.ipc.open_file(pa.OSFile(str(path))).read_all().num_rows == 6  # an Arrow IPC file
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    start, end = utc(OLD), utc(OLD + dt.timedelta(days=1))
    table = fetch(engine, start, end, market="futures_usdt", symbol="ETHUSDT", interval="4h")
    assert sources(table) == {"cache"}
    assert binance.vision_gets == [] and binance.rest_calls == []


def test_empty_range_returns_an_empty_table(engine: Any, binance: Binance) -> None:
    assert fetch(engine, utc(OLD, 5), utc(OLD, 5)).num_rows == 0
    assert binance.rest_calls == []


# --- where the two engines legitimately differ --------------------------------------------------------


def test_rate_limit(engine: Any, binance: Binance, sleeps: mock.MagicMock) -> None:
    binance.rest_script = [rate_limited(429, retry_after=30)]
    start, end = utc(RECENT), utc(RECENT, 6)
    if engine_name(engine) == "reference":  # raises at once, no waiting
        with pytest.raises(ref.RateLimitError, match="Retry-After: 30") as info:
            fetch(engine, start, end)
        assert isinstance(info.value, ref.DataSourceError)
        assert sleeps.call_count == 0
    else:  # waits Retry-After, then succeeds
        assert_truth(fetch(engine, start, end), "1h", start, end)
        assert [c.args[0] >= 30 for c in sleeps.call_args_list] == [True]
    assert error_kind(ref.RateLimitError("x")) == error_kind(alt.RateLimitError("x")) == "RateLimitError"


def test_reference_418_is_a_rate_limit_error(tmp_path: Any, binance: Binance, sleeps: Any) -> None:
    binance.rest_script = [rate_limited(418, retry_after=120)]
    engine = ref.create(tmp_path)
    with pytest.raises(ref.RateLimitError, match=r"418.*Retry-After: 120"):
        engine.fetch("BTCUSDT", "spot", "1h", utc(RECENT), utc(RECENT, 6))
    engine.close()


def test_alt_gives_up_after_three_rate_limit_waits(tmp_path: Any, binance: Binance, sleeps: Any) -> None:
    binance.rest_script = [rate_limited(418, retry_after=120)] * 4
    engine = alt.create(tmp_path)
    with pytest.raises(alt.RateLimitError, match="120") as info:
        engine.fetch("BTCUSDT", "spot", "1h", utc(RECENT), utc(RECENT, 6))
    assert not isinstance(info.value, alt.DataSourceError)
    assert len(binance.rest_calls) == 4
    assert [c.args[0] for c in sleeps.call_args_list] == [120.0] * 3
    engine.close()


def test_empty_rest_answer_for_past_bars(engine: Any, binance: Binance) -> None:
    """Before the listing REST answers ``[]``: the reference calls that a failure, the alt engine no data."""
    day = dt.date(2019, 6, 1)
    if engine_name(engine) == "reference":
        with pytest.raises(ref.DataSourceError, match="empty answer"):
            fetch(engine, utc(day), utc(day, 6))
    else:
        assert fetch(engine, utc(day), utc(day, 6)).num_rows == 0


def test_spot_file_in_the_wrong_time_unit(engine: Any, binance: Binance) -> None:
    """A 2025 spot file in milliseconds: the reference holds the date's unit (-> REST), alt detects it."""
    binance.publish("spot", "BTCUSDT", "1h", OLD, csv=day_csv("spot", "BTCUSDT", "1h", OLD, unit=1))
    start, end = utc(OLD), utc(OLD + dt.timedelta(days=1))
    table = fetch(engine, start, end)
    assert_truth(table, "1h", start, end)
    assert sources(table) == ({"rest"} if engine_name(engine) == "reference" else {"vision"})


def test_rest_requests_merged_or_per_day(engine: Any, binance: Binance) -> None:
    days = [OLD + dt.timedelta(days=i) for i in range(3)]  # none published on Vision
    start, end = utc(days[0]), utc(days[-1] + dt.timedelta(days=1))
    table = fetch(engine, start, end)
    assert sources(table) == {"rest"} and table.num_rows == 72
    assert len(binance.rest_calls) == (1 if engine_name(engine) == "reference" else 3)
    for day in days:  # complete, old REST days are cached by both
        assert engine.cache_file("BTCUSDT", "spot", "1h", day).is_file()


def test_alt_caches_whole_rest_days_even_for_partial_requests(tmp_path: Any, binance: Binance) -> None:
    engine = alt.create(tmp_path)
    table = engine.fetch("BTCUSDT", "spot", "1h", utc(OLD, 3), utc(OLD, 5))
    assert table.num_rows == 2
    assert engine.cache_file("BTCUSDT", "spot", "1h", OLD).is_file()
    reference = ref.create(tmp_path / "ref")
    reference.fetch("BTCUSDT", "spot", "1h", utc(OLD, 3), utc(OLD, 5))
    assert not reference.cache_file("BTCUSDT", "spot", "1h", OLD).exists()
    engine.close()
    reference.close()


def test_cache_layouts(tmp_path: Any) -> None:
    assert ref.create(tmp_path).cache_file("BTCUSDT", "spot", "1h", OLD) == (
        tmp_path / "spot" / "BTCUSDT" / "1h" / "2025-03-01.arrow"
    )
    assert alt.create(tmp_path).cache_file("BTCUSDT", "spot", "1h", OLD) == (
        tmp_path / "BTCUSDT@spot" / "1h" / "20250301.feather"
    )


def test_alt_reads_vision_through_s3_checksum_first(tmp_path: Any, binance: Binance) -> None:
    binance.publish("spot", "BTCUSDT", "1h", OLD)
    engine = alt.create(tmp_path)
    keys: list[str] = []
    real_get = engine.s3.get_object

    def spy(**kwargs: Any) -> Any:
        keys.append(kwargs["Key"])
        return real_get(**kwargs)

    with mock.patch.object(engine.s3, "get_object", side_effect=spy):
        table = engine.fetch("BTCUSDT", "spot", "1h", utc(OLD), utc(OLD, 2))
    key = vision_key("spot", "BTCUSDT", "1h", OLD)
    assert keys == [key + ".CHECKSUM", key]
    assert sources(table) == {"vision"} and binance.vision_gets == []  # no HTTPS Vision request
    engine.close()


def test_alt_retries_transient_s3_errors(tmp_path: Any, binance: Binance, sleeps: mock.MagicMock) -> None:
    from botocore.exceptions import ClientError

    binance.publish("spot", "BTCUSDT", "1h", OLD)
    engine = alt.create(tmp_path)
    real_get = engine.s3.get_object
    slow_down = ClientError(
        {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."},
         "ResponseMetadata": {"HTTPStatusCode": 503}},
        "GetObject",
    )  # fmt: skip
    answers: list[Any] = [slow_down, slow_down]

    def flaky(**kwargs: Any) -> Any:
        if answers:
            raise answers.pop(0)
        return real_get(**kwargs)

    with mock.patch.object(engine.s3, "get_object", side_effect=flaky):
        table = engine.fetch("BTCUSDT", "spot", "1h", utc(OLD), utc(OLD, 2))
    assert sources(table) == {"vision"}
    assert [c.args[0] for c in sleeps.call_args_list] == [1.0, 2.0]
    engine.close()


def test_sub_millisecond_bounds_are_exact(engine: Any, binance: Binance) -> None:
    """``start <= open_time < end`` holds for bounds between two milliseconds, also across midnight."""
    tick = dt.timedelta(microseconds=1)
    table = engine.fetch(
        "BTCUSDT", "spot", "1h", utc(RECENT, 21) + tick, utc(RECENT, 23, 59) + dt.timedelta(minutes=1) + tick
    )
    hours = [utc(RECENT, 22), utc(RECENT, 23), utc(RECENT + dt.timedelta(days=1))]
    assert table["open_time"].to_pylist() == hours


def test_reference_cache_file_follows_its_declared_layout(tmp_path: Any) -> None:
    engine = ref.ReferenceEngine(tmp_path)
    try:
        path = engine.cache_file("BTCUSDT", "futures_usdt", "4h", OLD)
    finally:
        engine.close()
    assert path == tmp_path / "futures_usdt" / "BTCUSDT" / "4h" / f"{OLD.isoformat()}.arrow"
    assert ref.CACHE_LAYOUT.series_of(path.parent.as_posix()) == ("futures_usdt", "BTCUSDT", "4h")
    assert ref.CACHE_LAYOUT.day_of_file(path.name, "BTCUSDT", "4h") == OLD
