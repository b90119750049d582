"""The bundled reference FCP engine: a small, readable, executable statement of the FCP contract.

A request ``(symbol, market, interval, start, end)`` is served per UTC day of ``[start, end)``:

1. **cache** - ``{cache_dir}/{market}/{symbol}/{interval}/{YYYY-MM-DD}.arrow`` (Arrow IPC *file* format,
   :data:`~pytest_fcp.engines.CACHE_SCHEMA`). A file is used only if it is readable, has exactly that
   schema, holds exactly the day's full interval grid and no null/NaN. Anything else is a miss.
2. **Binance Vision** - the daily ``.zip`` and its ``.CHECKSUM`` over HTTPS, only for days that ended at
   least 48 h ago. The sha256, the member name, the CSV shape, the time unit and the grid are all checked;
   a bad payload is never used. One attempt per object: any Vision failure falls through to REST.
3. **REST** - consecutive days still missing are merged into one range and paged with ``limit=max_limit``,
   never asking beyond *now*. Transient failures (5xx, connect errors, timeouts) are retried twice with
   backoff; 429/418 raise :class:`RateLimitError` at once; other 4xx and malformed answers fail the source.
   An empty answer for a range in which closed bars must exist is treated as a failure, not as "no data".
4. Otherwise :class:`DataSourceError`, naming the days and what each source answered.

Only complete, verified days that ended at least 48 h ago are written back to the cache (from Vision or
from REST), atomically (temporary file + ``os.replace``); a cache that cannot be written never fails a fetch.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import io
import logging
import os
import pathlib
import ssl
import tempfile
import time
import zipfile

import certifi
import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from pytest_fcp.core.freshness import is_old
from pytest_fcp.core.markets import (
    MARKETS,
    VISION_URL,
    MarketSpec,
    bars_per_day,
    checksum_key,
    day_bounds_ms,
    day_of_ms,
    interval_ms,
    market_spec,
    ms_to_datetime,
    to_ms,
    vision_file_name,
    vision_key,
)
from pytest_fcp.core.schemas import CACHE_SCHEMA, FETCH_SCHEMA, PRICE_COLUMNS
from pytest_fcp.core.sources import is_rate_limited
from pytest_fcp.engines import CacheLayout

__all__ = ["CACHE_LAYOUT", "DataSourceError", "RateLimitError", "ReferenceEngine", "create"]

log = logging.getLogger(__name__)

#: The cache files: ``{cache_dir}/{market}/{symbol}/{interval}/{YYYY-MM-DD}.arrow``, Arrow IPC file format with
#: exactly CACHE_SCHEMA, bars in time order.
CACHE_LAYOUT = CacheLayout(
    name="reference",
    market_dirs={market: market for market in MARKETS},
    series_dir="{market}/{symbol}/{interval}",
    file_name="{day}.arrow",
    time_unit="ms",
    schema=CACHE_SCHEMA,
    sorted_bars=True,
)

REST_RETRIES = 2  # extra attempts after a transient REST failure
BACKOFF_SECONDS = 1.0  # first retry waits 1 s, the second 2 s
TIMEOUT_SECONDS = 30.0
CSV_COLUMNS = [
    "open_time", "open", "high", "low", "close", "volume", "close_time",
    "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore",
]  # fmt: skip
TIME_TYPE = CACHE_SCHEMA.field("open_time").type
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class DataSourceError(Exception):
    """No source could serve the request (the message names the days and what each source answered)."""


class RateLimitError(DataSourceError):
    """Binance REST answered 429 / 418; the message carries its ``Retry-After``."""


class _SourceFailed(Exception):
    """Internal: one source could not serve a day or range; ``str(exc)`` says why."""


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every engine (building one loads the CA bundle: tens of ms)."""
    return ssl.create_default_context(cafile=certifi.where())


def create(cache_dir: pathlib.Path) -> ReferenceEngine:
    """Engine factory (entry point ``reference``)."""
    return ReferenceEngine(cache_dir)


# --- helpers on time, day grids and tables ---------------------------------------------------------------


def _ceil_ms(moment: dt.datetime) -> int:
    """``moment`` in epoch ms, rounded up exactly: a whole-ms open_time is >= moment iff it is >= this."""
    to_ms(moment)  # refuses naive datetimes
    return -(-((moment - EPOCH) // dt.timedelta(microseconds=1)) // 1000)


def _first_bar(moment_ms: int, interval: str) -> int:
    """The open time of the first bar at or after ``moment_ms``."""
    step = interval_ms(interval)
    return -(-moment_ms // step) * step


def _grid(day: dt.date, interval: str) -> np.ndarray:
    """The open times (ms) of every bar of ``day``."""
    day_start, day_end = day_bounds_ms(day)
    return np.arange(day_start, day_end, interval_ms(interval), dtype=np.int64)


def _is_full_day(table: pa.Table, day: dt.date, interval: str) -> bool:
    """True if ``table`` (CACHE_SCHEMA) holds exactly the bars of ``day``, in order, without null or NaN."""
    if table.num_rows != bars_per_day(interval) or any(col.null_count for col in table.columns):
        return False
    if any(pc.any(pc.is_nan(table[name])).as_py() for name in PRICE_COLUMNS):
        return False
    open_ms = table["open_time"].cast(pa.int64()).to_numpy()
    return bool(np.array_equal(open_ms, _grid(day, interval)))


def _with_source(table: pa.Table, source: str) -> pa.Table:
    return table.append_column(FETCH_SCHEMA.field("source"), pa.repeat(pa.scalar(source), table.num_rows))


def _day_slice(table: pa.Table, day: dt.date) -> pa.Table:
    day_start, day_end = (pa.scalar(ms, TIME_TYPE) for ms in day_bounds_ms(day))
    times = table["open_time"]
    return table.filter(pc.and_(pc.greater_equal(times, day_start), pc.less(times, day_end)))


def _runs(days: list[dt.date]) -> list[list[dt.date]]:
    """Split sorted days into runs of consecutive days."""
    runs: list[list[dt.date]] = []
    for day in days:
        if runs and (day - runs[-1][-1]).days == 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


# --- Vision payload validation ---------------------------------------------------------------------------


def _verify_checksum(payload: bytes, checksum_body: bytes, file_name: str) -> None:
    """The ``.CHECKSUM`` body is ``<sha256hex>  <file name>``; the zip's sha256 must match it."""
    parts = checksum_body.decode("ascii", errors="replace").split()
    if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1] != file_name):
        raise _SourceFailed("malformed .CHECKSUM")
    if parts[0].lower() != hashlib.sha256(payload).hexdigest():
        raise _SourceFailed("checksum mismatch")


def _parse_vision_zip(payload: bytes, spec: MarketSpec, symbol: str, interval: str, day: dt.date) -> pa.Table:
    """The verified day table (CACHE_SCHEMA) of a Vision zip, or ``_SourceFailed`` saying what is wrong."""
    member = f"{symbol}-{interval}-{day.isoformat()}.csv"
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            if archive.namelist() != [member]:
                raise _SourceFailed(f"zip holds {archive.namelist()}, expected [{member!r}]")
            text = archive.read(member)
        # Futures files start with a header row, spot files do not; accept either, detected by content.
        skip = 1 if text.startswith(b"open_time") else 0
        raw = pa_csv.read_csv(
            io.BytesIO(text),
            read_options=pa_csv.ReadOptions(column_names=CSV_COLUMNS, skip_rows=skip),
            convert_options=pa_csv.ConvertOptions(
                column_types={"open_time": pa.int64(), "close_time": pa.int64()}
                | dict.fromkeys(PRICE_COLUMNS, pa.float64())
            ),
        )
    except _SourceFailed:
        raise
    except Exception as exc:  # any unreadable zip or CSV (truncated, not a zip, wrong columns ...)
        raise _SourceFailed(f"unreadable payload ({type(exc).__name__}: {exc})") from exc
    # Spot timestamps are microseconds from spec.micros_from on, milliseconds before; futures always ms.
    unit = 1000 if spec.micros_from is not None and day >= spec.micros_from else 1
    grid = _grid(day, interval)
    open_time = raw["open_time"].to_numpy()
    close_time = raw["close_time"].to_numpy()
    if not np.array_equal(open_time, grid * unit):
        raise _SourceFailed(f"rows are not the day's {interval} grid ({raw.num_rows} rows)")
    if not np.array_equal(close_time, open_time + interval_ms(interval) * unit - 1):
        raise _SourceFailed("close_time is not open_time + interval - 1")
    columns = [pa.array(grid, pa.int64()).cast(TIME_TYPE)] + [raw[c] for c in PRICE_COLUMNS]
    table = pa.table(columns, schema=CACHE_SCHEMA)
    if not _is_full_day(table, day, interval):
        raise _SourceFailed("null or NaN prices")
    return table


def _parse_rest_rows(response: httpx.Response) -> list[tuple[int, float, float, float, float, float]]:
    """``[open_time, open, high, low, close, volume]`` of each row of a klines answer."""
    try:
        payload = response.json()
        if not isinstance(payload, list):
            raise TypeError(f"expected a JSON list, got {type(payload).__name__}")
        return [(int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5])) for r in payload]
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise _SourceFailed(f"malformed klines answer ({type(exc).__name__}: {exc})") from exc


def _binance_message(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"{body['code']} {body['msg']}"
    except Exception:
        return response.text[:200]


class ReferenceEngine:
    """The reference implementation of the FCP contract (see the module docstring)."""

    #: Whether an empty later page ends a REST range even though closed bars must follow (False: the range fails;
    #: a subclass planting that defect sets it).
    ends_on_empty = False

    def __init__(self, cache_dir: pathlib.Path, client: httpx.Client | None = None) -> None:
        self.cache_dir = pathlib.Path(cache_dir)
        self._client = client or httpx.Client(timeout=TIMEOUT_SECONDS, verify=_tls_context())

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    # --- cache ---------------------------------------------------------------------------------------

    def cache_file(self, symbol: str, market: str, interval: str, day: dt.date) -> pathlib.Path:
        """The day's cache file (see :data:`CACHE_LAYOUT`)."""
        return CACHE_LAYOUT.path(self.cache_dir, symbol, market, interval, day)

    def write_cache(self, symbol: str, market: str, interval: str, day: dt.date, table: pa.Table) -> None:
        """Write ``table`` as the day's cache file, atomically; raises ``OSError`` if that is impossible."""
        path = self.cache_file(symbol, market, interval, day)
        table = table.select(CACHE_SCHEMA.names).cast(CACHE_SCHEMA)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as sink, pa.ipc.new_file(sink, CACHE_SCHEMA) as writer:
                writer.write_table(table)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def read_cache(self, symbol: str, market: str, interval: str, day: dt.date) -> pa.Table | None:
        """The day's cached table if the file is valid; ``None`` (a miss) for anything else, never raising."""
        path = self.cache_file(symbol, market, interval, day)
        try:
            table = pa.ipc.open_file(pa.BufferReader(path.read_bytes())).read_all()
            table.validate(full=True)  # corrupt buffers can pass the reader; never compute on them
        except Exception:  # missing, unreadable, zero bytes, random bytes, stream format, truncated ...
            return None
        if [(f.name, f.type) for f in table.schema] != [(f.name, f.type) for f in CACHE_SCHEMA]:
            return None
        table = pa.Table.from_arrays(table.columns, schema=CACHE_SCHEMA)  # drop foreign schema metadata
        return table if _is_full_day(table, day, interval) else None

    def _store(self, symbol: str, market: str, interval: str, day: dt.date, table: pa.Table, now_ms: int) -> None:
        """Cache a verified full day if it ended 48 h ago; a cache that cannot be written is only logged."""
        if not is_old(day, ms_to_datetime(now_ms)) or not _is_full_day(table, day, interval):
            return
        try:
            self.write_cache(symbol, market, interval, day, table)
        except OSError as exc:
            log.warning("cannot write cache for %s %s %s %s: %s", market, symbol, interval, day, exc)

    # --- fetch ---------------------------------------------------------------------------------------

    def fetch(self, symbol: str, market: str, interval: str, start: dt.datetime, end: dt.datetime) -> pa.Table:
        """Bars with ``start <= open_time < end`` from cache, then Vision, then REST; else ``DataSourceError``."""
        spec = market_spec(market)
        if interval not in spec.intervals:
            raise ValueError(f"interval {interval!r} does not exist on {market}; use one of {spec.intervals}")
        start_ms, end_ms = _ceil_ms(start), _ceil_ms(end)  # the result is start_ms <= open_time < end_ms
        if end_ms <= start_ms:
            return FETCH_SCHEMA.empty_table()
        now_ms = to_ms(dt.datetime.now(dt.UTC))

        parts: list[pa.Table] = []
        why: dict[dt.date, str] = {}  # what cache and Vision said about each day still missing
        first_day, last_day = day_of_ms(start_ms), day_of_ms(end_ms - 1)
        for ordinal in range(first_day.toordinal(), last_day.toordinal() + 1):
            day = dt.date.fromordinal(ordinal)
            cached = self.read_cache(symbol, market, interval, day)
            if cached is not None:
                parts.append(_with_source(cached, "cache"))
                continue
            if not is_old(day, ms_to_datetime(now_ms)):
                why[day] = "cache miss; vision not asked (the day ended less than 48 h ago)"
                continue
            try:
                table = self._vision_day(spec, symbol, interval, day)
            except _SourceFailed as exc:
                why[day] = f"cache miss; vision: {exc}"
                continue
            self._store(symbol, market, interval, day, table, now_ms)
            parts.append(_with_source(table, "vision"))

        for run in _runs(sorted(why)):
            lo = max(start_ms, day_bounds_ms(run[0])[0])
            hi = min(end_ms, day_bounds_ms(run[-1])[1])
            try:
                table = self._rest_range(spec, symbol, interval, lo, hi, now_ms)
            except _SourceFailed as exc:
                detail = "; ".join(f"{day}: {why[day]}" for day in run)
                raise DataSourceError(
                    f"no source could serve {symbol} {market} {interval} for "
                    f"{', '.join(map(str, run))}: {detail}; rest: {exc}"
                ) from exc
            for day in run:  # REST days the request covered whole are cacheable too
                self._store(symbol, market, interval, day, _day_slice(table, day), now_ms)
            parts.append(_with_source(table, "rest"))

        result = pa.concat_tables([FETCH_SCHEMA.empty_table(), *parts])
        times = result["open_time"]
        in_range = pc.and_(
            pc.greater_equal(times, pa.scalar(start_ms, TIME_TYPE)),
            pc.less(times, pa.scalar(end_ms, TIME_TYPE)),
        )
        return result.filter(in_range).sort_by("open_time").combine_chunks()

    # --- sources -------------------------------------------------------------------------------------

    def _vision_get(self, url: str) -> bytes:
        """One GET on Vision; any failure is a ``_SourceFailed`` (no retries: REST is the fallback)."""
        name = url.rsplit("/", 1)[-1]
        try:
            response = self._client.get(url)
        except httpx.RequestError as exc:
            raise _SourceFailed(f"{name}: {type(exc).__name__}") from exc
        if response.status_code == 404:
            raise _SourceFailed(f"{name}: not published (404)")
        if response.status_code != 200:
            raise _SourceFailed(f"{name}: HTTP {response.status_code}")
        return response.content

    def _vision_day(self, spec: MarketSpec, symbol: str, interval: str, day: dt.date) -> pa.Table:
        url = f"{VISION_URL}/{vision_key(spec.name, symbol, interval, day)}"
        payload = self._vision_get(url)
        checksum = self._vision_get(checksum_key(url))
        _verify_checksum(payload, checksum, vision_file_name(symbol, interval, day))
        return _parse_vision_zip(payload, spec, symbol, interval, day)

    def _rest_get(self, spec: MarketSpec, params: dict[str, str | int]) -> httpx.Response:
        """GET one klines page, retrying transient failures; 429/418 raise ``RateLimitError`` at once."""
        problem = ""
        for attempt in range(REST_RETRIES + 1):
            if attempt:
                time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
            try:
                response = self._client.get(spec.rest_url, params=params)
            except httpx.RequestError as exc:
                problem = type(exc).__name__
                continue
            status = response.status_code
            if is_rate_limited(status):
                raise RateLimitError(
                    f"Binance REST rate limit (HTTP {status}) for {params['symbol']} {params['interval']}: "
                    f"{_binance_message(response)}; Retry-After: {response.headers.get('Retry-After', '?')} s"
                )
            if status >= 500:
                problem = f"HTTP {status}"
                continue
            if status != 200:
                raise _SourceFailed(f"HTTP {status}: {_binance_message(response)}")
            return response
        raise _SourceFailed(f"{problem} after {REST_RETRIES + 1} attempts")

    def _rest_range(self, spec: MarketSpec, symbol: str, interval: str, lo: int, hi: int, now_ms: int) -> pa.Table:
        """Bars with ``lo <= open_time < hi`` (and ``<= now``) from REST: paged, filtered, de-duplicated."""
        last = min(hi - 1, now_ms)  # endTime is inclusive; never ask beyond now
        bars: dict[int, tuple[int, float, float, float, float, float]] = {}
        cursor = lo
        while cursor <= last:
            params: dict[str, str | int] = {"symbol": symbol, "interval": interval}
            params |= {"startTime": cursor, "endTime": last, "limit": spec.max_limit}
            rows = _parse_rest_rows(self._rest_get(spec, params))
            for row in rows:  # rows outside the asked range or repeated must not leak into the result
                if lo <= row[0] <= last:
                    bars.setdefault(row[0], row)
            in_range = [row[0] for row in rows if cursor <= row[0] <= last]
            if not in_range:  # an empty page (or nothing new): no more data, unless closed bars must follow
                following = _first_bar(cursor, interval)
                if (
                    bars
                    and following <= last
                    and following + interval_ms(interval) <= now_ms
                    and not self.ends_on_empty
                ):
                    raise _SourceFailed("empty page although closed bars must exist after the previous page")
                break
            if max(in_range) + interval_ms(interval) > last:  # the range is covered
                break
            # A short page is not proof of the end (Binance may cut a page short): ask again after it.
            cursor = max(in_range) + 1
        step = interval_ms(interval)
        first_bar = -(-lo // step) * step
        if not bars and first_bar <= last and first_bar + step <= now_ms:
            raise _SourceFailed("empty answer although closed bars must exist in the range")
        columns = list(zip(*(bars[t] for t in sorted(bars)), strict=True)) or [()] * 6
        return pa.table(
            [pa.array(columns[0], pa.int64()).cast(TIME_TYPE)] + [pa.array(col, pa.float64()) for col in columns[1:]],
            schema=CACHE_SCHEMA,
        )
