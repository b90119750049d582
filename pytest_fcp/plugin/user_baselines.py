"""The ``fcp_baseline`` fixture: a test written with the ``fcp`` marker compares its decision table with a
stored baseline, as syrupy compares snapshots, and ``--fcp-update-baselines`` rewrites it.

A test's baseline lives beside the test file, in ``fcp_baselines/<engine>.toml``, keyed by
``<file name>::<test name>``. Under pytest-xdist the workers send their records with their reports and only
the controller writes.
"""

from __future__ import annotations

import functools
import pathlib
from collections import defaultdict
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_fcp.plugin.baselines import file_name
from pytest_fcp.plugin.settings import RunSettings, settings

if TYPE_CHECKING:
    from pytest_fcp.baseline import Baseline, Record
    from pytest_fcp.world import World

__all__ = ["BaselineCheck", "UserBaselines", "baseline_place"]

DIRECTORY = "fcp_baselines"
_RECORD_KEY = pytest.StashKey[dict[str, Any]]()


def baseline_place(item: pytest.Item, engine: str) -> tuple[pathlib.Path, str]:
    """Where ``item``'s baseline on ``engine`` is kept: the file and the entry's key."""
    path = pathlib.Path(item.path)
    name = getattr(item, "originalname", None) or item.name.partition("[")[0]
    return path.parent / DIRECTORY / file_name(engine), f"{path.name}::{name}"


@functools.cache
def _load(path: pathlib.Path, engine: str, stamp: float) -> Baseline | None:
    from pytest_fcp.baseline import load_baseline

    return load_baseline(path, engine) if stamp >= 0 else None


class BaselineCheck:
    """What ``fcp_baseline`` gives a test: :meth:`assert_match` after its fetches."""

    def __init__(self, item: pytest.Item, world: World, engine: str) -> None:
        self.item, self.world, self.engine = item, world, engine
        self.path, self.key = baseline_place(item, engine)

    def record(self) -> Record:
        """The test's behaviour so far: every fetch of its world, judged by the default contract checks."""
        from pytest_fcp.contract import judge
        from pytest_fcp.scenarios.decisions import record_of

        verdicts = [v for obs in self.world.results for v in judge(self.world.spec, obs)]
        return record_of(self.world.results, verdicts, str(self.world.cache_dir))

    def assert_match(self) -> None:
        """Fail with a readable diff when the decision table differs from the stored one (or none is stored)."""
        from pytest_fcp.baseline import BaselineError, compare, render

        if not self.world.results:
            pytest.fail("fcp_baseline.assert_match(): the test fetched nothing yet", pytrace=False)
        record = self.record()
        if settings(self.item.config).update_baselines:
            self.item.stash[_RECORD_KEY] = {
                "path": str(self.path),
                "engine": self.engine,
                "key": self.key,
                "record": record.to_data(),
            }
            return
        try:
            stamp = self.path.stat().st_mtime if self.path.exists() else -1.0
            baseline = _load(self.path, self.engine, stamp)
        except BaselineError as exc:
            pytest.fail(f"pytest-fcp: {exc}", pytrace=False)
        expected = None if baseline is None else baseline.records.get(self.key)
        if expected is None:
            pytest.fail(
                f"no baseline for {self.key} on {self.engine} in {self.path}: record it with --fcp-update-baselines",
                pytrace=False,
            )
        change = compare(expected, record)
        if change.kind != "same":
            pytest.fail(
                f"{self.key} on {self.engine} differs from its baseline ({self.path}):\n" + render(change),
                pytrace=False,
            )


class UserBaselines:
    """Carries ``fcp_baseline`` records to the controller and rewrites their files with the update flag."""

    def __init__(self, run: RunSettings) -> None:
        self.run = run
        self.records: dict[tuple[str, str], dict[str, Record]] = defaultdict(dict)
        self.written: list[pathlib.Path] = []

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        """Attach a recorded ``fcp_baseline`` entry to the call report."""
        report = yield
        entry = item.stash.get(_RECORD_KEY, None)
        if entry is not None and report.when == "call":
            report.fcp_baseline = entry
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep each recorded entry (on the controller)."""
        entry = getattr(report, "fcp_baseline", None)
        if entry is not None and not self.run.worker:
            from pytest_fcp.baseline import Record

            self.records[entry["path"], entry["engine"]][entry["key"]] = Record.from_data(entry["record"])

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Rewrite each touched baseline file with this run's entries, keeping the others."""
        from pytest_fcp.baseline import update_baseline

        for (path, engine), records in sorted(self.records.items()):
            target = pathlib.Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            update_baseline(target, engine, records, only=set(records))
            self.written.append(target)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Say where the baselines were written."""
        for path in self.written:
            terminalreporter.write_line(f"fcp: test baselines written to {path}")
