"""Several engine instances on one cache: each fetch is judged with its own requests, faults and events; the
instances run at once (one thread each) or in a given order; the concurrency theme passes on correct engines."""

from __future__ import annotations

import dataclasses
import pathlib
import textwrap

import pytest

from pytest_fcp.contract import judge
from pytest_fcp.engines import load_engine
from pytest_fcp.scenarios.loader import load_file
from pytest_fcp.scenarios.runner import run_scenario
from pytest_fcp.world import World
from pytest_fcp.world.observation import FetchRequest
from tests.conftest import ALT, utc
from tests.engines import pooled_engine

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOW = utc(2024, 3, 1, 12)
CONCURRENCY = load_file(ROOT / "scenarios" / "concurrency.toml")


def _request(symbol: str, start: int, end: int) -> FetchRequest:
    return FetchRequest(symbol, "spot", "1h", utc(2024, 2, start), utc(2024, 2, end))


def test_each_fetch_running_together_keeps_its_own_requests(tmp_path: pathlib.Path) -> None:
    """Two instances of an engine that asks from its own pool threads, at once: every request lands on the
    fetch whose pool made it, none is lost, none counted twice."""
    with World(tmp_path / "cache", NOW) as world:
        world.create_engine(pooled_engine.create)
        world.add_instance(pooled_engine.create)
        (first,), (second,) = world.fetch_together([(0, [_request("BTCUSDT", 1, 4)]), (1, [_request("ETHUSDT", 2, 6)])])
        everything = [e for e in world.trace.events if e.kind == "http"]
    assert first.ok and second.ok
    assert first.requests and all("BTCUSDT" in r.url for r in first.requests)
    assert second.requests and all("ETHUSDT" in r.url for r in second.requests)
    assert len(first.requests) + len(second.requests) == len(everything)
    assert first.together == second.together == 2
    assert not judge(world.spec, first) and not judge(world.spec, second)


def test_one_at_a_time_fetches_are_not_together(tmp_path: pathlib.Path) -> None:
    with World(tmp_path / "cache", NOW) as world:
        world.create_engine(pooled_engine.create)
        world.add_instance(pooled_engine.create)
        first = world.fetch(utc(2024, 2, 10), utc(2024, 2, 12), instance=0)
        second = world.fetch(utc(2024, 2, 10), utc(2024, 2, 12), instance=1)
    assert first.together == second.together == 1
    assert {s.status for s in second.cache_before.values()} == {"valid"}  # the first instance cached them
    assert second.requests == () and all(s == {"cache"} for s in second.sources_by_day().values())


def test_an_instance_the_world_does_not_have_is_refused(tmp_path: pathlib.Path) -> None:
    from pytest_fcp.world import WorldError

    with World(tmp_path / "cache", NOW) as world:
        world.create_engine(load_engine("reference"))
        with pytest.raises(WorldError, match="no engine instance 2: this world has 1"):
            world.fetch(utc(2024, 2, 10), utc(2024, 2, 12), instance=1)


@pytest.mark.parametrize("engine", ["reference", ALT, "tests.engines.pooled_engine:create"])
@pytest.mark.parametrize("scenario", CONCURRENCY, ids=[s.name for s in CONCURRENCY])
def test_the_concurrency_theme_passes_on_correct_engines(tmp_path: pathlib.Path, scenario: object, engine: str) -> None:
    run = run_scenario(scenario, engine, tmp_path / "cache")  # type: ignore[arg-type]
    assert run.passed, run.summary()
    assert len(run.world.instances) == run.scenario.engines


def test_a_verdict_names_its_instance_and_the_cache_is_judged_once(tmp_path: pathlib.Path) -> None:
    """A planted engine that caches young days: both instances fetch today; the rows verdict names each
    instance, the cache verdict about the one shared file is said once."""
    scenario = next(s for s in CONCURRENCY if s.name == "todays_partial_day_from_two")
    run = run_scenario(scenario, "tests.engines.pooled_engine:create_caching_young", tmp_path / "cache")
    cache = [v for v in run.verdicts if v.check == "cache" and "younger than 48 h" in v.reason]
    assert len(cache) == 1, run.summary()
    assert not cache[0].reason.startswith("engine ")


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ("engines = 9", "[engines]: 9: allowed a number of engine instances on one cache, 1 to 8"),
        ("engines = 2\ntogether = 1", "[together]: 1: allowed true"),
        ("together = true", "[together]: needs engines = 2 or more"),
        ("engines = 2", "[engines]: engine 2 makes no request"),
    ],
)
def test_bad_instance_fields_are_one_line(pytester: pytest.Pytester, fields: str, says: str) -> None:
    pytester.makefile(
        ".toml",
        **{
            "scenarios/mine": textwrap.dedent(
                """
                [[scenario]]
                name = "several"
                description = "several instances"
                now = "2024-03-01T12:00:00Z"
                request = {{ start = "2024-02-10", end = "2024-02-12" }}
                """
            ).format()
            + fields
            + "\n"
        },
    )
    result = pytester.runpytest(
        "--fcp-scenarios", "--fcp-no-bundled", "--fcp-scenarios-dir", "scenarios", "-n", "0", "-p", "no:randomly"
    )
    assert any(says in line and "mine.toml::several" in line for line in result.stdout.lines), result.stdout.str()
    assert "Traceback" not in result.stdout.str()


def test_two_instances_saving_todays_partial_day_lose_rows_and_the_cause_is_named(tmp_path: pathlib.Path) -> None:
    """The planted engine saves every day it returned, as ckvd saves today's partial day: two instances on
    overlapping halves of today each save theirs, and the file keeps one writer's bars (8) of the twelve fetched."""
    scenario = next(s for s in CONCURRENCY if s.name == "todays_partial_day_from_two")
    for schedule in (1, 2, 3):
        run = run_scenario(
            scenario,
            "tests.engines.pooled_engine:create_caching_young",
            tmp_path / f"{schedule}" / "c",
            schedule=schedule,
        )
        lost = [v.reason for v in run.verdicts if "the last writer's rows won" in v.reason]
        assert run.world.cache_state(scenario.requests[0].start.date()).rows == 8
        assert len(lost) == 1 and "the cache kept only some of the 12 bars the instances fetched together" in lost[0], (
            run.summary()
        )


def test_no_lost_update_on_correct_engines_or_one_at_a_time(tmp_path: pathlib.Path) -> None:
    from pytest_fcp.contract import judge_group

    scenario = next(s for s in CONCURRENCY if s.name == "todays_partial_day_from_two")
    run = run_scenario(scenario, "reference", tmp_path / "r")
    assert judge_group(run.results) == []
    alone = [
        o for o in run_scenario(scenario, "tests.engines.pooled_engine:create_caching_young", tmp_path / "a").results
    ]
    assert judge_group([dataclasses.replace(o, together=1) for o in alone]) == []  # the check is about fetches at once
