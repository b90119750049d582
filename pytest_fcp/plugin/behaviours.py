"""Scenarios whose engine instances run together, under several schedules: their behaviours as a result.

Each schedule (:mod:`pytest_fcp.world.turns`) is one interleaving, chosen from the run's seed and its number.
A racy engine may behave differently under two of them, or in two runs of one (its own threads, and its cache
reads and writes, run between the schedule's yield points). So a together-scenario's behaviour is a *set*: the
distinct failure sets seen, each with the schedules that gave it. Its baseline entry holds the union of the
failures recorded so far (``--fcp-update-baselines`` merges them in), and a run is the known behaviour when
each of its failures is one of them: a racy engine compares the same way in every run, and a failure nobody
has seen before is still a change.

A scenario with a fault the world cannot time against a native reader (``cut_while_read``: the cut lands when
the cache watch sees the engine's open, and a reader in another language may have read the file by then, or
not) is racy by construction too: its behaviour is a set in the same way, over repeated runs.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile
from dataclasses import dataclass, replace
from typing import Any

from pytest_fcp.plugin.settings import RunSettings

__all__ = ["Behaviours", "racy", "run_schedules", "within_known"]


def racy(scenario: Any) -> bool:
    """Whether ``scenario``'s behaviour is a set: instances run together, or a fault is timed by the engine's own
    reads (``cut_while_read``)."""
    from pytest_fcp.faults import FAULTS

    return bool(scenario.together) or any(FAULTS[f.id].cut_while_read for f in scenario.faults)


@dataclass
class Behaviours:
    """The distinct failure sets a scenario showed, each with the schedules that gave it."""

    seen: dict[tuple[str, ...], list[int]]
    schedules: int

    def lines(self, replay: list[str]) -> list[str]:
        """``2 behaviours in 8 schedules`` and one line per behaviour with its replay options."""
        head = f"{len(self.seen)} behaviour(s) in {self.schedules} schedule(s)"
        out = [head]
        for failures, numbers in self.seen.items():
            said = "; ".join(failures) if failures else "conforming"
            out.append(f"  schedules {', '.join(map(str, numbers))}: {said}")
            out.append(f"    replay: {' '.join([*replay, f'--fcp-schedule={numbers[0]}'])}")
        return out


def run_schedules(scenario: Any, factory: Any, run: RunSettings) -> tuple[Any, Any, Behaviours]:
    """Run ``scenario`` under each of the run's schedules: the first run (its world is the test's), the record
    with every failure seen, and the behaviours."""
    from pytest_fcp.scenarios.decisions import failure_key, record_of
    from pytest_fcp.scenarios.runner import run_scenario

    first: Any = None
    union: list[Any] = []
    seen: dict[tuple[str, ...], list[int]] = {}
    for number in run.schedules.numbers:
        tmp = pathlib.Path(tempfile.mkdtemp(prefix="fcp-"))
        try:
            one = run_scenario(
                scenario,
                factory,
                tmp / "cache",
                seed=run.seed,
                log_level=run.log_level,
                schedule=number,
                strategy=run.schedules.strategy,
            )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        keys = tuple(sorted({failure_key(v, str(one.world.cache_dir)) for v in one.verdicts}))
        seen.setdefault(keys, []).append(number)
        union += [v for v in one.verdicts if v not in union]
        first = first or one
    record = record_of(first.results, union, str(first.world.cache_dir))
    first.verdicts = union
    return first, record, Behaviours(seen, len(run.schedules.numbers))


def within_known(expected: Any, record: Any) -> Any:
    """``expected`` when ``record``'s failures are all among those it knows (one of the known behaviours of a
    racy scenario), else ``record`` unchanged."""
    if expected is None or len(expected.fetches) != len(record.fetches):
        return record
    if set(record.failures) <= set(expected.failures) and record.failures:
        return expected
    if not record.failures and not expected.failures:
        return expected
    return record


def merged(expected: Any, record: Any) -> Any:
    """What ``--fcp-update-baselines`` keeps for a racy scenario: this run's record with every failure known."""
    if expected is None:
        return record
    return replace(record, failures=tuple(sorted(set(expected.failures) | set(record.failures))))
