"""Process-level costs a run skips (pytest_fcp.plugin.lean): Hypothesis's idle summary, the last collections."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

from tests.test_scenarios import _user_dir

PROBE = """
import sys

import pytest


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    print("hypothesis imported:", "hypothesis" in sys.modules)
    print("hypothesis plugin:", config.pluginmanager.get_plugin("hypothesispytest") is not None)
"""


def _scenario_run(pytester: pytest.Pytester, *extra: str) -> pytest.RunResult:
    directory = _user_dir(pytester)
    pytester.makeconftest(PROBE)
    return pytester.runpytest(
        "--fcp-scenarios", f"--fcp-scenarios-dir={directory}", "--fcp-no-bundled", "--fcp-engine=reference", *extra
    )


@pytest.mark.parametrize("opt_in", [["--fcp-lean"], ["-o", "fcp_lean=true"]], ids=["option", "ini"])
def test_idle_hypothesis_summary_is_set_aside(pytester: pytest.Pytester, opt_in: list[str]) -> None:
    result = _scenario_run(pytester, "-p", "no:xdist", *opt_in)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["hypothesis imported: False", "hypothesis plugin: False"])


def test_idle_hypothesis_summary_is_set_aside_on_the_xdist_controller(pytester: pytest.Pytester) -> None:
    result = _scenario_run(pytester, "-n", "2", "--fcp-lean")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["hypothesis imported: False", "hypothesis plugin: False"])


GC_PROBE = """
import atexit, gc

atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0))  # runs after the plugin's handler
"""


@pytest.mark.parametrize("lean", [False, True], ids=["default", "lean"])
def test_a_scenario_run_changes_nothing_process_wide_without_the_opt_in(pytester: pytest.Pytester, lean: bool) -> None:
    directory = _user_dir(pytester)
    pytester.makeconftest(PROBE + GC_PROBE)
    args = ["--fcp-scenarios", f"--fcp-scenarios-dir={directory}", "--fcp-no-bundled", "--fcp-engine=reference"]
    result = pytester.runpytest_subprocess(*args, "-p", "no:xdist", *(["--fcp-lean"] if lean else []))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"hypothesis plugin: {not lean}", f"frozen at exit: {lean}"])


def test_hypothesis_keeps_its_summary_when_it_has_something_to_say(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_prop="""
        from hypothesis import given, strategies as st

        @given(st.integers())
        def test_ints(x):
            assert isinstance(x, int)
        """
    )
    directory = _user_dir(pytester)
    pytester.makeconftest(PROBE)
    args = ["--fcp-scenarios", f"--fcp-scenarios-dir={directory}", "--fcp-no-bundled", "--fcp-engine=reference"]
    result = pytester.runpytest(*args, "-p", "no:xdist", "test_prop.py", "my_scenarios")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["hypothesis imported: True", "hypothesis plugin: True"])
    stats = pytester.runpytest(*args, "-p", "no:xdist", "--hypothesis-show-statistics", "my_scenarios")
    stats.stdout.fnmatch_lines(["*Hypothesis Statistics*", "hypothesis plugin: True"])


def test_a_run_without_scenarios_leaves_hypothesis_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    pytester.makeconftest(PROBE)
    result = pytester.runpytest("-p", "no:xdist")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["hypothesis plugin: True"])


@pytest.mark.parametrize(
    ("world", "scenarios", "frozen"), [(True, False, True), (False, True, True), (False, False, False)]
)
def test_live_objects_are_frozen_at_exit_only_after_a_world_or_a_scenario_run(
    world: bool, scenarios: bool, frozen: bool
) -> None:
    code = textwrap.dedent(
        f"""
        import atexit, gc
        atexit.register(lambda: print("frozen:", gc.get_freeze_count() > 0))  # runs after the plugin's handler
        if {world!r}:
            import pytest_fcp.world.world
        from pytest_fcp.plugin.lean import skip_final_collections
        skip_final_collections(scenarios={scenarios!r})
        skip_final_collections()  # registering twice still freezes once
        print("frozen before exit:", gc.get_freeze_count() > 0)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["frozen before exit: False", f"frozen: {frozen}"]


def test_a_world_leaves_no_inotify_descriptor_open_at_exit() -> None:
    code = textwrap.dedent(
        """
        import datetime as dt, pathlib, tempfile
        from pytest_fcp.plugin.lean import skip_final_collections
        from pytest_fcp.world import World
        skip_final_collections()
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(2):  # the second world reuses the first one's inotify instance
                with World(pathlib.Path(tmp) / "c", dt.datetime(2024, 3, 1, tzinfo=dt.UTC)):
                    pass
        """
    )
    done = subprocess.run([sys.executable, "-W", "always", "-X", "dev", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "ResourceWarning" not in done.stderr


def test_summary_says_how_long_the_engines_spent_inside_fetch(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="def test_plain(): pass",
        test_slow="""
        import datetime as dt, time

        def test_world(fcp_world, fcp_engine):
            busy = time.perf_counter() + 0.3  # the test's own time, not the engine's (sleep is virtual here)
            while time.perf_counter() < busy:
                pass
            fcp_world.fetch(dt.datetime(2024, 1, 3, tzinfo=dt.UTC), dt.datetime(2024, 1, 4, tzinfo=dt.UTC))
        """,
    )
    result = _scenario_run(pytester, "-p", "no:xdist", "test_plain.py", "test_slow.py", "my_scenarios")
    result.assert_outcomes(passed=3)
    line = next(x for x in result.outlines if x.startswith("fcp: the engines spent"))
    engine, share, total, count = re.fullmatch(
        r"fcp: the engines spent (\S+) s inside fetch, (\d+)% of the (\S+) s (\d+) test\(s\) took "
        r"\(setup, call, teardown\)",
        line,
    ).groups()  # type: ignore[union-attr]
    assert count == "2"  # the plain test is not pytest-fcp's
    assert 0 < float(engine) < float(total) - 0.3
    assert abs(int(share) - 100 * float(engine) / float(total)) <= 1  # of the rounded figures printed
