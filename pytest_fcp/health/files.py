"""One day file's checks: open it cheaply, judge its schema once per distinct schema, and its bars."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from pytest_fcp.core.freshness import FRESHNESS_HOURS, is_old
from pytest_fcp.core.markets import DAY_MS, INTERVALS, day_bounds_ms, ms_to_datetime
from pytest_fcp.core.schemas import PRICE_COLUMNS
from pytest_fcp.health.layouts import layout as layout_of

__all__ = ["NEEDED_COLUMNS", "FileReport", "FileVerdict", "Job", "check_day_file", "check_many"]

#: The columns a day file must have, whatever its layout.
NEEDED_COLUMNS = ("open_time", *PRICE_COLUMNS)
_UNIT_PER_MS = {"s": None, "ms": 1, "us": 1_000, "ns": 1_000_000}


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
        """The headline issue, or ``ok``."""
        return self.issues[0] if self.issues else "ok"

    def to_dict(self) -> dict[str, Any]:
        """The file as JSON."""
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
    known = layout_of(layout)
    exact = known.schema
    want_time = exact.field("open_time").type if exact is not None else pa.timestamp(known.time_unit, tz="UTC")
    if time_type.unit == "ns" and known.time_unit != "ns":
        return ["ns_timestamps"], f"open_time is {time_type}, the layout stores {want_time}"
    if exact is not None:  # the layout stores exactly this schema
        if time_type != want_time:
            return ["wrong_types"], f"open_time is {time_type}, the layout stores {want_time}"
        not_exact = [
            (f"{c} is {schema.field(c).type}", str(exact.field(c).type))
            for c in PRICE_COLUMNS
            if schema.field(c).type != exact.field(c).type
        ]
        if not_exact:
            wanted = ", ".join(sorted({want for _, want in not_exact}))
            return ["wrong_types"], "; ".join(text for text, _ in not_exact) + f" (the layout stores {wanted})"
        if names != exact.names:
            return ["wrong_schema"], f"columns {names}, expected exactly {exact.names}"
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
    day_start, day_end = day_bounds_ms(day)
    tail: list[str] = []
    recent_note = ""
    if not is_old(day, ms_to_datetime(now_ms)):
        tail = ["too_recent"]
        age_h = (now_ms - day_end) / 3_600_000
        young = f"day ended {age_h:.0f} h before now (< {FRESHNESS_HOURS} h)"
        recent_note = young if age_h >= 0 else "day not over yet"

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
    try:
        batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
    except (pa.ArrowException, OSError) as exc:  # a footer intact over a short body (cache.short_body)
        return finish(["truncated"], [f"a record batch is cut short: {exc}"[:200]])
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
            if layout_of(layout).sorted_bars and not bool((times[1:] >= times[:-1]).all()):
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
FileVerdict = tuple[int, tuple[str, ...], int, str, float | None, float | None]


def _check_one(path: str, day: dt.date, interval: str, layout: str, now_ms: int) -> FileVerdict:
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        return 0, ("unreadable",), 0, f"{type(exc).__name__}: {exc}"[:200], None, None
    r = check_day_file(path, size, day, interval, layout, now_ms)
    return size, tuple(r.issues), r.rows, r.detail, r.first_open, r.last_close


def check_many(jobs: Sequence[Job], now_ms: int) -> list[FileVerdict]:
    """Judge a batch of day files (what a scan worker runs)."""
    return [_check_one(path, day, interval, layout, now_ms) for path, day, interval, layout in jobs]
