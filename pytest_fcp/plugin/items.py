"""``pytest --fcp-scenarios``: scenario files become pytest items, one per scenario and engine.

Registered only when ``--fcp-scenarios`` is given. Which paths are collected is decided once, in the plugin's
``pytest_configure`` (see :meth:`RunSettings.collection_args`); here a ``.toml`` file under a scenario directory
(or a directory named ``scenarios``) becomes a :class:`ScenarioFile`. Known failures come from
:class:`~pytest_fcp.plugin.conformance.Expectations`.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from pytest_fcp.plugin.conformance import Expectations
from pytest_fcp.plugin.fixtures import load_factory
from pytest_fcp.plugin.settings import ENGINE_NAME_KEY, WORLD_KEY, RunSettings, settings
from pytest_fcp.scenarios.loader import load_file
from pytest_fcp.scenarios.model import Scenario, ScenarioError

__all__ = ["COLLECTOR_NAME", "ScenarioCollector", "ScenarioFailed", "ScenarioFile", "ScenarioItem"]

COLLECTOR_NAME = "fcp-scenarios"


class ScenarioCollector:
    """Collects scenario files as :class:`ScenarioFile` and marks each scenario item's report."""

    def __init__(self, run: RunSettings) -> None:
        self.dirs = run.scenario_dirs
        assert run.expectations_dir is not None  # set whenever --fcp-scenarios is
        self.expectations = Expectations(run.expectations_dir)

    def is_scenario_file(self, path: pathlib.Path) -> bool:
        """A ``.toml`` file under a scenario directory or in a ``scenarios`` directory (not an expectation file)."""
        if path.suffix != ".toml" or path.parent.name == "expectations":
            return False
        resolved = path.resolve()
        return any(resolved.is_relative_to(d) for d in self.dirs) or resolved.parent.name == "scenarios"

    def pytest_collect_file(self, file_path: pathlib.Path, parent: pytest.Collector) -> pytest.Collector | None:
        """A :class:`ScenarioFile` for a scenario file, else nothing."""
        if self.is_scenario_file(file_path):
            return ScenarioFile.from_parent(parent, path=file_path)
        return None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        """Attach the scenario's engine, id, theme and expectation to its call report (``report.fcp_scenario``)."""
        report = yield
        info = getattr(item, "_fcp_info", None)
        if info is not None and report.when == "call":
            report.fcp_scenario = info
        return report


class ScenarioFile(pytest.File):
    """A scenario TOML file: one item per scenario and engine; a malformed file is a collection error."""

    def collect(self) -> Iterator[pytest.Item]:
        """The file's scenarios, each on every engine of the run."""
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
            for engine in settings(self.config).engines:
                yield ScenarioItem.from_parent(
                    self, name=f"{scenario.name}[{engine}]", scenario=scenario, engine=engine
                )


class ScenarioFailed(Exception):
    """A scenario broke the FCP contract: the verdicts' lines and the decision path."""

    def __init__(self, lines: list[str], path: str) -> None:
        super().__init__("\n".join(lines))
        self.lines, self.path = lines, path


class ScenarioItem(pytest.Item):
    """One scenario on one engine, judged by the contract and the engine's expectation file."""

    def __init__(self, *, scenario: Scenario, engine: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.engine = engine
        self.add_marker(pytest.mark.fcp_scenario)

    @property
    def collector(self) -> ScenarioCollector:
        """The run's scenario collector (it holds the expectations)."""
        return self.config.pluginmanager.get_plugin(COLLECTOR_NAME)  # type: ignore[return-value]

    def runtest(self) -> None:
        """Run the scenario in a fresh world; fail on a contract break unless expected, fail an unexpected pass."""
        from pytest_fcp.scenarios.runner import run_scenario

        run_settings = settings(self.config)
        scenario = self.scenario
        expectations = self.collector.expectations
        reason = expectations.reason(self.engine, scenario.id)
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
                scenario, factory, tmp / "cache", seed=run_settings.seed, log_level=run_settings.log_level
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
                f"({expectations.path(self.engine)}); it was listed as: {reason}",
                pytrace=False,
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """A contract break as its verdicts and path; the harness's own failures without a traceback."""
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
        """Where the scenario is, for pytest's report header line."""
        return self.path, 0, f"scenario {self.scenario.id} [{self.engine}]"
