"""The reference engine fetching each UTC day in a thread pool of its own (as ckvd >= 4.4.1 fetches Vision
ranges in parallel): its requests are made in pool threads, not in the thread that called ``fetch``."""

from __future__ import annotations

import datetime as dt
import pathlib
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.compute as pc

from pytest_fcp.core.schemas import CACHE_SCHEMA
from pytest_fcp.engines.reference import ReferenceEngine


class PooledEngine(ReferenceEngine):
    """Each day of a fetch asked in a pool thread; the pieces joined in order."""

    def fetch(self, symbol: str, market: str, interval: str, start: dt.datetime, end: dt.datetime) -> pa.Table:
        """The reference fetch, day by day, in a pool of two threads."""
        edges = [start]
        day = dt.datetime.combine(start.date(), dt.time(), dt.UTC) + dt.timedelta(days=1)
        while day < end:
            edges.append(day)
            day += dt.timedelta(days=1)
        edges.append(end)
        parent = super()
        with ThreadPoolExecutor(max_workers=2) as pool:
            parts = list(pool.map(lambda a, b: parent.fetch(symbol, market, interval, a, b), edges[:-1], edges[1:]))
        return pa.concat_tables(parts)


def create(cache_dir: pathlib.Path) -> PooledEngine:
    """A pooled engine on ``cache_dir``."""
    return PooledEngine(cache_dir)


class CachingYoungEngine(PooledEngine):
    """A planted defect: days younger than 48 h are cached too (whatever part of them was fetched)."""

    def fetch(self, symbol: str, market: str, interval: str, start: dt.datetime, end: dt.datetime) -> pa.Table:
        """The pooled fetch; then every day it returned is written to the cache."""
        table = super().fetch(symbol, market, interval, start, end)
        if table.num_rows:
            times = pc.cast(table["open_time"], pa.int64())
            for day in sorted({t // 86_400_000 for t in times.to_pylist()}):
                inside = pc.equal(pc.divide(times, 86_400_000), day)
                when = dt.date(1970, 1, 1) + dt.timedelta(days=day)
                self.write_cache(symbol, market, interval, when, table.filter(inside).select(CACHE_SCHEMA.names))
        return table


def create_caching_young(cache_dir: pathlib.Path) -> CachingYoungEngine:
    """The planted young-day cacher on ``cache_dir``."""
    return CachingYoungEngine(cache_dir)
