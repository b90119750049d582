"""The cells one judged fetch exercised: from the same inputs the contract checks read (the world's spec and
the :class:`~pytest_fcp.world.observation.Observation`), plus the earlier fetches of the same engine."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from pytest_fcp.core.freshness import is_old
from pytest_fcp.core.markets import DAY_MS, MAX_PAGE_LIMIT, interval_ms, to_ms
from pytest_fcp.coverage.dimensions import (
    CACHE_READ,
    CACHE_WRITE,
    MONTH_DAYS,
    REST_FIRST,
    REST_LATER,
    REST_RANGES,
    VISION_CHECKSUM,
    VISION_ZIP,
    Cell,
)
from pytest_fcp.faults.table import FAULTS

if TYPE_CHECKING:
    from pytest_fcp.world.observation import Observation
    from pytest_fcp.world.recorder import RequestRecord
    from pytest_fcp.world.spec import WorldSpec

__all__ = [
    "ages",
    "calendar_edges",
    "clock_labels",
    "fault_hits",
    "fetch_cells",
    "lifetime_labels",
    "run_cells",
    "shape_labels",
]

#: Hours after midnight UTC that count as early in the day, and from which it counts as late.
EARLY_BEFORE_HOUR, LATE_FROM_HOUR = 2, 22


def calendar_edges(day: dt.date) -> list[str]:
    """The calendar edges ``day`` sits on (``none`` when it sits on no edge)."""
    edges = []
    if (day + dt.timedelta(days=1)).day == 1:
        edges.append("month end")
        if day.month == 12:
            edges.append("year end")
    if day.month == 2 and day.day == 29:
        edges.append("29 Feb")
    return edges or ["none"]


def ages(day: dt.date, now: dt.datetime) -> str:
    """How old ``day`` is at ``now``: ``young``, ``old`` or ``a month and more``."""
    if not is_old(day, now):
        return "young"
    return "a month and more" if (now.date() - day).days >= MONTH_DAYS else "old"


def _zone(spec: WorldSpec, now: dt.datetime) -> str:
    if not spec.local_tz:
        return "zone UTC"
    offset = now.astimezone(zoneinfo.ZoneInfo(spec.local_tz)).utcoffset() or dt.timedelta()
    if offset > dt.timedelta():
        return "zone east of UTC"
    return "zone west of UTC" if offset < dt.timedelta() else "zone UTC"


def clock_labels(spec: WorldSpec, obs: Observation) -> list[str]:
    """The clock labels of a fetch: grid, forming bar, clock step, early or late in the UTC day, zone."""
    step = interval_ms(obs.interval)
    now_ms = to_ms(obs.now)
    labels = ["on grid" if now_ms % step == 0 else "off grid"]
    if now_ms % step and to_ms(obs.end) > now_ms - now_ms % step:
        labels.append("forming bar")
    if any(r.virtual > obs.now + dt.timedelta(seconds=1) for r in obs.requests):
        labels.append("clock step")
    if obs.now.hour < EARLY_BEFORE_HOUR:
        labels.append("early UTC day")
    elif obs.now.hour >= LATE_FROM_HOUR:
        labels.append("late UTC day")
    labels.append(_zone(spec, obs.now))
    return labels


def shape_labels(obs: Observation) -> list[str]:
    """The request's shape: where its ends sit and its length."""
    step = interval_ms(obs.interval)
    start, end = to_ms(obs.start), to_ms(obs.end)
    if start % step or end % step:
        labels = ["off grid by seconds"]
    elif start % DAY_MS or end % DAY_MS:
        labels = ["mid-day on grid"]
    else:
        labels = ["aligned to days"]
    bars = -(-(end - start) // step)
    days = len(obs.days)
    if bars <= 1:
        labels.append("one bar")
    elif days <= 1:
        labels.append("bars within a day")
    elif (end - start) < MONTH_DAYS * DAY_MS:
        labels.append("several days")
    else:
        labels.append("a month or more")
    if bars > MAX_PAGE_LIMIT:
        labels.append("longer than any page")
    return labels


def _window(record: RequestRecord) -> tuple[int, int] | None:
    query = parse_qs(urlsplit(record.url).query)
    try:
        start = int(query["startTime"][0])
    except (KeyError, ValueError, IndexError):
        return None
    try:
        end = int(query["endTime"][0])
    except (KeyError, ValueError, IndexError):
        end = start
    return start, max(start, end)


def _rest_targets(records: Sequence[RequestRecord], step: int) -> dict[int, list[str]]:
    """Per REST request (by trace index): first or later page, and one of several ranges."""
    windows = {r.index: w for r in records if r.source == "rest" and (w := _window(r)) is not None}
    merged: list[list[int]] = []
    for lo, hi in sorted(windows.values()):
        if merged and lo <= merged[-1][1] + step:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    out: dict[int, list[str]] = {}
    for index, (lo, _hi) in windows.items():
        later = any(o_lo < lo <= o_hi + step for o_lo, o_hi in windows.values())
        labels = [REST_LATER if later else REST_FIRST]
        if len(merged) > 1:
            labels.append(REST_RANGES)
        out[index] = labels
    return out


def _state(obs: Observation, day: dt.date) -> str:
    """A needed day's cache state before the fetch (``missing`` when the world did not judge it)."""
    before = obs.cache_before.get(day)
    return "missing" if before is None else before.status


def fault_hits(spec: WorldSpec, obs: Observation) -> set[tuple[str, str]]:
    """``(fault id, target)`` for every fault that answered a request of this fetch or spoiled its cache."""
    hits: set[tuple[str, str]] = set()
    rest = _rest_targets(obs.requests, interval_ms(obs.interval))
    for record in obs.requests:
        if record.fault is None:
            continue
        if record.source == "vision":
            hits.add((record.fault, VISION_CHECKSUM if record.target.obj == "checksum" else VISION_ZIP))
        else:
            hits.update((record.fault, t) for t in rest.get(record.index, [REST_FIRST]))
    days = set(obs.days)
    writes = any(is_old(d, obs.now) and _state(obs, d) != "valid" for d in obs.days)
    for fault in spec.faults:
        kind = FAULTS[fault.id]
        if kind.source != "cache":
            continue
        if not kind.needs_days:
            if writes:
                hits.add((fault.id, CACHE_WRITE))
        elif any(d in days and (_state(obs, d) != "valid" or kind.cut_while_read) for d in fault.days or ()):
            hits.add((fault.id, CACHE_READ))
    return hits


def lifetime_labels(obs: Observation, earlier: Sequence[Observation]) -> list[str]:
    """Where the fetch sits in the engine's lifetime (see :data:`~pytest_fcp.coverage.dimensions.LIFETIME`)."""
    if not earlier:
        return ["first fetch"]
    previous = earlier[-1]
    gap = obs.now - previous.now
    labels = [
        "again minutes later"
        if gap < dt.timedelta(hours=1)
        else "again hours later"
        if gap < dt.timedelta(days=1)
        else "again days later"
    ]
    if obs.published - previous.published:
        labels.append("after Vision published")
    return labels


def _origin(day: dt.date, spec: WorldSpec, earlier: Sequence[Observation]) -> str:
    served: set[str] = set()
    for previous in earlier:
        served |= previous.sources_by_day().get(day, set()) & {"vision", "rest"}
    if served:
        return " and ".join(s for s in ("vision", "rest") if s in served)
    return "seeded"


def fetch_cells(spec: WorldSpec, obs: Observation, earlier: Sequence[Observation] = ()) -> set[Cell]:
    """The cells one judged fetch exercised (``earlier``: the same engine's earlier fetches, in order)."""
    interval, market = obs.interval, obs.market
    cells: set[Cell] = {("market x interval", market, interval)}
    for fault, target in fault_hits(spec, obs):
        cells.add(("fault x target", fault, target))
        cells.add(("fault x interval", fault, interval))
    lifetime = lifetime_labels(obs, earlier)
    for day in obs.days:
        state = _state(obs, day)
        cells.add(("cache state x interval", state, interval))
        cells.add(("age x cache state", ages(day, obs.now), state))
        cells.update(("calendar x interval", edge, interval) for edge in calendar_edges(day))
        cells.update(("lifetime x cache state", life, state) for life in lifetime)
        if earlier and state == "valid":
            origin = _origin(day, spec, earlier)
            cells.update(("lifetime x origin", life, origin) for life in lifetime)
    cells.update(("clock x market", label, market) for label in clock_labels(spec, obs))
    cells.update(("shape x interval", label, interval) for label in shape_labels(obs))
    return cells


def run_cells(spec: WorldSpec, results: Sequence[Observation]) -> set[Cell]:
    """The cells of every fetch one engine made in one world, each with the fetches before it."""
    cells: set[Cell] = set()
    for i, obs in enumerate(results):
        cells |= fetch_cells(spec, obs, results[:i])
    return cells
