"""The fuzz loop: generate scenarios, run each on an engine, shrink the first contract break.

:func:`fuzz_engine` drives Hypothesis (``@given`` on :func:`pytest_fcp.fuzz.strategies.scenarios`) and
returns a :class:`FuzzResult`: how many examples ran, how fast, and - if the engine broke the contract -
the shrunk scenario, its verdicts and its decision path. The ``--fcp-fuzz`` items and the tests use it.

Runs are memoised by the scenario's TOML text, and a time budget (``budget`` for the search,
``shrink_budget`` for shrinking) bounds the wall time: past it, unseen examples are not run (they count as
passing), seen ones replay their result, so Hypothesis ends quickly and consistently.

With a ``database`` (any Hypothesis ``ExampleDatabase``), the examples kept under the engine's key
(:func:`pytest_fcp.fuzz.database.database_key`) are replayed first and a new shrunk finding is kept there.
With ``cells`` (what a run exercised: cells of the FCP space) and ``steer`` (the default), the search draws
from every interval of a market (:func:`~pytest_fcp.fuzz.strategies.scenarios` with ``wide``) and scores each
example with Hypothesis's ``target()`` by the cells it reaches that no earlier example of the search did, each
cell of ``empty`` (the cells the catalog left empty) counting 1 + :data:`EMPTY_WEIGHT` times; the distinct cells
are counted. Hypothesis's ``target`` phase (hill climbing on that score) runs only with ``climb=True``: the
score depends on what ran before, not on the example alone, and measured on the reference engine (1,000
examples in two shards) the phase ran fewer distinct examples, reached fewer cells and made one shard cost up
to twice the other (docs/fuzz.md).

Each example runs in its own directory of one work directory per search; finished example directories are
removed by a background thread while the next example runs (removing a cache tree costs as much as a small
fetch on this file system).
"""

from __future__ import annotations

import contextlib
import pathlib
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings, target
from hypothesis import strategies as st

from pytest_fcp.contract import Verdict
from pytest_fcp.core.fuzz_profiles import PROFILES
from pytest_fcp.fuzz.database import database_key, shard_seed
from pytest_fcp.fuzz.save import render_scenario, save_scenario
from pytest_fcp.fuzz.strategies import scenarios
from pytest_fcp.scenarios.model import Scenario

#: The real clock of the budget: time-machine before 3.0 moves ``time.monotonic`` while a world travels (its
#: ``perf_counter`` stays real in every version).
_real_monotonic = time.perf_counter

__all__ = ["PROFILES", "CellsFn", "FuzzResult", "fuzz_engine", "run_once"]

#: What one run exercised: ``cells(scenario, run)`` -> the cells of the FCP space it reached (any hashables).
CellsFn = Callable[[Scenario, Any], Iterable[Hashable]]
#: How much more a new cell counts in the steering score when the catalog left it empty.
EMPTY_WEIGHT = 4


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
    shard: tuple[int, int] = (1, 1)  # (k, N): this search is shard k of N of the engine's budget
    replay: str = ""  # the command line that reruns exactly this search (set by the --fcp-fuzz item)
    cells: int = 0  # distinct cells the examples reached (with a ``cells`` function)
    empty_cells: int = 0  # of them, cells in ``empty`` (the cells the catalog left empty)

    @property
    def passed(self) -> bool:
        """Whether no counterexample was found."""
        return self.scenario is None

    @property
    def rate(self) -> float:
        """Examples per second during the search."""
        return self.generated / self.search_seconds if self.search_seconds else 0.0

    @property
    def where(self) -> str:
        """``seed S`` or ``seed S, shard k/N``."""
        k, n = self.shard
        return f"seed {self.seed}" + (f", shard {k}/{n}" if n > 1 else "")

    def report(self) -> str:
        """A failure report: seed, the shrunk scenario as TOML, its verdicts and decision path."""
        if self.scenario is None:
            return f"{self.engine}: {self.generated} examples passed ({self.rate:.1f}/s, {self.where})"
        k, n = self.shard
        again = f"--fcp-seed={self.seed}" + (f" --fcp-fuzz-shards={n} --fcp-fuzz-shard={k}" if n > 1 else "")
        lines = [
            f"{self.engine} breaks the FCP contract on a generated scenario "
            f"(shrunk; found after {self.generated} examples, {self.where}: replay with {again})",
            "verdicts:",
            *(f"  FAIL {v}" for v in self.verdicts),
            f"path: {self.path}",
            "scenario:",
            *("  " + line for line in render_scenario(self.scenario).splitlines()),
        ]
        if self.replay:
            lines.append(f"replay: {self.replay}")
        if self.saved is not None:
            lines.append(
                f"saved to {self.saved} (run it: pytest --fcp-scenarios --fcp-scenarios-dir {self.saved.parent})"
            )
        return "\n".join(lines)


def _remove(tmp: pathlib.Path) -> None:
    for path in tmp.rglob("*"):  # cache.unreadable / read_only_dir leave modes rmtree cannot pass
        with contextlib.suppress(OSError):
            path.chmod(0o700)
    shutil.rmtree(tmp, ignore_errors=True)


class _Sweeper:
    """A work directory whose finished example directories a background thread removes."""

    def __init__(self, parent: pathlib.Path | None) -> None:
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="fcp-fuzz-", dir=parent))
        self.count = 0
        self.queue: queue.SimpleQueue[pathlib.Path | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._work, name="fcp-fuzz-sweeper", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        while (path := self.queue.get()) is not None:
            _remove(path)

    def fresh(self) -> pathlib.Path:
        """A new, empty example directory."""
        self.count += 1
        path = self.root / str(self.count)
        path.mkdir()
        return path

    def close(self) -> None:
        """Wait for the queued removals, then remove the work directory itself."""
        self.queue.put(None)
        self.thread.join()
        _remove(self.root)


def run_once(
    scenario: Scenario, engine: str | Callable[..., Any], *, seed: int = 0, workdir: pathlib.Path | None = None
) -> tuple[list[Verdict], str]:
    """Run ``scenario`` on ``engine`` in a throw-away cache: ``(verdicts, decision path)``.

    The cache lives in a new directory under ``workdir`` (default: the system's temporary directory)."""
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="fcp-fuzz-", dir=workdir))
    try:
        verdicts, path, _ = _run_in(tmp, scenario, engine, seed, None)
        return verdicts, path
    finally:
        _remove(tmp)


def _run_in(
    tmp: pathlib.Path, scenario: Scenario, engine: str | Callable[..., Any], seed: int, cells: CellsFn | None
) -> tuple[list[Verdict], str, frozenset[Hashable]]:
    from pytest_fcp.scenarios.model import ScenarioError
    from pytest_fcp.scenarios.runner import run_scenario

    try:
        run = run_scenario(scenario, engine, tmp / "cache", seed=seed)
    except ScenarioError as exc:  # a setup this engine cannot be put in (cache.write_fails on a native writer)
        return [], f"refused: {exc.message}", frozenset()
    reached = frozenset(cells(scenario, run)) if cells is not None else frozenset()
    return list(run.verdicts), run.world.trace.path(), reached


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
    database: Any = None,
    shard: tuple[int, int] = (1, 1),
    search_seed: int | None = None,
    cells: CellsFn | None = None,
    workdir: pathlib.Path | None = None,
    judge: bool = True,
    empty: Collection[Hashable] = (),
    steer: bool = True,
    climb: bool = False,
) -> FuzzResult:
    """Run up to ``examples`` generated scenarios on ``engine``; shrink and report the first contract break.

    ``seed_value`` seeds the world's synthetic truth and Hypothesis (``search_seed``, when given, seeds
    Hypothesis instead: a shard's own seed), unless ``derandomize``. ``database``: a Hypothesis
    ``ExampleDatabase`` whose findings for this engine are replayed first and which keeps new ones.
    ``cells``: what a run exercised (see :data:`CellsFn`), counted in the result and, with ``steer``, steering
    the search (wider interval draws, ``target()``) towards cells not reached yet, ``empty`` ones first.
    ``workdir``: where the examples' caches live (default: the system's temporary directory).
    ``judge=False`` runs every example without failing on broken contracts (to measure speed).
    ``climb=True`` adds Hypothesis's ``target`` phase on the ``cells`` score (off by default: see the module doc).
    """
    from pytest_fcp.engines import load_engine

    label = name or (engine if isinstance(engine, str) else getattr(engine, "__name__", "engine"))
    factory = load_engine(engine) if isinstance(engine, str) else engine  # resolved once, not per example
    result = FuzzResult(label, seed_value, shard=shard)
    memo: dict[str, tuple[list[Verdict], str, frozenset[Hashable]]] = {}
    best: list[tuple[Scenario, list[Verdict], str]] = []
    seen: set[Hashable] = set()
    favoured = frozenset(empty)
    steering = steer and cells is not None
    started = _real_monotonic()
    state = {"first_failure": 0.0}
    sweeper = _Sweeper(workdir)

    def over_budget() -> bool:
        now = _real_monotonic()
        if best:
            return now - state["first_failure"] > shrink_budget
        return budget is not None and now - started > budget

    def prop(scenario: Scenario) -> None:
        key = render_scenario(scenario)
        if key not in memo:
            if over_budget():
                result.budget_hit = True
                return
            tmp = sweeper.fresh()
            try:
                memo[key] = _run_in(tmp, scenario, factory, seed_value, cells)
            finally:
                sweeper.queue.put(tmp)
            result.examples += 1
            if not best:
                result.generated += 1
        verdicts, path, reached = memo[key]
        if cells is not None:
            new = reached - seen
            if steering:
                target(float(len(new) + EMPTY_WEIGHT * len(new & favoured)), label="FCP cells not reached before")
            seen.update(reached)
        if verdicts and judge:
            if not best:
                state["first_failure"] = _real_monotonic()
                result.search_seconds = state["first_failure"] - started
            best.append((scenario, verdicts, path))
            raise _Broken("; ".join(map(str, verdicts)))

    if derandomize and database is not None:  # Hypothesis keeps no database when derandomized: a fixed seed
        derandomize, search_seed = False, shard_seed(0, *shard)
    test = given(strategy if strategy is not None else scenarios(wide=steering))(prop)
    if not derandomize:  # (before settings: seed() alone would turn the database off)
        test = seed(seed_value if search_seed is None else search_seed)(test)
    phases = [Phase.generate, Phase.shrink]
    if database is not None:
        phases.insert(0, Phase.reuse)
    if steering and climb:
        phases.insert(-1, Phase.target)
    test = settings(
        max_examples=max(1, examples),
        derandomize=derandomize,
        database=database,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        print_blob=False,
        phases=phases,
    )(test)
    test._hypothesis_internal_database_key = database_key(label)  # type: ignore[attr-defined]  # per engine
    try:
        test()
    except Exception:
        if not best:
            raise
    finally:
        sweeper.close()
    result.seconds = _real_monotonic() - started
    result.cells = len(seen)
    result.empty_cells = len(seen & favoured)
    if not best:
        result.search_seconds = result.seconds
        return result
    scenario, verdicts, path = best[-1]
    result.scenario, result.verdicts, result.path = scenario, verdicts, path
    if save_dir is not None:
        header = f"Shrunk fuzz counterexample: {label} broke the FCP contract ({result.where}).\n" + "\n".join(
            str(v) for v in verdicts
        )
        result.saved = save_scenario(scenario, save_dir, header=header)
    return result
