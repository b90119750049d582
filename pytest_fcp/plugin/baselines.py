"""Behaviour baselines in a run: each engine's ``<engine>.toml`` read once at start-up, each scenario's
record compared with its entry, and the files rewritten with ``--fcp-update-baselines``.

A bad file (invalid TOML, wrong types, the old expectations format, a scenario no scenario file of the run
defines) is one usage error at start-up. An engine without a file is judged by the contract alone.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Iterable

import pytest

from pytest_fcp.baseline import Baseline, BaselineError, Record, load_baseline, update_baseline
from pytest_fcp.plugin.settings import RunSettings

__all__ = ["EngineBaselines", "file_name"]


def file_name(engine: str) -> str:
    """The baseline file of ``engine`` (a ``package.module:factory`` name becomes a safe file name)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", engine) + ".toml"


class EngineBaselines:
    """The run's engines' baselines: loaded once, compared per scenario, rewritten on update."""

    def __init__(self, run: RunSettings, scenario_ids: Iterable[str]) -> None:
        assert run.baseline_dir is not None and run.baseline_write_dir is not None
        self.read_dir, self.write_dir, self.update = run.baseline_dir, run.baseline_write_dir, run.update_baselines
        self.loaded: dict[str, Baseline | None] = {engine: self._load(engine) for engine in run.engines}
        known = set(scenario_ids)
        self.scenario_ids = known
        themes = {sid.partition("/")[0] for sid in known}
        #: Per engine: ids its baseline lists that no loaded scenario file defines (in a theme the run loaded).
        self.unknown: dict[str, list[str]] = {}
        for engine, baseline in self.loaded.items():
            if baseline is None:
                continue
            unknown = sorted(s for s in baseline.records if s not in known and s.partition("/")[0] in themes)
            if unknown and not self.update:
                raise pytest.UsageError(
                    f"pytest-fcp: {self.path(engine)}: scenario {unknown[0]!r}"
                    + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
                    + " is not in any scenario file of this run; remove it, or rewrite the file with "
                    "--fcp-update-baselines"
                )
            self.unknown[engine] = unknown

    def path(self, engine: str) -> pathlib.Path:
        """Where ``engine``'s baseline is read from."""
        return self.read_dir / file_name(engine)

    def _load(self, engine: str) -> Baseline | None:
        path = self.path(engine)
        if not path.exists():
            return None
        try:
            return load_baseline(path, engine)
        except BaselineError as exc:
            if self.update:
                return None  # an old or unreadable file (as its message advises): rewritten from this run
            raise pytest.UsageError(f"pytest-fcp: {exc}") from None

    def has(self, engine: str) -> bool:
        """Whether ``engine`` has a baseline file."""
        return self.loaded.get(engine) is not None

    def expected(self, engine: str, scenario_id: str) -> Record | None:
        """``engine``'s recorded behaviour on ``scenario_id``, if its baseline has it."""
        baseline = self.loaded.get(engine)
        return None if baseline is None else baseline.records.get(scenario_id)

    def write(self, engine: str, records: dict[str, Record], whole: bool) -> pathlib.Path:
        """Rewrite ``engine``'s baseline in the write directory: ``whole`` (every scenario of the catalog ran),
        or only the scenarios in ``records``."""
        self.write_dir.mkdir(parents=True, exist_ok=True)
        target = self.write_dir / file_name(engine)
        loaded = self.loaded.get(engine)
        if not whole and not target.exists() and loaded is not None:
            records = {**loaded.records, **records}  # a new place starts from what was read
            whole = True
        if target.exists() and not whole:
            try:
                load_baseline(target, engine)
            except BaselineError:
                whole = True  # an old expectations file or an unreadable one: nothing of it to keep
        only = None if whole else set(records)
        update_baseline(target, engine, records, only=only, remove=self.unknown.get(engine, ()))
        return target
