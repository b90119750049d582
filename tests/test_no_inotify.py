"""The inotify-less path (macOS, or Linux without ``inotify_simple``): the cache is watched by comparing snapshots,
and the catalog's cache scenarios still pass on the reference engine."""

from __future__ import annotations

import sys

import pytest

#: Catalog scenarios where the engine writes day files (after a download) or reads them (hits and misses).
CACHE_SCENARIOS = (
    "cold_fetch_from_vision",
    "second_fetch_from_cache",
    "partially_cached_range",
    "truncated_is_a_miss",
    "disk_full_after_download",
)

#: Makes ``import inotify_simple`` fail in the test run, as it does where the package is not installed, and
#: reports how many inotify instances the worlds of the run created (stopped worlds keep theirs for reuse).
PROBE = """
import sys

import pytest

if {block}:
    sys.modules["inotify_simple"] = None  # import inotify_simple -> ImportError


def pytest_terminal_summary(terminalreporter):
    from pytest_fcp.world import cache

    terminalreporter.write_line(f"inotify instances: {{len(cache._FREE_INOTIFY)}}")
"""


@pytest.mark.parametrize("inotify", [False, True], ids=["snapshots", "inotify"])
def test_cache_scenarios_pass_with_and_without_inotify(pytester: pytest.Pytester, inotify: bool) -> None:
    if inotify and not sys.platform.startswith("linux"):
        pytest.skip("inotify is Linux's")
    pytester.makeconftest(PROBE.format(block=not inotify))
    selected = " or ".join(CACHE_SCENARIOS)
    # in-process: the probe counts the inotify instances of this process's worlds
    args = ["-p", "no:randomly", "--fcp-scenarios", "--fcp-engine=reference", "--fcp-isolation=off", "-k", selected]
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=len(CACHE_SCENARIOS))
    result.stdout.fnmatch_lines([f"inotify instances: {1 if inotify else 0}"])
