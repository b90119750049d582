"""``--fcp-html PATH``: the run's HTML report (conformance matrix and every traced test's decision flow).

Registered only when the option is set. Each traced test's report carries its record (``report.fcp_trace``,
with its first events when ``--fcp-html`` is set, see :mod:`~pytest_fcp.plugin.reporting`) and, for a scenario
item, its baseline comparison (``report.fcp_scenario``); under pytest-xdist both travel with the reports, so
the controller alone gathers them and writes the page once, at the end of the session. The page itself is
rendered by :func:`pytest_fcp.report.render_report` from plain data.
"""

from __future__ import annotations

import datetime as dt
import os
import pathlib
from typing import Any

import pytest

from pytest_fcp.plugin.settings import RunSettings

__all__ = ["HtmlReport", "outcome_of"]

_TRACE_KEYS = ("engine", "path", "faults", "scenario", "theme")
_SCENARIO_KEYS = ("kind", "first", "diff", "record", "verdicts", "theme")


def outcome_of(report: pytest.TestReport) -> str:
    """passed, failed, skipped, xfailed, xpassed, or error (a failed setup or teardown)."""
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.failed and report.when != "call":
        return "error"
    return report.outcome


class HtmlReport:
    """Gathers each traced test's data on the controller and writes the HTML report at the end of the session."""

    def __init__(self, config: pytest.Config, run: RunSettings) -> None:
        self.config, self.run = config, run
        self.tests: dict[str, dict[str, Any]] = {}
        self.written: pathlib.Path | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep what the report says about a traced test or a scenario item (controller only)."""
        if self.run.worker:
            return
        trace = getattr(report, "fcp_trace", None)
        info = getattr(report, "fcp_scenario", None)
        if trace is None and info is None:
            return
        entry = self.tests.setdefault(report.nodeid, {"nodeid": report.nodeid, "engine": None})
        if report.when == "call" or report.failed or "outcome" not in entry:
            entry["outcome"] = outcome_of(report)
        entry["duration_s"] = round(entry.get("duration_s", 0.0) + report.duration, 4)
        if trace is not None:
            entry.update({k: trace[k] for k in _TRACE_KEYS if trace.get(k) is not None})
            if "events" in trace:
                self._events(entry, trace)
        if info is not None:
            entry.update(scenario=info.get("id"), engine=info.get("engine"))
            entry.update({k: info[k] for k in _SCENARIO_KEYS if k in info})
        if trace is not None and trace.get("replay"):
            entry["replay_line"] = trace["replay"]
        if entry["outcome"] in ("failed", "error", "xpassed") or entry.get("kind") not in (None, "conforming"):
            entry["replay"] = entry.get("replay_line", "")

    @staticmethod
    def _events(entry: dict[str, Any], trace: dict[str, Any]) -> None:
        from pytest_fcp.report import cap_events, event_totals

        events = trace["events"]
        total = trace.get("events_total")
        if total is None:  # the full trace travelled (--fcp-trace-dir): count, then keep the first events
            total = event_totals(events)
        entry["events"], entry["events_total"] = cap_events(events), total

    def data(self) -> dict[str, Any]:
        """The report's plain data: the run's seed, engines, time and versions, and every gathered test."""
        reporter = self.config.pluginmanager.get_plugin("fcp-reporter")
        versions = reporter.header()["versions"] if reporter is not None else {}
        coverage = self.config.pluginmanager.get_plugin("fcp-coverage")
        return {
            **({"coverage": coverage.data()} if coverage is not None else {}),
            "title": "pytest-fcp report",
            "seed": self.run.seed,
            "engines": list(self.run.engines),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "versions": versions,
            "tests": sorted(self.tests.values(), key=lambda t: t["nodeid"]),
        }

    def write(self, target: pathlib.Path) -> pathlib.Path:
        """Render the report and write it to ``target`` atomically; return the path."""
        from pytest_fcp.report import render_report

        text = render_report(self.data())
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
        self.written = target
        return target

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the report (controller only)."""
        if not self.run.worker and self.run.html is not None:
            self.write(self.run.html)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Say where the report was written and how big it is."""
        if self.written is not None:
            size = self.written.stat().st_size
            terminalreporter.write_line(
                f"fcp: HTML report written to {self.written} ({size / 1024:.0f} KiB, {len(self.tests)} test(s))"
            )
