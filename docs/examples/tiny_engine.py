"""A small, complete FCP engine: the example of docs/engines.md.

Per UTC day of ``[start, end)``: the day's cache file, then Binance Vision (the daily ``.zip`` and its
``.CHECKSUM``, for days that ended 48 h ago), then Binance REST for the days still missing, else
``DataSourceError``. Only verified, complete days that ended 48 h ago are cached.

Run the scenario catalog on it (from this directory, or with it on ``PYTHONPATH``)::

    pytest --fcp-scenarios --fcp-engine tiny_engine:create
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import os
import pathlib
import time
import zipfile

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from pytest_fcp.engines import CACHE_SCHEMA, FETCH_SCHEMA, CacheLayout

DAY_MS, MIN_AGE_MS = 86_400_000, 48 * 3_600_000
INTERVALS = {
    "1s": 1_000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
    "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000, "12h": 43_200_000, "1d": DAY_MS,
}  # fmt: skip
#: market -> (Vision prefix, REST klines URL, REST page limit)
MARKETS = {
    "spot": ("data/spot", "https://api.binance.com/api/v3/klines", 1000),
    "futures_usdt": ("data/futures/um", "https://fapi.binance.com/fapi/v1/klines", 1500),
    "futures_coin": ("data/futures/cm", "https://dapi.binance.com/dapi/v1/klines", 1500),
}
PRICES = ["open", "high", "low", "close", "volume"]
CSV_COLUMNS = ["open_time", *PRICES, "close_time", "quote_volume", "count", "tbv", "tbqv", "ignore"]
TIME = CACHE_SCHEMA.field("open_time").type

#: Declared for ``fcp cache-health``: ``{cache_dir}/{market}/{symbol}/{interval}/{YYYY-MM-DD}.arrow``.
CACHE_LAYOUT = CacheLayout(
    name="tiny", market_dirs={m: m for m in MARKETS}, series_dir="{market}/{symbol}/{interval}",
    file_name="{day}.arrow", time_unit="ms", schema=CACHE_SCHEMA, sorted_bars=True,
)  # fmt: skip


class DataSourceError(Exception):
    """No source could serve a needed day."""


class RateLimitError(DataSourceError):
    """REST answered 429 or 418."""


class SourceFailed(Exception):
    """One source could not serve; the next one is asked."""


def create(cache_dir: pathlib.Path) -> TinyEngine:
    """The engine factory: ``--fcp-engine tiny_engine:create``."""
    return TinyEngine(cache_dir)


def to_ms(moment: dt.datetime) -> int:
    """Epoch milliseconds of an aware datetime, rounded up (a bar opening at or after it is in range)."""
    if moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}")
    micros = (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    return -(-micros // 1000)


def day_start(day: dt.date) -> int:
    """The epoch milliseconds at which ``day`` starts (UTC)."""
    return (day.toordinal() - dt.date(1970, 1, 1).toordinal()) * DAY_MS


def make_table(bars: dict[int, list[float]]) -> pa.Table:
    """A CACHE_SCHEMA table of ``{open_ms: [open, high, low, close, volume]}``, in time order."""
    times = sorted(bars)
    columns = list(zip(*(bars[t] for t in times), strict=True)) or [()] * 5
    arrays = [pa.array(times, pa.int64()).cast(TIME), *(pa.array(c, pa.float64()) for c in columns)]
    return pa.table(arrays, schema=CACHE_SCHEMA)


def is_full_day(table: pa.Table, day: dt.date, interval: str) -> bool:
    """Exactly the day's bars, in order, with no null or NaN value."""
    step = INTERVALS[interval]
    grid = list(range(day_start(day), day_start(day) + DAY_MS, step))
    if table["open_time"].cast(pa.int64()).to_pylist() != grid or any(c.null_count for c in table.columns):
        return False
    return not any(pc.any(pc.is_nan(table[name])).as_py() for name in PRICES)


def in_day(table: pa.Table, day: dt.date) -> pa.Table:
    """The rows of ``table`` that open on ``day``."""
    times = table["open_time"].cast(pa.int64())
    return table.filter(pc.and_(pc.greater_equal(times, day_start(day)), pc.less(times, day_start(day) + DAY_MS)))


class TinyEngine:
    """Cache -> Vision -> REST over one httpx client."""

    def __init__(self, cache_dir: pathlib.Path) -> None:
        self.cache_dir = pathlib.Path(cache_dir)
        self.http = httpx.Client(timeout=30.0)

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()

    # --- the cache: one Arrow IPC file per day -----------------------------------------------------

    def cache_file(self, symbol: str, market: str, interval: str, day: dt.date) -> pathlib.Path:
        """Where ``day`` is cached."""
        return CACHE_LAYOUT.path(self.cache_dir, symbol, market, interval, day)

    def write_cache(self, symbol: str, market: str, interval: str, day: dt.date, table: pa.Table) -> None:
        """Write ``day``'s file atomically: a temporary file, then a rename."""
        path = self.cache_file(symbol, market, interval, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, CACHE_SCHEMA) as writer:
                writer.write_table(table.select(CACHE_SCHEMA.names).cast(CACHE_SCHEMA))
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def read_cache(self, symbol: str, market: str, interval: str, day: dt.date) -> pa.Table | None:
        """The day's table if its file is valid and complete; None (a miss) for anything else."""
        try:
            table = pa.ipc.open_file(pa.BufferReader(self.cache_file(symbol, market, interval, day).read_bytes()))
            table = table.read_all()
            table.validate(full=True)
        except (OSError, pa.ArrowException, ValueError):
            return None
        ok = table.schema.remove_metadata() == CACHE_SCHEMA and is_full_day(table, day, interval)
        return table if ok else None

    def keep(self, key: tuple[str, str, str], day: dt.date, table: pa.Table, now_ms: int) -> None:
        """Cache a complete day that ended 48 h ago; a cache that cannot be written never fails a fetch."""
        if day_start(day) + DAY_MS <= now_ms - MIN_AGE_MS and is_full_day(table, day, key[2]):
            with contextlib.suppress(OSError, pa.ArrowException):
                self.write_cache(*key, day, table)

    # --- fetch ---------------------------------------------------------------------------------------

    def fetch(self, symbol: str, market: str, interval: str, start: dt.datetime, end: dt.datetime) -> pa.Table:
        """Bars with ``start <= open_time < end``: cache, then Vision, then REST, else ``DataSourceError``."""
        if market not in MARKETS or interval not in INTERVALS or (interval == "1s" and market != "spot"):
            raise ValueError(f"unsupported market/interval {market!r} {interval!r}")
        lo, hi, now_ms = to_ms(start), to_ms(end), to_ms(dt.datetime.now(dt.UTC))
        key = (symbol, market, interval)
        parts: list[tuple[pa.Table, str]] = []
        missing: dict[dt.date, str] = {}  # day -> why cache and Vision could not serve it
        epoch = dt.date(1970, 1, 1).toordinal()
        days = [dt.date.fromordinal(epoch + d) for d in range(lo // DAY_MS, (hi - 1) // DAY_MS + 1)] if hi > lo else []
        for day in days:
            if (table := self.read_cache(*key, day)) is not None:
                parts.append((table, "cache"))
            elif day_start(day) + DAY_MS > now_ms - MIN_AGE_MS:
                missing[day] = "too recent for Vision"
            else:
                try:
                    table = self.vision_day(symbol, market, interval, day)
                except SourceFailed as exc:
                    missing[day] = f"vision: {exc}"
                    continue
                self.keep(key, day, table, now_ms)
                parts.append((table, "vision"))
        runs: list[list[dt.date]] = []  # consecutive missing days: one REST range each
        for day in sorted(missing):
            if runs and (day - runs[-1][-1]).days == 1:
                runs[-1].append(day)
            else:
                runs.append([day])
        for run in runs:
            first, last = max(lo, day_start(run[0])), min(hi, day_start(run[-1]) + DAY_MS)
            try:
                table = self.rest_range(symbol, market, interval, first, last, now_ms)
            except SourceFailed as exc:
                said = "; ".join(f"{day}: {missing[day]}" for day in run)
                raise DataSourceError(f"{symbol} {market} {interval}: {said}; rest: {exc}") from exc
            for day in run:
                self.keep(key, day, in_day(table, day), now_ms)
            parts.append((table, "rest"))
        tagged = [t.append_column(FETCH_SCHEMA.field("source"), pa.repeat(pa.scalar(s), len(t))) for t, s in parts]
        result = pa.concat_tables([FETCH_SCHEMA.empty_table(), *tagged])
        times = result["open_time"].cast(pa.int64())
        return result.filter(pc.and_(pc.greater_equal(times, lo), pc.less(times, hi))).sort_by("open_time")

    # --- Vision: one attempt per file, every byte checked ------------------------------------------

    def vision_get(self, url: str) -> bytes:
        """One GET; any failure is SourceFailed (REST is the fallback)."""
        try:
            response = self.http.get(url)
        except httpx.HTTPError as exc:
            raise SourceFailed(type(exc).__name__) from exc
        if response.status_code != 200:
            raise SourceFailed(f"HTTP {response.status_code}")
        return response.content

    def vision_day(self, symbol: str, market: str, interval: str, day: dt.date) -> pa.Table:
        """The day from Vision, after checksum, member name, grid and values check out."""
        name = f"{symbol}-{interval}-{day.isoformat()}"
        url = f"https://data.binance.vision/{MARKETS[market][0]}/daily/klines/{symbol}/{interval}/{name}.zip"
        payload = self.vision_get(url)
        checksum = self.vision_get(url + ".CHECKSUM").decode("ascii", "replace").split()
        if not checksum or len(checksum) > 2 or checksum[-1] not in (checksum[0], f"{name}.zip"):
            raise SourceFailed("malformed .CHECKSUM")
        if checksum[0].lower() != hashlib.sha256(payload).hexdigest():
            raise SourceFailed("sha256 differs from .CHECKSUM")
        try:
            with zipfile.ZipFile(io.BytesIO(payload)) as archive:
                if archive.namelist() != [f"{name}.csv"]:
                    raise SourceFailed(f"zip holds {archive.namelist()}")
                text = archive.read(f"{name}.csv")
            header = 1 if text.startswith(b"open_time") else 0  # futures files have a header row
            options = pa_csv.ReadOptions(column_names=CSV_COLUMNS, skip_rows=header)
            rows = pa_csv.read_csv(io.BytesIO(text), read_options=options).to_pylist()
            scale = 1000 if rows and rows[0]["open_time"] >= 10**14 else 1  # spot files in microseconds from 2025
            bars = {r["open_time"] // scale: [float(r[p]) for p in PRICES] for r in rows if r["open_time"] % scale == 0}
            step = INTERVALS[interval]
            closes_ok = all((r["close_time"] + 1) // scale == r["open_time"] // scale + step for r in rows)
        except SourceFailed:
            raise
        except Exception as exc:  # truncated, not a zip, wrong columns ...
            raise SourceFailed(f"unreadable zip ({type(exc).__name__})") from exc
        table = make_table(bars)
        if len(bars) != len(rows) or not closes_ok or not is_full_day(table, day, interval):
            raise SourceFailed("not the day's full grid")
        return table

    # --- REST: paged, transient failures retried, rate limits raised at once -------------------------

    def rest_page(self, market: str, params: dict[str, str | int]) -> list[list]:
        """One klines page; 5xx, connect errors, timeouts and malformed pages are retried twice."""
        problem = ""
        for attempt in range(3):
            if attempt:
                time.sleep(2.0 ** (attempt - 1))
            try:
                response = self.http.get(MARKETS[market][1], params=params)
            except httpx.TransportError as exc:
                problem = type(exc).__name__
                continue
            if response.status_code in (418, 429):
                raise RateLimitError(f"HTTP {response.status_code}; Retry-After {response.headers.get('Retry-After')}")
            if response.status_code >= 500:
                problem = f"HTTP {response.status_code}"
                continue
            if response.status_code != 200:
                raise SourceFailed(f"HTTP {response.status_code}: {response.text[:200]}")
            try:
                rows = response.json()
                if not isinstance(rows, list):
                    raise TypeError("not a list")
                if any(len(r) < 6 for r in rows):  # a row without its volume is no bar
                    raise IndexError("a row of fewer than 6 fields")
                return [[int(r[0]), *map(float, r[1:6])] for r in rows]
            except (ValueError, TypeError, IndexError) as exc:
                problem = f"malformed page ({type(exc).__name__})"
        raise SourceFailed(f"{problem} after 3 attempts")

    def rest_range(self, symbol: str, market: str, interval: str, lo: int, hi: int, now_ms: int) -> pa.Table:
        """Bars with ``lo <= open_time < hi`` (and not after now), page after page."""
        last, step = min(hi - 1, now_ms), INTERVALS[interval]
        bars: dict[int, list[float]] = {}
        cursor = lo
        while cursor <= last:
            params = {"symbol": symbol, "interval": interval, "startTime": cursor, "endTime": last}
            rows = [r for r in self.rest_page(market, params | {"limit": MARKETS[market][2]}) if cursor <= r[0] <= last]
            for row in rows:
                bars.setdefault(row[0], row[1:])
            following = -(-cursor // step) * step  # an empty page after bars, with closed bars to come: a hole
            if not rows and bars and following <= last and following + step <= now_ms:
                raise SourceFailed("empty page although closed bars must follow the previous page")
            if not rows or max(r[0] for r in rows) + step > last:
                break
            cursor = max(r[0] for r in rows) + 1  # a short page is not the end: ask again after it
        first_bar = -(-lo // step) * step
        if not bars and first_bar + step <= min(last + 1, now_ms):
            raise SourceFailed("empty answer although closed bars must exist")
        return make_table(bars)
