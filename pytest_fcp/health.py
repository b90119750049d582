"""Cache health: scan an FCP engine's kline cache and say what is wrong with it, file by file.

Two on-disk layouts are recognised, by path pattern (a tree may hold both):

``ckvd`` - crypto-kline-vision-data 4.x (read from its source: ``ckvd/utils/app_paths.py``,
    ``ckvd/core/sync/crypto_kline_vision_data.py``, ``ckvd/core/providers/binance/vision_path_mapper.py``
    and ``ckvd/utils/for_core/ckvd_cache_utils.py``). ckvd's app cache root is ``$CKVD_CACHE_DIR`` or else
    ``platformdirs.user_cache_path("crypto-kline-vision-data", "eon-labs")`` (``~/.cache/
    crypto-kline-vision-data`` on Linux); ``CryptoKlineVisionData`` without ``cache_dir`` caches in
    ``<app root>/data`` (:func:`default_cache_dir`, the scan's default) and mirrors the Vision URL below it::

        <cache dir>/data/{spot|futures/um|futures/cm}/daily/klines/{SYMBOL}/{interval}/
            {SYMBOL}-{interval}-{YYYY-MM-DD}.arrow

    e.g. ``~/.cache/crypto-kline-vision-data/data/data/spot/daily/klines/BTCUSDT/1h/
    BTCUSDT-1h-2024-01-02.arrow`` (COIN-M symbols carry ``_PERP``). Any directory whose path ends in
    ``data/{spot|futures/um|futures/cm}/daily/klines/{SYMBOL}/{interval}`` is taken as a ckvd series, so
    the app root, the cache dir or a ``cache_dir`` handed to ckvd explicitly can all be scanned. The files
    are Arrow IPC *file* format written by polars: ``open_time`` ``timestamp[ns, UTC]`` plus ckvd's extra
    columns (nanoseconds are ckvd's native unit, so ``ns_timestamps`` is never reported for this layout).

``reference`` - the bundled reference engine: ``{root}/{market}/{symbol}/{interval}/{YYYY-MM-DD}.arrow``
    with ``market`` one of ``spot``, ``futures_usdt``, ``futures_coin``; Arrow IPC file format with exactly
    :data:`pytest_fcp.engines.CACHE_SCHEMA` (``open_time`` ``timestamp[ms, UTC]``, float64 prices).

Per file the scan does the minimum: one ``stat``, one ``read`` into a reused buffer (files over 1 MiB are
memory-mapped instead), the Arrow footer and schema, the ``open_time`` column straight from its buffer, and
one ``open`` and one ``close`` value for the day-boundary check. Large caches are scanned by a process pool.
See ``benchmarks/bench_cache_health.py``.

Issue names follow the cache fault ids of :mod:`pytest_fcp.faults` where they correspond:

==================  ===========================================================================
issue               meaning
==================  ===========================================================================
zero_byte           the file is empty                                   (``cache.zero_byte``)
unreadable          cannot be opened / read, or is not a regular file   (``cache.unreadable``)
truncated           starts like an Arrow file but its footer is gone    (``cache.truncated``)
not_arrow           neither an Arrow IPC file nor stream                (``cache.random_bytes``)
arrow_stream        Arrow IPC *stream* format, not file format          (``cache.arrow_stream``)
missing_column      a needed column is absent                           (``cache.missing_column``)
wrong_types         a needed column has a type the engine cannot use    (``cache.wrong_types``)
ns_timestamps       ``open_time`` in nanoseconds where the layout wants ms (``cache.ns_timestamps``)
wrong_schema        columns present and usable, but not the layout's exact schema
partial_day         fewer distinct bars than the interval's full day    (``cache.partial_day``)
stale_day           prices jump at *both* day boundaries: suspected stale values (``cache.stale_day``;
                    a heuristic - a cache holds no truth to compare with)
duplicate           repeated ``open_time`` values
out_of_day          bars outside the file's UTC day
off_grid            bars not on the interval's grid
unsorted            bars not in time order (the reference engine needs them ordered)
null_times          null ``open_time`` values
too_recent          the day ended less than 48 h before now (Vision does not have it yet; an FCP engine
                    should not have cached it, and it may be incomplete)
==================  ===========================================================================
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import itertools
import multiprocessing
import os
import pathlib
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from pytest_fcp.core.markets import DAY_MS, INTERVALS, MARKETS

__all__ = [
    "ISSUES",
    "LAYOUTS",
    "PROBLEM_ISSUES",
    "STALE_JUMP",
    "VISION_MIN_AGE_MS",
    "FileReport",
    "HealthReport",
    "SeriesReport",
    "check_day_file",
    "default_cache_dir",
    "scan_cache",
]

#: Issue names, in the order of precedence used for a file's headline status.
ISSUES = (
    "zero_byte",
    "unreadable",
    "truncated",
    "not_arrow",
    "arrow_stream",
    "missing_column",
    "wrong_types",
    "ns_timestamps",
    "wrong_schema",
    "null_times",
    "out_of_day",
    "off_grid",
    "duplicate",
    "unsorted",
    "partial_day",
    "stale_day",
    "too_recent",
)
#: Every issue is a problem (exit status 1); kept as a set for callers that want to relax it.
PROBLEM_ISSUES = frozenset(ISSUES)

LAYOUTS = ("ckvd", "reference")
VISION_MIN_AGE_MS = 48 * 3_600_000
#: Relative price jump at a day boundary above which a boundary counts as broken (stale_day heuristic).
STALE_JUMP = 0.01
#: From this many files on, the scan uses a process pool.
POOL_THRESHOLD = 4_000

_CKVD_MARKET_PATHS = {"spot": "spot", "futures/um": "futures_usdt", "futures/cm": "futures_coin"}
_MARKET_TO_CKVD = {v: k for k, v in _CKVD_MARKET_PATHS.items()}
_CKVD_DIR = re.compile(r"(?:^|/)data/(spot|futures/um|futures/cm)/daily/klines/([^/]+)/([^/]+)$")
_REF_DIR = re.compile(r"(?:^|/)(spot|futures_usdt|futures_coin)/([^/]+)/([^/]+)$")
_DATE = r"(\d{4}-\d{2}-\d{2})"
_REF_FILE = re.compile(_DATE + r"\.arrow$")
PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
NEEDED_COLUMNS = ("open_time", *PRICE_COLUMNS)
_UNIT_PER_MS = {"s": None, "ms": 1, "us": 1_000, "ns": 1_000_000}
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_REF_TIME_TYPE = pa.timestamp("ms", tz="UTC")


# --- where the cache is ------------------------------------------------------------------------------
CKVD_APP_NAME = "crypto-kline-vision-data"
CKVD_APP_AUTHOR = "eon-labs"


def default_cache_dir() -> tuple[pathlib.Path, str]:
    """ckvd's default cache directory, as ckvd itself resolves it, and a sentence saying how.

    That is ``ckvd.utils.app_paths.get_cache_dir() / "data"``: what ``CryptoKlineVisionData`` uses when no
    ``cache_dir`` is given (``$CKVD_CACHE_DIR``, else platformdirs' user cache dir of
    ``crypto-kline-vision-data``/``eon-labs``), the same as ``pytest_fcp.engines.ckvd.real_cache_root()``
    but without importing all of ckvd (seconds). Without ckvd installed, the same rule is applied here.
    """
    env = os.environ.get("CKVD_CACHE_DIR")
    how = f"$CKVD_CACHE_DIR={env}" if env else "platformdirs user cache dir"
    try:
        from ckvd.utils.app_paths import get_cache_dir
    except Exception:  # ckvd not installed (or broken): apply its rule ourselves
        import platformdirs

        base = pathlib.Path(env) if env else pathlib.Path(platformdirs.user_cache_path(CKVD_APP_NAME, CKVD_APP_AUTHOR))
        return base / "data", f"ckvd's default cache dir ({how}; ckvd itself is not installed)"
    return (
        pathlib.Path(get_cache_dir()) / "data",
        f"ckvd's default cache dir: ckvd.utils.app_paths.get_cache_dir() / 'data' ({how})",
    )


def expected_series_dir(root: pathlib.Path, layout: str, market: str, symbol: str, interval: str) -> pathlib.Path:
    """Where a series' day files live under ``root`` in ``layout`` (ckvd: below its ``data/data``)."""
    if layout == "ckvd":
        # ckvd's cache dir holds data/<market>/...; its app root (one level up) holds data/data/<market>/...
        base = root / "data" if (root / "data" / "data").is_dir() else root
        if market == "futures_coin" and not symbol.endswith("_PERP"):
            symbol = f"{symbol}_PERP"
        return base / "data" / _MARKET_TO_CKVD[market] / "daily" / "klines" / symbol.upper() / interval
    return root / market / symbol / interval


# --- one file ------------------------------------------------------------------------------------------
@dataclass
class FileReport:
    """What one day file holds. ``issues`` is empty for a healthy file."""

    day: dt.date
    path: str
    size: int
    issues: list[str] = field(default_factory=list)
    rows: int = 0
    detail: str = ""
    first_open: float | None = None
    last_close: float | None = None

    @property
    def status(self) -> str:
        return self.issues[0] if self.issues else "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "path": self.path,
            "size": self.size,
            "status": self.status,
            "issues": list(self.issues),
            "rows": self.rows,
            "detail": self.detail,
        }


#: Files up to this size are read whole with one ``read`` (cheaper than a memory map); larger ones are mapped.
_READ_WHOLE = 1 << 20
#: One read buffer per process, reused for every small file (allocation churn is most of a file's cost).
_SCRATCH = bytearray(_READ_WHOLE)
_SCRATCH_VIEW = memoryview(_SCRATCH)
_SCRATCH_ARROW = pa.py_buffer(_SCRATCH)


def _schema_message(length: int) -> bytes | None:
    """The bytes of the schema message at the head of the Arrow file in the scratch buffer, if complete.

    Files with the same schema carry the same bytes there, so they key the schema verdict cheaply.
    """
    if length < 16 or _SCRATCH[8:12] != b"\xff\xff\xff\xff":
        return None
    end = 16 + int.from_bytes(_SCRATCH[12:16], "little")
    return bytes(_SCRATCH_VIEW[16:end]) if end <= length else None


def _open_reader(path: str, size: int) -> tuple[Any, list[str], str, bytes | None]:
    """Open ``path`` as an Arrow IPC file; on failure say which issue it is. Also: the schema key."""
    key = None
    try:
        if size <= _READ_WHOLE:
            fd = os.open(path, os.O_RDONLY)
            try:
                length = os.readv(fd, [_SCRATCH_VIEW])
            finally:
                os.close(fd)
            # Valid until the next file is read: nothing read from it outlives check_day_file.
            source: Any = pa.BufferReader(_SCRATCH_ARROW.slice(0, length))
            key = _schema_message(length)
        else:
            source = pa.memory_map(path, "r")
    except IsADirectoryError:
        return None, ["unreadable"], "is a directory, not a file", None
    except PermissionError as exc:
        return None, ["unreadable"], f"permission denied ({exc.strerror})", None
    except OSError as exc:
        return None, ["unreadable"], f"{type(exc).__name__}: {exc}"[:200], None
    try:
        return pa.ipc.open_file(source), [], "", key
    except (pa.ArrowException, OSError, ValueError) as exc:
        file_error = f"{exc}"[:120]
    try:
        source.seek(0)
        head = source.read(8)
        if head[:6] == b"ARROW1":
            why = f"Arrow file magic at the start but no valid footer ({file_error})"
            return None, ["truncated"], why, None
        source.seek(0)
        try:
            pa.ipc.open_stream(source).schema  # noqa: B018 - opening reads and checks the schema message
        except (pa.ArrowException, OSError, ValueError):
            return None, ["not_arrow"], f"not Arrow IPC data (first bytes {head[:8].hex()})", None
        return None, ["arrow_stream"], "Arrow IPC stream format; engines read the IPC file format", None
    finally:
        source.close()


@dataclass(frozen=True)
class _SchemaVerdict:
    issues: tuple[str, ...]
    detail: str
    usable: bool  # the open_time column can be read as timestamps
    time_index: int = -1
    open_index: int = -1
    close_index: int = -1
    per_ms: int = 1


#: Per process: the verdicts of the few distinct schemas a cache holds.
_SCHEMA_VERDICTS: list[tuple[str, pa.Schema, _SchemaVerdict]] = []


#: Per process: schema verdicts by (layout, schema message bytes), the fast path.
_VERDICTS_BY_KEY: dict[tuple[str, bytes], _SchemaVerdict] = {}


def _keyed_verdict(reader: Any, layout: str, key: bytes | None) -> _SchemaVerdict:
    if key is not None:
        verdict = _VERDICTS_BY_KEY.get((layout, key))
        if verdict is None:
            verdict = _schema_verdict(reader.schema, layout)
            if len(_VERDICTS_BY_KEY) < 256:
                _VERDICTS_BY_KEY[layout, key] = verdict
        return verdict
    return _schema_verdict(reader.schema, layout)


def _schema_verdict(schema: pa.Schema, layout: str) -> _SchemaVerdict:
    for known_layout, known, verdict in _SCHEMA_VERDICTS:
        if known_layout == layout and known.equals(schema):
            return verdict
    issues, detail = _schema_issues(schema, layout)
    if issues and issues[0] in ("missing_column", "wrong_types"):
        verdict = _SchemaVerdict(tuple(issues), detail, False)
    else:
        names = schema.names
        verdict = _SchemaVerdict(
            tuple(issues),
            detail,
            True,
            names.index("open_time"),
            names.index("open"),
            names.index("close"),
            _UNIT_PER_MS[schema.field("open_time").type.unit] or 1,
        )
    if len(_SCHEMA_VERDICTS) < 64:
        _SCHEMA_VERDICTS.append((layout, schema, verdict))
    return verdict


def _schema_issues(schema: pa.Schema, layout: str) -> tuple[list[str], str]:
    names = schema.names
    missing = [c for c in NEEDED_COLUMNS if c not in names]
    if missing:
        return ["missing_column"], f"missing column(s) {', '.join(missing)}"
    time_type = schema.field("open_time").type
    bad = [
        f"{c} is {schema.field(c).type}"
        for c in PRICE_COLUMNS
        if not (pa.types.is_floating(schema.field(c).type) or pa.types.is_integer(schema.field(c).type))
    ]
    if not pa.types.is_timestamp(time_type) or _UNIT_PER_MS[time_type.unit] is None:
        bad.insert(0, f"open_time is {time_type}")
    if bad:
        return ["wrong_types"], "; ".join(bad)
    if layout == "reference":
        if time_type.unit == "ns":
            return ["ns_timestamps"], f"open_time is {time_type}, the layout stores timestamp[ms, tz=UTC]"
        if time_type != _REF_TIME_TYPE:
            return ["wrong_types"], f"open_time is {time_type}, the layout stores timestamp[ms, tz=UTC]"
        not_float = [f"{c} is {schema.field(c).type}" for c in PRICE_COLUMNS if schema.field(c).type != pa.float64()]
        if not_float:
            return ["wrong_types"], "; ".join(not_float) + " (the layout stores float64)"
        if names != list(NEEDED_COLUMNS):
            return ["wrong_schema"], f"columns {names}, expected exactly {list(NEEDED_COLUMNS)}"
    return [], ""


def _times_ms(column: pa.Array, per_ms: int) -> np.ndarray:
    """The non-null values of a timestamp column as int64 milliseconds (zero-copy when possible)."""
    if column.null_count:
        column = column.drop_null()
    # Straight from the Arrow buffer: Array.to_numpy would import pandas for timestamps (seconds).
    values = np.frombuffer(column.buffers()[1], dtype=np.int64, count=len(column), offset=column.offset * 8)
    return values // per_ms if per_ms != 1 else values


def _value_at(column: pa.Array, index: int) -> float | None:
    value = column[index].as_py()
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def check_day_file(path: str, size: int, day: dt.date, interval: str, layout: str, now_ms: int) -> FileReport:
    """Judge one day file of ``interval`` bars in ``layout``.

    Reads the Arrow footer and schema, the ``open_time`` column, and one ``open`` and one ``close`` value.
    """
    report = FileReport(day, path, size)
    day_start = (day.toordinal() - _EPOCH_ORDINAL) * DAY_MS
    day_end = day_start + DAY_MS
    tail: list[str] = []
    recent_note = ""
    if day_end > now_ms - VISION_MIN_AGE_MS:
        tail = ["too_recent"]
        age_h = (now_ms - day_end) / 3_600_000
        recent_note = f"day ended {age_h:.0f} h before now (< 48 h)" if age_h >= 0 else "day not over yet"

    def finish(issues: list[str], notes: list[str]) -> FileReport:
        report.issues = [*issues, *tail]
        report.detail = "; ".join(x for x in [*notes, recent_note] if x)
        return report

    if size == 0:
        return finish(["zero_byte"], ["0 bytes"])
    reader, issues, detail, key = _open_reader(path, size)
    if reader is None:
        return finish(issues, [detail])
    verdict = _keyed_verdict(reader, layout, key)
    issues = list(verdict.issues)
    notes: list[str] = [verdict.detail] if verdict.detail else []
    batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
    report.rows = sum(b.num_rows for b in batches)
    if not verdict.usable:
        return finish(issues, notes)
    step = INTERVALS[interval]
    expected = DAY_MS // step
    columns = [b.column(verdict.time_index) for b in batches if b.num_rows]
    nulls = sum(c.null_count for c in columns)
    if nulls:
        issues.append("null_times")
        notes.append(f"{nulls} null open_time value(s)")
    if len(columns) == 1:
        times = _times_ms(columns[0], verdict.per_ms)
    elif columns:
        times = np.concatenate([_times_ms(c, verdict.per_ms) for c in columns])
    else:
        times = np.empty(0, dtype=np.int64)
    n = len(times)
    full_grid = n == expected and times[0] == day_start and times[-1] == day_end - step
    if full_grid and n > 1:
        gaps = times[1:] - times[:-1]
        full_grid = gaps.min() == step == gaps.max()
    if not full_grid and n:  # the slow path: say exactly what is wrong
        increasing = bool((times[1:] > times[:-1]).all())
        outside = int(np.count_nonzero((times < day_start) | (times >= day_end)))
        if outside:
            issues.append("out_of_day")
            notes.append(f"{outside} bar(s) outside {day.isoformat()}")
        off = int(np.count_nonzero((times - day_start) % step))
        if off:
            issues.append("off_grid")
            notes.append(f"{off} bar(s) not on the {interval} grid")
        if not increasing:
            distinct = len(np.unique(times))
            if distinct < n:
                issues.append("duplicate")
                notes.append(f"{n - distinct} duplicated open_time value(s)")
            if layout == "reference" and not bool((times[1:] >= times[:-1]).all()):
                issues.append("unsorted")
                notes.append("bars not in time order")
        usable = _usable(times, day_start, day_end, step)
        if usable < expected:
            issues.append("partial_day")
            notes.append(f"{usable} of {expected} {interval} bars")
    elif not n:
        issues.append("partial_day")
        notes.append(f"0 of {expected} {interval} bars")
    if full_grid or (n and times[0] == day_start and times[-1] == day_end - step and "partial_day" not in issues):
        first, last = batches[0], batches[-1]
        report.first_open = _value_at(first.column(verdict.open_index), 0)
        report.last_close = _value_at(last.column(verdict.close_index), last.num_rows - 1)
    return finish(issues, notes)


def _usable(times: np.ndarray, day_start: int, day_end: int, step: int) -> int:
    inside = times[(times >= day_start) & (times < day_end) & ((times - day_start) % step == 0)]
    return len(np.unique(inside))


Job = tuple[str, dt.date, str, str]  # path, day, interval, layout
#: What a worker sends back per file: size, issues, rows, detail, first open, last close.
Verdict = tuple[int, tuple[str, ...], int, str, float | None, float | None]


def _check_one(path: str, day: dt.date, interval: str, layout: str, now_ms: int) -> Verdict:
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        return 0, ("unreadable",), 0, f"{type(exc).__name__}: {exc}"[:200], None, None
    r = check_day_file(path, size, day, interval, layout, now_ms)
    return size, tuple(r.issues), r.rows, r.detail, r.first_open, r.last_close


def _check_many(jobs: Sequence[Job], now_ms: int) -> list[Verdict]:
    return [_check_one(path, day, interval, layout, now_ms) for path, day, interval, layout in jobs]


# --- the tree --------------------------------------------------------------------------------------------
@dataclass
class SeriesReport:
    """One market / symbol / interval directory of one layout."""

    layout: str
    market: str
    symbol: str
    interval: str
    directory: str
    exists: bool = True
    writable: bool | None = None
    files: list[FileReport] = field(default_factory=list)
    other_files: list[str] = field(default_factory=list)
    requested: tuple[dt.date, dt.date] | None = None
    now_ms: int = 0

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.market, self.symbol, self.interval, self.layout)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def days(self) -> list[dt.date]:
        return sorted(f.day for f in self.files)

    @property
    def bad_files(self) -> list[FileReport]:
        return [f for f in self.files if f.issues]

    def issue_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for report in self.files:
            for issue in report.issues:
                counts[issue] = counts.get(issue, 0) + 1
        return {name: counts[name] for name in ISSUES if name in counts}

    def gaps(self) -> list[tuple[dt.date, dt.date]]:
        """Runs of days without a file between the first and the last day that has one."""
        return _missing_runs(self.days)

    def requested_coverage(self) -> dict[str, Any] | None:
        """Coverage of ``--from``/``--to``: days with a healthy file, and the cacheable days without one."""
        if self.requested is None:
            return None
        lo, hi = self.requested
        healthy = {f.day for f in self.files if not f.issues}
        present = {f.day for f in self.files}
        cutoff = _last_cacheable_day(self.now_ms)
        wanted = [dt.date.fromordinal(o) for o in range(lo.toordinal(), hi.toordinal() + 1)]
        cacheable = [d for d in wanted if d <= cutoff]
        missing = [d for d in cacheable if d not in present]
        unusable = [d for d in cacheable if d in present and d not in healthy]
        return {
            "from": lo.isoformat(),
            "to": hi.isoformat(),
            "days": len(wanted),
            "cacheable_days": len(cacheable),
            "healthy_days": sum(1 for d in cacheable if d in healthy),
            "missing_days": len(missing),
            "missing": [[a.isoformat(), b.isoformat()] for a, b in _runs(missing)],
            "unusable_days": len(unusable),
            "too_recent_days": len(wanted) - len(cacheable),
        }

    def problems(self) -> list[str]:
        """One short phrase per problem kind of this series (empty: healthy)."""
        out = [f"{n} {name}" for name, n in self.issue_counts().items() if name in PROBLEM_ISSUES]
        if not self.exists:
            out.insert(0, "directory missing")
        elif self.writable is False:
            out.insert(0, "directory not writable")
        coverage = self.requested_coverage()
        if coverage and coverage["missing_days"]:
            out.append(f"{coverage['missing_days']} requested day(s) not cached")
        return out

    def to_dict(self, verbose: bool = True) -> dict[str, Any]:
        days = self.days
        bad = self.bad_files
        return {
            "layout": self.layout,
            "market": self.market,
            "symbol": self.symbol,
            "interval": self.interval,
            "directory": self.directory,
            "exists": self.exists,
            "writable": self.writable,
            "files": len(self.files),
            "bytes": self.total_bytes,
            "first_day": days[0].isoformat() if days else None,
            "last_day": days[-1].isoformat() if days else None,
            "healthy_files": len(self.files) - len(bad),
            "gaps": [[a.isoformat(), b.isoformat()] for a, b in self.gaps()],
            "gap_days": sum((b - a).days + 1 for a, b in self.gaps()),
            "requested": self.requested_coverage(),
            "issues": self.issue_counts(),
            "problems": self.problems(),
            "bad_files": [f.to_dict() for f in bad],
            "other_files": list(self.other_files),
        }


@dataclass
class HealthReport:
    root: str
    root_source: str
    now: dt.datetime
    root_exists: bool
    root_writable: bool | None
    series: list[SeriesReport] = field(default_factory=list)
    unrecognised: list[str] = field(default_factory=list)
    filters: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def files(self) -> int:
        return sum(len(s.files) for s in self.series)

    @property
    def bad_files(self) -> int:
        return sum(len(s.bad_files) for s in self.series)

    def issue_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for series in self.series:
            for name, n in series.issue_counts().items():
                counts[name] = counts.get(name, 0) + n
        return {name: counts[name] for name in ISSUES if name in counts}

    @property
    def healthy(self) -> bool:
        return self.root_writable is not False and not any(s.problems() for s in self.series)

    @property
    def exit_status(self) -> int:
        return 0 if self.healthy else 1

    def verdict(self) -> str:
        n_series = len(self.series)
        size = human_bytes(sum(s.total_bytes for s in self.series))
        base = f"{self.files:,} day file(s), {size}, {n_series} series"
        if self.healthy:
            if not self.files:
                return "HEALTHY (empty): no day files of a known layout found, nothing to judge"
            return f"HEALTHY: {base}, no problems found"
        parts = []
        if self.root_writable is False:
            parts.append("cache directory not writable")
        if self.bad_files:
            issues = ", ".join(f"{n} {name}" for name, n in self.issue_counts().items())
            parts.append(f"{self.bad_files:,} bad file(s) ({issues})")
        unwritable = sum(1 for s in self.series if s.exists and s.writable is False)
        if unwritable:
            parts.append(f"{unwritable} series directory(ies) not writable")
        absent = sum(1 for s in self.series if not s.exists)
        if absent:
            parts.append(f"{absent} series directory(ies) missing")
        uncovered = sum((s.requested_coverage() or {}).get("missing_days", 0) for s in self.series)
        if uncovered:
            parts.append(f"{uncovered} requested day(s) not cached")
        return f"PROBLEMS: {base}: " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cache_dir": self.root,
            "cache_dir_source": self.root_source,
            "now": self.now.isoformat().replace("+00:00", "Z"),
            "exists": self.root_exists,
            "writable": self.root_writable,
            "filters": self.filters,
            "layouts": sorted({s.layout for s in self.series}),
            "series": [s.to_dict() for s in self.series],
            "unrecognised_files": list(self.unrecognised),
            "summary": {
                "series": len(self.series),
                "files": self.files,
                "bytes": sum(s.total_bytes for s in self.series),
                "bad_files": self.bad_files,
                "issues": self.issue_counts(),
                "healthy": self.healthy,
                "seconds": round(self.seconds, 3),
            },
            "verdict": self.verdict(),
            "exit_status": self.exit_status,
        }


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _runs(days: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    runs: list[list[dt.date]] = []
    for day in sorted(days):
        if runs and (day - runs[-1][1]).days == 1:
            runs[-1][1] = day
        else:
            runs.append([day, day])
    return [(a, b) for a, b in runs]


def _missing_runs(days: Sequence[dt.date]) -> list[tuple[dt.date, dt.date]]:
    out = []
    for before, after in itertools.pairwise(days):
        if (after - before).days > 1:
            out.append((before + dt.timedelta(days=1), after - dt.timedelta(days=1)))
    return out


def _last_cacheable_day(now_ms: int) -> dt.date:
    """The last UTC day that ended at least 48 h before ``now``."""
    return dt.date.fromordinal(_EPOCH_ORDINAL + (now_ms - VISION_MIN_AGE_MS) // DAY_MS - 1)


def _writable(directory: pathlib.Path) -> bool:
    """Whether a file can be created in ``directory`` (probed: root ignores mode bits, not immutability)."""
    if not os.access(directory, os.W_OK | os.X_OK):
        return False
    try:
        fd, name = tempfile.mkstemp(prefix=".fcp-health-", dir=directory)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def _series_of(rel_dir: str) -> tuple[str, str, str, str] | None:
    """(layout, market, symbol, interval) if ``rel_dir`` is a series directory of a known layout."""
    match = _CKVD_DIR.search(rel_dir)
    if match and match.group(3) in INTERVALS:
        return "ckvd", _CKVD_MARKET_PATHS[match.group(1)], match.group(2), match.group(3)
    match = _REF_DIR.search(rel_dir)
    if match and match.group(3) in INTERVALS and match.group(1) in MARKETS:
        return "reference", match.group(1), match.group(2), match.group(3)
    return None


def _day_of_name(name: str, layout: str, symbol: str, interval: str) -> dt.date | None:
    if layout == "ckvd":
        prefix = f"{symbol}-{interval}-"
        if not (name.startswith(prefix) and name.endswith(".arrow")):
            return None
        text = name[len(prefix) : -len(".arrow")]
    else:
        if not _REF_FILE.fullmatch(name):
            return None
        text = name[: -len(".arrow")]
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


ProgressHook = Callable[[int, int], None]


def scan_cache(
    root: pathlib.Path,
    *,
    root_source: str = "",
    now: dt.datetime | None = None,
    market: str | None = None,
    symbol: str | None = None,
    interval: str | None = None,
    day_from: dt.date | None = None,
    day_to: dt.date | None = None,
    workers: int | None = None,
    progress: Callable[[int], ProgressHook | None] | None = None,
) -> HealthReport:
    """Scan ``root`` (which must exist) and judge every day file of the recognised layouts.

    ``progress(total)`` may return a callback ``hook(done, total)`` that is called as files are judged.
    """
    import time

    started = time.perf_counter()
    now = now or dt.datetime.now(dt.UTC)
    now_ms = int(now.timestamp() * 1000)
    root = pathlib.Path(root)
    report = HealthReport(
        str(root),
        root_source,
        now,
        root.is_dir(),
        _writable(root) if root.is_dir() else None,
        filters={
            k: v
            for k, v in {
                "market": market,
                "symbol": symbol,
                "interval": interval,
                "from": day_from and day_from.isoformat(),
                "to": day_to and day_to.isoformat(),
            }.items()
            if v
        },
    )
    requested = None
    if day_from is not None or day_to is not None:
        requested = (day_from or dt.date.min, day_to or dt.date.max)
    series: dict[str, SeriesReport] = {}
    runner = _Runner(now_ms, workers)
    seen_layouts: set[str] = set()
    owners: list[SeriesReport] = []
    root_text = str(root)
    for dirpath, dirnames, filenames in os.walk(root_text):
        rel = os.path.relpath(dirpath, root_text).replace(os.sep, "/")
        ident = _series_of(dirpath.replace(os.sep, "/"))
        if ident is None:
            report.unrecognised.extend(os.path.join(rel, name) for name in filenames if name.endswith(".arrow"))
            continue
        layout, mkt, sym, ivl = ident
        seen_layouts.add(layout)
        if (
            (market and mkt != market)
            or (symbol and sym.upper() != symbol.upper() and sym.upper() != f"{symbol.upper()}_PERP")
            or (interval and ivl != interval)
        ):
            dirnames[:] = []
            continue
        entry = SeriesReport(layout, mkt, sym, ivl, dirpath, requested=None, now_ms=now_ms)
        series[dirpath] = entry
        entry.writable = _writable(pathlib.Path(dirpath))
        names = [(name, False) for name in filenames] + [(name, True) for name in dirnames]
        dirnames[:] = []  # a day "file" that is a directory is reported, not walked into
        for name, is_dir in names:
            day = _day_of_name(name, layout, sym, ivl)
            if day is None:
                entry.other_files.append(name)
                continue
            if requested and not (requested[0] <= day <= requested[1]):
                continue
            full = os.path.join(dirpath, name)
            if is_dir:
                entry.files.append(FileReport(day, full, 0, ["unreadable"], detail="is a directory, not a file"))
                continue
            runner.add((full, day, ivl, layout))
            owners.append(entry)

    if market and symbol and interval and not series:
        # The one series asked for has no directory: name where it would be.
        layouts = seen_layouts or {"ckvd" if (root / "data").is_dir() else "reference"}
        for layout in sorted(layouts):
            where = expected_series_dir(root, layout, market, symbol, interval)
            series[str(where)] = SeriesReport(layout, market, symbol, interval, str(where), exists=False, now_ms=now_ms)

    hook = progress(len(runner.jobs)) if progress is not None else None
    results = runner.results(hook)
    for entry, job, (size, issues, rows, detail, first_open, last_close) in zip(
        owners, runner.jobs, results, strict=True
    ):
        entry.files.append(FileReport(job[1], job[0], size, list(issues), rows, detail, first_open, last_close))
    for entry in series.values():
        entry.files.sort(key=lambda f: f.day)
        if requested is not None:
            lo = requested[0] if requested[0] != dt.date.min else (entry.days[0] if entry.days else requested[1])
            hi = requested[1] if requested[1] != dt.date.max else _last_cacheable_day(now_ms)
            entry.requested = (lo, hi) if lo <= hi else (lo, lo)
        _flag_stale(entry)
    report.series = sorted(series.values(), key=lambda s: (s.market, s.symbol, s.interval, s.layout, s.directory))
    report.unrecognised.sort()
    report.seconds = time.perf_counter() - started
    return report


def _flag_stale(entry: SeriesReport) -> None:
    """Flag a day whose first open and last close both jump away from its neighbours (stale values)."""
    by_day = {f.day: f for f in entry.files}
    one = dt.timedelta(days=1)
    for report in entry.files:
        before, after = by_day.get(report.day - one), by_day.get(report.day + one)
        if before is None or after is None:
            continue
        values = (before.last_close, report.first_open, report.last_close, after.first_open)
        if any(v is None for v in values):
            continue
        prev_close, first_open, last_close, next_open = values  # type: ignore[misc]
        if _jump(prev_close, first_open) and _jump(last_close, next_open):
            report.issues.insert(
                report.issues.index("too_recent") if "too_recent" in report.issues else len(report.issues),
                "stale_day",
            )
            note = (
                f"prices jump at both day boundaries ({prev_close:g} -> {first_open:g}, "
                f"{last_close:g} -> {next_open:g}): values likely differ from the exchange's"
            )
            report.detail = "; ".join(x for x in (report.detail, note) if x)


def _jump(a: float, b: float) -> bool:
    return abs(a - b) > STALE_JUMP * max(abs(a), abs(b), 1e-12)


def _pool_context() -> Any:
    if sys.platform == "linux":
        return multiprocessing.get_context("fork")
    return None


class _Runner:
    """Judges jobs as the walk finds them: inline for small caches, else in a process pool that starts as
    soon as the count reaches :data:`POOL_THRESHOLD` (so the walk and the checks overlap)."""

    CHUNK = 1_000

    def __init__(self, now_ms: int, workers: int | None) -> None:
        self.now_ms = now_ms
        self.workers = workers
        self.jobs: list[Job] = []
        self.pieces: list[tuple[int, int]] = []  # [start, end) of each submitted chunk
        self.futures: dict[concurrent.futures.Future[list[Verdict]], int] = {}
        self.pool: concurrent.futures.ProcessPoolExecutor | None = None
        self.submitted = 0

    def _pool_size(self) -> int:
        if self.workers is not None:
            return self.workers
        return min(os.cpu_count() or 1, 8) if len(self.jobs) >= POOL_THRESHOLD else 1

    def add(self, job: Job) -> None:
        self.jobs.append(job)
        if len(self.jobs) - self.submitted >= self.CHUNK and (self.pool is not None or self._pool_size() > 1):
            self._submit(len(self.jobs))

    def _submit(self, end: int) -> None:
        if self.pool is None:
            self.pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self._pool_size(), mp_context=_pool_context()
            )
        while self.submitted < end:
            stop = min(end, self.submitted + self.CHUNK)
            future = self.pool.submit(_check_many, self.jobs[self.submitted : stop], self.now_ms)
            self.futures[future] = len(self.pieces)
            self.pieces.append((self.submitted, stop))
            self.submitted = stop

    def results(self, hook: ProgressHook | None) -> list[Verdict]:
        total = len(self.jobs)
        if self.pool is None and (self._pool_size() <= 1 or total < 2):
            out: list[Verdict] = []
            for start in range(0, total, 500):
                out.extend(_check_many(self.jobs[start : start + 500], self.now_ms))
                if hook is not None:
                    hook(len(out), total)
            return out
        self._submit(total)
        assert self.pool is not None
        results: list[list[Verdict]] = [[] for _ in self.pieces]
        done = 0
        try:
            for future in concurrent.futures.as_completed(self.futures):
                index = self.futures[future]
                results[index] = future.result()
                done += self.pieces[index][1] - self.pieces[index][0]
                if hook is not None:
                    hook(done, total)
        finally:
            self.pool.shutdown(cancel_futures=True)
        return [verdict for piece in results for verdict in piece]
