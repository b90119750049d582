"""Hypothesis strategies that build FCP :class:`~pytest_fcp.scenarios.model.Scenario` objects.

Every scenario is valid by construction: it passes the catalog loader's checks
(:func:`pytest_fcp.scenarios.loader.parse_scenario`), its requests start before *now*, and every requested
day ends at least an hour away from the 48 h freshness edge and the Vision publication edge (``now`` is
always between 01:15 and 22:45 UTC, and day ends are midnights). Expectations are left empty: the default
contract checks (:func:`pytest_fcp.contract.judge`) are the oracle, deciding per day what is certainly,
possibly or not obtainable.

Building blocks, each usable alone:

* :func:`worlds` - now, market, symbol, interval (1h / 4h / 1d mostly, 1m rarely), sometimes a local time zone;
* :func:`requests` - one bar up to a month, aligned or not, often straddling the 48 h edge; sometimes a second
  request of another series, an empty request (start == end), or a clock step (``at``) of whole days;
* :func:`cache_states` - which requested old days are cached: valid, or broken by a ``cache.*`` fault
  (partial days with their holes at the end, start or middle); rarely the directory cannot be written;
* :func:`fault_schedules` - any mix of Vision and REST faults with random scopes (days, attempts, door) and
  parameters (Retry-After as seconds or as an HTTP date);
* :func:`scenarios` - all of them together.

Everything shrinks towards "fewer faults, fewer days, simpler scopes": a shrunk counterexample names only
what the engine trips on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import strategies as st

from pytest_fcp.core.freshness import is_old
from pytest_fcp.core.markets import MARKETS, days_between, default_symbol, interval_ms
from pytest_fcp.faults import FAULTS, Fault, fault
from pytest_fcp.faults.rules import setup_conflicts, unreached
from pytest_fcp.scenarios.model import Expect, Request, Scenario

__all__ = [
    "CACHE_FAULTS",
    "DIRECTORY_FAULTS",
    "EXCLUDED_FAULTS",
    "HEADLINE_FAULTS",
    "LOCAL_ZONES",
    "NETWORK_FAULTS",
    "WIDE_EXCLUDED",
    "DrawnWorld",
    "cache_states",
    "fault_schedules",
    "requests",
    "scenarios",
    "worlds",
]

BASE_DAY = dt.date(2024, 1, 10)
#: Faults the default checks cannot judge (``cache.stale_day`` is a valid-looking file with other values:
#: no engine can tell; the catalog skips the row checks for it).
#: The cache faults that reach native readers are left to the catalog (``cache_corruption``, ``deaths``) for now:
#: ``cache.short_body`` makes a polars reader panic (a BaseException) and a file cut while it is read may kill a
#: memory-mapping reader with SIGBUS, neither yet a verdict of its own; drawing them would also move every
#: seed's draws.
EXCLUDED_FAULTS = frozenset({"cache.stale_day", "cache.short_body", "cache.truncated_on_read", "cache.mixed_writers"})
NETWORK_FAULTS: tuple[str, ...] = tuple(k for k, v in FAULTS.items() if v.source in ("vision", "rest"))
CACHE_FAULTS: tuple[str, ...] = tuple(
    k for k, v in FAULTS.items() if v.source == "cache" and k not in EXCLUDED_FAULTS and v.needs_days
)
#: Cache faults on the whole directory (nothing can be written), drawn rarely.
DIRECTORY_FAULTS: tuple[str, ...] = tuple(k for k, v in FAULTS.items() if v.source == "cache" and not v.needs_days)
#: Local time zones the engine may run in (``None``: UTC, as most often).
LOCAL_ZONES: tuple[str | None, ...] = (None,) * 5 + ("Asia/Tokyo", "America/New_York", "Asia/Kolkata")
#: Other symbols a second request may ask for, per market.
OTHER_SYMBOLS = {"spot": "ETHUSDT", "futures_usdt": "ETHUSDT", "futures_coin": "ETHUSD_PERP"}
#: The classic failure modes; half of the generated faults come from this list, half from all of them.
HEADLINE_FAULTS: tuple[str, ...] = (
    "vision.http403",
    "rest.http429",
    "rest.http503",
    "vision.checksum_mismatch",
    "vision.http404",
    "rest.connect_error",
)
_MAIN_INTERVALS = ("1h", "4h", "1d")
#: Intervals a wide draw leaves out: a day of 1s bars is 86,400 rows, and the requests drawn span days.
WIDE_EXCLUDED = frozenset({"1s"})
# built once: a strategy built per draw is checked again (emptiness, reuse) on every draw
_CACHE_STATE = st.one_of(st.none(), st.just("valid"), st.sampled_from(CACHE_FAULTS))
_FAULT_ID = st.one_of(st.sampled_from(HEADLINE_FAULTS), st.sampled_from(NETWORK_FAULTS))
_ATTEMPT_MODE = st.sampled_from(("always", "always", "first", "nth"))


@dataclass(frozen=True)
class DrawnWorld:
    """The world part of a scenario."""

    now: dt.datetime
    market: str = "spot"
    symbol: str = "BTCUSDT"
    interval: str = "1h"
    local_tz: str | None = None


@st.composite
def worlds(draw: st.DrawFn, *, markets: Sequence[str] | None = None, wide: bool = False) -> DrawnWorld:
    """A world: ``now`` within ~1.5 years of 2024-01-10 (shrinks to it), 01:15-22:45 UTC; market; interval.

    ``now`` never lies within 75 minutes of midnight, so no day end can come near the 48 h or 24 h edges.
    ``wide``: one world in three takes any interval of its market from a minute up (the coverage map's
    ``fault x interval`` and ``shape x interval`` rows), not only 1h / 4h / 1d and, rarely, 1m.
    """
    offset = draw(st.integers(min_value=-200, max_value=400))
    minute = 12 * 60 + draw(st.integers(min_value=-645, max_value=645))  # 01:15 .. 22:45, shrinks to noon
    now = _midnight(BASE_DAY + dt.timedelta(days=offset)) + dt.timedelta(minutes=minute)
    market = draw(st.sampled_from(tuple(markets or MARKETS)))
    if wide and draw(st.integers(0, 2)) == 2:
        interval = draw(st.sampled_from(tuple(i for i in MARKETS[market].intervals if i not in WIDE_EXCLUDED)))
    elif draw(st.integers(0, 19)) == 19 and "1m" in MARKETS[market].intervals:
        interval = "1m"
    else:
        interval = draw(st.sampled_from(_MAIN_INTERVALS))
    return DrawnWorld(now, market, default_symbol(market), interval, draw(st.sampled_from(LOCAL_ZONES)))


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


@st.composite
def requests(draw: st.DrawFn, world: DrawnWorld, *, max_days: int = 7) -> tuple[Request, ...]:
    """One request (sometimes a second one, repeating it or not) within the last few weeks before ``now``.

    Lengths: one bar, some hours, or 1..``max_days`` days (rarely up to a month); starts at midnight, on a
    bar or unaligned; the end is clamped to ``now``. Ranges often straddle the 48 h edge.
    """
    reqs = draw(st.lists(_one_request(world, max_days), min_size=1, max_size=2))
    if len(reqs) == 1 and draw(st.integers(0, 9)) == 9:
        reqs.append(reqs[0])  # the same request again: the second is a cache hit
    extra = draw(st.sampled_from(("none",) * 17 + ("series", "empty", "step")))
    if extra == "series":  # the same range of another symbol or interval, through the same engine
        other = draw(st.sampled_from(("symbol", "interval")))
        if other == "symbol":
            reqs.append(dataclasses.replace(reqs[0], symbol=OTHER_SYMBOLS[world.market]))
        else:
            interval = draw(st.sampled_from([i for i in _MAIN_INTERVALS if i != world.interval]))
            reqs.append(dataclasses.replace(reqs[0], interval=interval))
    elif extra == "empty":
        reqs.insert(0, Request(reqs[0].start, reqs[0].start))
    elif extra == "step":  # whole days later: the time of day, and so the distance to the edges, stays
        at = world.now + dt.timedelta(days=draw(st.integers(1, 3)))
        reqs.append(dataclasses.replace(reqs[-1], at=at))
    return tuple(reqs)


@st.composite
def _one_request(draw: st.DrawFn, world: DrawnWorld, max_days: int) -> Request:
    now, step = world.now, dt.timedelta(milliseconds=interval_ms(world.interval))
    small = world.interval == "1m"
    back = draw(st.sampled_from(range(6 if small else 20)))
    start_day = now.date() - dt.timedelta(days=back)
    align = draw(st.sampled_from(("midnight", "bar", "unaligned")))
    if align == "midnight":
        start = _midnight(start_day)
    elif align == "bar":
        bars = int(dt.timedelta(days=1) / step)
        start = _midnight(start_day) + step * draw(st.integers(0, max(0, bars - 1)))
    else:
        start = _midnight(start_day) + dt.timedelta(minutes=draw(st.integers(1, 24 * 60 - 1)))
    if start >= now:
        start = _midnight(start_day)
    length = draw(st.sampled_from(("days", "days", "bar", "hours")))
    if length == "bar":
        end = start + step
    elif length == "hours":
        end = start + dt.timedelta(hours=draw(st.integers(1, 30)))
    else:
        many = 2 if small else (31 if draw(st.integers(0, 15)) == 15 else max_days)
        end = _midnight(start.date()) + dt.timedelta(days=draw(st.sampled_from(range(1, many + 1))))
        if draw(st.integers(0, 3)) == 3:
            end += dt.timedelta(minutes=draw(st.integers(1, 24 * 60 - 1)))
    end = min(end, now)
    if end <= start:
        end = now
    return Request(start, end)


@st.composite
def cache_states(
    draw: st.DrawFn, days: Sequence[dt.date], now: dt.datetime
) -> tuple[tuple[dt.date, ...], tuple[Fault, ...]]:
    """The cache before the fetch: ``(cached_days, cache_faults)``.

    Each requested day that ended 48 h before ``now`` is missing (mostly), valid, or broken by one
    ``cache.*`` fault; rarely the whole cache directory is read-only.
    """
    cached: list[dt.date] = []
    broken: dict[str, list[dt.date]] = {}
    for day in sorted(set(days)):
        if not is_old(day, now):
            continue
        state = draw(_CACHE_STATE)
        if state == "valid":
            cached.append(day)
        elif state is not None:
            broken.setdefault(state, []).append(day)
    faults = [_cache_fault(draw, fid, d) for fid, d in broken.items()]
    if not cached and draw(st.integers(0, 24)) == 24:  # (a read-only directory cannot be seeded)
        faults.append(fault("cache.read_only_dir"))
    elif draw(st.integers(0, 24)) == 24:
        faults.append(fault("cache.write_fails", error=draw(st.sampled_from(("ENOSPC", "EIO")))))
    return tuple(cached), tuple(faults)


def _cache_fault(draw: st.DrawFn, fid: str, days: list[dt.date]) -> Fault:
    if fid == "cache.partial_day":
        return fault(fid, days=days, holes=draw(st.sampled_from(("end", "start", "middle"))))
    return fault(fid, days=days)


@st.composite
def _attempts(draw: st.DrawFn) -> str:
    mode = draw(_ATTEMPT_MODE)  # half the faults never recover
    return mode if mode == "always" else f"{mode}:{draw(st.integers(1, 3))}"


@st.composite
def _network_fault(
    draw: st.DrawFn, days: Sequence[dt.date], interval: str, symbols: Sequence[str], intervals: Sequence[str]
) -> Fault:
    fid = draw(_FAULT_ID)
    scope = None
    if days and draw(st.booleans()):
        scope = draw(st.lists(st.sampled_from(sorted(set(days))), min_size=1, max_size=3, unique=True))
    attempts = draw(_attempts())
    door = None
    if FAULTS[fid].source == "vision" and draw(st.integers(0, 9)) == 9:
        door = draw(st.sampled_from(("https", "s3")))
    params = {}
    # a file of the very series asked for would be no fault at all: the other file is of no requested series
    if fid == "vision.wrong_interval" and FAULTS[fid].params["other"] in {interval, *intervals}:
        params["other"] = next(i for i in ("1m", "1h", "4h", "1d", "2h") if i not in {interval, *intervals})
    if fid == "vision.wrong_symbol" and FAULTS[fid].params["other"] in symbols:
        params["other"] = next(s for s in ("ETHUSDT", "XRPUSDT") if s not in symbols)
    if "retry_after_format" in FAULTS[fid].params and draw(st.booleans()):
        params["retry_after_format"] = "http-date"
    return fault(fid, days=scope, attempts=attempts, door=door, **params)


def fault_schedules(
    days: Sequence[dt.date] = (),
    *,
    interval: str = "1h",
    max_faults: int = 3,
    symbols: Sequence[str] = (),
    intervals: Sequence[str] = (),
) -> st.SearchStrategy[tuple[Fault, ...]]:
    """Up to ``max_faults`` Vision / REST faults: any id, on every day or a subset of ``days``, with
    ``always`` / ``first:N`` / ``nth:N`` attempts and, rarely, one door (HTTPS or S3) only, in any order
    (when two faults hit the same request the first listed answers it; the oracle knows)."""
    fault_kinds = _network_fault(days, interval, tuple(symbols), tuple(intervals))
    return st.lists(fault_kinds, max_size=max_faults).map(tuple)


def _describe(world: DrawnWorld, reqs: Sequence[Request], faults: Sequence[Fault], cached: Sequence[dt.date]) -> str:
    spans = ", ".join(
        f"[{r.start:%Y-%m-%d %H:%M}, {r.end:%Y-%m-%d %H:%M})"
        + "".join(f" {v}" for v in (r.symbol, r.interval) if v)
        + (f" at {r.at:%Y-%m-%d %H:%M}" if r.at else "")
        for r in reqs
    )
    what = "; ".join(f.describe() for f in faults) or "no faults"
    held = ", ".join(d.isoformat() for d in cached) or "none"
    zone = f" (TZ {world.local_tz})" if world.local_tz else ""
    return f"fuzz: {world.market} {world.symbol} {world.interval}{zone} {spans}; cached {held}; {what}"


@st.composite
def scenarios(
    draw: st.DrawFn,
    *,
    max_days: int = 7,
    max_faults: int = 3,
    markets: Sequence[str] | None = None,
    wide: bool = False,
) -> Scenario:
    """A complete scenario: a world, its request(s), a cache state and a fault schedule.

    Expectations stay empty: the default contract checks judge it. ``wide``: see :func:`worlds`."""
    world = draw(worlds(markets=markets, wide=wide))
    reqs = draw(requests(world, max_days=max_days))
    days = sorted({d for r in reqs for d in days_between(r.start, r.end)})
    old = sorted({d for r in reqs if r.symbol is None and r.interval is None for d in days_between(r.start, r.end)})
    cached, cache_faults = draw(cache_states(old, world.now))
    symbols = sorted({world.symbol, *(r.symbol for r in reqs if r.symbol)})
    intervals = sorted({world.interval, *(r.interval for r in reqs if r.interval)})
    network = draw(
        fault_schedules(days, interval=world.interval, max_faults=max_faults, symbols=symbols, intervals=intervals)
    )
    faults = cache_faults + _kept(network, cache_faults, cached, world, reqs)
    description = _describe(world, reqs, faults, cached)
    name = "fuzz_" + hashlib.sha1(f"{world.now.isoformat()} {description}".encode()).hexdigest()[:10]
    return Scenario(
        name=name,
        description=description,
        now=world.now,
        requests=reqs,
        market=world.market,
        symbol=world.symbol,
        interval=world.interval,
        faults=faults,
        cached=cached,
        local_tz=world.local_tz,
        expect=Expect(),
        theme="fuzz",
    )


def _kept(
    network: Sequence[Fault],
    cache_faults: tuple[Fault, ...],
    cached: Sequence[dt.date],
    world: DrawnWorld,
    reqs: Sequence[Request],
) -> tuple[Fault, ...]:
    """The network faults the loader keeps, in order: one that never fires (an earlier fault always answers
    for it, or it names only cached old days) is dropped, as the loader would refuse it."""
    series = (world.symbol, world.market, world.interval)
    reached, clock = [], world.now
    for r in reqs:
        clock = r.at or clock
        reached.append(
            (
                (r.symbol or world.symbol, r.market or world.market, r.interval or world.interval),
                days_between(r.start, r.end),
                clock,
            )
        )
    kept: list[Fault] = []
    for item in network:
        trial = (*cache_faults, *kept, item)
        if not setup_conflicts(trial, cached, series, world.now) and not unreached(trial, cached, series, reached):
            kept.append(item)
    return tuple(kept)


def with_origin(scenario: Scenario, *, file: str, theme: str) -> Scenario:
    """``scenario`` as if loaded from ``file`` (for comparing a round trip)."""
    return dataclasses.replace(scenario, file=file, theme=theme)
