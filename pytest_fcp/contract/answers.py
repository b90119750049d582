"""What the fetch's REST answers covered: a fault that answered a request spoils every day the request asked
about, not only the day it is scoped to.

The world fires a REST fault when any day of a request is in its scope, and its effect (an empty page, an
error, a short page ...) then spoils the whole answer: a request for 2024-01-09 .. 2024-01-10 answered by an
empty page scoped to 2024-01-09 carries no bar of 2024-01-10 either. :func:`spoiled_days` finds, per needed
day, the worst meaning (``empty``, ``maybe``, ``fatal``, from the fault table's ``obtainable`` and
``reads_as_no_data``) of the spoiled answers whose request covered it, for the days no good answer (a retry,
another page, another request) delivered whole. The other way round, a fault scoped to one day may answer (and
so shadow) a later fault for the other days of the request: a short page scoped to 2024-01-10 answers a request
for 2024-01-09 .. 2024-01-10 with 2024-01-09's first bars although a 503 answers every request for 2024-01-09
alone. The days the answers delivered whole (``delivered``) may be served although asking them alone could not.
Vision requests ask about one day each, so the day-by-day prediction in :mod:`pytest_fcp.contract.oracle`
already knows every Vision day a fault answers.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pytest_fcp.core.markets import DEFAULT_PAGE_LIMIT, INTERVALS, MARKETS, day_bounds_ms, day_of_ms, to_ms
from pytest_fcp.faults import FAULTS

if TYPE_CHECKING:
    from pytest_fcp.faults import Fault, FaultKind
    from pytest_fcp.world.observation import Observation
    from pytest_fcp.world.recorder import RequestRecord

__all__ = ["EMPTY", "FATAL", "MAYBE", "OK", "Answered", "answered", "kind_meaning", "needs_bars"]

#: What an answer means for getting the day from its source.
OK, EMPTY, MAYBE, FATAL = "ok", "empty", "maybe", "fatal"

#: Which meaning weighs more when several spoiled answers covered one day (an empty page may be read as
#: "no data", so it excuses the most).
_WEIGHT = {MAYBE: 1, FATAL: 2, EMPTY: 3}

Span = tuple[int, int]  # [first, last] bar open times, inclusive, in ms


def kind_meaning(kind: FaultKind | None) -> str:
    """What an answer of fault ``kind`` (``None``: no fault answered) means for getting the day."""
    if kind is None or kind.obtainable == "yes":
        return OK
    if kind.reads_as_no_data:
        return EMPTY
    return MAYBE if kind.obtainable == "maybe" else FATAL


@dataclass
class Answered:
    """What the fetch's REST answers did to the needed days (see the module docstring)."""

    #: Per day: the worst meaning of a fault that answered a request covering it, unless whole pages delivered it.
    spoiled: dict[dt.date, str] = field(default_factory=dict)
    #: The days whose needed bars the answers delivered, every one of them.
    delivered: set[dt.date] = field(default_factory=set)


def _span(record: RequestRecord, market: str, interval: str, *, whole: bool, keep: int = 0) -> Span | None:
    """The bar open times a klines request asked about (``whole``: up to ``endTime``, as the world counts a
    fault's days) or that one page of it delivered (at most ``limit`` bars, or the first ``keep`` of them);
    ``None`` if unreadable or nothing."""
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(record.url).query))
    step, spec = INTERVALS.get(interval), MARKETS.get(market)
    try:
        limit = min(int(params.get("limit", DEFAULT_PAGE_LIMIT)), spec.max_limit if spec else DEFAULT_PAGE_LIMIT)
        start = int(params["startTime"]) if "startTime" in params else None
        end = int(params["endTime"]) if "endTime" in params else None
    except ValueError:
        return None
    if step is None or limit < 1:
        return None
    now = to_ms(record.virtual if whole else record.started)
    upper = min(end if end is not None else now, now)
    lo = max(0, (upper // step - limit + 1) * step) if start is None else start
    if whole:
        return lo, max(lo, upper)
    first = -(-lo // step) * step
    last = min(upper, first + ((min(keep, limit) if keep else limit) - 1) * step)
    return (first, last) if first <= last else None


def _covered(spans: Iterable[Span], first: int, last: int, step: int) -> bool:
    """Whether the union of ``spans`` holds every bar from ``first`` to ``last``."""
    reach = first
    for lo, hi in sorted(spans):
        if lo > reach:
            break
        reach = max(reach, hi + step)
        if reach > last:
            return True
    return reach > last


def _needed(obs: Observation, day: dt.date, step: int) -> Span:
    """The first and last bar of ``day`` the request needs (first > last: none)."""
    day_start, day_end = day_bounds_ms(day)
    lo = max(day_start, to_ms(obs.start))
    hi = min(day_end, to_ms(obs.end)) - 1
    return -(-lo // step) * step, min(hi, to_ms(obs.now)) // step * step


def needs_bars(obs: Observation, day: dt.date) -> bool:
    """Whether the request needs any bar of ``day`` (a range starting a minute into a day of 1d bars needs none
    of that day: its bar opened before the start)."""
    step = INTERVALS.get(obs.interval)
    if step is None:
        return True
    first, last = _needed(obs, day, step)
    return first <= last


def _kept(kind: FaultKind | None, faults: Sequence[Fault]) -> int:
    """How many of a page's bars an answer of ``kind`` delivers: 0 for all of them (an intact or a repaired
    page), -1 for none, else the rows a ``rows_keep`` page keeps (the most any fault of that id keeps)."""
    meaning = kind_meaning(kind)
    if meaning == OK:
        return 0
    if kind is None or kind.effect.kind != "rows_keep":
        return -1
    return max((int(f.param("keep")) for f in faults if f.id == kind.id), default=int(kind.params["keep"])) or -1


def answered(obs: Observation, faults: Sequence[Fault] = ()) -> Answered:
    """What the fetch's REST answers for its series spoiled and delivered, per needed day (``faults``: the
    world's schedule, for the parameters of the faults that answered)."""
    step = INTERVALS.get(obs.interval)
    if step is None:
        return Answered()
    needed = set(obs.days)
    spoiled: dict[dt.date, str] = {}
    good: list[Span] = []  # pages delivered whole
    kept: list[Span] = []  # and the rows short pages kept
    for record in obs.requests:
        target = record.target
        if record.source != "rest" or (target.symbol, target.interval) != (obs.symbol, obs.interval):
            continue
        if target.market not in (None, obs.market):
            continue
        kind = FAULTS.get(record.fault) if record.fault else None
        keep = _kept(kind, faults)
        if keep >= 0 and record.status == 200 and record.error is None:
            span = _span(record, obs.market, obs.interval, whole=False, keep=keep)
            if span is not None:
                (kept if keep else good).append(span)
        meaning = kind_meaning(kind)
        if meaning == OK:
            continue
        span = _span(record, obs.market, obs.interval, whole=True)
        days = target.days if span is None else _days(*span)
        for day in needed.intersection(days):
            if _WEIGHT[meaning] > _WEIGHT.get(spoiled.get(day, ""), 0):
                spoiled[day] = meaning
    out = Answered()
    for day in needed:
        first, last = _needed(obs, day, step)
        if first > last:
            continue
        if _covered(good + kept, first, last, step):
            out.delivered.add(day)
        if day in spoiled and not _covered(good, first, last, step):  # a short page may be read as the end
            out.spoiled[day] = spoiled[day]
    return out


def _days(first: int, last: int) -> list[dt.date]:
    """The UTC days from the one holding ``first`` to the one holding ``last``."""
    a, b = day_of_ms(first), day_of_ms(last)
    return [dt.date.fromordinal(o) for o in range(a.toordinal(), b.toordinal() + 1)]
