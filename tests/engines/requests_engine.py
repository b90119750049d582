"""An FCP engine on ``requests`` (as python-binance, binance-connector and ccxt's sync client are).

Per UTC day: the Arrow day cache (``fcp_parts.DayCache``), then Vision over HTTPS (zip, then ``.CHECKSUM``,
one attempt each) for days that ended 48 h ago, then REST: consecutive missing days merged into one range,
paged with ``limit=max_limit`` and never beyond now. Connection errors, timeouts, 5xx and malformed pages
are retried twice (backoff 1 s, 2 s); 429/418 raise :class:`RateLimitError` at once. Old complete days are
cached, whichever source served them.
"""

from __future__ import annotations

import datetime as dt
import pathlib
import time

import pyarrow as pa
import requests

from pytest_fcp.core.markets import MarketSpec, day_bounds_ms, interval_ms, market_spec, vision_key
from tests.engines.fcp_parts import (
    DataSourceError,
    DayCache,
    RateLimitError,
    SourceFailed,
    ceil_ms,
    day_slice,
    days_between,
    is_old,
    join,
    rest_rows,
    rows_table,
    vision_table,
)

__all__ = ["DataSourceError", "RateLimitError", "RequestsEngine", "create"]

VISION = "https://data.binance.vision"
RETRIES = 2
TIMEOUT = (5.0, 30.0)


def create(cache_dir: pathlib.Path) -> RequestsEngine:
    """Engine factory."""
    return RequestsEngine(cache_dir)


class RequestsEngine:
    """Cache -> Vision -> REST over one ``requests.Session``."""

    def __init__(self, cache_dir: pathlib.Path) -> None:
        self.cache = DayCache(cache_dir)
        self.session = requests.Session()

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

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
        lo, hi = ceil_ms(start), ceil_ms(end)
        now_ms = ceil_ms(dt.datetime.now(dt.UTC))
        parts: list[tuple[pa.Table, str]] = []
        missing: dict[dt.date, str] = {}
        for day in days_between(lo, hi):
            table = self.cache.read(symbol, market, interval, day)
            if table is not None:
                parts.append((table, "cache"))
            elif not is_old(day, now_ms):
                missing[day] = "too recent for Vision"
            else:
                try:
                    table = self._vision(spec, symbol, interval, day)
                except SourceFailed as exc:
                    missing[day] = f"vision: {exc}"
                else:
                    self.cache.keep(symbol, market, interval, day, table, now_ms)
                    parts.append((table, "vision"))
        for run in _runs(sorted(missing)):
            first, last = max(lo, day_bounds_ms(run[0])[0]), min(hi, day_bounds_ms(run[-1])[1])
            try:
                table = self._rest(spec, symbol, interval, first, last, now_ms)
            except SourceFailed as exc:
                said = "; ".join(f"{day}: {missing[day]}" for day in run)
                raise DataSourceError(f"{symbol} {market} {interval}: {said}; rest: {exc}") from exc
            for day in run:  # days the request covered whole are cacheable too
                self.cache.keep(symbol, market, interval, day, day_slice(table, day), now_ms)
            parts.append((table, "rest"))
        return join(parts, lo, hi)

    def _vision_get(self, url: str) -> bytes:
        try:
            response = self.session.get(url, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise SourceFailed(type(exc).__name__) from exc
        if response.status_code != 200:
            raise SourceFailed(f"HTTP {response.status_code} for {url.rsplit('/', 1)[-1]}")
        return response.content

    def _vision(self, spec: MarketSpec, symbol: str, interval: str, day: dt.date) -> pa.Table:
        url = f"{VISION}/{vision_key(spec.name, symbol, interval, day)}"
        payload = self._vision_get(url)
        return vision_table(payload, self._vision_get(url + ".CHECKSUM"), symbol, interval, day)

    def _page(self, spec: MarketSpec, params: dict[str, str | int]) -> list[tuple[int, list[float]]]:
        problem = ""
        for attempt in range(RETRIES + 1):
            if attempt:
                time.sleep(2.0 ** (attempt - 1))
            try:
                response = self.session.get(spec.rest_url, params=params, timeout=TIMEOUT)
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = type(exc).__name__
                continue
            if response.status_code in (418, 429):
                raise RateLimitError(
                    f"HTTP {response.status_code} from REST; Retry-After {response.headers.get('Retry-After', '?')} s"
                )
            if response.status_code >= 500:
                problem = f"HTTP {response.status_code}"
                continue
            if response.status_code != 200:
                raise SourceFailed(f"HTTP {response.status_code}: {response.text[:200]}")
            try:
                return rest_rows(response.json())
            except (ValueError, SourceFailed) as exc:  # requests' JSONDecodeError is a ValueError
                problem = f"malformed answer ({type(exc).__name__})"
        raise SourceFailed(f"{problem} after {RETRIES + 1} attempts")

    def _rest(self, spec: MarketSpec, symbol: str, interval: str, lo: int, hi: int, now_ms: int) -> pa.Table:
        last, step = min(hi - 1, now_ms), interval_ms(interval)
        bars: dict[int, list[float]] = {}
        cursor = lo
        while cursor <= last:
            params = {"symbol": symbol, "interval": interval, "startTime": cursor, "endTime": last}
            rows = [row for row in self._page(spec, params | {"limit": spec.max_limit}) if cursor <= row[0] <= last]
            for open_ms, values in rows:
                bars.setdefault(open_ms, values)
            following = -(-cursor // step) * step
            if not rows and bars and following <= last and following + step <= now_ms:
                raise SourceFailed("empty page although closed bars must follow the previous page")
            if not rows or max(r[0] for r in rows) + step > last:
                break
            cursor = max(r[0] for r in rows) + 1  # a short page is not the end: ask again after it
        first_bar = -(-lo // step) * step
        if not bars and first_bar + step <= min(last + 1, now_ms):
            raise SourceFailed("empty answer although closed bars must exist")
        return rows_table(bars)


def _runs(days: list[dt.date]) -> list[list[dt.date]]:
    runs: list[list[dt.date]] = []
    for day in days:
        if runs and (day - runs[-1][-1]).days == 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs
