"""``pytest --fcp-scenarios``: scenario files become pytest items, one per scenario and engine.

Registered only when ``--fcp-scenarios`` is given. Which paths are collected is decided once, in the plugin's
``pytest_configure`` (see :meth:`RunSettings.collection_args`); here a ``.toml`` file under a scenario directory
(or a directory named ``scenarios``) becomes a :class:`ScenarioFile`. Each scenario's behaviour is compared
with the engine's baseline (:mod:`pytest_fcp.plugin.baselines`): unchanged known failures are expected
failures, any difference fails with a readable diff.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from pytest_fcp.plugin import cache_carry
from pytest_fcp.plugin.baselines import EngineBaselines
from pytest_fcp.plugin.fixtures import load_factory
from pytest_fcp.plugin.settings import ENGINE_NAME_KEY, WORLD_KEY, RunSettings, settings
from pytest_fcp.scenarios.loader import check_unique_ids, load_file
from pytest_fcp.scenarios.model import Scenario, ScenarioError

__all__ = ["COLLECTOR_NAME", "ScenarioChanged", "ScenarioCollector", "ScenarioFailed", "ScenarioFile", "ScenarioItem"]

COLLECTOR_NAME = "fcp-scenarios"


class ScenarioCollector:
    """Collects scenario files as :class:`ScenarioFile` and marks each scenario item's report."""

    def __init__(self, run: RunSettings) -> None:
        self.dirs = run.scenario_dirs
        self.baselines = EngineBaselines(run, *_scenario_ids(self.dirs))

    def is_scenario_file(self, path: pathlib.Path) -> bool:
        """A ``.toml`` file under a scenario directory or in a ``scenarios`` directory (not a baseline file)."""
        if path.suffix != ".toml" or path.parent.name in ("baselines", "expectations"):
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
            dirs = settings(self.config).scenario_dirs
            check_unique_ids([p for d in dirs for p in sorted(d.glob("*.toml"))], only=self.path)
            scenarios = load_file(self.path, display=display)
        except ScenarioError as exc:
            raise self.CollectError(f"pytest-fcp: bad scenario file: {exc}") from None
        for scenario in scenarios:
            for engine in settings(self.config).engines:
                yield ScenarioItem.from_parent(
                    self, name=f"{scenario.name}[{engine}]", scenario=scenario, engine=engine
                )


class ScenarioFailed(Exception):
    """A scenario broke the FCP contract: the verdicts' lines and the decision path (``note``: a line before
    them, e.g. the carried cache it started from)."""

    def __init__(self, lines: list[str], path: str, note: str = "") -> None:
        super().__init__("\n".join(lines))
        self.lines, self.path, self.note = lines, path, note


class ScenarioChanged(Exception):
    """A scenario's behaviour differs from the engine's baseline: the kind, the diff, the verdicts, the path."""

    def __init__(self, kind: str, lines: list[str], verdicts: list[str], path: str, baseline: pathlib.Path) -> None:
        super().__init__("\n".join(lines))
        self.kind, self.lines, self.verdicts, self.path, self.baseline = kind, lines, verdicts, path, baseline

    def render(self, scenario_id: str, engine: str) -> str:
        """The failure as a person reads it: what changed, then the verdicts and the decision path."""
        head = {
            "worse": "behaves worse than its baseline",
            "better": "behaves better than its baseline: update the baseline (--fcp-update-baselines)",
            "changed": "behaves differently from its baseline",
        }[self.kind]
        lines = [f"{scenario_id} on {engine} {head} ({self.baseline})"]
        lines += [f"  {line}" for line in self.lines[:_DIFF_LINES]]
        if len(self.lines) > _DIFF_LINES:
            lines.append(f"  … {len(self.lines) - _DIFF_LINES} more differences")
        lines += [f"  FAIL {verdict}" for verdict in self.verdicts]
        lines.append(f"  path: {self.path}")
        return "\n".join(lines)


_DIFF_LINES = 30


def _kind(change: str, failing: bool) -> str:
    """How a scenario came out: conforming, known failure, worse, better, changed or new failing."""
    if change == "same":
        return "known failure" if failing else "conforming"
    if change == "new":
        return "new failing" if failing else "conforming"
    return change


def _scenario_ids(dirs: tuple[pathlib.Path, ...]) -> tuple[list[str], list[str]]:
    """The ids of every scenario in the run's scenario directories, and the themes of the files that loaded (a
    file that does not load is skipped here, so its baseline entries are never called unused; collection
    reports it)."""
    from pytest_fcp.scenarios.loader import load_file

    ids: list[str] = []
    themes: list[str] = []
    for directory in dirs:
        for path in sorted(directory.glob("*.toml")):
            try:
                ids.extend(s.id for s in load_file(path))
            except (ScenarioError, OSError, UnicodeDecodeError):
                continue
            themes.append(path.stem)
    return ids, themes


class ScenarioItem(pytest.Item):
    """One scenario on one engine, judged by the contract and the engine's expectation file."""

    def __init__(self, *, scenario: Scenario, engine: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.engine = engine
        self.add_marker(pytest.mark.fcp_scenario)

    @property
    def collector(self) -> ScenarioCollector:
        """The run's scenario collector (it holds the baselines)."""
        return self.config.pluginmanager.get_plugin(COLLECTOR_NAME)  # type: ignore[return-value]

    def runtest(self) -> None:
        """Run the scenario in a fresh world and compare its behaviour with the engine's baseline."""
        from pytest_fcp.scenarios.decisions import record_of
        from pytest_fcp.scenarios.runner import run_scenario

        run_settings = settings(self.config)
        scenario, engine = self.scenario, self.engine
        self._start_info()
        factory = load_factory(engine)  # skips an unavailable bundled engine, names any other
        self.stash[ENGINE_NAME_KEY] = engine
        expected = self.collector.baselines.expected(engine, scenario.id)
        carried = cache_carry.scenario_cache_from(self.config, engine, scenario.theme, scenario.name)
        if carried is not None:  # --fcp-cache-from: the cache saved for this scenario, judged by the contract
            scenario = cache_carry.carried_scenario(scenario, carried)
        from pytest_fcp.plugin.behaviours import merged, racy, run_schedules, within_known

        if scenario.together:  # its behaviour is a set: one per schedule (plugin/behaviours.py)
            run, record, behaviours = run_schedules(scenario, factory, run_settings)
            record = merged(expected, record) if run_settings.update_baselines else within_known(expected, record)
            if len(behaviours.seen) > 1:
                self.add_report_section("call", "fcp schedules", "\n".join(behaviours.lines(self._replay())))
        else:
            tmp = pathlib.Path(tempfile.mkdtemp(prefix="fcp-"))
            try:
                run = run_scenario(
                    scenario, factory, tmp / "cache", seed=run_settings.seed, log_level=run_settings.log_level
                )
                cache_carry.save(self.config, (engine, scenario.theme, scenario.name), run.world)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            record = record_of(run.results, run.verdicts, str(run.world.cache_dir))
            if racy(scenario):  # a cut timed by the engine's own reads: its behaviours are a set too
                record = merged(expected, record) if run_settings.update_baselines else within_known(expected, record)
        self.stash[WORLD_KEY] = run.world
        carry = (carried, run.verdicts, str(run.world.cache_dir), run.world.spec.seed) if carried is not None else None
        self.conclude(
            record, [str(v) for v in run.verdicts], run.world.trace.path(), run.world.warning_count, carry=carry
        )

    def _start_info(self) -> None:
        """What the reports carry of this scenario before (and whether or not) it is judged."""
        scenario = self.scenario
        self.fcp_report_extra = {"scenario": scenario.id, "theme": scenario.theme}
        self._fcp_info: dict[str, Any] = {"engine": self.engine, "id": scenario.id, "theme": scenario.theme}

    def conclude(
        self, record: Any, verdicts: list[str], path: str, warnings: int = 0, *, carry: tuple[Any, ...] | None = None
    ) -> None:
        """Compare the scenario's behaviour ``record`` with the engine's baseline; pass, xfail or raise.

        Used by :meth:`runtest` and, for an engine that died in an isolated child, by the parent. ``carry``:
        ``(saved cache, verdicts, cache dir, seed)`` of a scenario started from a carried cache."""
        from pytest_fcp.baseline import compare, first_line

        run_settings = settings(self.config)
        scenario, engine = self.scenario, self.engine
        baselines = self.collector.baselines
        self._start_info()
        expected = baselines.expected(engine, scenario.id)
        carried = carry[0] if carry is not None else None
        if carried is not None:
            self._fcp_info["carried_from"] = str(carried)
        source = baselines.source(engine, scenario.id)
        self._fcp_info["baseline"] = baselines.label(source) if source is not None else None
        change = compare(expected, record)
        kind = _kind(change.kind, bool(verdicts))
        first = first_line(change).partition(": ")[2] if change.kind not in ("same", "new") else ""
        first = first or (verdicts[0] if verdicts else "")
        diff = list(change.lines[:_DIFF_LINES]) if change.kind not in ("same", "new") else []
        warm = cache_carry.warm_baseline(run_settings, source)  # recorded from a carried cache: compared in full
        new = cache_carry.carried_failures(expected, carry[1], carry[2]) if carry is not None and not warm else []
        if carried is not None and not warm:  # judged by the contract: only failures its baseline lacks fail it
            kind = "conforming" if not verdicts else "new failing" if new else "known failure"
            first, diff = (new or verdicts or [""])[0], []
        self._fcp_info.update(
            kind=kind, first=first, record=record.to_data(), diff=diff, verdicts=verdicts, warnings=warnings
        )
        self.user_properties.append(("fcp.baseline", f"{kind}: {first}" if first else kind))
        if run_settings.update_baselines:
            return  # recorded for the rewrite at the end of the run
        if new and carry is not None:
            said = f"started from the cache saved at {carried} (seed {carry[3]}); failures its baseline lacks:"
            raise ScenarioFailed(new, path, said)
        if kind == "known failure":
            pytest.xfail(f"known failure of {engine}, unchanged: {verdicts[0]}")
        if kind in ("worse", "better", "changed"):
            raise ScenarioChanged(change.kind, change.lines, verdicts, path, source or baselines.target(engine))
        if verdicts:
            raise ScenarioFailed(verdicts, path)

    def _replay(self) -> list[str]:
        """This item's replay line, as words (a schedule's adds ``--fcp-schedule=N``)."""
        from pytest_fcp.plugin.replay import replay_command

        return replay_command(settings(self.config), self).split()

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """A contract break as its verdicts and path; the harness's own failures without a traceback."""
        if isinstance(excinfo.value, ScenarioChanged):
            return excinfo.value.render(self.scenario.id, self.engine)
        if isinstance(excinfo.value, ScenarioFailed):
            s = self.scenario
            return (
                f"{s.id} on {self.engine} breaks the FCP contract\n"
                f"  {s.description}\n"
                + (f"  {excinfo.value.note}\n" if excinfo.value.note else "")
                + "\n".join(f"  FAIL {line}" for line in excinfo.value.lines)
                + f"\n  path: {excinfo.value.path}"
            )
        if isinstance(excinfo.value, ScenarioError):  # refused: the harness cannot do what the scenario asks
            return f"pytest-fcp: {excinfo.value}"
        if isinstance(excinfo.value, (pytest.xfail.Exception, pytest.fail.Exception, pytest.skip.Exception)):
            return str(excinfo.value)  # said in full already: no traceback through the harness
        return super().repr_failure(excinfo, style)  # type: ignore[arg-type]

    def reportinfo(self) -> tuple[pathlib.Path, int, str]:
        """Where the scenario is, for pytest's report header line."""
        return self.path, 0, f"scenario {self.scenario.id} [{self.engine}]"
