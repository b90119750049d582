"""The oracle: from the world's spec and what it held before a fetch (now, cache states, published Vision
files, the fault schedule), which sources may serve each needed day and whether it can be had.

A day is *certainly*, *possibly* (it depends on an engine's legitimate choices, e.g. whether it retries a
fault that recovers) or *not* obtainable from a source. The oracle predicts which fault answers each attempt
exactly as the world does (:func:`predict` runs the world's own :class:`~pytest_fcp.faults.FaultSchedule`:
schedule order, attempt windows, doors, objects), over the ways an honest engine may ask; what each answer
means is in the fault table (:data:`pytest_fcp.faults.FAULTS`): ``obtainable``, ``rate_limit``,
``reads_as_no_data``. A fault that answered a REST request spoils every day that request covered, not only the
day it is scoped to (:mod:`pytest_fcp.contract.answers`): those days are no longer certain on REST unless a good
answer delivered them; and a day the answers delivered whole was obtainable, whatever asking it alone gives.
A valid day file the world carried in from a saved cache (``cache_from``: another run wrote it, perhaps another
engine or release, in a layout the engine may not read) may be served or fetched anew: the day is not *cached*
(treating it as a miss is honest), its rows may come from the cache, and it is never less than possibly obtainable.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_fcp.contract.answers import EMPTY, FATAL, MAYBE, OK, answered, kind_meaning
from pytest_fcp.core.freshness import is_old
from pytest_fcp.faults import FaultSchedule

if TYPE_CHECKING:
    from pytest_fcp.faults import Fault
    from pytest_fcp.world.observation import Observation
    from pytest_fcp.world.spec import WorldSpec

__all__ = ["DayPlan", "plan", "predict"]


@dataclass
class DayPlan:
    """Where one needed day may come from."""

    day: dt.date
    cached: bool  # a valid cache file before the fetch
    old: bool  # day end at least 48 h before now: Vision-eligible and cacheable
    vision: str  # certain | possible | impossible
    rest: str  # certain | possible | impossible | empty (may legitimately read as "no data")
    rate_limited: bool = False  # an always-firing 429/418 stands in REST's way
    stale_cache: bool = False  # a complete cached file with other values: valid-looking, the engine may serve it
    peer_cache: bool = False  # another instance on the same cache, running at the same time, may have cached it
    cut: int | None = None  # the size the world cuts the valid file to once the engine opened it (cut_while_read)
    carried: bool = False  # a valid file carried in from a saved cache: the engine may serve it or fetch the day anew

    @property
    def allowed_sources(self) -> set[str]:
        """The sources the day's rows may be tagged with."""
        if self.cached:
            return {"cache"}
        allowed = {"cache"} if self.stale_cache or self.peer_cache or self.cut is not None or self.carried else set()
        if self.vision != "impossible":
            allowed.add("vision")
        if self.vision != "certain" and self.rest != "impossible":
            allowed.add("rest")
        return allowed

    @property
    def obtainable(self) -> str:
        """``certain``, ``possible`` or ``impossible``: whether a correct engine gets the day."""
        if self.cached or self.vision == "certain":
            return "certain"
        if self.rest == "certain" and self.vision == "impossible":
            return "certain"
        if self.vision == "impossible" and self.rest == "impossible":
            return "possible" if self.carried else "impossible"
        if self.vision == "possible" or self.rest in ("possible", "certain", "empty"):
            return "possible"
        return "impossible"


def _meaning(item: Fault | None) -> str:
    """What an answer from ``item`` (``None``: no fault answered) means for getting the day."""
    return kind_meaning(None if item is None else item.kind)


def _rounds(faults: Sequence[Fault]) -> int:
    """How many attempts to follow: past every ``first:N`` / ``nth:N`` window, the answers repeat."""
    return max((f.attempts.n for f in faults), default=0) + 2


def predict(
    faults: Sequence[Fault], source: str, series: tuple[str, str, str], day: dt.date, asks: Iterable[tuple[str, str]]
) -> list[Fault | None]:
    """The fault that answers each request in ``asks`` (``(door, object)`` pairs; REST: ``("https", "")``) for
    one day, counted exactly as the world counts them (the same schedule code), in order."""
    schedule = FaultSchedule(faults)
    market, symbol, interval = series
    return [
        schedule.answering_fault(source, market, symbol, interval, [day], door=door, obj=obj or None)
        for door, obj in asks
    ]


def _vision_state(faults: Sequence[Fault], series: tuple[str, str, str], day: dt.date) -> str:
    """certain / possible / impossible for the day's Vision files, over the ways an honest engine asks:
    either door, zip or .CHECKSUM first, each round asking both (a retry is another round)."""
    if not faults:
        return "certain"
    doors = ("https", "s3") if any(f.door for f in faults) else ("https",)
    rounds = _rounds(faults)
    outcomes = set()
    for door in doors:
        for order in (("zip", "checksum"), ("checksum", "zip")):
            answers = predict(faults, "vision", series, day, [(door, obj) for _ in range(rounds) for obj in order])
            meanings = [_meaning(a) for a in answers]
            per_round = [
                FATAL if FATAL in pair else MAYBE if MAYBE in pair else OK
                for pair in zip(meanings[::2], meanings[1::2], strict=True)
            ]
            outcomes.add(_verdict(per_round))
    if outcomes == {"certain"}:
        return "certain"
    return "impossible" if outcomes == {"impossible"} else "possible"


def _verdict(per_round: Sequence[str]) -> str:
    if all(m == OK for m in per_round):
        return "certain"
    if all(m == FATAL for m in per_round):
        return "impossible"
    return "empty" if EMPTY in per_round else "possible"


def _rest_state(faults: Sequence[Fault], series: tuple[str, str, str], day: dt.date) -> tuple[str, bool]:
    """certain / possible / impossible / empty for the day on REST, and whether a 429/418 stands in the way
    for good (requests asking about this day alone, attempt after attempt)."""
    if not faults:
        return "certain", False
    answers = predict(faults, "rest", series, day, [("https", "")] * _rounds(faults))
    last = answers[-1]
    return _verdict([_meaning(a) for a in answers]), last is not None and last.kind.rate_limit


def plan(spec: WorldSpec, obs: Observation) -> dict[dt.date, DayPlan]:
    """For each needed day, where the data may come from and whether it can be had."""
    plans: dict[dt.date, DayPlan] = {}
    answers = answered(obs, spec.faults)
    for day in obs.days:
        before = obs.cache_before.get(day)
        carried = before is not None and before.valid and before.carried  # the engine may not read another's file
        old = is_old(day, obs.now)
        series = (obs.market, obs.symbol, obs.interval)
        in_scope = [f for f in spec.faults if f.in_scope(obs.market, obs.symbol, obs.interval, day)]
        cutting = [f for f in in_scope if f.kind.cut_while_read]
        cut = int(before.size * float(cutting[0].param("keep"))) if cutting and before is not None else None
        cached = before is not None and before.valid and cut is None and not carried
        vision = "impossible"
        if old and day in obs.published:
            vision = _vision_state([f for f in in_scope if f.source == "vision"], series, day)
        rest, rate_limited = _rest_state([f for f in in_scope if f.source == "rest"], series, day)
        rest = _answered(rest, answers.spoiled.get(day), day in answers.delivered)
        stale = before is not None and before.status == "stale"
        peer = obs.together > 1 and old and (vision != "impossible" or rest != "impossible")
        plans[day] = DayPlan(day, cached, old, vision, rest, rate_limited, stale, peer, cut, carried)
    return plans


def _answered(rest: str, meaning: str | None, delivered: bool) -> str:
    """The day's REST state once this fetch's answers are known: a day they delivered whole was obtainable
    (asked in another shape than alone); else an answer meaning ``meaning`` spoiled a request covering it
    (``None``: none did), and the day is never better than that answer allows."""
    if delivered and rest == "impossible":
        rest = "possible"
    if meaning == EMPTY:  # an empty page answered for it: "no data" is an honest reading, even of a day that
        return "empty"  # asking alone could never have got
    if meaning is None or rest == "impossible":
        return rest
    return "possible" if rest == "certain" else rest
