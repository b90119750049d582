"""The FCP conformance summary of a ``--fcp-scenarios`` run, and the baselines' rewrite.

:class:`Conformance` gathers each scenario item's outcome and behaviour record (on the controller, under
pytest-xdist): per engine and theme how many conform, are known failures unchanged, changed (worse, better
or otherwise), or fail with no baseline entry; one line per changed scenario with its first difference. The
same goes to the GitHub step summary and, as ``fcp.baseline``, to JUnit properties. Each engine's lines name the
baseline files it was judged against; after them come the unused baseline entries, and with
``--fcp-update-baselines`` what was written where (:mod:`pytest_fcp.plugin.baselines` merges).
"""

from __future__ import annotations

import os
import pathlib
from collections import defaultdict
from typing import Any

import pytest

from pytest_fcp.plugin.baselines import Written, listing
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
        self.written: list[Written] = []
        self.unused: list[tuple[str, pathlib.Path, list[str]]] = []  # engine, file, its unused entries
        self.problems: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Record a scenario item's outcome (its call report carries ``fcp_scenario``)."""
        info = getattr(report, "fcp_scenario", None)
        if info is None or report.when != "call" or "kind" not in info:
            return
        self.results[info["engine"]][info["id"]] = info

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Merge the run into the baselines (``--fcp-update-baselines``), find unused entries, and write the
        GitHub step summary (controller only)."""
        if self.run.worker:
            return
        if self.run.update_baselines:
            self._rewrite()
        for engine in sorted(self.results):
            self.unused += [(engine, *found) for found in self.baselines.unused(engine, self.results[engine])]
        failing = bool(self.problems) or (bool(self.unused) and self.run.unused_baselines == "fail")
        if failing and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary and self.results:
            with pathlib.Path(summary).open("a", encoding="utf-8") as handle:
                handle.write(self.markdown() + "\n")

    def _rewrite(self) -> None:
        from pytest_fcp.baseline import BaselineError, Record

        for engine, results in sorted(self.results.items()):
            records = {sid: Record.from_data(info["record"]) for sid, info in results.items()}
            try:
                self.written.append(self.baselines.write(engine, records))
            except BaselineError as exc:  # one line naming the file; the run fails, the other engines are written
                self.problems.append(f"fcp: baseline not written: {exc}")

    def notes(self) -> list[str]:
        """The lines after the summary: what each update wrote, unused entries, and what could not be written."""
        out = []
        for w in self.written:
            pruned = f", {len(w.pruned)} pruned ({listing(w.pruned)})" if w.pruned else ""
            out.append(
                f"fcp: baseline written to {w.path}: {w.added} added, {w.changed} changed, {w.unchanged} unchanged, "
                f"{w.kept} kept (not run){pruned}"
            )
        for engine, path, ids in self.unused:
            entries = f"{len(ids)} unused baseline entr{'y' if len(ids) == 1 else 'ies'}"
            writable = path == self.baselines.target(engine)
            them = "it" if len(ids) == 1 else "them"
            hint = f"  (remove {them} with --fcp-update-baselines --fcp-prune-baselines)" if writable else ""
            out.append(f"fcp: {entries} in {self.baselines.label(path)}: {listing(ids)}{hint}")
        return out + self.problems

    def lines(self) -> list[str]:
        """The summary: per engine a total line, the baseline files it was judged against, one line per theme, one
        line per changed scenario."""
        out: list[str] = []
        for engine in sorted(self.results):
            results = self.results[engine]
            counts = _counts(results.values())
            shown = ", ".join(f"{counts[k]} {_LABELS[k]}" for k in KINDS if counts[k] or k in ("conforming",))
            warned = sum(int(info.get("warnings", 0)) for info in results.values())
            noise = f"; {warned} engine warnings, in the traces" if warned else ""
            out.append(f"{engine}: {shown} ({len(results)} scenarios{noise})")
            out.append(f"  {judged(results.values())}")
            if self.run.cache_from is not None:  # 0 of N says the lookup found nothing (docs/regression.md)
                carried = sum(1 for info in results.values() if info.get("carried_from"))
                out.append(f"  started from a carried cache: {carried} of {len(results)} ({self.run.cache_from})")
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
        body = "\n".join(f"    {line}" for line in self.lines() + self.notes())
        return f"## FCP conformance\n\n{body}\n"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """The ``FCP conformance`` section, then what was written where and the unused baseline entries."""
        if not self.results:
            return
        tr = terminalreporter
        tr.section("FCP conformance")
        for line in self.lines():
            tr.write_line(line)
        for line in self.notes():
            tr.write_line(line)


def judged(infos: Any) -> str:
    """Which baseline files an engine's scenarios were compared with: ``judged against bundled ckvd.toml (104
    scenarios)``, several joined with ``+`` in lookup order, and how many had no entry."""
    sources: dict[str | None, int] = {}
    for info in infos:
        label = info.get("baseline")
        sources[label] = sources.get(label, 0) + 1
    files = [(label, count) for label, count in sources.items() if label is not None]
    files.sort(key=lambda pair: pair[0].startswith("bundled "))
    if not files:
        return "judged by the contract alone: no baseline entry"
    parts = [f"{label} ({count}{' scenarios' if i == 0 else ''})" for i, (label, count) in enumerate(files)]
    missing = sources.get(None, 0)
    return "judged against " + " + ".join(parts) + (f"; {missing} not in a baseline" if missing else "")


def _counts(infos: Any) -> dict[str, int]:
    counts = dict.fromkeys(KINDS, 0)
    for info in infos:
        counts[info["kind"]] += 1
    return counts
