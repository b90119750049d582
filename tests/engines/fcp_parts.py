"""The client-independent parts of the requests and aiohttp test engines: day math, the Arrow day cache,
Vision payload verification and REST row parsing. Each engine keeps its own control flow and HTTP client.

Cache layout: ``{cache_dir}/{market}/{SYMBOL}-{interval}/{YYYY-MM-DD}.arrow`` (Arrow IPC file, the
contract's cache schema). A file counts only if it holds exactly the day's grid without null or NaN.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import os
import pathlib
import uuid
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from pytest_fcp.core.markets import bars_per_day, day_bounds_ms, interval_ms, vision_file_name
from pytest_fcp.core.schemas import CACHE_SCHEMA, FETCH_SCHEMA, PRICE_COLUMNS

__all__ = [
    "DataSourceError",
    "DayCache",
    "RateLimitError",
    "SourceFailed",
    "ceil_ms",
    "day_slice",
    "days_between",
    "is_old",
    "join",
    "rest_rows",
    "rows_table",
    "vision_table",
]

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MIN_AGE_MS = 48 * 3_600_000
TIME = CACHE_SCHEMA.field("open_time").type
COLUMNS = ["open_time", *PRICE_COLUMNS, "close_time", "quote_volume", "count", "tbv", "tbqv", "ignore"]


class DataSourceError(Exception):
    """No source could serve a needed day."""


class RateLimitError(DataSourceError):
    """REST answered 429 or 418."""


class SourceFailed(Exception):
    """One source could not serve; the next one is asked."""


def ceil_ms(moment: dt.datetime) -> int:
    """Epoch milliseconds of an aware datetime, rounded up."""
    if moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}")
    return -(-((moment - EPOCH) // dt.timedelta(microseconds=1)) // 1000)


def days_between(start_ms: int, end_ms: int) -> list[dt.date]:
    """The UTC days ``[start_ms, end_ms)`` touches."""
    if end_ms <= start_ms:
        return []
    first, last = start_ms // 86_400_000, (end_ms - 1) // 86_400_000
    return [EPOCH.date() + dt.timedelta(days=d) for d in range(first, last + 1)]


def is_old(day: dt.date, now_ms: int) -> bool:
    """Whether ``day`` ended at least 48 h before now (Vision has it; it may be cached)."""
    return day_bounds_ms(day)[1] <= now_ms - MIN_AGE_MS


def full_day(table: pa.Table, day: dt.date, interval: str) -> bool:
    """Exactly the day's bars, in order, no null or NaN."""
    if table.num_rows != bars_per_day(interval) or any(column.null_count for column in table.columns):
        return False
    if any(pc.any(pc.is_nan(table[name])).as_py() for name in PRICE_COLUMNS):
        return False
    start, end = day_bounds_ms(day)
    grid = np.arange(start, end, interval_ms(interval), dtype=np.int64)
    return bool(np.array_equal(table["open_time"].cast(pa.int64()).to_numpy(), grid))


def rows_table(rows: dict[int, list[float]]) -> pa.Table:
    """A cache-schema table of ``{open_ms: [open, high, low, close, volume]}``, sorted."""
    times = sorted(rows)
    values = list(zip(*(rows[t] for t in times), strict=True)) or [()] * 5
    arrays = [pa.array(times, pa.int64()).cast(TIME)] + [pa.array(v, pa.float64()) for v in values]
    return pa.table(arrays, schema=CACHE_SCHEMA)


def day_slice(table: pa.Table, day: dt.date) -> pa.Table:
    """The rows of ``table`` that open on ``day``."""
    start, end = day_bounds_ms(day)
    times = table["open_time"].cast(pa.int64())
    return table.filter(pc.and_(pc.greater_equal(times, start), pc.less(times, end)))


def join(parts: list[tuple[pa.Table, str]], start_ms: int, end_ms: int) -> pa.Table:
    """The fetch result: every part tagged with its source, cut to ``[start_ms, end_ms)``, sorted."""
    tagged = [t.append_column(FETCH_SCHEMA.field("source"), pa.repeat(pa.scalar(s), t.num_rows)) for t, s in parts]
    table = pa.concat_tables([FETCH_SCHEMA.empty_table(), *tagged])
    times = table["open_time"].cast(pa.int64())
    keep = pc.and_(pc.greater_equal(times, start_ms), pc.less(times, end_ms))
    return table.filter(keep).sort_by("open_time").combine_chunks()


class DayCache:
    """Day files under ``root`` (see the module docstring)."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = pathlib.Path(root)

    def path(self, symbol: str, market: str, interval: str, day: dt.date) -> pathlib.Path:
        """Where ``day`` lives."""
        return self.root / market / f"{symbol.upper()}-{interval}" / f"{day.isoformat()}.arrow"

    def write(self, symbol: str, market: str, interval: str, day: dt.date, table: pa.Table) -> None:
        """Write ``day`` atomically (temporary file, then rename)."""
        path = self.path(symbol, market, interval, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        try:
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, CACHE_SCHEMA) as writer:
                writer.write_table(table.select(CACHE_SCHEMA.names).cast(CACHE_SCHEMA))
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def read(self, symbol: str, market: str, interval: str, day: dt.date) -> pa.Table | None:
        """The day's valid full table, or None (missing, unreadable, wrong schema, incomplete)."""
        try:
            with pa.memory_map(str(self.path(symbol, market, interval, day))) as source:
                table = pa.ipc.open_file(source).read_all()
            table.validate(full=True)
        except (OSError, pa.ArrowException, ValueError):
            return None
        if table.schema != CACHE_SCHEMA or not full_day(table, day, interval):
            return None
        return table

    def keep(self, symbol: str, market: str, interval: str, day: dt.date, table: pa.Table, now_ms: int) -> None:
        """Cache an old, complete day; a cache that cannot be written never fails a fetch."""
        if is_old(day, now_ms) and full_day(table, day, interval):
            with contextlib.suppress(OSError, pa.ArrowException):
                self.write(symbol, market, interval, day, table)


def vision_table(payload: bytes, checksum: bytes, symbol: str, interval: str, day: dt.date) -> pa.Table:
    """The day's table from a Vision zip, after its ``.CHECKSUM``, member name, grid and values check out."""
    name = vision_file_name(symbol, interval, day)
    fields = checksum.decode("ascii", "replace").split()
    if not fields or len(fields) > 2 or (len(fields) == 2 and fields[1] != name):
        raise SourceFailed("malformed .CHECKSUM")
    if fields[0].lower() != hashlib.sha256(payload).hexdigest():
        raise SourceFailed("sha256 differs from .CHECKSUM")
    member = name.removesuffix(".zip") + ".csv"
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            if archive.namelist() != [member]:
                raise SourceFailed(f"zip holds {archive.namelist()}, not {member}")
            text = archive.read(member)
        options = pa_csv.ReadOptions(column_names=COLUMNS, skip_rows=1 if text.startswith(b"open_time") else 0)
        raw = pa_csv.read_csv(io.BytesIO(text), read_options=options)
        opens = raw["open_time"].cast(pa.int64()).to_numpy()
        closes = raw["close_time"].cast(pa.int64()).to_numpy()
        prices = [raw[n].cast(pa.float64()) for n in PRICE_COLUMNS]
    except SourceFailed:
        raise
    except Exception as exc:
        raise SourceFailed(f"unreadable zip ({type(exc).__name__})") from exc
    scale = 1000 if len(opens) and opens[0] >= 10**14 else 1  # microsecond files (spot, 2025 on)
    if np.any(opens % scale) or np.any((closes + 1) % scale):
        raise SourceFailed("timestamps off the millisecond grid")
    opens, closes = opens // scale, (closes + 1) // scale - 1
    if np.any(closes != opens + interval_ms(interval) - 1):
        raise SourceFailed("close_time is not open_time + interval - 1")
    table = pa.table([pa.array(opens, pa.int64()).cast(TIME), *prices], schema=CACHE_SCHEMA)
    if not full_day(table, day, interval):
        raise SourceFailed("not the day's full grid")
    return table


def rest_rows(payload: object) -> list[tuple[int, list[float]]]:
    """``(open_ms, [open, high, low, close, volume])`` of each klines row; a malformed answer fails REST."""
    try:
        if not isinstance(payload, list):
            raise TypeError("not a list")
        if any(len(row) < 6 for row in payload):  # a row without its volume is no bar
            raise IndexError("a row holds fewer than 6 fields")
        return [(int(row[0]), [float(v) for v in row[1:6]]) for row in payload]
    except (TypeError, ValueError, IndexError) as exc:
        raise SourceFailed(f"malformed klines answer ({exc})") from exc
