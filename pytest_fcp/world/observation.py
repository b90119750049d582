"""The Observation: an immutable record of one fetch, everything the contract needs and nothing live.

``world.fetch(...)`` returns one. It holds the request, the result (a table or the exception), the trace
events, structured request records, the faults that fired, the violations, each needed day's cache state
before and after, the truth the result is compared with and which days Vision had published.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from pytest_fcp.core.cache_states import DayFileState
from pytest_fcp.core.markets import DAY_MS, days_between
from pytest_fcp.core.sources import error_kind
from pytest_fcp.trace import Event
from pytest_fcp.world.recorder import FaultFiring, RequestRecord

__all__ = ["FetchRequest", "Observation", "RowTimes", "rows_per_source", "tally"]

#: ``(null, ms)`` arrays of a result's open times, the exception reading them raised, or ``None`` (no table).
RowTimes = tuple[np.ndarray, np.ndarray] | BaseException | None


@dataclass(frozen=True)
class FetchRequest:
    """What the engine was asked for: ``[start, end)`` of one series."""

    symbol: str
    market: str
    interval: str
    start: dt.datetime
    end: dt.datetime

    @property
    def days(self) -> list[dt.date]:
        """The UTC days ``[start, end)`` touches."""
        return days_between(self.start, self.end)


@dataclass(frozen=True)
class Observation:
    """One fetch as the world saw it (see the module docstring)."""

    request: FetchRequest
    now: dt.datetime  # the virtual "now" when the fetch began
    table: pa.Table | None
    error: BaseException | None
    events: tuple[Event, ...]
    requests: tuple[RequestRecord, ...]
    firings: tuple[FaultFiring, ...]
    violations: tuple[str, ...]  # every violation of the world so far
    cache_before: Mapping[dt.date, DayFileState]
    cache_after: Mapping[dt.date, DayFileState]
    expected: pa.Table  # the truth for the request: bars that opened by "now"
    published: frozenset[dt.date]  # needed days Vision had published when the fetch began
    row_times: RowTimes = None  # see open_times()
    rows_per_day: Mapping[dt.date | None, dict[str, int]] = field(default_factory=dict)
    #: The days just outside the request (before its start, at its end): their cache state before and after.
    cache_outside: Mapping[dt.date, tuple[DayFileState, DayFileState]] = field(default_factory=dict)
    #: Real seconds spent inside the engine's ``fetch`` (``time.perf_counter``): for the run's timing, never a verdict.
    engine_seconds: float = 0.0
    #: How many fetches ran at the same time as one group, this one included (1: alone); with several, the cache
    #: states before and after are those of the group's start and end (the cache is shared).
    together: int = 1
    #: The error's message with the world's temporary paths written ``<cache>``: what verdicts quote, so a message
    #: cut at a fixed width is cut the same way wherever the run's temporary directory is.
    error_text: str = ""
    #: Which fetch of its world this is (1 for the first).
    fetch_number: int = 1

    # --- the request, for convenience ----------------------------------------------------------------
    @property
    def symbol(self) -> str:
        """The requested symbol."""
        return self.request.symbol

    @property
    def market(self) -> str:
        """The requested market."""
        return self.request.market

    @property
    def interval(self) -> str:
        """The requested interval."""
        return self.request.interval

    @property
    def start(self) -> dt.datetime:
        """The request's start (inclusive)."""
        return self.request.start

    @property
    def end(self) -> dt.datetime:
        """The request's end (exclusive)."""
        return self.request.end

    @property
    def days(self) -> list[dt.date]:
        """The UTC days the request touches."""
        return self.request.days

    # --- the result -----------------------------------------------------------------------------------
    @property
    def ok(self) -> bool:
        """Whether the engine returned a table."""
        return self.error is None

    @property
    def error_kind(self) -> str | None:
        """The contract error the exception is (``DataSourceError`` / ``RateLimitError``), or ``None``."""
        return None if self.error is None else error_kind(self.error)

    def rows_by_source(self) -> dict[str, int]:
        """Returned rows per source tag."""
        return rows_per_source(self.rows_per_day)

    def rows_by_day(self) -> dict[dt.date | None, dict[str, int]]:
        """Row counts per UTC day (``None`` for rows without a time) and source, as the engine tagged them."""
        return dict(self.rows_per_day)

    def sources_by_day(self) -> dict[dt.date, set[str]]:
        """The source tags of each day's rows."""
        return {day: set(per) for day, per in self.rows_per_day.items() if day is not None}

    def open_times(self) -> tuple[np.ndarray, np.ndarray]:
        """``(null, ms)``: which rows lack an ``open_time``, and every row's ``open_time`` in epoch
        milliseconds (0 where null). Raises ``KeyError`` without the column and ``pa.ArrowException`` when
        it is not a time that milliseconds can hold."""
        if self.table is None:
            raise ValueError("the fetch raised: there are no rows")
        if isinstance(self.row_times, BaseException):
            raise self.row_times
        assert self.row_times is not None
        return self.row_times


def rows_per_source(by_day: Mapping[dt.date | None, dict[str, int]]) -> dict[str, int]:
    """Row counts per source tag, summed over the days."""
    counts: dict[str, int] = {}
    for per_source in by_day.values():
        for source, n in per_source.items():
            counts[source] = counts.get(source, 0) + n
    return counts


def tally(table: pa.Table | None) -> tuple[RowTimes, dict[dt.date | None, dict[str, int]]]:
    """A result's open times (or why they cannot be read) and its row counts per day and source."""
    if table is None:
        return None, {}
    try:
        times: RowTimes = _open_times_ms(table)
        null, ms = times
    except (KeyError, pa.ArrowException) as exc:  # no usable open_time: no row has a day
        times = exc
        null, ms = np.ones(table.num_rows, dtype=bool), np.zeros(table.num_rows, np.int64)
    return times, _rows_by_day(null, ms, table)


_MS_UTC = pa.timestamp("ms", tz="UTC")


def _open_times_ms(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    # Few Arrow calls: each costs microseconds, and a verdict needs these arrays several times.
    column = table["open_time"]
    if column.type != _MS_UTC:
        column = column.cast(_MS_UTC)  # safe cast: sub-millisecond times raise
    times = column.to_numpy().astype("datetime64[ms]", copy=False).view(np.int64)
    if not column.null_count:
        return np.zeros(len(times), dtype=bool), times
    null = column.is_null().to_numpy()
    times = times.copy()
    times[null] = 0
    return null, times


_SMALL = 512  # rows up to which counting in plain Python is faster than numpy


def _rows_by_day(null: np.ndarray, times: np.ndarray, table: pa.Table) -> dict[dt.date | None, dict[str, int]]:
    if "source" in table.schema.names:
        sources = table["source"]
    else:  # untagged rows (the rows verdict says the column is missing)
        sources = pa.chunked_array([pa.nulls(table.num_rows, pa.string())])
    if sources.type != pa.string():
        sources = sources.cast(pa.string())
    days = times // DAY_MS  # floor: days before 1970 too
    epoch = dt.date(1970, 1, 1).toordinal()
    out: dict[dt.date | None, dict[str, int]] = {}
    if len(days) <= _SMALL:  # a few days of bars: plain Python beats a chain of Arrow and numpy calls
        day_keys = days.tolist()
        if null.any():
            day_keys = [None if n else d for n, d in zip(null.tolist(), day_keys, strict=True)]
        labels = sources.to_numpy(zero_copy_only=False).tolist()  # far cheaper than to_pylist()
        for (day, source), count in Counter(zip(day_keys, labels, strict=True)).items():
            out.setdefault(None if day is None else dt.date.fromordinal(epoch + day), {})[str(source)] = count
        return out
    encoded = sources.combine_chunks().dictionary_encode(null_encoding="encode")
    names = [str(name) for name in encoded.dictionary.to_pylist()]
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    low = int(days[~null].min()) if len(days) > null.sum() else 0
    slots = np.where(null, 0, days - low + 1)  # slot 0: rows without a time
    keys, counts = np.unique(slots * max(len(names), 1) + codes, return_counts=True)
    for key, count in zip(keys.tolist(), counts.tolist(), strict=True):
        slot, code = divmod(key, len(names))
        out.setdefault(None if slot == 0 else dt.date.fromordinal(epoch + low - 1 + slot), {})[names[code]] = count
    return out
