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
from collections.abc import Callable
from typing import Any

from pytest_fcp.contract import Verdict, judge
from pytest_fcp.core.markets import days_between
from pytest_fcp.scenarios.model import Request, Scenario
from pytest_fcp.world.crash_points import CrashPoint, WriteLog, crash_points, put_cache_in
from pytest_fcp.world.observation import Observation
from pytest_fcp.world.spec import WorldSpec
from pytest_fcp.world.world import World

__all__ = ["chosen_points", "run_crash_scenario"]


def chosen_points(crash: str | tuple[int, ...], points: list[CrashPoint]) -> tuple[list[CrashPoint], list[int]]:
    """The points ``crash`` asks for among ``points``, and the numbers asked for that the fetch did not reach."""
    if crash == "every":
        return list(points), []
    wanted = [int(n) for n in crash]
    return [p for p in points if p.number in wanted], [n for n in wanted if n > len(points)]


def _fetch(world: World, scenario: Scenario, request: Request) -> Observation:
    symbol, market, interval = request.series(scenario)
    return world.fetch(request.start, request.end, symbol=symbol, market=market, interval=interval)


def _note(world: World, message: str) -> None:
    world.recorder.event("log", level="INFO", message=message, module="pytest_fcp.crash")


def run_crash_scenario(
    world: World,
    scenario: Scenario,
    spec: WorldSpec,
    factory: Any,
    explicit: Callable[[Observation], list[Verdict]],
) -> tuple[list[Observation], list[Verdict]]:
    """The fetches and failed verdicts of crash scenario ``scenario`` in the started ``world`` (whose engine
    ``factory`` made); ``explicit``: the scenario's own expectations, judged on the first fetch."""
    assert scenario.crash is not None
    first = scenario.requests[0]
    series = first.series(scenario)
    days = days_between(first.start, first.end)
    around = [days[0] - dt.timedelta(days=1), *days, days[-1] + dt.timedelta(days=1)] if days else []
    log = WriteLog(world.cache_dir, {world.cache_path(d, *series): d for d in around})
    world.poll_cache(quiet=True)  # the directories just made are the harness's
    try:
        result = _fetch(world, scenario, first)
    finally:
        log.close()
    results = [result]
    verdicts = judge(spec, result, skip=scenario.expect.skip_checks) + explicit(result)
    if not log.available:
        _note(world, "crash points not derived: the cache operations cannot be watched here (inotify, Linux)")
        return results, verdicts
    writes = log.writes()
    points = crash_points(writes)
    picked, unreached = chosen_points(scenario.crash, points)
    _note(world, f"crash points: {len(points)} in {len(writes)} day-file write(s) of the first fetch")
    if unreached:
        _note(world, f"crash point(s) {', '.join(map(str, unreached))} not reached: the fetch made {len(points)}")
    again = scenario.requests[-1]
    if again.at is not None and again is not first:
        world.advance_to(again.at)
    for point in picked:
        put_cache_in(world.cache_dir, log, point, writes)
        world.poll_cache(quiet=True)  # the harness's own writes
        world.restart_engine(factory)
        _note(world, f"{point.describe()}: a fresh engine on this cache")
        observation = _fetch(world, scenario, again)
        results.append(observation)
        where = point.describe()
        verdicts.extend(
            dataclasses.replace(v, at=where) for v in judge(spec, observation, skip=scenario.expect.skip_checks)
        )
    return results, verdicts
