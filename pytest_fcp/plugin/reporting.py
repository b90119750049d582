"""Reporting: the trace section of each test report, JUnit properties, JSON Lines, the GitHub summary.

Workers (pytest-xdist) attach each test's trace to its report as ``report.fcp_trace`` (reports are
serialised with their extra attributes); only the controller writes files, once, at the end of the session,
so no line is lost or interleaved.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import platform
import uuid
from collections.abc import Generator
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pytest

from pytest_fcp.plugin.fixtures import uses_fcp
from pytest_fcp.plugin.replay import replay_command
from pytest_fcp.plugin.settings import ENGINE_NAME_KEY, WORLD_KEY, RunSettings, header_line
from pytest_fcp.trace import canonical, canonical_path

__all__ = ["Reporter", "outcome_of", "replay_command"]

SUMMARY_LIMIT = 60_000  # bytes of Markdown added to $GITHUB_STEP_SUMMARY at most


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def outcome_of(report: pytest.TestReport) -> str:
    """passed, failed, error (at setup), xfailed, xpassed or skipped."""
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.failed and report.when == "setup":
        return "error"
    return report.outcome


class Reporter:
    """Each traced test's report sections and record; at the end (controller only) the JSONL and summaries."""

    def __init__(self, config: pytest.Config, run: RunSettings) -> None:
        self.config = config
        self.run = run
        self.run_id = uuid.uuid4().hex[:12]
        self.records: list[dict[str, Any]] = []
        self.is_worker = run.worker
        self.trace_dir = run.trace_dir
        self.written: pathlib.Path | None = None
        self.write_error = ""
        self.engine_seconds = 0.0  # inside the engines' fetch, over every traced test (controller)
        self.test_seconds = 0.0  # the same tests' setup, call and teardown
        self.timed: set[str] = set()
        self._setup_seconds: dict[str, float] = {}  # a setup report comes before the record that marks a test
        self.used = False  # a pytest-fcp test ran (a run given no --fcp-* option names its seed at the end)

    @property
    def seed(self) -> int:
        """The run's seed."""
        return self.run.seed

    # --- on the process running the test ------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        """Add the decision trace and replay sections, JUnit properties and ``report.fcp_trace``."""
        report = yield
        world = item.stash.get(WORLD_KEY, None)
        if report.when == "setup" and uses_fcp(item):
            report.fcp_used = True  # the controller's summary names the seed of a run that tested an engine
        if report.when == "teardown" or (report.when == "setup" and report.passed):
            return report
        if world is None:
            if report.when == "setup" and uses_fcp(item):  # failed or skipped before its world existed
                report.fcp_trace = {
                    "nodeid": item.nodeid,
                    "engine": item.stash.get(ENGINE_NAME_KEY, None) or getattr(item, "engine", None),
                    "path": "",
                    "phase": report.when,
                    "faults": [],
                    **({"events": [], "canonical": [], "canonical_path": ""} if self.trace_dir else {}),
                }
            return report
        trace = world.trace
        path = trace.path()
        outcome = trace.outcome
        outcome_text = (
            "none" if outcome is None else (outcome.data.get("error") or f"{outcome.data.get('rows', 0)} rows")
        )
        chars = str(self.config.getoption("reportchars", "") or "")
        if report.failed or (report.passed and ("P" in chars or "A" in chars)):  # only what pytest will show
            report.sections.append(("fcp decision trace", f"path: {path}\n\n{trace.table()}"))
        if report.failed:
            report.sections.append(("fcp replay", replay_command(self.run, item)))
        extra = getattr(item, "fcp_report_extra", {})
        props = [("fcp.path", path), ("fcp.outcome", outcome_text)]
        item.user_properties[:] = [p for p in item.user_properties if p[0] not in ("fcp.path", "fcp.outcome")] + props
        report.user_properties = list(item.user_properties)
        report.fcp_trace = {
            "nodeid": item.nodeid,
            "engine": item.stash.get(ENGINE_NAME_KEY, None),
            "path": path,
            "phase": report.when,
            "faults": [f.to_dict() for f in world.faults.faults],
            "replay": replay_command(self.run, item),
            "engine_s": round(sum(o.engine_seconds for o in world.results), 6),
            **extra,
        }
        if self.trace_dir:  # the events travel (to the controller) only when a file will hold them
            events = trace.to_list()
            report.fcp_trace["events"] = events
            report.fcp_trace["canonical"] = canonical(events)
            report.fcp_trace["canonical_path"] = canonical_path(events)
        elif self.run.html is not None:  # the HTML report draws at most its first events: only those travel
            from pytest_fcp.report import cap_events, event_totals

            events = trace.to_list()
            report.fcp_trace["events"] = cap_events(events)
            report.fcp_trace["events_total"] = event_totals(events)
        return report

    # --- on the controller ------------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep the last record of each traced test (on the controller)."""
        record = getattr(report, "fcp_trace", None)
        if self.is_worker:
            return
        self.used = self.used or record is not None or getattr(report, "fcp_used", False)
        self._time(report, record)
        if record is None:
            return
        record = dict(record, outcome=outcome_of(report), duration_s=round(report.duration, 4))
        # a failed setup and the call phase are separate reports; keep the last word per test
        self.records = [r for r in self.records if r["nodeid"] != record["nodeid"]]
        self.records.append(record)

    def _time(self, report: pytest.TestReport, record: dict[str, Any] | None) -> None:
        if report.when == "setup" and record is None:
            self._setup_seconds[report.nodeid] = report.duration
        elif record is not None or report.nodeid in self.timed:
            first = report.nodeid not in self.timed
            self.timed.add(report.nodeid)
            self.test_seconds += report.duration + (self._setup_seconds.pop(report.nodeid, 0.0) if first else 0.0)
            self.engine_seconds += float(record.get("engine_s", 0.0)) if record else 0.0
        elif report.when == "teardown":
            self._setup_seconds.pop(report.nodeid, None)  # not a pytest-fcp test

    def header(self) -> dict[str, Any]:
        """The JSONL file's first line: run id, seed, engines, time and versions."""
        return {
            "type": "header",
            "run_id": self.run_id,
            "seed": self.seed,
            "engines": list(self.run.engines),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "versions": {
                "pytest-fcp": _version("pytest-fcp"),
                "pytest": pytest.__version__,
                "python": platform.python_version(),
                "crypto-kline-vision-data": _version("crypto-kline-vision-data"),
            },
        }

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the JSONL traces and the GitHub step summary (controller only)."""
        if self.is_worker:
            return
        if self.trace_dir and self.records:
            try:
                self.write_jsonl(pathlib.Path(self.trace_dir))
            except OSError as exc:  # the run's summary must not be lost to a trace directory gone bad
                self.write_error = f"fcp: could not write the traces to {self.trace_dir}: {exc}"
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary and self.records:
            self.write_step_summary(pathlib.Path(summary))

    def write_jsonl(self, directory: pathlib.Path) -> pathlib.Path:
        """Write ``fcp-trace-<run id>.jsonl`` in ``directory`` (atomically) and return its path."""
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"fcp-trace-{self.run_id}.jsonl"
        lines = [json.dumps(self.header())]
        for record in sorted(self.records, key=lambda r: r["nodeid"]):
            lines.append(json.dumps({"type": "test", **record}, default=str))
        tmp = target.with_suffix(".jsonl.tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(target)
        self.written = target
        return target

    def write_step_summary(self, target: pathlib.Path) -> None:
        """Append a Markdown table of the traced tests (failures first) to ``target``, within the size limit."""
        rows = [
            "## pytest-fcp",
            "",
            f"seed `{self.seed}` · {len(self.records)} traced test(s)",
            "",
            "| outcome | test | decision path |",
            "|---|---|---|",
        ]
        order = {"failed": 0, "error": 0, "passed": 2}
        body = ""
        shown = 0
        for record in sorted(self.records, key=lambda r: (order.get(r["outcome"], 1), r["nodeid"])):
            line = f"| {record['outcome']} | `{record['nodeid']}` | `{record['path']}` |"
            if len("\n".join(rows)) + len(body) + len(line) > SUMMARY_LIMIT - 200:
                break
            body += line + "\n"
            shown += 1
        text = "\n".join(rows) + "\n" + body
        if shown < len(self.records):
            text += f"\n… {len(self.records) - shown} more test(s) left out (size limit); see the JSON Lines trace.\n"
        with target.open("a", encoding="utf-8") as handle:
            handle.write(text + "\n")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Say how long the engines spent inside ``fetch`` and where the traces were written; name the seed and
        engines of a run that tested an engine when the header did not (no ``--fcp-*`` option was given)."""
        if self.used and not self.run.announced:
            terminalreporter.write_line(header_line(self.run))
        if self.timed and self.test_seconds > 0:
            share = min(100.0, 100 * self.engine_seconds / self.test_seconds)
            terminalreporter.write_line(
                f"fcp: the engines spent {self.engine_seconds:.2f} s inside fetch, {share:.0f}% of the "
                f"{self.test_seconds:.2f} s {len(self.timed)} test(s) took (setup, call, teardown)"
            )
        if self.written is not None:
            terminalreporter.write_line(f"fcp: traces written to {self.written}")
        if self.write_error:
            terminalreporter.write_line(self.write_error, red=True)
