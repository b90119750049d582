"""Binance market conventions shared by the simulated world, the engines and the verdicts.

One place holds what differs between spot, USDT-margined and COIN-margined futures: where Vision keeps
the daily files, which REST host and path serve klines, the page limits, and the file conventions; and
what they share: Vision's host and its checksum objects.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = [
    "CHECKSUM_SUFFIX",
    "DAY_MS",
    "DEFAULT_PAGE_LIMIT",
    "INTERVALS",
    "LISTED_SINCE",
    "MARKETS",
    "MAX_PAGE_LIMIT",
    "REST_HOSTS",
    "VISION_HOST",
    "VISION_URL",
    "MarketSpec",
    "bars_per_day",
    "checksum_key",
    "day_bounds_ms",
    "day_of_ms",
    "days_between",
    "default_symbol",
    "interval_ms",
    "market_spec",
    "ms_to_datetime",
    "to_ms",
    "vision_file_name",
    "vision_key",
]

DAY_MS = 86_400_000

#: Binance Vision's host, which is also its S3 bucket's name; :data:`VISION_URL` is its HTTPS root.
VISION_HOST = "data.binance.vision"
VISION_URL = f"https://{VISION_HOST}"
#: Vision publishes each zip with a checksum object: the zip's key plus this suffix (see :func:`checksum_key`).
CHECKSUM_SUFFIX = ".CHECKSUM"

#: Intervals a daily Vision file can hold (Binance spelling -> milliseconds). ``1s`` is spot only.
INTERVALS: dict[str, int] = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}


@dataclass(frozen=True)
class MarketSpec:
    """How one Binance market is laid out on Vision and REST."""

    name: str
    vision_prefix: str
    rest_host: str
    rest_path: str
    max_limit: int
    csv_header: bool
    micros_from: dt.date | None
    price_decimals: int
    intervals: tuple[str, ...]

    @property
    def rest_url(self) -> str:
        """The full klines endpoint URL on this market's REST host."""
        return f"https://{self.rest_host}{self.rest_path}"


_FUTURES_INTERVALS = tuple(i for i in INTERVALS if i != "1s")

MARKETS: dict[str, MarketSpec] = {
    "spot": MarketSpec(
        name="spot",
        vision_prefix="data/spot",
        rest_host="api.binance.com",
        rest_path="/api/v3/klines",
        max_limit=1000,
        csv_header=False,
        micros_from=dt.date(2025, 1, 1),
        price_decimals=2,
        intervals=tuple(INTERVALS),
    ),
    "futures_usdt": MarketSpec(
        name="futures_usdt",
        vision_prefix="data/futures/um",
        rest_host="fapi.binance.com",
        rest_path="/fapi/v1/klines",
        max_limit=1500,
        csv_header=True,
        micros_from=None,
        price_decimals=1,
        intervals=_FUTURES_INTERVALS,
    ),
    "futures_coin": MarketSpec(
        name="futures_coin",
        vision_prefix="data/futures/cm",
        rest_host="dapi.binance.com",
        rest_path="/dapi/v1/klines",
        max_limit=1500,
        csv_header=True,
        micros_from=None,
        price_decimals=1,
        intervals=_FUTURES_INTERVALS,
    ),
}


#: The REST hosts of the markets, in :data:`MARKETS` order.
REST_HOSTS = tuple(spec.rest_host for spec in MARKETS.values())
#: The largest klines page any market serves (a page limit's upper bound in any market).
MAX_PAGE_LIMIT = max(spec.max_limit for spec in MARKETS.values())
#: The klines page REST serves when a request names no ``limit`` (every market).
DEFAULT_PAGE_LIMIT = 500


def market_spec(market: str) -> MarketSpec:
    """The spec of ``market``, or a ``ValueError`` that lists the allowed names."""
    try:
        return MARKETS[market]
    except KeyError:
        raise ValueError(f"unknown market {market!r}; expected one of {', '.join(MARKETS)}") from None


def default_symbol(market: str) -> str:
    """The symbol a world trades when none is named (COIN-M futures trade ``BTCUSD_PERP``)."""
    return "BTCUSD_PERP" if market == "futures_coin" else "BTCUSDT"


def interval_ms(interval: str) -> int:
    """Length of ``interval`` in milliseconds, or a ``ValueError`` that lists the allowed spellings."""
    try:
        return INTERVALS[interval]
    except KeyError:
        raise ValueError(f"unknown interval {interval!r}; expected one of {', '.join(INTERVALS)}") from None


def bars_per_day(interval: str) -> int:
    """How many bars of ``interval`` fit in one UTC day."""
    return DAY_MS // interval_ms(interval)


def to_ms(moment: dt.datetime) -> int:
    """Milliseconds since the epoch of an aware datetime (naive datetimes are refused)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: FCP times must be timezone-aware (UTC)")
    return int(moment.timestamp() * 1000)


def ms_to_datetime(ms: int) -> dt.datetime:
    """The aware UTC datetime of milliseconds since the epoch."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def day_of_ms(ms: int) -> dt.date:
    """The UTC date that a millisecond timestamp falls on."""
    return dt.date.fromordinal(dt.date(1970, 1, 1).toordinal() + ms // DAY_MS)


def day_bounds_ms(day: dt.date) -> tuple[int, int]:
    """``[start, end)`` of a UTC day in milliseconds."""
    start = (day.toordinal() - dt.date(1970, 1, 1).toordinal()) * DAY_MS
    return start, start + DAY_MS


#: The day the simulated market lists every symbol: no bar opens before it (the synthetic truth's first day).
LISTED_SINCE = dt.date(2019, 1, 1)


def days_between(start: dt.datetime, end: dt.datetime) -> list[dt.date]:
    """The UTC days that ``[start, end)`` touches (none when it is empty: ``start >= end``)."""
    if start >= end:
        return []
    first = day_of_ms(to_ms(start))
    last = day_of_ms(to_ms(end) - 1)
    return [dt.date.fromordinal(o) for o in range(first.toordinal(), last.toordinal() + 1)]


def vision_file_name(symbol: str, interval: str, day: dt.date) -> str:
    """File name of a daily klines zip on Vision (``SYMBOL-INTERVAL-YYYY-MM-DD.zip``)."""
    return f"{symbol}-{interval}-{day.isoformat()}.zip"


def vision_key(market: str, symbol: str, interval: str, day: dt.date) -> str:
    """S3 key of the daily klines zip (:func:`checksum_key` of it is its checksum object's)."""
    spec = market_spec(market)
    return f"{spec.vision_prefix}/daily/klines/{symbol}/{interval}/{vision_file_name(symbol, interval, day)}"


def checksum_key(zip_key: str) -> str:
    """The key (or URL) of a zip's checksum object: the zip's plus :data:`CHECKSUM_SUFFIX`."""
    return zip_key + CHECKSUM_SUFFIX
