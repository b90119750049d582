"""Reference-engine variants with one defect each, in the situations the ``edges`` and ``calendar`` themes reach.

Each factory builds a :class:`~pytest_fcp.engines.reference.ReferenceEngine` subclass whose one change is a
mistake a real engine could make; ``tests/test_edge_scenarios.py`` asserts the themes fail each of them,
naming the cause.
"""

from __future__ import annotations

import datetime as dt
import io
import pathlib
import zipfile
from typing import Any

import httpx
import pyarrow as pa

from pytest_fcp.core.freshness import is_old
from pytest_fcp.core.markets import MarketSpec, bars_per_day, interval_ms, ms_to_datetime, to_ms
from pytest_fcp.core.schemas import CACHE_SCHEMA
from pytest_fcp.core.sources import is_rate_limited
from pytest_fcp.engines import reference
from pytest_fcp.engines.reference import ReferenceEngine

__all__ = ["DEFECTS"]

Series = tuple[str, str, str, dt.date]


class _RestAware(ReferenceEngine):
    """Knows, while storing a day, whether REST served it (the reference stores REST days after Vision's)."""

    def __init__(self, cache_dir: pathlib.Path) -> None:
        super().__init__(cache_dir)
        self.in_rest = False

    def fetch(self, symbol: str, market: str, interval: str, start: dt.datetime, end: dt.datetime) -> pa.Table:
        """The reference fetch, with the REST flag reset first."""
        self.in_rest = False
        return super().fetch(symbol, market, interval, start, end)

    def _rest_range(self, spec: MarketSpec, symbol: str, interval: str, lo: int, hi: int, now_ms: int) -> pa.Table:
        self.in_rest = True
        return super()._rest_range(spec, symbol, interval, lo, hi, now_ms)


class NeverReadsBackRestDays(_RestAware):
    """Caches the old days REST served, but never reads those files back: asks REST again."""

    def __init__(self, cache_dir: pathlib.Path) -> None:
        super().__init__(cache_dir)
        self.rest_written: set[Series] = set()

    def _store(self, symbol: str, market: str, interval: str, day: dt.date, table: pa.Table, now_ms: int) -> None:
        super()._store(symbol, market, interval, day, table, now_ms)
        if self.in_rest:
            self.rest_written.add((symbol, market, interval, day))

    def read_cache(self, symbol: str, market: str, interval: str, day: dt.date) -> pa.Table | None:
        """A miss for every day REST wrote."""
        if (symbol, market, interval, day) in self.rest_written:
            return None
        return super().read_cache(symbol, market, interval, day)


class RestDaysInNanoseconds(_RestAware):
    """Writes the days REST served with nanosecond open times, and reads them back as they are."""

    def _store(self, symbol: str, market: str, interval: str, day: dt.date, table: pa.Table, now_ms: int) -> None:
        if not self.in_rest:
            super()._store(symbol, market, interval, day, table, now_ms)
            return
        if table.num_rows != bars_per_day(interval) or not is_old(day, ms_to_datetime(now_ms)):
            return
        nanos = table.set_column(0, "open_time", table["open_time"].cast(pa.timestamp("ns", tz="UTC")))
        path = self.cache_file(symbol, market, interval, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, nanos.schema) as writer:
            writer.write_table(nanos)

    def read_cache(self, symbol: str, market: str, interval: str, day: dt.date) -> pa.Table | None:
        """Its own nanosecond files as they are; anything else as the reference reads it."""
        try:
            table = pa.ipc.open_file(self.cache_file(symbol, market, interval, day)).read_all()
        except Exception:
            return None
        if table.schema.field("open_time").type == pa.timestamp("ns", tz="UTC"):
            return table
        return super().read_cache(symbol, market, interval, day)


class IgnoresRetryAfterOnLaterPages(ReferenceEngine):
    """Honours 429 / 418 on a range's first page, but retries a later page at once."""

    def _rest_range(self, spec: MarketSpec, symbol: str, interval: str, lo: int, hi: int, now_ms: int) -> pa.Table:
        self.first_page = lo
        return super()._rest_range(spec, symbol, interval, lo, hi, now_ms)

    def _rest_get(self, spec: MarketSpec, params: dict[str, str | int]) -> httpx.Response:
        if int(params["startTime"]) != self.first_page:
            for _ in range(3):
                response = self._client.get(spec.rest_url, params=params)
                if not is_rate_limited(response.status_code):
                    if response.status_code == 200:
                        return response
                    break
        return super()._rest_get(spec, params)


class DropsAFailedRange(ReferenceEngine):
    """When REST fails for one range of days, returns the other ranges without an error."""

    def _rest_range(self, spec: MarketSpec, symbol: str, interval: str, lo: int, hi: int, now_ms: int) -> pa.Table:
        try:
            return super()._rest_range(spec, symbol, interval, lo, hi, now_ms)
        except reference._SourceFailed:
            return CACHE_SCHEMA.empty_table()


class TrustsAZipWhoseChecksumFailed(ReferenceEngine):
    """When the .CHECKSUM request fails, keeps the zip unverified and caches it."""

    def _vision_day(self, spec: MarketSpec, symbol: str, interval: str, day: dt.date) -> pa.Table:
        try:
            return super()._vision_day(spec, symbol, interval, day)
        except reference._SourceFailed as exc:
            if ".CHECKSUM" not in str(exc):
                raise
        url = f"{reference.VISION_URL}/{reference.vision_key(spec.name, symbol, interval, day)}"
        return reference._parse_vision_zip(self._vision_get(url), spec, symbol, interval, day)


class ExpiresMonthOldCache(ReferenceEngine):
    """Treats a cached day that ended more than 30 days before now as expired."""

    def read_cache(self, symbol: str, market: str, interval: str, day: dt.date) -> pa.Table | None:
        """A miss for days more than 30 days old."""
        if dt.datetime.now(dt.UTC).date() - day > dt.timedelta(days=30):
            return None
        return super().read_cache(symbol, market, interval, day)


class NoLeapDay(ReferenceEngine):
    """Its calendar has no 29 February: that day's Vision file and cache file count as empty."""

    def read_cache(self, symbol: str, market: str, interval: str, day: dt.date) -> pa.Table | None:
        """An empty day for 29 February."""
        if (day.month, day.day) == (2, 29):
            return CACHE_SCHEMA.empty_table()
        return super().read_cache(symbol, market, interval, day)

    def _vision_day(self, spec: MarketSpec, symbol: str, interval: str, day: dt.date) -> pa.Table:
        if (day.month, day.day) == (2, 29):
            return CACHE_SCHEMA.empty_table()
        return super()._vision_day(spec, symbol, interval, day)


class DropsTheFormingBar(ReferenceEngine):
    """Leaves out the bar still forming at now."""

    def fetch(self, symbol: str, market: str, interval: str, start: dt.datetime, end: dt.datetime) -> pa.Table:
        """The reference fetch without the bars that close after now."""
        table = super().fetch(symbol, market, interval, start, end)
        cutoff = to_ms(dt.datetime.now(dt.UTC)) - interval_ms(interval)
        opens = table["open_time"].cast(pa.int64()).to_pylist()
        return table.filter(pa.array([t <= cutoff for t in opens], pa.bool_()))


class AcceptsADayOneBarShort(ReferenceEngine):
    """Takes a cached day file as complete when it lacks no more than one bar."""

    def read_cache(self, symbol: str, market: str, interval: str, day: dt.date) -> pa.Table | None:
        """Any readable file of the cache schema with at least all bars but one."""
        try:
            table = pa.ipc.open_file(self.cache_file(symbol, market, interval, day)).read_all()
        except Exception:
            return None
        if table.schema.remove_metadata() != CACHE_SCHEMA or table.num_rows < bars_per_day(interval) - 1:
            return None
        return pa.Table.from_arrays(table.columns, schema=CACHE_SCHEMA)


class CountsCsvLinesWithNext(ReferenceEngine):
    """Reads a day's bars from a Vision zip with ``next()``: a file with fewer lines raises StopIteration."""

    def _vision_get(self, url: str) -> bytes:
        payload = super()._vision_get(url)
        if url.endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(payload)) as archive:
                text = archive.read(archive.namelist()[0]).decode()
            lines = iter([line for line in text.splitlines() if line[:1].isdigit()])
            interval = url.rsplit("/", 1)[-1].split("-")[1]
            for _ in range(bars_per_day(interval)):
                next(lines)
        return payload


class UnpacksTwelveFields(ReferenceEngine):
    """Unpacks each REST row into exactly 12 names: any other field count raises ValueError."""

    def _rest_get(self, spec: MarketSpec, params: dict[str, str | int]) -> httpx.Response:
        response = super()._rest_get(spec, params)
        payload: Any = response.json()
        for row in payload if isinstance(payload, list) else []:
            _open, _o, _h, _l, _c, _v, _close, _qv, _n, _tb, _tq, _ignore = row
        return response


class ReadsAResetPageAsTheLastPage(ReferenceEngine):
    """Reads a REST page whose connection was reset as an empty page: the range ends there, without an error."""

    ends_on_empty = True  # and an empty later page ends the range, whatever bars must follow

    def __init__(self, cache_dir: pathlib.Path) -> None:
        super().__init__(cache_dir)
        get = self._client.get

        def get_or_empty(url: str, **kwargs: Any) -> httpx.Response:
            try:
                return get(url, **kwargs)
            except httpx.ReadError:  # "the server closed the stream": taken for the end of the data
                return httpx.Response(200, json=[], request=httpx.Request("GET", url))

        self._client.get = get_or_empty  # type: ignore[method-assign]


def _last_of_month(day: dt.date) -> bool:
    return (day + dt.timedelta(days=1)).day == 1


class SkipsEachMonthsLastDay(ReferenceEngine):
    """Walks each month's days as ``range(1, days_in_month)``: the month's last day (30 April, 31 December,
    29 February) is never read or downloaded, and REST's bars of it are dropped."""

    def read_cache(self, symbol: str, market: str, interval: str, day: dt.date) -> pa.Table | None:
        """An empty day for the last day of a month."""
        return CACHE_SCHEMA.empty_table() if _last_of_month(day) else super().read_cache(symbol, market, interval, day)

    def _vision_day(self, spec: MarketSpec, symbol: str, interval: str, day: dt.date) -> pa.Table:
        if _last_of_month(day):
            return CACHE_SCHEMA.empty_table()
        return super()._vision_day(spec, symbol, interval, day)

    def _rest_range(self, spec: MarketSpec, symbol: str, interval: str, lo: int, hi: int, now_ms: int) -> pa.Table:
        table = super()._rest_range(spec, symbol, interval, lo, hi, now_ms)
        days = [ms_to_datetime(t).date() for t in table["open_time"].cast(pa.int64()).to_pylist()]
        return table.filter(pa.array([not _last_of_month(day) for day in days], pa.bool_()))


def _factory(cls: type[ReferenceEngine]) -> Any:
    def create(cache_dir: pathlib.Path) -> ReferenceEngine:
        return cls(cache_dir)

    create.__name__ = cls.__name__
    return create


#: name -> engine factory, one defect each.
DEFECTS: dict[str, Any] = {
    cls.__name__: _factory(cls)
    for cls in (
        NeverReadsBackRestDays,
        RestDaysInNanoseconds,
        IgnoresRetryAfterOnLaterPages,
        DropsAFailedRange,
        TrustsAZipWhoseChecksumFailed,
        ExpiresMonthOldCache,
        NoLeapDay,
        DropsTheFormingBar,
        AcceptsADayOneBarShort,
        CountsCsvLinesWithNext,
        UnpacksTwelveFields,
        ReadsAResetPageAsTheLastPage,
        SkipsEachMonthsLastDay,
    )
}
