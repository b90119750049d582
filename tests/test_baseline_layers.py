"""Layered baselines: a project's own baseline directory first, the bundled one for the scenarios it lacks; updates
merge (they never drop the entries of scenarios that did not run) and write into the bundled baselines of a
checkout only when the run's rootdir is that checkout; the summary names the files each engine was judged against.

A checkout is faked: a plugin module loaded with ``-p`` points ``catalog_dir`` at a scenario directory in the test's
tmp dir, so no run writes the repository's own files (the test on the real catalog reads them only, and its project
has its own baseline directory).
"""

from __future__ import annotations

import hashlib
import pathlib
import re

import pytest

from pytest_fcp.scenarios.loader import catalog_dir

pytest_plugins = ["pytester"]

RUN = ["--fcp-scenarios", "-p", "no:cacheprovider", "-W", "ignore", "--fcp-engine=reference"]
FAKE = [*RUN, "-p", "fake_checkout"]  # a run where the fake checkout's catalog is the bundled one

CATALOG = """
[defaults]
now = "2024-01-10T12:00:00Z"

[[scenario]]
name = "blocked"
description = "Vision blocked: REST serves the old days."
faults = ["vision.http403"]
request = { start = "2024-01-03", end = "2024-01-05" }
[scenario.expect]
outcome = "data"
sources = { default = "rest" }

[[scenario]]
name = "wrong_source"
description = "Expects Vision where REST serves: a known failure."
faults = ["vision.http403"]
request = { start = "2024-01-03", end = "2024-01-04" }
[scenario.expect]
outcome = "data"
sources = { default = "vision" }
"""

OWN = """
[defaults]
now = "2024-01-10T12:00:00Z"

[[scenario]]
name = "mine"
description = "Expects Vision where REST serves: my own known failure."
faults = ["vision.http403"]
request = { start = "2024-01-04", end = "2024-01-05" }
[scenario.expect]
outcome = "data"
sources = { default = "vision" }
"""


FAKE_CHECKOUT = """
import pathlib
import pytest_fcp.scenarios.loader as loader

loader.catalog_dir = lambda: pathlib.Path({path!r})
"""


@pytest.fixture
def checkout(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A fake pytest-fcp checkout (its catalog: theme ``basics``), its bundled reference baseline recorded from
    a run whose rootdir is the checkout; every run of the test loads the plugin that makes it the bundled one."""
    root = pytester.path / "checkout"
    (root / "scenarios").mkdir(parents=True)
    (root / "scenarios" / "basics.toml").write_text(CATALOG)
    (pytester.path / "fake_checkout.py").write_text(FAKE_CHECKOUT.format(path=str(root / "scenarios")))
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    monkeypatch.chdir(root)
    result = pytester.runpytest(*FAKE, "--fcp-update-baselines")
    result.assert_outcomes(passed=2)
    bundled = root / "scenarios" / "baselines" / "reference.toml"
    result.stdout.fnmatch_lines([f"fcp: baseline written to {bundled}: 2 added, 0 changed, 0 unchanged, 0 kept*"])
    return root


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A user's project elsewhere, with its own scenario directory ``own``; the working directory."""
    root = pytester.path / "project"
    (root / "own").mkdir(parents=True)
    (root / "own" / "own.toml").write_text(OWN)
    monkeypatch.chdir(root)
    return root


def _bundled(checkout: pathlib.Path) -> pathlib.Path:
    return checkout / "scenarios" / "baselines" / "reference.toml"


def _judged(result: pytest.RunResult) -> list[str]:
    return [line.strip() for line in result.stdout.lines if line.strip().startswith("judged ")]


def test_recording_own_scenarios_leaves_the_bundled_file_and_verdicts_alone(
    pytester: pytest.Pytester, checkout: pathlib.Path, project: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = _bundled(checkout).read_text()
    before = pytester.runpytest(*FAKE)
    before.assert_outcomes(passed=1, xfailed=1)
    assert _judged(before) == ["judged against bundled reference.toml (2 scenarios)"]
    own = ["--fcp-no-bundled", "--fcp-scenarios-dir=own"]
    recorded = pytester.runpytest(*FAKE, *own, "--fcp-update-baselines")
    written = project / "fcp-baselines" / "reference.toml"
    recorded.stdout.fnmatch_lines([f"fcp: baseline written to {written}: 1 added, 0 changed, 0 unchanged, 0 kept*"])
    assert _bundled(checkout).read_text() == bundled
    assert re.findall(r'^\["([^"]+)"\]$', written.read_text(), flags=re.M) == ["own/mine"]
    after = pytester.runpytest(*FAKE)  # the catalog alone: exactly as before
    after.assert_outcomes(passed=1, xfailed=1)
    assert _judged(after) == _judged(before)
    summary = project / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    both = pytester.runpytest(*FAKE, "--fcp-scenarios-dir=own", "-rx")
    both.assert_outcomes(passed=1, xfailed=2)
    line = "judged against fcp-baselines/reference.toml (1 scenarios) + bundled reference.toml (2)"
    assert _judged(both) == [line]
    assert f"  {line}" in summary.read_text()
    assert "unused baseline entr" not in both.stdout.str()


def test_own_entry_of_a_bundled_scenario_comes_first_and_is_named(
    pytester: pytest.Pytester, checkout: pathlib.Path, project: pathlib.Path
) -> None:
    text = _bundled(checkout).read_text()
    entry = text[text.index('["basics/blocked"]') : text.index('["basics/wrong_source"]')]
    assert "rest = 1," in entry
    own = project / "fcp-baselines"
    own.mkdir()
    (own / "reference.toml").write_text(
        'format = 1\nengine = "reference"\n' + entry.replace("rest = 1,", "rest = 9,", 1)
    )
    result = pytester.runpytest(*FAKE)
    result.assert_outcomes(failed=1, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            f"basics/blocked on reference behaves differently from its baseline ({own / 'reference.toml'})",
            "  totals: rest 9 -> 1",
        ]
    )
    assert _judged(result) == ["judged against fcp-baselines/reference.toml (1 scenarios) + bundled reference.toml (1)"]


def test_a_checkout_from_another_rootdir_writes_the_project_file_and_its_own_run_merges(
    pytester: pytest.Pytester, checkout: pathlib.Path, project: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = _bundled(checkout).read_text()
    own = ["--fcp-no-bundled", "--fcp-scenarios-dir=own", "--fcp-update-baselines"]
    pytester.runpytest(*FAKE, *own).assert_outcomes(passed=1)  # in another directory: never the checkout's file
    assert _bundled(checkout).read_text() == bundled
    assert (project / "fcp-baselines" / "reference.toml").is_file()
    monkeypatch.chdir(checkout)  # the checkout itself, one scenario selected: merged into the bundled file
    result = pytester.runpytest(*FAKE, "--fcp-update-baselines", "-k", "blocked")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["fcp: baseline written to *: 0 added, 0 changed, 1 unchanged, 1 kept (not run)"])
    assert _bundled(checkout).read_text() == bundled


def test_bundled_catalog_verdicts_unchanged_after_recording_own_scenarios(
    pytester: pytest.Pytester, project: pathlib.Path
) -> None:
    """The real catalog on the reference engine, read only: the project records into its own directory."""
    real = catalog_dir() / "baselines" / "reference.toml"
    digest = hashlib.sha256(real.read_bytes()).hexdigest()
    (project / "fcp-baselines").mkdir()  # the project's own place, whatever the rootdir rule says
    before = pytester.runpytest(*RUN)
    count = before.parseoutcomes()["passed"]
    assert _judged(before) == [f"judged against bundled reference.toml ({count} scenarios)"]
    pytester.runpytest(*RUN, "--fcp-no-bundled", "--fcp-scenarios-dir=own", "--fcp-update-baselines")
    after = pytester.runpytest(*RUN)
    assert after.parseoutcomes() == before.parseoutcomes()
    assert _judged(after) == _judged(before)
    assert hashlib.sha256(real.read_bytes()).hexdigest() == digest


def test_ckvd_known_failures_stay_known_after_recording_own_scenarios(
    pytester: pytest.Pytester, project: pathlib.Path
) -> None:
    """ckvd's bundled known failures (one theme of the real catalog) are still judged by the bundled entries."""
    pytest.importorskip("ckvd")
    ckvd = [*RUN[:-1], "--fcp-engine=ckvd"]
    (project / "fcp-baselines").mkdir()
    before = pytester.runpytest(*ckvd, "-k", "basics")
    assert before.parseoutcomes().get("xfailed", 0) > 0 and "failed" not in before.parseoutcomes()
    recorded = pytester.runpytest(*ckvd, "--fcp-no-bundled", "--fcp-scenarios-dir=own", "--fcp-update-baselines")
    recorded.stdout.fnmatch_lines(["fcp: baseline written to *fcp-baselines/ckvd.toml: 1 added, * 0 kept (not run)"])
    after = pytester.runpytest(*ckvd, "-k", "basics")
    assert after.parseoutcomes() == before.parseoutcomes()
    count = sum(before.parseoutcomes().get(kind, 0) for kind in ("passed", "xfailed"))
    assert _judged(after) == _judged(before) == [f"judged against bundled ckvd.toml ({count} scenarios)"]


def test_a_baseline_that_cannot_be_written_is_one_line_and_fails_the_run(
    pytester: pytest.Pytester, project: pathlib.Path
) -> None:
    (project / "fcp-baselines" / "reference.toml").mkdir(parents=True)  # a directory where the file would go
    result = pytester.runpytest(*RUN, "--fcp-no-bundled", "--fcp-scenarios-dir=own", "--fcp-update-baselines")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["fcp: baseline not written: */fcp-baselines/reference.toml: cannot write it (*); a writable path"]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
