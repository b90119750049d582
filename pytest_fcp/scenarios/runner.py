"""Running one scenario on one engine and judging it (used by the collector and by Python scenarios)."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import Any

from pytest_fcp.contract import Verdict, judge, judge_group
from pytest_fcp.contract.checks import quoted_message
from pytest_fcp.core.logs import DEFAULT_LOG_LEVEL
from pytest_fcp.coverage import note
from pytest_fcp.faults.rules import setup_conflicts
from pytest_fcp.scenarios.crash_run import run_crash_scenario
from pytest_fcp.scenarios.model import Scenario, ScenarioError, count_ok
from pytest_fcp.world.cache_faults import unstopped_writes
from pytest_fcp.world.cache_seed import saved_seed
from pytest_fcp.world.observation import Observation as FetchResult
from pytest_fcp.world.world import World

__all__ = ["ScenarioRun", "assert_scenario", "run_scenario"]


@dataclass
class ScenarioRun:
    """One scenario run on one engine: the world, the fetch results and the failed verdicts."""

    scenario: Scenario
    engine: str
    world: World
    results: list[FetchResult] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether no verdict failed."""
        return not self.verdicts

    def summary(self) -> str:
        """The failed verdicts joined on one line."""
        return "; ".join(str(v) for v in self.verdicts)


def _explicit(scenario: Scenario, world: World, result: FetchResult) -> list[Verdict]:
    expect = scenario.expect
    out: list[Verdict] = []
    if expect.outcome:
        got = "data" if result.ok else (result.error_kind or type(result.error).__name__)
        names = set() if result.ok else {c.__name__ for c in type(result.error).__mro__}
        if got not in expect.outcome and not (names & set(expect.outcome)):
            said = "" if result.error is None or not quoted_message(result.error) else result.error_text
            detail = f": {said[:160]}" if said else ""
            want = " or ".join(expect.outcome)
            out.append(
                Verdict(
                    "expect.outcome",
                    f"expected {want}, got {type(result.error).__name__ if result.error else 'data'}{detail}",
                )
            )
    if expect.sources and result.table is not None:
        for date, sources in sorted(result.sources_by_day().items()):
            day = date.isoformat()
            allowed = expect.sources.get(day, expect.sources.get("default"))
            if allowed is not None and not sources <= allowed:
                out.append(
                    Verdict(
                        "expect.sources",
                        f"{day}: rows from {', '.join(sorted(map(_tag, sources)))}; "
                        f"expected {' or '.join(sorted(allowed))}",
                    )
                )
    for source, constraint in expect.requests.items():
        count = len(world.trace.requests(source))
        if not count_ok(constraint, count):
            out.append(Verdict("expect.requests", f"{count} {source} request(s); expected {constraint}"))
    if expect.cache_after and world.engine is not None:
        for day in result.days:
            allowed = expect.cache_after.get(day.isoformat(), expect.cache_after.get("default"))
            if allowed is None:
                continue
            state = result.cache_after[day]
            if state.status not in allowed:
                out.append(
                    Verdict(
                        "expect.cache_after",
                        f"{day}: cache file is {state.status}; expected {' or '.join(sorted(allowed))}",
                    )
                )
    return out


def _where(scenario: Scenario) -> dict[str, str]:
    """The file and scenario a ``ScenarioError`` names."""
    return {"file": scenario.file, "scenario": scenario.name} if scenario.file else {"file": scenario.id}


def _tag(source: str) -> str:
    return "(no source tag)" if source == "None" else source


def _together(scenario: Scenario, world: World, schedule: int | None, strategy: str) -> list[FetchResult]:
    """The scenario's requests, each instance's in its own thread, all at once; results in the scenario's order."""
    from pytest_fcp.world.observation import FetchRequest

    calls: dict[int, list[FetchRequest]] = {}
    for request in scenario.requests:
        symbol, market, interval = request.series(scenario)
        calls.setdefault(request.engine, []).append(FetchRequest(symbol, market, interval, request.start, request.end))
    observed = dict(zip(calls, world.fetch_together(list(calls.items()), schedule, strategy), strict=True))
    return [observed[request.engine].pop(0) for request in scenario.requests]


def _whose(verdicts: list[Verdict], engine: int, engines: int, earlier: list[Verdict]) -> list[Verdict]:
    """With several instances, a verdict names the instance it is about; the cache's are about the shared cache:
    said once."""
    if engines == 1:
        return verdicts
    out = []
    for verdict in verdicts:
        if verdict.check == "cache":
            if verdict not in earlier and verdict not in out:
                out.append(verdict)
        else:
            out.append(Verdict(verdict.check, f"engine {engine + 1}: {verdict.reason}"))
    return out


def run_scenario(
    scenario: Scenario,
    engine: str | Any,
    cache_root: pathlib.Path,
    *,
    seed: int = 0,
    log_level: str = DEFAULT_LOG_LEVEL,
    schedule: int | None = 1,
    strategy: str = "random",
) -> ScenarioRun:
    """Run ``scenario`` on ``engine`` (a name or a factory) in a fresh world under ``cache_root`` (seeded with
    ``seed``, or with the seed its ``cache_from`` was saved with).

    ``log_level``: the lowest level of the engine's own log records kept in the trace; ``schedule`` and
    ``strategy``: the interleaving of instances that run together (:mod:`pytest_fcp.world.turns`; ``None``: as
    the operating system runs their threads)."""
    from pytest_fcp.engines import load_engine

    conflicts = setup_conflicts(
        scenario.faults, scenario.cached, (scenario.symbol, scenario.market, scenario.interval), scenario.now
    )
    if conflicts:  # a scenario built in Python meets the rules its TOML form would
        raise ScenarioError(conflicts[0].message, field=conflicts[0].field, **_where(scenario))
    factory = load_engine(engine) if isinstance(engine, str) else engine
    name = engine if isinstance(engine, str) else getattr(engine, "__name__", "engine")
    carried = saved_seed(scenario.cache_from)  # a saved cache was written against its own seed's market
    spec = scenario.world_spec(seed if carried is None else carried, log_level)
    world = World.from_spec(spec, cache_root)
    run = ScenarioRun(scenario, name, world)
    with world:
        world.create_engine(factory)  # seeds the cached days, then applies the cache faults
        for _ in range(1, scenario.engines):
            world.add_instance(factory)  # more instances of the engine on the same cache
        if scenario.crash is not None:
            crashed = run_crash_scenario(world, scenario, factory, lambda result: _explicit(scenario, world, result))
            run.results.extend(crashed.results)
            run.verdicts.extend(crashed.verdicts)
        elif scenario.together:
            run.results.extend(_together(scenario, world, schedule, strategy))
        else:
            for request in scenario.requests:
                if request.at is not None:
                    world.advance_to(request.at)
                symbol, market, interval = request.series(scenario)
                result = world.fetch(
                    request.start, request.end, symbol=symbol, market=market, interval=interval, instance=request.engine
                )
                refused = unstopped_writes(world.cache_dir, result.events)
                if refused:
                    raise ScenarioError(refused, field="faults", **_where(scenario))
                run.results.append(result)
        if scenario.crash is None:
            for request, result in zip(scenario.requests, run.results, strict=True):
                verdicts = judge(spec, result, skip=scenario.expect.skip_checks)
                run.verdicts.extend(_whose(verdicts, request.engine, scenario.engines, run.verdicts))
            run.verdicts.extend(v for v in judge_group(run.results) if v not in run.verdicts)
            run.verdicts.extend(_explicit(scenario, world, run.results[-1]))
    note(spec, run.results)  # the coverage map's cells, when a collector is open
    return run


def assert_scenario(scenario: Scenario, engine: str | Any, cache_root: pathlib.Path, *, seed: int = 0) -> ScenarioRun:
    """Run ``scenario`` and fail with every broken check and the decision path when the contract is broken."""
    run = run_scenario(scenario, engine, cache_root, seed=seed)
    if not run.passed:
        lines = "\n".join(f"  {v}" for v in run.verdicts)
        raise AssertionError(
            f"{scenario.id} on {run.engine} breaks the FCP contract:\n{lines}\npath: {run.world.trace.path()}"
        )
    return run
