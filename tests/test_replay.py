"""Replay lines replay: a failure's printed command, pasted in the same directory, reruns that test the same way."""

from __future__ import annotations

import pathlib
import shlex
import sys

import pytest

from tests.conftest import ALT

pytest_plugins = ["pytester"]

PLANTED = """
[defaults]
now = "2024-01-10T12:00:00Z"

[[scenario]]
name = "planted_wrong_source"
description = "Expects Vision where REST serves: fails on every correct engine."
faults = ["vision.http403"]
request = { start = "2024-01-03", end = "2024-01-04" }
[scenario.expect]
outcome = "data"
sources = { default = "vision" }

[[scenario]]
name = "fine"
description = "Vision blocked: REST serves the old day."
faults = ["vision.http403"]
request = { start = "2024-01-03", end = "2024-01-04" }
[scenario.expect]
outcome = "data"
sources = { default = "rest" }
"""


def _replay_lines(out: str) -> list[str]:
    lines = out.splitlines()
    return [lines[i + 1] for i, line in enumerate(lines) if "fcp replay" in line and i + 1 < len(lines)]


def _verdicts(result: pytest.RunResult) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in result.stdout.lines:
        for word in ("PASSED", "FAILED", "XFAIL", "SKIPPED", "ERROR"):
            if line.startswith(word + " "):
                out[line.split(" ")[1].split("::", 1)[1]] = word
    return out


def _outside_uv(monkeypatch: pytest.MonkeyPatch, pytester: pytest.Pytester) -> None:
    """Runs as a plain ``python -m pytest`` would (not under ``uv run``), their temporary files in ``pytester``."""
    for name in ("UV", "UV_RUN_RECURSION_DEPTH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTEST_ADDOPTS", f"--basetemp={pytester.path / 'pasted-tmp'}")


def test_replay_line_of_a_scenario_reruns_it_the_same_way(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _outside_uv(monkeypatch, pytester)
    planted = pytester.path / "planted"
    planted.mkdir()
    (planted / "mine.toml").write_text(PLANTED)
    (pytester.path / "base").mkdir()
    args = ["-p", "no:xdist", "-rA", "--fcp-scenarios", "--fcp-scenarios-dir", str(planted), "--fcp-no-bundled"]
    args += ["--fcp-baseline-dir", "base", f"--fcp-engine={ALT}", "--fcp-now=2024-01-12T06:00:00Z", "--fcp-seed=3"]
    first = pytester.runpytest(*args)
    first.assert_outcomes(passed=1, failed=1)
    assert f"rootdir: {pytester.path}" in first.stdout.str()  # 'base' was not taken for a test path
    (line,) = _replay_lines(first.stdout.str())
    launcher, rest = line.split(" --fcp-seed=3 ", 1)  # started as python -m pytest (pytester's subprocess)
    assert launcher in ("python -m pytest", f"{shlex.quote(sys.executable)} -m pytest"), line
    assert rest.startswith("-p no:xdist --fcp-scenarios --fcp-scenarios-dir="), line
    for part in ("--fcp-no-bundled", "--fcp-baseline-dir=", "--fcp-now=2024-01-12T06:00:00Z", f"--fcp-engine={ALT}"):
        assert part in line, line
    assert "planted/mine.toml::planted_wrong_source[" in line
    again = pytester.run("sh", "-c", f"{line} -rA")  # pasted in the shell, in the same directory
    again.assert_outcomes(failed=1)
    assert _verdicts(again) == {k: v for k, v in _verdicts(first).items() if v == "FAILED"}
    assert _replay_lines(again.stdout.str()) == [line]


def test_replay_line_of_a_bundled_scenario_resolves_from_another_directory(pytester: pytest.Pytester) -> None:
    from pytest_fcp.plugin.replay import replay_target
    from pytest_fcp.plugin.settings import RunSettings
    from pytest_fcp.scenarios.loader import catalog_dir

    run = RunSettings(
        engines=("ckvd",), seed=1, now=None, log_level="INFO", scenarios=True, scenario_dirs=(catalog_dir(),)
    )  # type: ignore[arg-type]

    class Item:
        path = catalog_dir() / "vision_errors.toml"
        nodeid = "vision_errors.toml::http403_one_day[ckvd]"

    target = replay_target(Item(), run)  # type: ignore[arg-type]
    assert target == f"{catalog_dir() / 'vision_errors.toml'}::http403_one_day[ckvd]"
    assert pathlib.Path(target.split("::")[0]).is_absolute()


def test_scenarios_with_paths_run_the_catalog_and_the_paths(pytester: pytest.Pytester) -> None:
    planted = pytester.path / "planted"
    planted.mkdir()
    (planted / "mine.toml").write_text(PLANTED)
    pytester.makepyfile(test_mine="def test_mine(): pass")
    args = ["-p", "no:xdist", "--fcp-scenarios", f"--fcp-scenarios-dir={planted}", "--fcp-no-bundled"]
    args += ["--fcp-engine=reference", "--collect-only", "-q"]
    result = pytester.runpytest(*args, "test_mine.py")
    out = result.stdout.str()
    assert "test_mine.py::test_mine" in out and "planted_wrong_source[reference]" in out, out


def test_baseline_dir_as_a_separate_token_keeps_the_rootdir(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = pytester.path / "base"  # outside the project: pytest would take it for a test path
    elsewhere.mkdir()
    project = pytester.path / "proj"
    project.mkdir()
    (project / "test_x.py").write_text("def test_x(): pass\n")
    monkeypatch.chdir(project)
    (project / "none").mkdir()  # no scenario of its own: the run collects test_x.py alone
    args = ["-p", "no:xdist", "--fcp-scenarios", "--fcp-no-bundled", f"--fcp-scenarios-dir={project / 'none'}"]
    for option in ("--fcp-baseline-dir", "--fcp-expectations-dir"):
        result = pytester.runpytest(*args, option, str(elsewhere), "--fcp-engine=reference", "test_x.py")
        result.assert_outcomes(passed=1)
        assert f"rootdir: {project}" in result.stdout.str(), result.stdout.str()


def test_baseline_dir_as_a_separate_token_keeps_the_ini_file(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = pytester.path / "base"  # outside the project: pytest's first reading finds no ini file from there
    elsewhere.mkdir()
    project = pytester.path / "proj"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\npython_files = check_*.py\n")
    (project / "check_x.py").write_text("def test_x(): pass\n")  # collected only under the project's ini
    monkeypatch.chdir(project)
    result = pytester.runpytest(
        "-p",
        "no:xdist",
        "--fcp-scenarios",
        "--fcp-baseline-dir",
        str(elsewhere),
        "--fcp-engine=reference",
        "check_x.py",
        "-k",
        "test_x",
    )
    result.assert_outcomes(passed=1)
    assert "configfile: pytest.ini" in result.stdout.str(), result.stdout.str()
