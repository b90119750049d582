"""Scenario expectations and the FCP conformance summary of a ``--fcp-scenarios`` run.

Per-engine expectation files (``<engine>.toml`` in the expectations directory) list known contract failures:
such a scenario is reported as an expected failure, and fails if it passes ("now conforms: remove it").
:class:`Conformance` gathers each scenario item's outcome (on the controller, under pytest-xdist), rewrites the
files with ``--fcp-update-expectations`` and prints the summary per engine and theme.
"""

from __future__ import annotations

import pathlib
import tomllib
from collections import defaultdict
from typing import Any

import pytest

from pytest_fcp.plugin.settings import RunSettings

__all__ = ["Conformance", "Expectations", "load_expectations", "write_expectations"]

EXPECTATIONS_HEADER = """\
# Known FCP contract failures of the {engine!r} engine against the pytest-fcp scenario catalog.
# Each key is a scenario id (theme/name); each value is why it fails (written from its trace).
# With this engine a listed scenario is reported as an expected failure; if it passes, the run fails
# ("now conforms: remove it"); a scenario not listed must pass. Rewrite from a run with
#   pytest --fcp-scenarios --fcp-engine {engine} --fcp-update-expectations
"""


def load_expectations(directory: pathlib.Path, engine: str) -> dict[str, str]:
    """Scenario id -> reason of ``engine``'s known failures (empty without a file); a bad file is a usage error."""
    path = directory / f"{engine}.toml"
    if not path.is_file():
        return {}
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise pytest.UsageError(f"pytest-fcp: expectations file {path} is not valid TOML: {exc}") from None
    failures = doc.get("expected_failures", {})
    if set(doc) - {"expected_failures"} or not isinstance(failures, dict):
        raise pytest.UsageError(f"pytest-fcp: {path} must hold only an [expected_failures] table of id = reason")
    return {str(k): str(v) for k, v in failures.items()}


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def write_expectations(directory: pathlib.Path, engine: str, failures: dict[str, str]) -> pathlib.Path:
    """Write ``engine``'s expectation file (sorted, with its explanatory header) and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{engine}.toml"
    lines = [EXPECTATIONS_HEADER.format(engine=engine), "[expected_failures]"]
    lines += [f"{_toml_string(k)} = {_toml_string(v)}" for k, v in sorted(failures.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Expectations:
    """The expectation files of one directory, each read once, when an engine's first scenario runs."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.directory = directory
        self._loaded: dict[str, dict[str, str]] = {}

    def path(self, engine: str) -> pathlib.Path:
        """Where ``engine``'s expectation file is (or would be)."""
        return self.directory / f"{engine}.toml"

    def reason(self, engine: str, scenario_id: str) -> str | None:
        """Why ``scenario_id`` is a known failure of ``engine``, or None when it must pass."""
        if engine not in self._loaded:
            self._loaded[engine] = load_expectations(self.directory, engine)
        return self._loaded[engine].get(scenario_id)


def _count(items: list[str], what: str) -> int:
    return sum(1 for i in items if i == what)


class Conformance:
    """Scenario outcomes per engine: the expectation files' update and the FCP conformance summary."""

    def __init__(self, run: RunSettings) -> None:
        self.run = run
        self.results: dict[str, dict[str, tuple[str, str, str]]] = defaultdict(dict)  # engine -> id -> (theme, ...)
        self.written: list[pathlib.Path] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Record a scenario item's outcome (its report carries ``fcp_scenario``)."""
        info = getattr(report, "fcp_scenario", None)
        if info is None or report.when != "call":
            return
        if report.skipped and not hasattr(report, "wasxfail"):
            return
        if hasattr(report, "wasxfail"):
            outcome = "expected failure"
        elif report.passed:
            outcome = "passed"
        else:
            outcome = "unexpected pass" if info.get("expected") else "regression"
        self.results[info["engine"]][info["id"]] = (info["theme"], outcome, info.get("reason", ""))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """With ``--fcp-update-expectations``, rewrite each engine's file from this run (controller only)."""
        if self.run.worker or not self.run.update_expectations or self.run.expectations_dir is None:
            return
        for engine, results in self.results.items():
            failures = {
                sid: reason
                for sid, (_, outcome, reason) in results.items()
                if outcome in ("expected failure", "regression")
            }
            self.written.append(write_expectations(self.run.expectations_dir, engine, failures))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """The ``FCP conformance`` section: per engine a total line, then one line per theme."""
        if not self.results:
            return
        tr = terminalreporter
        tr.section("FCP conformance")
        for engine in sorted(self.results):
            themes: dict[str, list[str]] = defaultdict(list)
            for theme, outcome, _ in self.results[engine].values():
                themes[theme].append(outcome)
            every = [o for items in themes.values() for o in items]
            tr.write_line(
                f"{engine}: {_count(every, 'passed')} passed, {_count(every, 'expected failure')} expected failures, "
                f"{_count(every, 'regression')} regressions, {_count(every, 'unexpected pass')} unexpected passes "
                f"({len(every)} scenarios)"
            )
            for theme in sorted(themes):
                items = themes[theme]
                tr.write_line(
                    f"  {theme:<22} {_count(items, 'passed'):>3} passed  {_count(items, 'expected failure'):>3} "
                    f"expected  {_count(items, 'regression'):>3} regressions  "
                    f"{_count(items, 'unexpected pass'):>3} unexpected"
                )
        for path in self.written:
            tr.write_line(f"fcp: expectations written to {path}")
