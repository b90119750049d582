"""The fuzz loop: generate scenarios, run each on an engine, shrink the first contract break.

:func:`fuzz_engine` drives Hypothesis (``@given`` on :func:`pytest_fcp.fuzz.strategies.scenarios`) and
returns a :class:`FuzzResult`: how many examples ran, how fast, and - if the engine broke the contract -
the shrunk scenario, its verdicts and its decision path. The ``--fcp-fuzz`` items and the tests use it.

Runs are memoised by the scenario's TOML text, and a time budget (``budget`` for the search,
``shrink_budget`` for shrinking) bounds the wall time: past it, unseen examples are not run (they count as
passing), seen ones replay their result, so Hypothesis ends quickly and consistently.
"""

from __future__ import annotations

import contextlib
import pathlib
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from pytest_fcp.contract import Verdict
from pytest_fcp.core.fuzz_profiles import PROFILES
from pytest_fcp.fuzz.save import render_scenario, save_scenario
from pytest_fcp.fuzz.strategies import scenarios
from pytest_fcp.scenarios.model import Scenario

__all__ = ["PROFILES", "FuzzResult", "fuzz_engine", "run_once"]


class _Broken(AssertionError):
    """Internal: the scenario broke the contract (raised inside the property so Hypothesis shrinks it)."""


@dataclass
class FuzzResult:
    """The outcome of fuzzing one engine: counts, timings and the shrunk counterexample if any."""

    engine: str
    seed: int
    examples: int = 0  # scenarios actually run on the engine (generation and shrinking)
    generated: int = 0  # scenarios run before the first failure (the search proper)
    seconds: float = 0.0
    search_seconds: float = 0.0
    budget_hit: bool = False
    scenario: Scenario | None = None  # the shrunk counterexample
    verdicts: list[Verdict] = field(default_factory=list)
    path: str = ""
    saved: pathlib.Path | None = None

    @property
    def passed(self) -> bool:
        """Whether no counterexample was found."""
        return self.scenario is None

    @property
    def rate(self) -> float:
        """Examples per second during the search."""
        return self.generated / self.search_seconds if self.search_seconds else 0.0

    def report(self) -> str:
        """A failure report: seed, the shrunk scenario as TOML, its verdicts and decision path."""
        if self.scenario is None:
            return f"{self.engine}: {self.generated} examples passed ({self.rate:.1f}/s, seed {self.seed})"
        lines = [
            f"{self.engine} breaks the FCP contract on a generated scenario "
            f"(shrunk; found after {self.generated} examples, seed {self.seed}: "
            f"replay with --fcp-seed={self.seed})",
            "verdicts:",
            *(f"  FAIL {v}" for v in self.verdicts),
            f"path: {self.path}",
            "scenario:",
            *("  " + line for line in render_scenario(self.scenario).splitlines()),
        ]
        if self.saved is not None:
            lines.append(
                f"saved to {self.saved} (run it: pytest --fcp-scenarios --fcp-scenarios-dir {self.saved.parent})"
            )
        return "\n".join(lines)


def run_once(scenario: Scenario, engine: str | Callable[..., Any], *, seed: int = 0) -> tuple[list[Verdict], str]:
    """Run ``scenario`` on ``engine`` in a throw-away cache: ``(verdicts, decision path)``."""
    from pytest_fcp.scenarios.runner import run_scenario

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="fcp-fuzz-"))
    try:
        run = run_scenario(scenario, engine, tmp / "cache", seed=seed)
        return list(run.verdicts), run.world.trace.path()
    finally:
        for path in tmp.rglob("*"):  # cache.unreadable / read_only_dir leave modes rmtree cannot pass
            with contextlib.suppress(OSError):
                path.chmod(0o700)
        shutil.rmtree(tmp, ignore_errors=True)


def fuzz_engine(
    engine: str | Callable[..., Any],
    *,
    examples: int = 100,
    seed_value: int = 0,
    derandomize: bool = False,
    budget: float | None = None,
    shrink_budget: float = 60.0,
    save_dir: pathlib.Path | str | None = None,
    strategy: st.SearchStrategy[Scenario] | None = None,
    name: str | None = None,
) -> FuzzResult:
    """Run up to ``examples`` generated scenarios on ``engine``; shrink and report the first contract break.

    ``seed_value`` seeds Hypothesis (unless ``derandomize``) and the world's synthetic truth.
    """
    from pytest_fcp.engines import load_engine

    label = name or (engine if isinstance(engine, str) else getattr(engine, "__name__", "engine"))
    factory = load_engine(engine) if isinstance(engine, str) else engine  # resolved once, not per example
    result = FuzzResult(label, seed_value)
    memo: dict[str, tuple[list[Verdict], str]] = {}
    best: list[tuple[Scenario, list[Verdict], str]] = []
    started = time.monotonic()
    state = {"first_failure": 0.0}

    def over_budget() -> bool:
        now = time.monotonic()
        if best:
            return now - state["first_failure"] > shrink_budget
        return budget is not None and now - started > budget

    def prop(scenario: Scenario) -> None:
        key = render_scenario(scenario)
        if key not in memo:
            if over_budget():
                result.budget_hit = True
                return
            memo[key] = run_once(scenario, factory, seed=seed_value)
            result.examples += 1
            if not best:
                result.generated += 1
        verdicts, path = memo[key]
        if verdicts:
            if not best:
                state["first_failure"] = time.monotonic()
                result.search_seconds = state["first_failure"] - started
            best.append((scenario, verdicts, path))
            raise _Broken("; ".join(map(str, verdicts)))

    test = given(strategy if strategy is not None else scenarios())(prop)
    test = settings(
        max_examples=max(1, examples),
        derandomize=derandomize,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        print_blob=False,
        phases=(Phase.generate, Phase.shrink),
    )(test)
    if not derandomize:
        test = seed(seed_value)(test)
    try:
        test()
    except Exception:
        if not best:
            raise
    result.seconds = time.monotonic() - started
    if not best:
        result.search_seconds = result.seconds
        return result
    scenario, verdicts, path = best[-1]
    result.scenario, result.verdicts, result.path = scenario, verdicts, path
    if save_dir is not None:
        header = f"Shrunk fuzz counterexample: {label} broke the FCP contract (seed {seed_value}).\n" + "\n".join(
            str(v) for v in verdicts
        )
        result.saved = save_scenario(scenario, save_dir, header=header)
    return result
