"""Behaviour baselines in a run: each engine's ``<engine>.toml`` read once at start-up from every baseline
directory (the run's own first, then the bundled one), each scenario compared with the first entry found, the
run's own file updated with ``--fcp-update-baselines`` and unused entries found at the end.

A bad file (invalid TOML, wrong types, the old expectations format) is one usage error at start-up, unless
``--fcp-update-baselines`` is about to rewrite it. An engine without any file is judged by the contract alone.
An update merges: entries of scenarios that ran are added or replaced, every other entry is kept, and
``--fcp-prune-baselines`` drops the unused ones (a scenario of a theme the run loaded that no file defines).
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest

from pytest_fcp.baseline import Baseline, BaselineError, Record, load_baseline, write_baseline
from pytest_fcp.plugin.settings import RunSettings

__all__ = ["EngineBaselines", "Written", "file_name", "listing"]


def file_name(engine: str) -> str:
    """The baseline file of ``engine`` (a ``package.module:factory`` name becomes a safe file name)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", engine) + ".toml"


def listing(ids: Iterable[str], limit: int = 10) -> str:
    """``ids`` joined with commas, the first ``limit`` of them and then how many more."""
    ids = list(ids)
    shown = ", ".join(ids[:limit])
    return shown + (f", … {len(ids) - limit} more" if len(ids) > limit else "")


def _theme(scenario_id: str) -> str:
    return scenario_id.partition("/")[0]


@dataclass(frozen=True)
class Written:
    """What an update did to one baseline file: entries added, changed, unchanged, kept (not run) and pruned."""

    path: pathlib.Path
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    kept: int = 0
    pruned: list[str] = field(default_factory=list)


class EngineBaselines:
    """The run's engines' baselines: loaded once in layers, looked up per scenario, merged into on update."""

    def __init__(self, run: RunSettings, scenario_ids: Iterable[str], themes: Iterable[str] = ()) -> None:
        assert run.baseline_write_dir is not None
        self.dirs, self.write_dir = run.baseline_dirs, run.baseline_write_dir
        self.bundled, self.rootdir, self.update = run.bundled_baseline_dir, run.rootdir, run.update_baselines
        self.prune = run.prune_baselines
        #: Every scenario id the run's scenario files define, and the themes (files) the run loaded.
        self.scenario_ids = set(scenario_ids)
        self.themes = set(themes) | {_theme(sid) for sid in self.scenario_ids}
        #: Per engine: its baseline files in lookup order, each with what it holds.
        self.layers: dict[str, list[tuple[pathlib.Path, Baseline]]] = {e: self._load(e) for e in run.engines}

    def target(self, engine: str) -> pathlib.Path:
        """The file ``--fcp-update-baselines`` writes ``engine``'s baseline to."""
        return self.write_dir / file_name(engine)

    def _load(self, engine: str) -> list[tuple[pathlib.Path, Baseline]]:
        layers = []
        for directory in self.dirs:
            path = directory / file_name(engine)
            if not path.exists():
                continue
            try:
                layers.append((path, load_baseline(path, engine)))
            except BaselineError as exc:
                if self.update and path == self.target(engine):
                    continue  # an old or unreadable file (as its message advises): rewritten from this run
                raise pytest.UsageError(f"pytest-fcp: {exc}") from None
        return layers

    def has(self, engine: str) -> bool:
        """Whether ``engine`` has a baseline file."""
        return bool(self.layers.get(engine))

    def source(self, engine: str, scenario_id: str) -> pathlib.Path | None:
        """The file whose entry ``scenario_id`` on ``engine`` is compared with (the first that has one)."""
        for path, baseline in self.layers.get(engine, ()):
            if scenario_id in baseline.records:
                return path
        return None

    def expected(self, engine: str, scenario_id: str) -> Record | None:
        """``engine``'s recorded behaviour on ``scenario_id``, from the first baseline file that has it."""
        for _, baseline in self.layers.get(engine, ()):
            if scenario_id in baseline.records:
                return baseline.records[scenario_id]
        return None

    def label(self, path: pathlib.Path) -> str:
        """How the summary names a baseline file: ``bundled ckvd.toml``, or its path from the rootdir."""
        if self.bundled is not None and path.parent == self.bundled:
            return f"bundled {path.name}"
        try:
            return path.relative_to(self.rootdir.resolve()).as_posix()
        except ValueError:
            return str(path)

    def unused(self, engine: str, defined: Iterable[str] = ()) -> list[tuple[pathlib.Path, list[str]]]:
        """Per file of ``engine``: its entries of a theme the run loaded that no scenario file defines."""
        known = self.scenario_ids | set(defined)
        themes = self.themes | {_theme(sid) for sid in known}
        out = []
        for path, baseline in self.layers.get(engine, ()):
            ids = sorted(s for s in baseline.records if s not in known and _theme(s) in themes)
            if ids:
                out.append((path, ids))
        return out

    def write(self, engine: str, records: dict[str, Record]) -> Written:
        """Merge ``records`` (the scenarios that ran) into ``engine``'s file in the write directory, keeping every
        other entry; with ``--fcp-prune-baselines`` drop its unused entries."""
        target = self.target(engine)
        existing: dict[str, Record] = {}
        if target.exists():
            try:
                existing = dict(load_baseline(target, engine).records)
            except BaselineError:
                existing = {}  # an old expectations file or an unreadable one: nothing of it to keep
        merged = dict(existing)
        merged.update(records)
        added = sum(1 for sid in records if sid not in existing)
        changed = sum(1 for sid in records if sid in existing and existing[sid] != records[sid])
        pruned: list[str] = []
        if self.prune:
            known = self.scenario_ids | set(records)
            themes = self.themes | {_theme(sid) for sid in records}
            pruned = sorted(s for s in merged if s not in known and _theme(s) in themes)
            for sid in pruned:
                del merged[sid]
        write_baseline(target, engine, merged)  # a BaselineError names the file and why it cannot be written
        layers = [(p, b) for p, b in self.layers.get(engine, []) if p != target]
        self.layers[engine] = [(target, Baseline(engine, merged)), *layers]
        kept = len(existing) - len(set(existing) & set(records)) - len(pruned)
        return Written(target, added, changed, len(records) - added - changed, kept, pruned)
