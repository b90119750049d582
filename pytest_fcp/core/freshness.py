"""When a UTC day is old enough for Binance Vision (and for the cache), and when Vision publishes it."""

from __future__ import annotations

import datetime as dt

__all__ = [
    "DEFAULT_PUBLISH_DELAY",
    "FRESHNESS",
    "FRESHNESS_HOURS",
    "FRESHNESS_MS",
    "day_end",
    "is_old",
    "last_old_day",
]

#: A day is on Vision, and may be cached, once it ended this long before "now" (approximate: scenarios
#: keep an hour or more clear of the edge).
FRESHNESS = dt.timedelta(hours=48)
FRESHNESS_MS = int(FRESHNESS.total_seconds() * 1000)
#: :data:`FRESHNESS` in whole hours, for messages.
FRESHNESS_HOURS = int(FRESHNESS.total_seconds() // 3600)

#: How long after a day closes the simulated Vision publishes its file (the real one: within about a day).
DEFAULT_PUBLISH_DELAY = dt.timedelta(hours=24)


def day_end(day: dt.date) -> dt.datetime:
    """The end of UTC ``day`` (the next midnight), aware."""
    return dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(days=1)


def is_old(day: dt.date, now: dt.datetime) -> bool:
    """Whether ``day`` ended at least :data:`FRESHNESS` before ``now``: Vision-eligible and cacheable."""
    return day_end(day) <= now - FRESHNESS


def last_old_day(now: dt.datetime) -> dt.date:
    """The last UTC day that ended at least :data:`FRESHNESS` before ``now``."""
    return (now - FRESHNESS).astimezone(dt.UTC).date() - dt.timedelta(days=1)
