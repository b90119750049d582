"""Running a crash scenario: its first fetch, then a fresh engine at each chosen crash point of that fetch's
cache writes (:mod:`pytest_fcp.world.crash_points`), judged by the contract (``docs/crashes.md``).

The first fetch runs normally, with its cache operations recorded. For each chosen point the sandbox is put in
that point's state, the engine's factory makes a fresh instance on the same cache, in the same world, and the
fetch after the crash (the scenario's second request, else its first again) is judged by the ordinary contract:
a crash may lose the day being written (a miss, refetched), never serve wrong rows, never wedge the cache
(raise although the sources can serve) and never break a neighbouring day. Each verdict names its point.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pytest_fcp.contract import Verdict, judge
from pytest_fcp.core.markets import days_between
from pytest_fcp.scenarios.model import Scenario
from pytest_fcp.world.crash_points import CrashPoint, WriteLog, crash_points, put_cache_in
from pytest_fcp.world.observation import Observation
from pytest_fcp.world.world import World

__all__ = ["Ask", "CrashRun", "chosen_points", "crash_fetches", "run_crash_scenario"]


def chosen_points(crash: str | tuple[int, ...], points: list[CrashPoint]) -> tuple[list[CrashPoint], list[int]]:
    """The points ``crash`` asks for among ``points``, and the numbers asked for that the fetch did not reach."""
    if crash == "every":
        return list(points), []
    wanted = [int(n) for n in crash]
    return [p for p in points if p.number in wanted], [n for n in wanted if n > len(points)]


@dataclass(frozen=True)
class Ask:
    """One fetch of a crash run: ``[start, end)`` of ``series`` (symbol, market, interval), after moving the
    virtual now to ``at`` (``None``: no clock step)."""

    start: dt.datetime
    end: dt.datetime
    series: tuple[str, str, str]
    at: dt.datetime | None = None


@dataclass
class CrashRun:
    """The fetches of a crash run (the first, then one per chosen crash point) and its failed verdicts."""

    results: list[Observation] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether no verdict failed."""
        return not self.verdicts


def _fetch(world: World, ask: Ask) -> Observation:
    symbol, market, interval = ask.series
    return world.fetch(ask.start, ask.end, symbol=symbol, market=market, interval=interval)


def _note(world: World, message: str) -> None:
    world.recorder.event("log", level="INFO", message=message, module="pytest_fcp.crash")


def crash_fetches(
    world: World,
    factory: Any,
    crash: str | tuple[int, ...],
    first: Ask,
    again: Ask | None = None,
    *,
    skip: Iterable[str] = (),
    explicit: Callable[[Observation], list[Verdict]] | None = None,
) -> CrashRun:
    """Fetch ``first`` in the started ``world`` (whose engine ``factory`` made), then at each crash point
    ``crash`` chooses a fresh engine fetches ``again`` (default: ``first``); every fetch judged (``skip``: checks
    left out), ``explicit`` on the first."""
    skipped = tuple(skip)
    if first.at is not None:
        world.advance_to(first.at)
    days = days_between(first.start, first.end)
    around = [days[0] - dt.timedelta(days=1), *days, days[-1] + dt.timedelta(days=1)] if days else []
    log = WriteLog(world.cache_dir, {world.cache_path(d, *first.series): d for d in around})
    world.poll_cache(quiet=True)  # the directories just made are the harness's
    try:
        result = _fetch(world, first)
    finally:
        log.close()
    run = CrashRun([result], judge(world.spec, result, skip=skipped) + (explicit(result) if explicit else []))
    if not log.available:
        _note(world, "crash points not derived: the cache operations cannot be watched here (inotify, Linux)")
        return run
    writes = log.writes()
    points = crash_points(writes)
    picked, unreached = chosen_points(crash, points)
    _note(world, f"crash points: {len(points)} in {len(writes)} day-file write(s) of the first fetch")
    if unreached:
        _note(world, f"crash point(s) {', '.join(map(str, unreached))} not reached: the fetch made {len(points)}")
    again = again or first
    if again.at is not None:
        world.advance_to(again.at)
    for point in picked:
        put_cache_in(world.cache_dir, log, point, writes)
        world.poll_cache(quiet=True)  # the harness's own writes
        world.restart_engine(factory)
        where = point.describe()
        _note(world, f"{where}: a fresh engine on this cache")
        observation = _fetch(world, again)
        run.results.append(observation)
        run.verdicts.extend(dataclasses.replace(v, at=where) for v in judge(world.spec, observation, skip=skipped))
    return run


def run_crash_scenario(
    world: World,
    scenario: Scenario,
    factory: Any,
    explicit: Callable[[Observation], list[Verdict]],
) -> CrashRun:
    """Crash scenario ``scenario`` in the started ``world``: its first request, then a fresh engine at each
    chosen crash point fetching its second request (else its first again); ``explicit``: the scenario's own
    expectations, judged on the first fetch."""
    assert scenario.crash is not None
    asks = [Ask(r.start, r.end, r.series(scenario), r.at) for r in scenario.requests]
    again = asks[1] if len(asks) > 1 else None
    return crash_fetches(
        world, factory, scenario.crash, asks[0], again, skip=scenario.expect.skip_checks, explicit=explicit
    )
