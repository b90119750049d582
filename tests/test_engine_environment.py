"""The world owns the engine's environment: a private temporary directory per world, the engine's declared
variables cleared unless a scenario sets them, and every write outside the sandbox reported naming its path."""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import subprocess
import sys
import tempfile
import textwrap

import pytest

from pytest_fcp.contract import judge
from pytest_fcp.engines import ckvd as ckvd_adapter
from pytest_fcp.engines import env_prefixes, load_engine
from pytest_fcp.engines.reference import create as reference
from pytest_fcp.world import World, WorldError
from tests.conftest import utc
from tests.engines import env_engines

NOW = utc(2024, 1, 10, 12)
DAYS = [dt.date(2024, 1, 2), dt.date(2024, 1, 3)]
START, END = utc(2024, 1, 2), utc(2024, 1, 4)


@pytest.fixture
def system_temp(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A stand-in for the system temporary directory, as the process sees it."""
    path = tmp_path / "system-temp"
    path.mkdir()
    monkeypatch.setenv("TMPDIR", str(path))
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


# --- the private temporary directory -------------------------------------------------------------------
def test_each_world_has_its_own_temporary_directory(tmp_path: pathlib.Path, system_temp: pathlib.Path) -> None:
    seen = []
    for n in (1, 2):
        with World(tmp_path / f"cache{n}", NOW) as world:
            world.create_engine(env_engines.create_fixed_temp)
            obs = world.fetch(START, END)
            assert obs.ok and not obs.violations
            seen.append(pathlib.Path(tempfile.gettempdir()))
            assert os.environ["TMPDIR"] == str(seen[-1])
            assert (seen[-1] / "fcp-fixed-name.zip").exists()
    assert seen[0] != seen[1]
    assert all(p.is_relative_to(tmp_path / f"cache{n}-home") for n, p in zip((1, 2), seen, strict=True))
    assert list(system_temp.iterdir()) == []  # the fixed name never met the system's temporary directory
    assert tempfile.gettempdir() == str(system_temp) and os.environ["TMPDIR"] == str(system_temp)


# --- writes outside the sandbox ----------------------------------------------------------------------------
def test_a_write_outside_the_sandbox_is_a_violation_naming_the_path(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "elsewhere" / "vision_api_urls.txt"
    outside.parent.mkdir()
    monkeypatch.setattr(env_engines, "OUTSIDE", [outside])
    with World(tmp_path / "cache", NOW) as world:
        world.create_engine(env_engines.create_outside)
        obs = world.fetch(START, END)
    assert obs.ok and outside.exists()
    assert obs.violations == (f"wrote outside its sandbox: {outside} (open)",)
    verdicts = judge(world.spec, obs)
    assert [v.check for v in verdicts] == ["network"]
    assert str(outside) in verdicts[0].reason


def test_the_harness_own_writes_and_correct_engines_are_not_violations(tmp_path: pathlib.Path) -> None:
    with World(tmp_path / "cache", NOW, cached=DAYS[:1]) as world:
        world.create_engine(reference)
        (tmp_path / "harness-file").write_text("the test's own write, outside any engine call")
        obs = world.fetch(START, END)
    assert obs.ok and obs.violations == ()
    assert not judge(world.spec, obs)


# --- the engine's own variables ------------------------------------------------------------------------------
def test_declared_prefixes_are_found_on_the_factory_or_its_module() -> None:
    assert env_prefixes(env_engines.create_settings) == ("FCPTEST_",)
    assert env_prefixes(reference) == ()
    assert env_prefixes(ckvd_adapter.create) == ("CKVD_",)

    def factory(cache_dir: pathlib.Path) -> object:
        return None

    factory.env_prefixes = "MINE_"  # type: ignore[attr-defined]
    assert env_prefixes(factory) == ("MINE_",)


def test_the_users_setting_cannot_change_the_engine(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's ``FCPTEST_DISABLE_CACHE=1`` would make the engine skip its cache; the world clears it, and puts
    it back (and removes what the engine set) when it stops."""
    monkeypatch.setenv("FCPTEST_DISABLE_CACHE", "1")
    with World(tmp_path / "cache", NOW, cached=DAYS) as world:
        world.create_engine(env_engines.create_settings)
        assert "FCPTEST_DISABLE_CACHE" not in os.environ
        obs = world.fetch(START, END)
    assert obs.ok and obs.requests == ()  # both days served from the cache
    assert os.environ["FCPTEST_DISABLE_CACHE"] == "1"
    assert "FCPTEST_SEEN" not in os.environ


def test_without_the_world_owning_it_the_users_setting_leaks(tmp_path: pathlib.Path) -> None:
    """The planted case the ownership exists for: the same engine, its variable set, goes to the network."""
    with World(tmp_path / "cache", NOW, cached=DAYS, env=[("FCPTEST_DISABLE_CACHE", "1")]) as world:
        world.create_engine(env_engines.create_settings)
        obs = world.fetch(START, END)
    assert obs.ok and len(obs.requests) > 0


def test_a_scenario_sets_a_variable_for_the_engine(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FCPTEST_OTHER", "user")
    with World(tmp_path / "cache", NOW, env=[("FCPTEST_DISABLE_CACHE", "yes")]) as world:
        world.create_engine(env_engines.create_settings)
        assert os.environ["FCPTEST_DISABLE_CACHE"] == "yes" and "FCPTEST_OTHER" not in os.environ
    assert "FCPTEST_DISABLE_CACHE" not in os.environ and os.environ["FCPTEST_OTHER"] == "user"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"TMPDIR": "/tmp"}, "TMPDIR is set by the world itself"),
        ({"1BAD": "x"}, "is not a variable name"),
        ({"FCPTEST_X": 1}, "the value must be a string"),
    ],
)
def test_a_bad_env_is_refused(tmp_path: pathlib.Path, env: dict[str, object], says: str) -> None:
    with pytest.raises(WorldError, match=says):
        World(tmp_path / "cache", NOW, env=list(env.items()))


_OWN = ("--fcp-scenarios", "--fcp-no-bundled", "--fcp-scenarios-dir", "scenarios", "-n", "0", "-p", "no:randomly")


def test_a_scenario_files_bad_env_is_one_line_naming_it(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        **{
            "scenarios/mine": textwrap.dedent(
                """
                [[scenario]]
                name = "env_bad"
                description = "sets the world's own variable"
                now = "2024-01-10T12:00:00Z"
                env = { XDG_CACHE_HOME = "/somewhere" }
                request = { start = "2024-01-02", end = "2024-01-04" }
                """
            )
        },
    )
    result = pytester.runpytest(*_OWN, "--fcp-engine", "reference")
    result.stdout.fnmatch_lines(["*mine.toml*env_bad*env*XDG_CACHE_HOME is set by the world itself*"])
    assert "Traceback" not in result.stdout.str()


def test_a_scenario_files_env_reaches_the_engine(pytester: pytest.Pytester) -> None:
    """The scenario switches the engine's cache off through its own variable: the cached days then come from
    Vision, which the contract names; the same scenario without ``env`` conforms."""
    scenario = """
        [[scenario]]
        name = "{name}"
        description = "two cached days, {what}"
        now = "2024-01-10T12:00:00Z"
        cached = ["2024-01-02", "2024-01-03"]
        {env}
        request = {{ start = "2024-01-02", end = "2024-01-04" }}
        """
    text = textwrap.dedent(scenario).format(name="cache_on", what="the engine's settings untouched", env="")
    text += textwrap.dedent(scenario).format(
        name="cache_off", what="the engine's cache switched off", env='env = { FCPTEST_DISABLE_CACHE = "1" }'
    )
    pytester.makefile(".toml", **{"scenarios/mine": text})
    engine = "tests.engines.env_engines:create_settings"
    result = pytester.runpytest(*_OWN, "--fcp-engine", engine)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*NEW FAILING mine/cache_off: [[]sources[]] 2024-01-02: rows tagged vision; expected cache*"]
    )


def test_ckvd_keeps_its_cache_whatever_the_users_ckvd_enable_cache(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("ckvd")
    monkeypatch.setenv("CKVD_ENABLE_CACHE", "false")
    with World(tmp_path / "cache", NOW, cached=DAYS) as world:
        world.create_engine(load_engine("ckvd"))
        obs = world.fetch(START, END)
    assert obs.ok and obs.requests == (), [r.url for r in obs.requests]
    with World(tmp_path / "cache2", NOW, cached=DAYS, env=[("CKVD_ENABLE_CACHE", "false")]) as world:
        world.create_engine(load_engine("ckvd"))
        obs = world.fetch(START, END)
    assert obs.ok and len(obs.requests) > 0  # the scenario's setting does reach ckvd


def test_a_ckvd_catalog_run_leaves_nothing_in_the_system_temporary_directory(tmp_path: pathlib.Path) -> None:
    """The whole bundled catalog on ckvd, in a process whose system temporary directory is listed before and
    after: nothing of the run is left there (ckvd's downloads and URL logs go to each world's own)."""
    pytest.importorskip("ckvd")
    system = tmp_path / "system-temp"
    system.mkdir()
    (system / "someone-elses-file").write_text("x")
    before = sorted(p.name for p in system.iterdir())
    env = {**os.environ, "TMPDIR": str(system), "PYTHONDONTWRITEBYTECODE": "1"}
    root = pathlib.Path(__file__).resolve().parents[1]
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--fcp-scenarios",
            "--fcp-engine",
            "ckvd",
            "-n",
            "0",
            "-p",
            "no:randomly",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert sorted(p.name for p in system.rglob("*")) == before
