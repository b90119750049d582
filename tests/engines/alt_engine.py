"""A second, independently built FCP engine that is just as correct as the reference one.

The test catalog runs against it to prove that it asserts only what the FCP contract requires, not the
reference engine's particular choices. Where the contract leaves room, this engine takes the other road:

* Vision is read through the **S3 API** (boto3, unsigned, bucket ``data.binance.vision``), the
  ``.CHECKSUM`` object first, then the zip; ``NoSuchKey`` means "not published".
* Transient failures (S3 5xx / connection problems, REST 5xx / connect errors / timeouts / malformed
  JSON) are **retried**: up to 3 attempts with exponential backoff (``time.sleep``).
* REST 429 / 418 are **waited out**: sleep ``Retry-After`` seconds and retry, up to 3 times, then
  :class:`RateLimitError` - which here does *not* subclass :class:`DataSourceError`.
* REST is asked **day by day** for the whole day (not merged ranges), so old complete days that came from
  REST are cached even when the request covered only part of them. An empty REST page means "no data".
* The CSV is parsed with :mod:`csv`; the timestamp unit is detected from the magnitude of the values.
* Cache layout ``{cache_dir}/{SYMBOL}@{market}/{interval}/{YYYYMMDD}.feather``: Feather v2 (Arrow IPC
  file), zstd-compressed, ``open_time`` stored as int64 milliseconds.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import email.utils
import hashlib
import io
import os
import pathlib
import time
import uuid
import zipfile
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
import botocore.exceptions
import httpx
import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
from botocore import UNSIGNED
from botocore.config import Config

from pytest_fcp.core.markets import (
    bars_per_day,
    day_bounds_ms,
    interval_ms,
    market_spec,
    vision_file_name,
    vision_key,
)
from pytest_fcp.engines import CACHE_SCHEMA, FETCH_SCHEMA

__all__ = ["AltEngine", "DataSourceError", "RateLimitError", "create"]

BUCKET = "data.binance.vision"
DAY = 86_400_000
ATTEMPTS = 3
RATE_LIMIT_RETRIES = 3
MIN_AGE = dt.timedelta(hours=48)
STORED = pa.schema([("open_time", pa.int64())] + [(n, pa.float64()) for n in CACHE_SCHEMA.names[1:]])

T = TypeVar("T")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class DataSourceError(Exception):
    """Every source failed for some needed day."""


class RateLimitError(Exception):
    """REST kept answering 429 / 418 after waiting ``Retry-After`` several times."""


class _Transient(Exception):
    """A failure worth another attempt."""


class _Failed(Exception):
    """A failure not worth another attempt (the source cannot serve this)."""


def create(cache_dir: pathlib.Path) -> AltEngine:
    return AltEngine(cache_dir)


Bars = dict[str, np.ndarray]  # column name -> values; open_time in int64 ms


def _seconds(retry_after: str) -> float:
    """``Retry-After`` in seconds: delay-seconds or an HTTP date (counted from now); 1 s if unreadable."""
    if retry_after.replace(".", "", 1).isdigit():
        return float(retry_after)
    try:
        when = email.utils.parsedate_to_datetime(retry_after)
    except (TypeError, ValueError, IndexError):
        return 1.0
    return max((when - dt.datetime.now(dt.UTC)).total_seconds(), 0.0)


def _retrying(call: Callable[[], T], what: str) -> T:
    """Run ``call`` up to ATTEMPTS times while it raises ``_Transient`` (backoff 1 s, 2 s ...)."""
    for attempt in range(ATTEMPTS):
        try:
            return call()
        except _Transient as exc:
            if attempt == ATTEMPTS - 1:
                raise _Failed(f"{what}: {exc} ({ATTEMPTS} attempts)") from exc
            time.sleep(2.0**attempt)
    raise AssertionError("unreachable")


def _ms_up(moment: dt.datetime) -> int:
    """Epoch milliseconds of an aware datetime, a sub-millisecond rest rounding up (exact)."""
    if moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}")
    whole, rest = divmod(moment - EPOCH, dt.timedelta(milliseconds=1))
    return whole + (rest > dt.timedelta(0))


def _complete(bars: Bars, day: dt.date, interval: str) -> bool:
    start, end = day_bounds_ms(day)
    expected = np.arange(start, end, interval_ms(interval), dtype=np.int64)
    prices = np.stack([bars[n] for n in STORED.names[1:]]) if len(bars["open_time"]) else np.zeros(0)
    return np.array_equal(bars["open_time"], expected) and not np.isnan(prices).any()


class AltEngine:
    def __init__(self, cache_dir: pathlib.Path) -> None:
        self.root = pathlib.Path(cache_dir)
        self.http = httpx.Client(timeout=httpx.Timeout(25.0))
        self._s3: Any = None
        self._now = dt.datetime.now(dt.UTC)  # reset by every fetch

    @property
    def s3(self) -> Any:
        """The S3 client, made on first use (so that a mock started after the engine still applies)."""
        if self._s3 is None:
            config = Config(signature_version=UNSIGNED, retries={"total_max_attempts": 1})
            self._s3 = boto3.client("s3", region_name="ap-northeast-1", config=config)
        return self._s3

    def close(self) -> None:
        self.http.close()
        if self._s3 is not None:
            self._s3.close()

    # ---- cache -------------------------------------------------------------------------------------

    def cache_file(self, symbol: str, market: str, interval: str, day: dt.date) -> pathlib.Path:
        return self.root / f"{symbol.upper()}@{market}" / interval / f"{day:%Y%m%d}.feather"

    def write_cache(self, symbol: str, market: str, interval: str, day: dt.date, table: pa.Table) -> None:
        stored = pa.table(
            [table["open_time"].cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64())]
            + [table[n].cast(pa.float64()) for n in STORED.names[1:]],
            schema=STORED,
        )
        path = self.cache_file(symbol, market, interval, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
        try:
            feather.write_feather(stored, tmp, compression="zstd", version=2)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def _load(self, symbol: str, market: str, interval: str, day: dt.date) -> Bars | None:
        try:
            table = feather.read_table(self.cache_file(symbol, market, interval, day), memory_map=False)
            table.validate(full=True)
            if table.schema.names != STORED.names or table.schema.types != STORED.types:
                return None
            if any(column.null_count for column in table.columns):
                return None
            bars = {name: table[name].to_numpy() for name in STORED.names}
        except Exception:
            return None
        return bars if _complete(bars, day, interval) else None

    def _save(self, symbol: str, market: str, interval: str, day: dt.date, bars: Bars) -> None:
        if dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC) > self._now - MIN_AGE:
            return
        if not _complete(bars, day, interval):
            return
        with contextlib.suppress(OSError, pa.ArrowException):  # an unwritable cache never fails a fetch
            self.write_cache(symbol, market, interval, day, _to_table(bars))

    # ---- fetch -------------------------------------------------------------------------------------

    def fetch(self, symbol: str, market: str, interval: str, start: dt.datetime, end: dt.datetime) -> pa.Table:
        spec = market_spec(market)
        if interval not in spec.intervals:
            raise ValueError(f"{market} has no {interval} klines")
        self._now = dt.datetime.now(dt.UTC)
        lo, hi = _ms_up(start), _ms_up(end)
        pieces: list[pa.Table] = []
        days = [] if lo >= hi else [EPOCH.date() + dt.timedelta(days=d) for d in range(lo // DAY, (hi - 1) // DAY + 1)]
        for day in days:
            bars, source = self._day(symbol, market, interval, day)
            keep = (bars["open_time"] >= lo) & (bars["open_time"] < hi)
            table = _to_table({name: values[keep] for name, values in bars.items()})
            pieces.append(table.append_column("source", pa.array([source] * table.num_rows, pa.string())))
        if not pieces:
            return FETCH_SCHEMA.empty_table()
        return pa.concat_tables(pieces).sort_by("open_time")

    def _day(self, symbol: str, market: str, interval: str, day: dt.date) -> tuple[Bars, str]:
        bars = self._load(symbol, market, interval, day)
        if bars is not None:
            return bars, "cache"
        day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
        vision_said = "too recent for Vision"
        if day_end <= self._now - MIN_AGE:
            try:
                bars = self._vision(symbol, market, interval, day)
            except _Failed as exc:
                vision_said = str(exc)
            else:
                self._save(symbol, market, interval, day, bars)
                return bars, "vision"
        try:
            bars = self._rest_day(symbol, market, interval, day)
        except _Failed as exc:
            raise DataSourceError(
                f"{symbol} {market} {interval} {day}: cache has no valid file; Vision: {vision_said}; REST: {exc}"
            ) from exc
        self._save(symbol, market, interval, day, bars)
        return bars, "rest"

    # ---- Vision over S3 ----------------------------------------------------------------------------

    def _get_object(self, key: str) -> bytes | None:
        """The object's bytes, or None if it does not exist."""
        try:
            return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in ("NoSuchKey", "404") or status == 404:
                return None
            if status >= 500 or code in ("SlowDown", "InternalError", "ServiceUnavailable"):
                raise _Transient(f"S3 {code or status}") from exc
            raise _Failed(f"S3 {code or status}") from exc
        except (botocore.exceptions.BotoCoreError, OSError) as exc:
            raise _Transient(type(exc).__name__) from exc

    def _vision(self, symbol: str, market: str, interval: str, day: dt.date) -> Bars:
        key = vision_key(market, symbol, interval, day)
        checksum = _retrying(lambda: self._get_object(key + ".CHECKSUM"), "CHECKSUM")
        if checksum is None:
            raise _Failed("no .CHECKSUM published")
        body = _retrying(lambda: self._get_object(key), "zip")
        if body is None:
            raise _Failed("no zip published")
        fields = checksum.decode("utf-8", "replace").strip().split("  ")
        if fields[0].strip().lower() != hashlib.sha256(body).hexdigest():
            raise _Failed("sha256 differs from .CHECKSUM")
        if len(fields) > 1 and fields[1].strip() != vision_file_name(symbol, interval, day):
            raise _Failed(".CHECKSUM names another file")
        try:
            return self._read_zip(body, symbol, interval, day)
        except Exception as exc:
            raise _Failed(f"bad zip: {exc}") from exc

    @staticmethod
    def _read_zip(body: bytes, symbol: str, interval: str, day: dt.date) -> Bars:
        wanted = f"{symbol}-{interval}-{day:%Y-%m-%d}.csv"
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            names = archive.namelist()
            if names != [wanted]:
                raise ValueError(f"members {names}, wanted {wanted}")
            text = archive.read(wanted).decode("ascii")
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
        if rows and not rows[0][0].strip().isdigit():
            rows = rows[1:]  # header line
        if len(rows) != bars_per_day(interval) or any(len(row) != 12 for row in rows):
            raise ValueError(f"{len(rows)} rows / wrong column count")
        opens = np.array([int(row[0]) for row in rows], dtype=np.int64)
        closes = np.array([int(row[6]) for row in rows], dtype=np.int64)
        scale = 1000 if opens[0] >= 10**14 else 1  # microsecond files (spot, 2025 on)
        if np.any(opens % scale) or np.any((closes + 1) % scale):
            raise ValueError("timestamps not on a millisecond boundary")
        opens, closes = opens // scale, (closes + 1) // scale - 1
        if np.any(closes != opens + interval_ms(interval) - 1):
            raise ValueError("close_time != open_time + interval - 1")
        bars: Bars = {"open_time": opens}
        for index, name in enumerate(STORED.names[1:], start=1):
            bars[name] = np.array([float(row[index]) for row in rows])
        if not _complete(bars, day, interval):
            raise ValueError("not the day's grid")
        return bars

    # ---- REST --------------------------------------------------------------------------------------

    def _rest_day(self, symbol: str, market: str, interval: str, day: dt.date) -> Bars:
        spec = market_spec(market)
        start, end = day_bounds_ms(day)
        last = min(end - 1, (self._now - EPOCH) // dt.timedelta(milliseconds=1))  # never beyond now
        found: dict[int, list[Any]] = {}
        cursor = start
        while cursor <= last:
            query = {"symbol": symbol, "interval": interval, "startTime": cursor, "endTime": last}
            page = _retrying(lambda q=query: self._rest_page(spec.rest_url, q | {"limit": spec.max_limit}), "REST")
            if not page:
                if found:  # the day has begun: an empty later page leaves a hole, not "no more data"
                    raise _Failed(f"REST page for {day} after {max(found)} is empty before {last}: incomplete")
                break  # nothing there
            for row in page:
                if start <= int(row[0]) <= last:
                    found.setdefault(int(row[0]), row)
            newest = max(int(row[0]) for row in page)
            if newest < cursor:
                break
            if len(page) < spec.max_limit:
                # A short page must reach the end of what exists; a page cut short is a REST failure here
                # (the reference engine, instead, pages on from the last row: both are correct).
                step = interval_ms(interval)
                if newest + step <= last:
                    raise _Failed(f"REST page for {day} ends at {newest} before {last}: incomplete")
                break
            cursor = newest + 1
        times = sorted(found)
        bars: Bars = {"open_time": np.array(times, dtype=np.int64)}
        for index, name in enumerate(STORED.names[1:], start=1):
            bars[name] = np.array([float(found[t][index]) for t in times], dtype=np.float64)
        return bars

    def _rest_page(self, url: str, params: dict[str, Any]) -> list[list[Any]]:
        for waited in range(RATE_LIMIT_RETRIES + 1):
            try:
                response = self.http.get(url, params=params)
            except httpx.RequestError as exc:  # connect error, timeout ...
                raise _Transient(type(exc).__name__) from exc
            if response.status_code not in (418, 429):
                break
            retry_after = response.headers.get("Retry-After", "1")
            if waited == RATE_LIMIT_RETRIES:
                raise RateLimitError(
                    f"HTTP {response.status_code} from {url} after {RATE_LIMIT_RETRIES} waits; "
                    f"Retry-After {retry_after} s"
                )
            time.sleep(_seconds(retry_after))
        if response.status_code >= 500:
            raise _Transient(f"HTTP {response.status_code}")
        if response.status_code != 200:
            try:
                message = response.json()["msg"]
            except Exception:
                message = response.text[:120]
            raise _Failed(f"HTTP {response.status_code}: {message}")
        try:
            page = response.json()
            if not isinstance(page, list) or any(not isinstance(row, list) or len(row) < 6 for row in page):
                raise ValueError("not a list of klines")
            for row in page:  # every row must parse, or the page is garbage
                _ = [int(row[0]), *map(float, row[1:6])]
        except (ValueError, TypeError) as exc:
            raise _Transient(f"malformed answer ({exc})") from exc
        return page


def _to_table(bars: Bars) -> pa.Table:
    columns = [pa.array(bars["open_time"], pa.int64()).cast(CACHE_SCHEMA.field("open_time").type)]
    columns += [pa.array(bars[name], pa.float64()) for name in CACHE_SCHEMA.names[1:]]
    return pa.table(columns, schema=CACHE_SCHEMA)
