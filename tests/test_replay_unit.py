"""The replay line, built in-process from a run's settings and an item: which path it names (relative, absolute,
bundled), which engine, seed and options it repeats, and its shell quoting (tests/test_replay.py runs them)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib
import shlex
from typing import Any

import pytest

from pytest_fcp.plugin.replay import replay_command, replay_target
from pytest_fcp.plugin.settings import ENGINE_NAME_KEY, RunSettings


@dataclasses.dataclass
class FakeItem:
    """What the replay line reads of a pytest item."""

    nodeid: str
    path: pathlib.Path
    stash: pytest.Stash = dataclasses.field(default_factory=pytest.Stash)


def item_at(nodeid: str, path: pathlib.Path) -> Any:
    """A stand-in for a collected item with this node id and file."""
    return FakeItem(nodeid, path)


def settings(here: pathlib.Path, **changes: object) -> RunSettings:
    """A run's settings with seed 7, engine reference, invoked in ``here``."""
    run = RunSettings(("reference",), 7, dt.datetime(2024, 1, 10, 12, tzinfo=dt.UTC), "WARNING", invocation_dir=here)
    return dataclasses.replace(run, **changes)


def test_a_file_below_the_invocation_dir_is_named_relative_to_it(tmp_path: pathlib.Path) -> None:
    item = item_at("mine/mine.toml::one_day[reference]", tmp_path / "mine" / "mine.toml")
    assert replay_target(item, settings(tmp_path)) == "mine/mine.toml::one_day[reference]"
    assert replay_target(item, settings(tmp_path / "mine")) == "mine.toml::one_day[reference]"
    elsewhere = settings(tmp_path / "other")
    assert replay_target(item, elsewhere) == f"{tmp_path / 'mine' / 'mine.toml'}::one_day[reference]"
    whole_file = item_at("mine/mine.toml", tmp_path / "mine" / "mine.toml")
    assert replay_target(whole_file, settings(tmp_path)) == "mine/mine.toml"


def test_a_bundled_scenario_file_is_always_absolute(tmp_path: pathlib.Path) -> None:
    catalog, mine = tmp_path / "catalog", tmp_path / "mine"
    item = item_at("catalog/basics.toml::cold[ckvd]", catalog / "basics.toml")
    bundled = settings(tmp_path, scenario_dirs=(catalog, mine))
    assert replay_target(item, bundled) == f"{catalog / 'basics.toml'}::cold[ckvd]"
    own = item_at("mine/x.toml::a[ckvd]", mine / "x.toml")
    assert replay_target(own, bundled) == "mine/x.toml::a[ckvd]"
    # --fcp-no-bundled: the first scenario dir is the user's own, named relative like any file
    assert replay_target(item, dataclasses.replace(bundled, no_bundled=True)) == "catalog/basics.toml::cold[ckvd]"


def test_the_command_repeats_seed_options_and_the_tested_engine(tmp_path: pathlib.Path) -> None:
    item = item_at("test_a.py::test_b", tmp_path / "test_a.py")
    run = settings(tmp_path, engines=("reference", "ckvd"), replay_options=("--fcp-log-level=DEBUG",))
    assert replay_command(run, item) == (
        "pytest --fcp-seed=7 --fcp-log-level=DEBUG --fcp-engine=reference --fcp-engine=ckvd test_a.py::test_b"
    )
    item.stash[ENGINE_NAME_KEY] = "ckvd"
    assert replay_command(run, item) == (
        "pytest --fcp-seed=7 --fcp-log-level=DEBUG --fcp-engine=ckvd test_a.py::test_b"
    )
    scenario = item_at("s.toml::x[reference]", tmp_path / "s.toml")
    scenario.engine = "pkg.mod:create"  # a scenario item names its engine
    assert shlex.split(replay_command(run, scenario))[-2:] == ["--fcp-engine=pkg.mod:create", "s.toml::x[reference]"]


def test_a_fuzz_item_replays_with_its_own_line_and_odd_paths_are_quoted(tmp_path: pathlib.Path) -> None:
    item = item_at("my tests/t.py::test_x[a b]", tmp_path / "my tests" / "t.py")
    line = replay_command(settings(tmp_path), item)
    assert shlex.split(line) == ["pytest", "--fcp-seed=7", "--fcp-engine=reference", "my tests/t.py::test_x[a b]"]
    item.replay_line = lambda run: f"pytest --fcp-fuzz --fcp-seed={run.seed} --fcp-fuzz-shards=1"  # a fuzz item's
    assert replay_command(settings(tmp_path), item) == "pytest --fcp-fuzz --fcp-seed=7 --fcp-fuzz-shards=1"


def test_a_node_id_with_a_class_keeps_every_part(tmp_path: pathlib.Path) -> None:
    item = item_at("test_a.py::TestX::test_y[1]", tmp_path / "test_a.py")
    assert replay_target(item, settings(tmp_path)) == "test_a.py::TestX::test_y[1]"
