"""``pytest --fcp-scenarios``: scenario files become pytest items, one per scenario and engine.

Registered only when ``--fcp-scenarios`` is given. Without positional arguments the run collects the
bundled catalog plus ``--fcp-scenarios-dir`` / ini ``fcp_scenarios_dirs``; with arguments, the scenario
files among them. Per-engine expectation files (``<engine>.toml`` in the expectations directory) turn known
failures into expected failures; an unexpected pass fails ("now conforms: remove it"). The run ends with a
conformance summary per engine and theme.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile
import tomllib
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_fcp.scenarios.loader import catalog_dir, load_file
from pytest_fcp.scenarios.model import Scenario, ScenarioError

__all__ = ["ScenarioCollector", "ScenarioFile", "ScenarioItem", "load_expectations", "write_expectations"]

EXPECTATIONS_HEADER = """\
# Known FCP contract failures of the {engine!r} engine against the pytest-fcp scenario catalog.
# Each key is a scenario id (theme/name); each value is why it fails (written from its trace).
# With this engine a listed scenario is reported as an expected failure; if it passes, the run fails
# ("now conforms: remove it"); a scenario not listed must pass. Rewrite from a run with
#   pytest --fcp-scenarios --fcp-engine {engine} --fcp-update-expectations
"""


def load_expectations(directory: pathlib.Path, engine: str) -> dict[str, str]:
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
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{engine}.toml"
    lines = [EXPECTATIONS_HEADER.format(engine=engine), "[expected_failures]"]
    lines += [f"{_toml_string(k)} = {_toml_string(v)}" for k, v in sorted(failures.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class ScenarioCollector:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        dirs: list[pathlib.Path] = []
        if not config.getoption("fcp_no_bundled", False):
            dirs.append(catalog_dir())
        for extra in (config.getoption("fcp_scenarios_dirs", None) or []) + list(config.getini("fcp_scenarios_dirs")):
            path = pathlib.Path(extra).resolve()
            if not path.is_dir():
                raise pytest.UsageError(f"pytest-fcp: --fcp-scenarios-dir {extra}: no such directory")
            dirs.append(path)
        self.dirs = [d.resolve() for d in dirs]
        expectations = config.getoption("fcp_expectations_dir", None) or config.getini("fcp_expectations_dir")
        self.expectations_dir = pathlib.Path(expectations) if expectations else catalog_dir() / "expectations"
        self._expectations: dict[str, dict[str, str]] = {}
        self.results: dict[str, dict[str, tuple[str, str, str]]] = defaultdict(
            dict
        )  # engine -> id -> (theme, outcome, reason)
        if config.args_source != pytest.Config.ArgsSource.ARGS:
            config.args[:] = [str(d) for d in self.dirs]

    def expectations(self, engine: str) -> dict[str, str]:
        if engine not in self._expectations:
            self._expectations[engine] = load_expectations(self.expectations_dir, engine)
        return self._expectations[engine]

    def _is_scenario_file(self, path: pathlib.Path) -> bool:
        if path.suffix != ".toml" or path.parent.name == "expectations":
            return False
        resolved = path.resolve()
        return any(resolved.is_relative_to(d) for d in self.dirs) or resolved.parent.name == "scenarios"

    def pytest_collect_file(self, file_path: pathlib.Path, parent: pytest.Collector) -> pytest.Collector | None:
        if self._is_scenario_file(file_path):
            return ScenarioFile.from_parent(parent, path=file_path)
        return None

    # --- results on the controller ------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
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
        if hasattr(self.config, "workerinput") or not self.config.getoption("fcp_update_expectations", False):
            return
        for engine, results in self.results.items():
            failures = {
                sid: reason
                for sid, (_, outcome, reason) in results.items()
                if outcome in ("expected failure", "regression")
            }
            self.written = [*getattr(self, "written", []), write_expectations(self.expectations_dir, engine, failures)]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.results:
            return
        tr = terminalreporter
        tr.section("FCP conformance")
        for engine in sorted(self.results):
            results = self.results[engine]
            themes: dict[str, list[str]] = defaultdict(list)
            for theme, outcome, _ in results.values():
                themes[theme].append(outcome)

            def count(items: list[str], what: str) -> int:
                return sum(1 for i in items if i == what)

            every = [o for items in themes.values() for o in items]
            tr.write_line(
                f"{engine}: {count(every, 'passed')} passed, {count(every, 'expected failure')} expected failures, "
                f"{count(every, 'regression')} regressions, {count(every, 'unexpected pass')} unexpected passes "
                f"({len(every)} scenarios)"
            )
            for theme in sorted(themes):
                items = themes[theme]
                tr.write_line(
                    f"  {theme:<22} {count(items, 'passed'):>3} passed  {count(items, 'expected failure'):>3} expected"
                    f"  {count(items, 'regression'):>3} regressions  {count(items, 'unexpected pass'):>3} unexpected"
                )
        for path in getattr(self, "written", []):
            tr.write_line(f"fcp: expectations written to {path}")


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from pytest_fcp.plugin import engine_names

        display = self.path.name
        try:
            rel = self.path.relative_to(self.config.rootpath)
            display = rel.as_posix()
        except ValueError:
            pass
        try:
            scenarios = load_file(self.path, display=display)
        except ScenarioError as exc:
            raise self.CollectError(f"pytest-fcp: bad scenario file: {exc}") from None
        for scenario in scenarios:
            for engine in engine_names(self.config):
                yield ScenarioItem.from_parent(
                    self, name=f"{scenario.name}[{engine}]", scenario=scenario, engine=engine
                )


class ScenarioFailed(Exception):
    def __init__(self, lines: list[str], path: str) -> None:
        super().__init__("\n".join(lines))
        self.lines, self.path = lines, path


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Scenario, engine: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.engine = engine
        self.add_marker(pytest.mark.fcp_scenario)

    @property
    def collector(self) -> ScenarioCollector:
        return self.config.pluginmanager.get_plugin("fcp-scenarios")  # type: ignore[return-value]

    def runtest(self) -> None:
        from pytest_fcp.plugin import ENGINE_NAME_KEY, LOG_LEVEL_KEY, SEED_KEY, WORLD_KEY, load_factory
        from pytest_fcp.scenarios.runner import run_scenario

        scenario = self.scenario
        reason = self.collector.expectations(self.engine).get(scenario.id)
        self.fcp_report_extra = {"scenario": scenario.id, "theme": scenario.theme}
        self._fcp_info = {
            "engine": self.engine,
            "id": scenario.id,
            "theme": scenario.theme,
            "expected": reason is not None,
        }
        factory = load_factory(self.engine)  # skips an unavailable bundled engine, names any other
        tmp = pathlib.Path(tempfile.mkdtemp(prefix="fcp-"))
        try:
            self.stash[ENGINE_NAME_KEY] = self.engine
            run = run_scenario(
                scenario,
                factory,
                tmp / "cache",
                seed=self.config.stash[SEED_KEY],
                log_level=self.config.stash[LOG_LEVEL_KEY],
            )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.stash[WORLD_KEY] = run.world
        self._fcp_info["reason"] = run.verdicts[0].reason if run.verdicts else ""
        if run.verdicts and reason is not None:
            pytest.xfail(f"known failure of {self.engine}: {reason}")
        if run.verdicts:
            raise ScenarioFailed([str(v) for v in run.verdicts], run.world.trace.path())
        if reason is not None:
            pytest.fail(
                f"{scenario.id} now conforms on {self.engine}: remove it from the expectations "
                f"({self.collector.expectations_dir / (self.engine + '.toml')}); it was listed as: {reason}",
                pytrace=False,
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            s = self.scenario
            return (
                f"{s.id} on {self.engine} breaks the FCP contract\n"
                f"  {s.description}\n"
                + "\n".join(f"  FAIL {line}" for line in excinfo.value.lines)
                + f"\n  path: {excinfo.value.path}"
            )
        if isinstance(excinfo.value, (pytest.xfail.Exception, pytest.fail.Exception, pytest.skip.Exception)):
            return str(excinfo.value)  # said in full already: no traceback through the harness
        return super().repr_failure(excinfo, style)  # type: ignore[arg-type]

    def reportinfo(self) -> tuple[pathlib.Path, int, str]:
        return self.path, 0, f"scenario {self.scenario.id} [{self.engine}]"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    info = getattr(item, "_fcp_info", None)
    if info is not None and report.when == "call":
        report.fcp_scenario = info
    return report
