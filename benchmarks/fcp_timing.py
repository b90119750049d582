"""A pytest plugin the catalog benchmark loads (``-p fcp_timing``): where a run's time went, written as JSON.

On the controller (or the only process) it sums, over every pytest-fcp test, the seconds the engine spent
inside ``fetch`` (``report.fcp_trace["engine_s"]``, measured by the world around the engine's call) and the
test phases' durations, and notes the wall-clock time the first test began. At the session's end it writes
them to the file named by ``FCP_TIMING_OUT``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

_STATE: dict[str, Any] = {
    "engine_s": 0.0,
    "tests_s": 0.0,
    "first_start": None,
    "tests": 0,
    "configured": None,
    "calls": [],
}


def pytest_configure(config: pytest.Config) -> None:
    """Note when configuration happened (wall clock)."""
    _STATE["configured"] = time.time()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Add one report's engine time and duration; note the first test's start."""
    record = getattr(report, "fcp_trace", None)
    if isinstance(record, dict) and report.when == "call":
        _STATE["engine_s"] += float(record.get("engine_s", 0.0))
        _STATE["tests"] += 1
        worker = getattr(report, "node", None)
        _STATE["calls"].append(
            [
                getattr(worker, "gateway", None) and worker.gateway.id,
                report.start,
                report.duration,
                float(record.get("engine_s", 0.0)),
                report.nodeid,
            ]
        )
    _STATE["tests_s"] += report.duration
    if report.stop:
        _STATE["last_stop"] = max(_STATE.get("last_stop") or 0.0, report.stop)
    if report.when == "setup" and report.start:
        first = _STATE["first_start"]
        _STATE["first_start"] = report.start if first is None else min(first, report.start)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Note when the session began to finish."""
    _STATE["sessionfinish"] = time.time()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Write the totals (controller only: a worker's reports reach the controller too)."""
    session = config
    target = os.environ.get("FCP_TIMING_OUT")
    if target and not hasattr(session, "workerinput"):
        with open(target, "w", encoding="utf-8") as handle:
            json.dump({**_STATE, "finished": time.time()}, handle)
