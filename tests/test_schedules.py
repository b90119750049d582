"""Schedules: engine instances running together are interleaved by a seeded schedule, so a race is a property
of the scenario: some schedules reach it, the same schedule reaches it again, and a run reports the
behaviours it saw, each with a replay line."""

from __future__ import annotations

import pathlib

import pytest

from pytest_fcp.scenarios.decisions import failure_key
from pytest_fcp.scenarios.loader import load_file
from pytest_fcp.scenarios.runner import run_scenario
from pytest_fcp.world.turns import Turns

ROOT = pathlib.Path(__file__).resolve().parents[1]
THEME = {s.name: s for s in load_file(ROOT / "scenarios" / "concurrency.toml")}
FIXED = "tests.engines.env_engines:create_fixed_name"


def _keys(
    scenario_name: str, engine: str, tmp: pathlib.Path, schedule: int, strategy: str = "random"
) -> tuple[str, ...]:
    where = tmp / f"{schedule:03d}"  # one length: a message cut at a fixed width cuts the same way
    run = run_scenario(THEME[scenario_name], engine, where / "cache", schedule=schedule, strategy=strategy)
    return tuple(sorted(failure_key(v, str(run.world.cache_dir)) for v in run.verdicts))


def test_some_schedule_reaches_the_fixed_temp_name_race_and_replays_it(tmp_path: pathlib.Path) -> None:
    """ckvd up to 4.6.0 downloads each zip to a fixed name in the temporary directory: two instances asking for
    the same day at once meet in that file. Some schedule of eight reaches it; that schedule reaches it again,
    five times out of five."""
    found = {k: _keys("same_range_twice_at_once", FIXED, tmp_path / "a", k) for k in range(1, 9)}
    racy = [k for k, keys in found.items() if keys]
    assert racy, found
    assert all("FileNotFoundError" in key for k in racy for key in found[k])
    again = {_keys("same_range_twice_at_once", FIXED, tmp_path / f"{n}", racy[0]) for n in range(5)}
    assert again == {found[racy[0]]}


@pytest.mark.parametrize("strategy", ["random", "pct"])
@pytest.mark.parametrize("engine", ["reference", "tests.engines.alt_engine:create"])
def test_correct_engines_pass_every_schedule(tmp_path: pathlib.Path, engine: str, strategy: str) -> None:
    for k in range(1, 5):
        assert _keys("same_range_twice_at_once", engine, tmp_path, k, strategy) == ()
        assert _keys("overlapping_warmups", engine, tmp_path / "w", k, strategy) == ()


def test_turns_follow_the_seed() -> None:
    """Two instances that each yield three times: the order of turns is the seed's, the same every time."""
    import threading

    def play(seed: int) -> list[int]:
        turns = Turns([0, 1], seed)

        def run(player: int) -> None:
            turns.start(player)
            for _ in range(3):
                turns.yield_point(player)
            turns.finish(player)

        threads = [threading.Thread(target=run, args=(p,)) for p in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert turns.forced == 0
        return turns.order

    orders = {seed: play(seed) for seed in range(6)}
    assert all(play(seed) == order for seed, order in orders.items())
    assert len({tuple(o) for o in orders.values()}) > 1  # different seeds, different interleavings


def test_a_run_reports_each_behaviour_with_its_replay(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", **{"scenarios/mine": (ROOT / "scenarios" / "concurrency.toml").read_text()})
    args = ("--fcp-scenarios", "--fcp-no-bundled", "--fcp-scenarios-dir", "scenarios", "-n", "0", "-p", "no:randomly")
    result = pytester.runpytest(*args, "--fcp-engine", FIXED, "-k", "same_range_twice", "--fcp-schedules", "8")
    text = result.stdout.str()
    assert "behaviour(s) in 8 schedule(s)" in text, text
    replays = [
        line.split("replay: ", 1)[1] for line in result.stdout.lines if "replay: " in line and "--fcp-schedule=" in line
    ]
    assert replays
    racy = next(r for r in replays if r)  # rerun one behaviour's schedule alone
    number = racy.rsplit("--fcp-schedule=", 1)[1]
    again = pytester.runpytest(*args, "--fcp-engine", FIXED, "-k", "same_range_twice", f"--fcp-schedule={number}")
    assert "behaviour(s)" not in again.stdout.str()  # one schedule: one behaviour


@pytest.mark.parametrize(
    ("option", "says"),
    [
        ("--fcp-schedules=0", "--fcp-schedules 0 is out of range; give 1 to 1000"),
        ("--fcp-schedules=many", "--fcp-schedules 'many' is not a whole number"),
        ("--fcp-schedule=-2", "--fcp-schedule -2 is out of range"),
    ],
)
def test_bad_schedule_options_are_one_line(pytester: pytest.Pytester, option: str, says: str) -> None:
    result = pytester.runpytest("--fcp-scenarios", option, "-n", "0")
    assert result.ret != 0
    result.stderr.fnmatch_lines([f"ERROR: pytest-fcp: {says}*"])


def test_a_cut_timed_by_the_engines_own_reads_makes_a_scenario_racy() -> None:
    from pytest_fcp.plugin.behaviours import racy

    bundled = pathlib.Path(__file__).resolve().parent.parent / "scenarios"
    corruption = {s.name: s for s in load_file(bundled / "cache_corruption.toml")}
    assert racy(corruption["truncated_while_read"])  # cache.truncated_on_read: the cut lands when the watch sees it
    assert not any(racy(s) for n, s in corruption.items() if n != "truncated_while_read")
    assert any(racy(s) for s in load_file(bundled / "concurrency.toml"))  # instances together
