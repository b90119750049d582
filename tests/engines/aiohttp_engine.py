"""An FCP engine on aiohttp, as async engines are built: ``fetch`` runs one event loop per call.

Per UTC day: the Arrow day cache (``fcp_parts.DayCache``); then Vision over HTTPS for every missing day
that ended 48 h ago, **concurrently** (the ``.CHECKSUM`` first, then the zip; one attempt each); then REST,
one range per missing day, paged with ``limit=max_limit`` up to now. Connection errors, timeouts and 5xx
are retried twice with ``asyncio.sleep`` backoff (1 s, 2 s); a malformed page fails REST at once; 429/418
raise :class:`RateLimitError` at once. Old complete days are cached, whichever source served them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import pathlib

import aiohttp
import pyarrow as pa

from pytest_fcp.core.markets import MarketSpec, day_bounds_ms, interval_ms, market_spec, vision_key
from tests.engines.fcp_parts import (
    DataSourceError,
    DayCache,
    RateLimitError,
    SourceFailed,
    ceil_ms,
    days_between,
    is_old,
    join,
    rest_rows,
    rows_table,
    vision_table,
)

__all__ = ["AiohttpEngine", "DataSourceError", "RateLimitError", "create"]

VISION = "https://data.binance.vision"
RETRIES = 2
TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=5, sock_read=30)


def create(cache_dir: pathlib.Path) -> AiohttpEngine:
    """Engine factory."""
    return AiohttpEngine(cache_dir)


class AiohttpEngine:
    """Cache -> Vision -> REST with an ``aiohttp.ClientSession`` per fetch."""

    def __init__(self, cache_dir: pathlib.Path) -> None:
        self.cache = DayCache(cache_dir)

    def cache_file(self, symbol: str, market: str, interval: str, day: dt.date) -> pathlib.Path:
        """Where ``day`` is cached."""
        return self.cache.path(symbol, market, interval, day)

    def write_cache(self, symbol: str, market: str, interval: str, day: dt.date, table: pa.Table) -> None:
        """Cache ``day``."""
        self.cache.write(symbol, market, interval, day, table)

    def fetch(self, symbol: str, market: str, interval: str, start: dt.datetime, end: dt.datetime) -> pa.Table:
        """Bars with ``start <= open_time < end``: cache, then Vision, then REST, else ``DataSourceError``."""
        spec = market_spec(market)
        if interval not in spec.intervals:
            raise ValueError(f"{market} has no {interval} klines")
        return asyncio.run(self._fetch(spec, symbol, interval, ceil_ms(start), ceil_ms(end)))

    async def _fetch(self, spec: MarketSpec, symbol: str, interval: str, lo: int, hi: int) -> pa.Table:
        now_ms = ceil_ms(dt.datetime.now(dt.UTC))
        parts: list[tuple[pa.Table, str]] = []
        missing: dict[dt.date, str] = {}
        for day in days_between(lo, hi):
            table = self.cache.read(symbol, spec.name, interval, day)
            if table is not None:
                parts.append((table, "cache"))
            else:
                missing[day] = "cache miss"
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            old = [day for day in missing if is_old(day, now_ms)]
            found = await asyncio.gather(
                *(self._vision(session, spec, symbol, interval, day) for day in old), return_exceptions=True
            )
            for day, got in zip(old, found, strict=True):
                if isinstance(got, SourceFailed):
                    missing[day] = f"vision: {got}"
                elif isinstance(got, BaseException):
                    raise got
                else:
                    self.cache.keep(symbol, spec.name, interval, day, got, now_ms)
                    parts.append((got, "vision"))
                    del missing[day]
            for day in sorted(missing):
                first, last = max(lo, day_bounds_ms(day)[0]), min(hi, day_bounds_ms(day)[1])
                try:
                    table = await self._rest(session, spec, symbol, interval, first, last, now_ms)
                except SourceFailed as exc:
                    raise DataSourceError(
                        f"{symbol} {spec.name} {interval} {day}: {missing[day]}; rest: {exc}"
                    ) from exc
                self.cache.keep(symbol, spec.name, interval, day, table, now_ms)
                parts.append((table, "rest"))
        return join(parts, lo, hi)

    async def _get(self, session: aiohttp.ClientSession, url: str) -> bytes:
        try:
            async with session.get(url) as response:
                if response.status != 200:
                    raise SourceFailed(f"HTTP {response.status} for {url.rsplit('/', 1)[-1]}")
                return await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SourceFailed(type(exc).__name__) from exc

    async def _vision(
        self, session: aiohttp.ClientSession, spec: MarketSpec, symbol: str, interval: str, day: dt.date
    ) -> pa.Table:
        url = f"{VISION}/{vision_key(spec.name, symbol, interval, day)}"
        checksum = await self._get(session, url + ".CHECKSUM")
        return vision_table(await self._get(session, url), checksum, symbol, interval, day)

    async def _page(
        self, session: aiohttp.ClientSession, spec: MarketSpec, params: dict[str, str]
    ) -> list[tuple[int, list[float]]]:
        problem = ""
        for attempt in range(RETRIES + 1):
            if attempt:
                await asyncio.sleep(2.0 ** (attempt - 1))
            try:
                async with session.get(spec.rest_url, params=params) as response:
                    status, retry_after = response.status, response.headers.get("Retry-After", "?")
                    body = await response.read()
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                problem = type(exc).__name__
                continue
            if status in (418, 429):
                raise RateLimitError(f"HTTP {status} from REST; Retry-After {retry_after} s")
            if status >= 500:
                problem = f"HTTP {status}"
                continue
            if status != 200:
                raise SourceFailed(f"HTTP {status}: {body[:200]!r}")
            try:
                return rest_rows(json.loads(body))
            except ValueError as exc:
                raise SourceFailed(f"malformed answer ({exc})") from exc
        raise SourceFailed(f"{problem} after {RETRIES + 1} attempts")

    async def _rest(
        self, session: aiohttp.ClientSession, spec: MarketSpec, symbol: str, interval: str, lo: int, hi: int, now: int
    ) -> pa.Table:
        last, step = min(hi - 1, now), interval_ms(interval)
        bars: dict[int, list[float]] = {}
        cursor = lo
        while cursor <= last:
            params = {"symbol": symbol, "interval": interval, "startTime": str(cursor), "endTime": str(last)}
            page = await self._page(session, spec, params | {"limit": str(spec.max_limit)})
            rows = [row for row in page if cursor <= row[0] <= last]
            for open_ms, values in rows:
                bars.setdefault(open_ms, values)
            following = -(-cursor // step) * step
            if not rows and bars and following <= last and following + step <= now:
                raise SourceFailed("empty page although closed bars must follow the previous page")
            if not rows or max(r[0] for r in rows) + step > last:
                break
            cursor = max(r[0] for r in rows) + 1  # a short page is not the end: ask again after it
        first_bar = -(-lo // step) * step
        if not bars and first_bar + step <= min(last + 1, now):
            raise SourceFailed("empty answer although closed bars must exist")
        return rows_table(bars)
