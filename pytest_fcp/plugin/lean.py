"""Process-level costs a pytest-fcp run does not need to pay: skipped only with the opt-in ``--fcp-lean`` (ini
``fcp_lean``), because each is visible beyond pytest-fcp (another plugin unregistered; finalizers of objects left
in reference cycles never run at exit). See docs/speed.md.

- **Hypothesis's end-of-run import.** Hypothesis's pytest plugin imports Hypothesis in its terminal summary,
  in every run, even when no Hypothesis test ran: about 0.2 s, and 1.6 to 2 s where pytest cannot cache its
  rewritten bytecode (``PYTHONDONTWRITEBYTECODE``). When Hypothesis was never imported in this process, no
  report carries Hypothesis's statistics or failing examples and ``--hypothesis-show-statistics`` is not
  given, that summary has nothing to print: the plugin is set aside at the session's end.
- **The interpreter's last garbage collections.** A process that started a simulated world holds millions
  of objects (moto's and botocore's models, pyarrow, the engine); the collections Python runs while shutting
  down walk all of them, about 1 s per process (0.4 s on an xdist controller of a catalog run). Once pytest
  has finished (an ``atexit`` handler, after every pytest hook and after pytest's unraisable-exception check,
  whose full collections leave only live objects), those objects are frozen, so shutdown skips that walk;
  objects still freed by reference counting (open files among them) are closed as usual.
"""

from __future__ import annotations

import atexit
import gc
import sys
from typing import Any

import pytest

__all__ = ["HYPOTHESIS_PLUGIN", "hypothesis_summary_idle", "set_aside_idle_hypothesis", "skip_final_collections"]

#: The name Hypothesis's pytest plugin is registered under (its ``pytest11`` entry point).
HYPOTHESIS_PLUGIN = "hypothesispytest"
_HYPOTHESIS_REPORT_KEYS = ("_hypothesis_stats", "_hypothesis_failing_examples")


def hypothesis_summary_idle(config: pytest.Config, reports: Any) -> bool:
    """Whether Hypothesis's terminal summary has nothing to say: never imported here, nothing reported."""
    if "hypothesis" in sys.modules or config.getoption("hypothesis_show_statistics", False):
        return False
    for report in (r for group in reports for r in group):
        if any(key in getattr(report, "__dict__", {}) for key in _HYPOTHESIS_REPORT_KEYS):
            return False
    return True


def set_aside_idle_hypothesis(config: pytest.Config) -> bool:
    """Unregister Hypothesis's plugin before the terminal summary when that summary would be empty."""
    plugin = config.pluginmanager.get_plugin(HYPOTHESIS_PLUGIN)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if plugin is None or reporter is None or not hypothesis_summary_idle(config, reporter.stats.values()):
        return False
    config.pluginmanager.unregister(plugin)
    return True


_RUNS_SCENARIOS: list[bool] = []


def _freeze_if_world_ran() -> None:
    if _RUNS_SCENARIOS or "pytest_fcp.world.world" in sys.modules:
        gc.freeze()


def skip_final_collections(scenarios: bool = False) -> None:
    """At interpreter exit, freeze the live objects of a process that ran a simulated world or a scenario
    run's xdist controller (``scenarios``); see the module docstring."""
    if scenarios:
        _RUNS_SCENARIOS[:] = [True]
    atexit.unregister(_freeze_if_world_ran)  # once per process, however many pytest runs it hosts
    atexit.register(_freeze_if_world_ran)
