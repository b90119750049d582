"""The oracle: from the world's spec and what it held before a fetch (now, cache states, published Vision
files, the fault schedule), which sources may serve each needed day and whether it can be had.

A day is *certainly*, *possibly* (it depends on an engine's legitimate choices, e.g. whether it retries a
fault that recovers) or *not* obtainable from a source. What each fault means for that is in the fault table
(:data:`pytest_fcp.faults.FAULTS`): ``obtainable``, ``rate_limit``, ``reads_as_no_data``, ``objects``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_fcp.core.freshness import is_old

if TYPE_CHECKING:
    from pytest_fcp.faults import Fault
    from pytest_fcp.world.observation import Observation
    from pytest_fcp.world.spec import WorldSpec

__all__ = ["DayPlan", "plan"]


@dataclass
class DayPlan:
    """Where one needed day may come from."""

    day: dt.date
    cached: bool  # a valid cache file before the fetch
    old: bool  # day end at least 48 h before now: Vision-eligible and cacheable
    vision: str  # certain | possible | impossible
    rest: str  # certain | possible | impossible | empty (may legitimately read as "no data")
    rate_limited: bool = False  # an always-firing 429/418 stands in REST's way

    @property
    def allowed_sources(self) -> set[str]:
        """The sources the day's rows may be tagged with."""
        if self.cached:
            return {"cache"}
        allowed = set()
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
            return "impossible"
        if self.vision == "possible" or self.rest in ("possible", "certain", "empty"):
            return "possible"
        return "impossible"


def _state(faults: Iterable[Fault], base: str, *, door_split: bool = False) -> str:
    """Combine the faults hitting one day of one source into certain / possible / impossible."""
    state = base
    for item in faults:
        kind = item.kind
        if kind.obtainable == "yes":
            continue
        if item.attempts.recovers or (door_split and item.door is not None) or kind.obtainable == "maybe":
            state = "possible" if state == "certain" else state
        else:
            return "impossible"
    return state


def _reachable(faults: Iterable[Fault]) -> list[Fault]:
    """The faults that can fire at all, in schedule order.

    The world lets the first fault that fires on a request answer it, so a fault that fires on every
    attempt (on both doors) hides every later fault that hits the same kind of request.
    """
    out: list[Fault] = []
    taken: set[str] = set()  # objects whose every request an earlier fault already answers
    for item in faults:
        objects = set(item.kind.objects)
        if objects <= taken:
            continue
        out.append(item)
        if item.attempts.mode == "always" and item.door is None:
            taken |= objects
    return out


def plan(spec: WorldSpec, obs: Observation) -> dict[dt.date, DayPlan]:
    """For each needed day, where the data may come from and whether it can be had."""
    plans: dict[dt.date, DayPlan] = {}
    for day in obs.days:
        before = obs.cache_before.get(day)
        cached = before is not None and before.valid
        old = is_old(day, obs.now)
        in_scope = [f for f in spec.faults if f.in_scope(obs.market, obs.symbol, obs.interval, day)]
        vision = "certain" if old and day in obs.published else "impossible"
        vision = _state(_reachable(f for f in in_scope if f.source == "vision"), vision, door_split=True)
        rest_faults = _reachable(f for f in in_scope if f.source == "rest")
        rest = _state((f for f in rest_faults if not f.kind.reads_as_no_data), "certain")
        if rest != "impossible" and any(f.kind.reads_as_no_data for f in rest_faults):
            rest = "empty"
        rate_limited = any(f.kind.rate_limit and not f.attempts.recovers for f in rest_faults)
        plans[day] = DayPlan(day, cached, old, vision, rest, rate_limited)
    return plans
