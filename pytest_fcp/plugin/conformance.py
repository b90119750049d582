"""The FCP conformance summary of a ``--fcp-scenarios`` run, and the baselines' rewrite.

:class:`Conformance` gathers each scenario item's outcome and behaviour record (on the controller, under
pytest-xdist): per engine and theme how many conform, are known failures unchanged, changed (worse, better
or otherwise), or fail with no baseline entry; one line per changed scenario with its first difference. The
same goes to the GitHub step summary and, as ``fcp.baseline``, to JUnit properties. With
``--fcp-update-baselines`` it rewrites each engine's baseline from the run.
"""

from __future__ import annotations

import os
import pathlib
from collections import defaultdict
from typing import Any

import pytest

from pytest_fcp.plugin.settings import RunSettings

__all__ = ["KINDS", "Conformance"]

#: How a scenario came out, in summary order.
KINDS = ("conforming", "known failure", "worse", "better", "changed", "new failing")
_CHANGED = ("worse", "better", "changed", "new failing")
_LABELS = {
    "conforming": "conforming",
    "known failure": "known failures unchanged",
    "worse": "worse",
    "better": "better",
    "changed": "changed",
    "new failing": "failing, not in the baseline",
}


class Conformance:
    """Scenario outcomes per engine: the summary, and the baselines' rewrite with ``--fcp-update-baselines``."""

    def __init__(self, run: RunSettings, baselines: Any) -> None:
        self.run, self.baselines = run, baselines
        self.results: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)  # engine -> id -> info
        self.loaded_ids: set[str] = set()
        self.written: list[tuple[pathlib.Path, int]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Record a scenario item's outcome (its call report carries ``fcp_scenario``)."""
        info = getattr(report, "fcp_scenario", None)
        if info is None or report.when != "call" or "kind" not in info:
            return
        self.results[info["engine"]][info["id"]] = info

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Rewrite the baselines (``--fcp-update-baselines``) and the GitHub step summary (controller only)."""
        if self.run.worker:
            return
        if self.run.update_baselines:
            self._rewrite()
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary and self.results:
            with pathlib.Path(summary).open("a", encoding="utf-8") as handle:
                handle.write(self.markdown() + "\n")

    def _rewrite(self) -> None:
        from pytest_fcp.baseline import Record

        every = set(self.baselines.scenario_ids)
        for engine, results in sorted(self.results.items()):
            records = {sid: Record.from_data(info["record"]) for sid, info in results.items()}
            # Whole when every scenario ran (not from session.items: an xdist controller collects nothing).
            whole = set(records) >= every
            self.written.append((self.baselines.write(engine, records, whole), len(records)))

    def lines(self) -> list[str]:
        """The summary: per engine a total line, one line per theme, one line per changed scenario."""
        out: list[str] = []
        for engine in sorted(self.results):
            results = self.results[engine]
            counts = _counts(results.values())
            shown = ", ".join(f"{counts[k]} {_LABELS[k]}" for k in KINDS if counts[k] or k in ("conforming",))
            warned = sum(int(info.get("warnings", 0)) for info in results.values())
            noise = f"; {warned} engine warnings, in the traces" if warned else ""
            out.append(f"{engine}: {shown} ({len(results)} scenarios{noise})")
            themes: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for info in results.values():
                themes[info["theme"]].append(info)
            for theme in sorted(themes):
                c = _counts(themes[theme])
                changed = sum(c[k] for k in _CHANGED)
                out.append(
                    f"  {theme:<22} {c['conforming']:>3} conforming  {c['known failure']:>3} known  "
                    f"{changed:>3} changed"
                )
            for sid in sorted(results):
                info = results[sid]
                if info["kind"] in _CHANGED:
                    out.append(f"  {info['kind'].upper()} {sid}: {info['first']}")
        return out

    def markdown(self) -> str:
        """The summary for ``$GITHUB_STEP_SUMMARY``."""
        body = "\n".join(f"    {line}" for line in self.lines())
        return f"## FCP conformance\n\n{body}\n"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """The ``FCP conformance`` section, then where baselines were written."""
        if not self.results:
            return
        tr = terminalreporter
        tr.section("FCP conformance")
        for line in self.lines():
            tr.write_line(line)
        for path, count in self.written:
            tr.write_line(f"fcp: baseline written to {path} ({count} scenario(s) from this run)")


def _counts(infos: Any) -> dict[str, int]:
    counts = dict.fromkeys(KINDS, 0)
    for info in infos:
        counts[info["kind"]] += 1
    return counts
