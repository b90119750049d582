"""Running one scenario on one engine and judging it (used by the collector and by Python scenarios)."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import Any

from pytest_fcp.contract import Verdict, judge
from pytest_fcp.core.logs import DEFAULT_LOG_LEVEL
from pytest_fcp.coverage import note
from pytest_fcp.faults.rules import setup_conflicts
from pytest_fcp.scenarios.model import Scenario, ScenarioError, count_ok
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
            detail = "" if result.ok else f": {str(result.error)[:160]}"
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


def _tag(source: str) -> str:
    return "(no source tag)" if source == "None" else source


def run_scenario(
    scenario: Scenario,
    engine: str | Any,
    cache_root: pathlib.Path,
    *,
    seed: int = 0,
    log_level: str = DEFAULT_LOG_LEVEL,
) -> ScenarioRun:
    """Run ``scenario`` on ``engine`` (a name or a factory) in a fresh world under ``cache_root`` (seeded with
    ``seed``, or with the seed its ``cache_from`` was saved with).

    ``log_level``: the lowest level of the engine's own log records kept in the trace."""
    from pytest_fcp.engines import load_engine

    conflicts = setup_conflicts(
        scenario.faults, scenario.cached, (scenario.symbol, scenario.market, scenario.interval), scenario.now
    )
    if conflicts:  # a scenario built in Python meets the rules its TOML form would
        where = {"file": scenario.file, "scenario": scenario.name} if scenario.file else {"file": scenario.id}
        raise ScenarioError(conflicts[0].message, field=conflicts[0].field, **where)
    factory = load_engine(engine) if isinstance(engine, str) else engine
    name = engine if isinstance(engine, str) else getattr(engine, "__name__", "engine")
    carried = saved_seed(scenario.cache_from)  # a saved cache was written against its own seed's market
    spec = scenario.world_spec(seed if carried is None else carried, log_level)
    world = World.from_spec(spec, cache_root)
    run = ScenarioRun(scenario, name, world)
    with world:
        world.create_engine(factory)  # seeds the cached days, then applies the cache faults
        for request in scenario.requests:
            if request.at is not None:
                world.advance_to(request.at)
            symbol, market, interval = request.series(scenario)
            result = world.fetch(request.start, request.end, symbol=symbol, market=market, interval=interval)
            run.results.append(result)
            run.verdicts.extend(judge(spec, result, skip=scenario.expect.skip_checks))
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
