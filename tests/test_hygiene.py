"""A run that does not use pytest-fcp is left as it was: random, header, warning filters; bad input is one line."""

from __future__ import annotations

import pathlib
import re
import shlex
import sys
import threading
import warnings

import pytest

from pytest_fcp.plugin.invocation import FCP_DESTS, given_plugins, launcher, scenario_path_hint
from pytest_fcp.scenarios.loader import catalog_dir
from pytest_fcp.world.environment import EngineThreads, recorded_warnings
from pytest_fcp.world.recorder import Recorder

pytest_plugins = ["pytester"]

RANDOM_TESTS = """
import random

def test_plain():
    print("plain", random.random())

def test_fcp(fcp_engine_name):
    print("fcp", random.random())
"""


def _printed(result: pytest.RunResult) -> dict[str, str]:
    return dict(re.findall(r"\b(plain|fcp) (0\.\d+)", result.stdout.str()))


def test_only_pytest_fcp_tests_are_reseeded(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(RANDOM_TESTS)
    runs = [pytester.runpytest("-p", "no:xdist", "-s", "--fcp-seed=5", "--fcp-engine=reference") for _ in range(3)]
    printed = [_printed(r) for r in runs]
    assert all(p.keys() >= {"plain", "fcp"} for p in printed), printed
    assert len({p["fcp"] for p in printed}) == 1  # the same seed, the same draws: the engine's jitter replays
    assert len({p["plain"] for p in printed}) == 3  # a plain test's random is not the plugin's business
    other = _printed(pytester.runpytest("-p", "no:xdist", "-s", "--fcp-seed=6", "--fcp-engine=reference"))
    assert other["fcp"] != printed[0]["fcp"]


def test_no_fcp_line_in_a_run_without_pytest_fcp(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest("-p", "no:xdist")
    result.assert_outcomes(passed=1)
    assert not [line for line in result.outlines if line.startswith("fcp")], result.stdout.str()


@pytest.mark.parametrize("workers", [["-p", "no:xdist"], ["-n", "2"]], ids=["one-process", "xdist"])
def test_a_run_that_tests_an_engine_names_its_seed_in_the_summary(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    pytester.makepyfile(RANDOM_TESTS)
    result = pytester.runpytest(*workers)
    result.assert_outcomes(passed=3)  # test_fcp on reference and ckvd
    (line,) = [line for line in result.outlines if line.startswith("fcp: seed=")]
    assert result.outlines.index(line) > next(i for i, x in enumerate(result.outlines) if "test_" in x)
    assert line.endswith("engines=reference,ckvd"), line
    given = pytester.runpytest(*workers, "--fcp-engine=reference")  # an --fcp-* option: the header says it
    header = [line for line in given.outlines if line.startswith("fcp: seed=")]
    assert len(header) == 1 and given.outlines.index(header[0]) < 8, given.stdout.str()


def test_every_registered_option_is_known_to_the_settings(request: pytest.FixtureRequest) -> None:
    group = request.config._parser.getgroup("fcp")  # pytest has no public listing of a group's options
    assert {option.dest for option in group.options} == set(FCP_DESTS)


# --- the replay line's launcher ---------------------------------------------------------------------------
def _which(table: dict[str, str]) -> object:
    return lambda name: table.get(name)


def _bin(tmp_path: pathlib.Path, name: str, *programs: str) -> pathlib.Path:
    folder = tmp_path / name
    folder.mkdir()
    for program in programs:
        (folder / program).write_text("")
    return folder


def test_launcher_of_the_pytest_script(tmp_path: pathlib.Path) -> None:
    venv = _bin(tmp_path, "venv", "pytest", "python")
    other = _bin(tmp_path, "other", "pytest")
    exe = str(venv / "python")
    first = _which({"pytest": str(venv / "pytest")})
    assert launcher([exe, str(venv / "pytest")], str(venv / "pytest"), {}, first, exe) == ("pytest",)
    elsewhere = _which({"pytest": str(other / "pytest")})  # a venv's pytest, run by path, not the first on PATH
    assert launcher([exe, "venv/pytest"], "venv/pytest", {}, elsewhere, exe) == ("venv/pytest",)
    assert launcher([exe, "venv/pytest"], "venv/pytest", {}, _which({}), exe) == ("venv/pytest",)


def test_launcher_under_uv_run(tmp_path: pathlib.Path) -> None:
    venv = _bin(tmp_path, "venv", "pytest", "python")
    tools = _bin(tmp_path, "tools", "uv")
    exe, script = str(venv / "python"), str(venv / "pytest")
    env = {"UV": str(tools / "uv"), "UV_RUN_RECURSION_DEPTH": "1"}
    on_path = _which({"pytest": script, "python": exe, "uv": str(tools / "uv")})
    assert launcher([exe, script], script, env, on_path, exe) == ("uv", "run", "pytest")
    main = str(venv / "lib" / "pytest" / "__main__.py")
    assert launcher([exe, "-m", "pytest", "-x"], main, env, on_path, exe) == ("uv", "run", "python", "-m", "pytest")
    no_uv = _which({"pytest": script, "python": exe})  # uv itself is not on PATH: its path
    assert launcher([exe, script], script, env, no_uv, exe) == (str(tools / "uv"), "run", "pytest")
    assert launcher([exe, script], script, {"UV": str(tools / "uv")}, on_path, exe) == ("pytest",)  # not uv run


def test_launcher_of_python_dash_m(tmp_path: pathlib.Path) -> None:
    venv = _bin(tmp_path, "venv", "python")
    system = _bin(tmp_path, "system", "python")
    exe = str(venv / "python")
    main = str(venv / "lib" / "pytest" / "__main__.py")
    first = _which({"python": exe})
    assert launcher([exe, "-m", "pytest", "-x"], main, {}, first, exe) == ("python", "-m", "pytest")
    assert launcher([exe, "-X", "dev", "-W", "error", "-mpytest"], main, {}, first, exe) == (
        "python", "-X", "dev", "-W", "error", "-m", "pytest",
    )  # fmt: skip
    another = _which({"python": str(system / "python")})  # not the first python on PATH: by its path
    assert launcher([exe, "-m", "pytest"], main, {}, another, exe) == (exe, "-m", "pytest")
    assert launcher([exe, "-c", "..."], "-c", {}, first, exe) == ("python", "-m", "pytest")  # pytest.main()


def test_given_plugins_and_pytest_options_that_shape_a_test_are_repeated() -> None:
    args = ["-p", "no:cacheprovider", "-pxdist", "--fcp-seed=1", "-k", "x", "-oxfail_strict=true", "-W", "error"]
    args += ["--pythonwarnings=ignore::DeprecationWarning", "--override-ini", "a=b", "--config-file=my.ini", "-x"]
    args += ["--rootdir", "proj", "-c", "other.ini", "--", "-p", "nope"]
    assert given_plugins(args) == (
        "-p", "no:cacheprovider", "-p", "xdist", "-o", "xfail_strict=true", "-W", "error",
        "-W", "ignore::DeprecationWarning", "-o", "a=b", "-c", "my.ini", "--rootdir=proj", "-c", "other.ini",
    )  # fmt: skip


def test_replay_line_carries_the_options_that_shaped_the_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("UV", "UV_RUN_RECURSION_DEPTH"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(
        """
        import datetime as dt, pytest

        @pytest.mark.fcp(faults=["vision.http403"])
        def test_fails(fcp_world, fcp_engine):
            fcp_world.fetch(dt.datetime(2024, 1, 2, tzinfo=dt.UTC), dt.datetime(2024, 1, 3, tzinfo=dt.UTC))
            assert False
        """
    )
    args = ["-p", "no:xdist", "--fcp-engine=reference", "--fcp-log-level=DEBUG", "--fcp-lean", "--fcp-seed=4"]
    result = pytester.runpytest(*args)
    result.assert_outcomes(failed=1)
    lines = result.outlines
    line = lines[lines.index(next(x for x in lines if "fcp replay" in x)) + 1]
    words = shlex.split(line)
    assert words[words.index("--fcp-seed=4") - 2 :][:2] == ["-m", "pytest"], line
    for part in ("-p no:xdist", "--fcp-log-level=DEBUG", "--fcp-lean", "--fcp-engine=reference"):
        assert part in line, line


def test_xdist_workers_replay_as_the_controller_was_started(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("UV", "UV_RUN_RECURSION_DEPTH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTEST_ADDOPTS", f"--basetemp={pytester.path / 'tmp'}")
    pytester.makepyfile(test_fails="def test_fails(fcp_world, fcp_engine):\n    assert False\n")
    # started with an interpreter option: a worker (python -c ...) could not know it
    result = pytester.run(sys.executable, "-X", "utf8", "-m", "pytest", "-n", "2", "--fcp-engine=reference")
    result.assert_outcomes(failed=1)
    (line,) = [x for x in result.outlines if "--fcp-seed=" in x and "test_fails.py::" in x]
    assert shlex.split(line)[1:5] == ["-X", "utf8", "-m", "pytest"], line


def test_fuzz_replay_line_carries_the_fuzz_options() -> None:
    from pytest_fcp.plugin.replay import replay_command
    from pytest_fcp.plugin.settings import RunSettings

    run = RunSettings(
        engines=("reference",), seed=9, now=None, log_level="INFO", launcher=("uv", "run", "pytest"),  # type: ignore[arg-type]
        fuzz_replay_options=("--fcp-fuzz-examples=7", "--fcp-fuzz-budget=30"), invocation_dir=pathlib.Path.cwd(),
    )  # fmt: skip

    from pytest_fcp.plugin.fuzz_items import FuzzItem

    class Item:
        path = pathlib.Path.cwd() / "test_x.py"
        nodeid = "fcp_fuzz[reference:2/2]"
        engine = "reference"
        shard = (2, 2)
        replay_line = FuzzItem.replay_line

    line = replay_command(run, Item())  # type: ignore[arg-type]
    assert line.startswith("uv run pytest --fcp-fuzz --fcp-seed=9 --fcp-engine=reference --fcp-fuzz-examples=7 ")
    assert "--fcp-fuzz-budget=30" in line
    assert line.endswith("--fcp-fuzz-shards=2 --fcp-fuzz-shard=2")
    del Item.replay_line
    assert "--fcp-fuzz" not in replay_command(run, Item())  # type: ignore[arg-type]


# --- scenario files given to pytest without --fcp-scenarios ------------------------------------------------
def test_scenario_paths_are_named_with_what_to_add(tmp_path: pathlib.Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "x.toml").write_text((catalog_dir() / "basics.toml").read_text())
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    never = lambda folder: False  # noqa: E731
    assert scenario_path_hint(["mine/x.toml::a"], tmp_path, False, never) == (
        "mine/x.toml::a is an FCP scenario file, which pytest runs only with --fcp-scenarios "
        "--fcp-scenarios-dir=mine: add them"
    )
    assert scenario_path_hint(["mine"], tmp_path, True, never) == (
        "mine is a directory of FCP scenario files, which pytest runs only with --fcp-scenarios-dir=mine: add it"
    )
    assert scenario_path_hint(["mine"], tmp_path, True, lambda folder: folder == mine) is None
    assert "--fcp-scenarios: add it" in str(scenario_path_hint(["mine"], tmp_path, False, lambda f: True))
    assert scenario_path_hint(["pyproject.toml", "."], tmp_path, False, never) is None  # not scenarios
    (mine / "test_a.py").write_text("")
    assert scenario_path_hint(["mine"], tmp_path, False, never) is None  # pytest collects its tests


def test_a_scenario_file_without_fcp_scenarios_is_one_line(pytester: pytest.Pytester) -> None:
    scenarios = pytester.path / "scenarios"  # a directory named scenarios: --fcp-scenarios collects it
    scenarios.mkdir()
    (scenarios / "x.toml").write_text((catalog_dir() / "basics.toml").read_text())
    result = pytester.runpytest("-p", "no:xdist", "scenarios/x.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [x for x in result.stderr.lines if x.strip()] == [
        "ERROR: pytest-fcp: scenarios/x.toml is an FCP scenario file, which pytest runs only with --fcp-scenarios: "
        "add it"
    ]


# --- the user's warning filters outside the engine --------------------------------------------------------
def _warn_in_thread(message: str) -> list[BaseException]:
    raised: list[BaseException] = []

    def run() -> None:
        try:
            warnings.warn(message, UserWarning, stacklevel=1)
        except UserWarning as exc:
            raised.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return raised


def test_only_the_engines_threads_bypass_the_users_filters() -> None:
    recorder = Recorder()
    threads = EngineThreads()
    held = threading.Event()
    go = threading.Event()
    bystander_raised: list[BaseException] = []

    def bystander() -> None:  # started before the engine's call: not the engine's
        held.set()
        go.wait(5)
        try:
            warnings.warn("bystander", UserWarning, stacklevel=1)
        except UserWarning as exc:
            bystander_raised.append(exc)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the user's -W error
        other = threading.Thread(target=bystander)
        other.start()
        held.wait(5)
        before = list(warnings.filters)
        with recorded_warnings(recorder, threads) as counted:
            warnings.warn("engine", UserWarning, stacklevel=1)  # the calling thread: recorded, not raised
            assert _warn_in_thread("engine thread") == []  # started inside the call: the engine's
            go.set()
            other.join()
        assert warnings.filters == before  # as found
        with pytest.raises(UserWarning, match="after"):
            warnings.warn("after", UserWarning, stacklevel=1)
    assert [str(e) for e in bystander_raised] == ["bystander"]  # met the user's filter during the call
    messages = sorted(e.data["message"] for e in recorder.trace.of_kind("warning"))
    assert messages == ["engine", "engine thread"] and counted == [2]


def test_user_warning_filters_hold_around_pytest_fcp_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_w="""
        import datetime as dt, warnings
        from pytest_fcp.engines.reference import create

        class Warns:
            def __init__(self, inner):
                self.inner = inner
            def __getattr__(self, name):
                return getattr(self.inner, name)
            def fetch(self, *args):
                warnings.warn("from the engine", UserWarning, stacklevel=1)
                return self.inner.fetch(*args)

        def test_a_fcp(fcp_world, fcp_trace):
            fcp_world.attach(Warns(create(fcp_world.cache_dir)))
            fcp_world.fetch(dt.datetime(2024, 1, 2, tzinfo=dt.UTC), dt.datetime(2024, 1, 3, tzinfo=dt.UTC))
            assert [e.data["message"] for e in fcp_trace.of_kind("warning")] == ["from the engine"]

        def test_b_plain():
            warnings.warn("plain", UserWarning)
        """
    )
    result = pytester.runpytest("-p", "no:xdist", "-W", "error::UserWarning")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED test_w.py::test_b_plain - UserWarning: plain"])
