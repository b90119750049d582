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
import shlex
import uuid
from collections.abc import Generator
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pytest

SUMMARY_LIMIT = 60_000  # bytes of Markdown added to $GITHUB_STEP_SUMMARY at most


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def replay_command(seed: int, nodeid: str) -> str:
    return f"pytest --fcp-seed={seed} {shlex.quote(nodeid)}"


class Reporter:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.run_id = uuid.uuid4().hex[:12]
        self.records: list[dict[str, Any]] = []
        self.is_worker = hasattr(config, "workerinput")
        self.trace_dir = config.getoption("fcp_trace_dir", None) or config.getini("fcp_trace_dir")

    @property
    def seed(self) -> int:
        from pytest_fcp.plugin import SEED_KEY

        return self.config.stash[SEED_KEY]

    # --- on the process running the test ------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        report = yield
        from pytest_fcp.plugin import ENGINE_NAME_KEY, WORLD_KEY

        world = item.stash.get(WORLD_KEY, None)
        if world is None or report.when == "teardown" or (report.when == "setup" and report.passed):
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
            report.sections.append(("fcp replay", replay_command(self.seed, item.nodeid)))
        extra = getattr(item, "fcp_report_extra", {})
        props = [("fcp.path", path), ("fcp.outcome", outcome_text)]
        item.user_properties[:] = [p for p in item.user_properties if p[0] not in ("fcp.path", "fcp.outcome")] + props
        report.user_properties = list(item.user_properties)
        report.fcp_trace = {
            "nodeid": item.nodeid,
            "engine": item.stash.get(ENGINE_NAME_KEY, None),
            "path": path,
            "outcome": report.outcome,
            "phase": report.when,
            "faults": [f.to_dict() for f in world.faults.faults],
            **extra,
        }
        if self.trace_dir:  # the events travel (to the controller) only when a file will hold them
            report.fcp_trace["events"] = trace.to_list()
        return report

    # --- on the controller ------------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = getattr(report, "fcp_trace", None)
        if record is None or self.is_worker:
            return
        record = dict(record, outcome=report.outcome, duration_s=round(report.duration, 4))
        # a failed setup and the call phase are separate reports; keep the last word per test
        self.records = [r for r in self.records if r["nodeid"] != record["nodeid"]]
        self.records.append(record)

    def header(self) -> dict[str, Any]:
        from pytest_fcp.plugin import engine_names

        return {
            "type": "header",
            "run_id": self.run_id,
            "seed": self.seed,
            "engines": engine_names(self.config),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "versions": {
                "pytest-fcp": _version("pytest-fcp"),
                "pytest": pytest.__version__,
                "python": platform.python_version(),
                "crypto-kline-vision-data": _version("crypto-kline-vision-data"),
            },
        }

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.is_worker:
            return
        if self.trace_dir and self.records:
            self.write_jsonl(pathlib.Path(self.trace_dir))
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary and self.records:
            self.write_step_summary(pathlib.Path(summary))

    def write_jsonl(self, directory: pathlib.Path) -> pathlib.Path:
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
        rows = [
            "## pytest-fcp",
            "",
            f"seed `{self.seed}` · {len(self.records)} traced test(s)",
            "",
            "| outcome | test | decision path |",
            "|---|---|---|",
        ]
        order = {"failed": 0, "passed": 2}
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
        path = getattr(self, "written", None)
        if path is not None:
            terminalreporter.write_line(f"fcp: traces written to {path}")
