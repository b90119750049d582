"""``pytest --fcp-fuzz``: one property-test item per engine (generated scenarios, judged by the contract).

Each item runs up to ``--fcp-fuzz-examples`` generated scenarios (ini ``fcp_fuzz_examples``, default 100)
on its engine, within ``--fcp-fuzz-budget`` seconds (ini ``fcp_fuzz_budget``). Hypothesis is seeded with
the run's ``--fcp-seed`` (profile ``ci`` derandomizes instead: the same examples on every run). A contract
break fails the item with the shrunk scenario as TOML, its verdicts and decision path; with
``--fcp-fuzz-save DIR`` the scenario is saved there as a catalog file. Hypothesis loads when an item runs.

With ``--fcp-fuzz-shards N`` (default: the number of xdist workers) each engine gets N items,
``fcp_fuzz[<engine>:<k>/<N>]``, each running its share of the examples with its own seed (derived from the
run's seed and k), so pytest-xdist runs them in parallel; ``--fcp-fuzz-shard K`` keeps only shard K, which is
what a failure's replay line uses. Every item replays the findings kept in the example database
(``--fcp-fuzz-db``; see :mod:`pytest_fcp.fuzz.database`) before generating new scenarios.
"""

from __future__ import annotations

import pathlib
import shlex
import time
from typing import Any

import pytest

from pytest_fcp.plugin.fixtures import load_factory
from pytest_fcp.plugin.settings import ENGINE_NAME_KEY, RunSettings, settings

__all__ = ["FuzzFailed", "FuzzItem", "FuzzPlugin", "coverage_cells"]


class FuzzPlugin:
    """Adds one :class:`FuzzItem` per engine to the collected items and prints the ``FCP fuzz`` summary."""

    def __init__(self, run: RunSettings) -> None:
        self.run = run
        self.results: list[Any] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """Append the fuzz items: one per engine and shard."""
        n = self.run.fuzz.shards
        for engine in self.run.engines:
            for k in range(1, n + 1):
                if self.run.fuzz.only_shard not in (None, k):
                    continue
                name = f"fcp_fuzz[{engine}]" if n == 1 else f"fcp_fuzz[{engine}:{k}/{n}]"
                items.append(FuzzItem.from_parent(session, name=name, engine=engine, shard=(k, n)))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep each fuzz item's summary line (on the controller too: xdist ships ``user_properties``)."""
        if report.when == "call":
            self.results += [value for name, value in report.user_properties if name == "fcp_fuzz_summary"]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """The ``FCP fuzz`` section: one line per engine."""
        if not self.results:
            return
        terminalreporter.section("FCP fuzz")
        for line in self.results:
            terminalreporter.write_line(line)


def coverage_cells() -> Any:
    """What one fuzz run exercised, from the coverage map (``pytest_fcp.coverage``), or ``None`` without it.

    The search scores each example by the cells it reaches that no earlier example did (Hypothesis ``target``)."""
    try:
        from pytest_fcp.coverage import run_cells  # type: ignore[import-not-found, unused-ignore]
    except ImportError:  # a build without the coverage map: the search is not steered
        return None

    def cells(scenario: Any, run: Any) -> Any:
        return run_cells(run.world.spec, run.results)

    return cells


class FuzzFailed(Exception):
    """The search found a contract break: the report with the shrunk scenario."""


class FuzzItem(pytest.Item):
    """The property-based search on one engine."""

    fuzz_item = True

    def __init__(self, *, engine: str, shard: tuple[int, int] = (1, 1), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.engine = engine
        self.shard = shard
        self.add_marker(pytest.mark.fcp_fuzz)

    def runtest(self) -> None:
        """Search for a contract break; record the summary and rate; fail with the shrunk scenario."""
        from pytest_fcp.fuzz.database import shard_examples, shard_seed
        from pytest_fcp.fuzz.search import fuzz_engine

        run = settings(self.config)
        factory = load_factory(self.engine)  # skips an unavailable bundled engine, names any other
        self.stash[ENGINE_NAME_KEY] = self.engine
        k, n = self.shard
        self.user_properties.append(("fcp_fuzz_started", time.time()))  # wall clock: spans across xdist workers
        result = fuzz_engine(
            factory,
            examples=shard_examples(run.fuzz.examples, k, n),
            seed_value=run.seed,
            search_seed=shard_seed(run.seed, k, n),
            derandomize=run.fuzz.derandomize,
            budget=run.fuzz.budget,
            save_dir=run.fuzz.save_dir,
            name=self.engine,
            database=self._database(run),
            shard=self.shard,
            workdir=self._workdir(),
            cells=coverage_cells(),
            steer=run.fuzz.steer,
        )
        result.replay = self.replay_line(run)
        status = "passed" if result.passed else "FAILED"
        budget = " (budget reached)" if result.budget_hit else ""
        who = result.engine + (f" shard {k}/{n}" if n > 1 else "")
        summary = (
            f"{who}: {status}, {result.examples} scenarios in {result.seconds:.1f}s "
            f"({result.rate:.1f} examples/s during the search, {result.where}){budget}"
        )
        self.user_properties.append(("fcp_fuzz_cells", result.cells))
        self.user_properties.append(("fcp_fuzz_summary", summary))
        self.user_properties.append(("fcp_fuzz_examples", result.examples))
        self.user_properties.append(("fcp_fuzz_rate", round(result.rate, 2)))
        self.user_properties.append(("fcp_fuzz_seconds", round(result.seconds, 3)))
        self.user_properties.append(("fcp_fuzz_ended", time.time()))
        if not result.passed:
            raise FuzzFailed(result.report())

    def _database(self, run: RunSettings) -> Any:
        """The example database: the given one, or the directory ``fcp-fuzz`` in pytest's cache."""
        from pytest_fcp.fuzz.database import DEFAULT_DB_DIR, load_database

        if run.fuzz.db:
            return load_database(run.fuzz.db)
        cache = getattr(self.config, "cache", None)  # absent with -p no:cacheprovider
        folder = cache.mkdir(DEFAULT_DB_DIR) if cache is not None else run.rootdir / ".pytest_cache/d" / DEFAULT_DB_DIR
        return load_database(str(folder))

    def _workdir(self) -> pathlib.Path | None:
        """Where the examples' caches live: under pytest's base temporary directory (per xdist worker)."""
        factory = getattr(self.config, "_tmp_path_factory", None)
        return factory.getbasetemp() / "fcp-fuzz" if factory is not None else None

    def replay_line(self, run: RunSettings) -> str:
        """The command line that reruns exactly this item: launcher, seed, engine, fuzz options, shards, shard."""
        k, n = self.shard
        args = [*run.launcher, "--fcp-fuzz", f"--fcp-seed={run.seed}", *run.replay_options]
        args += [f"--fcp-engine={self.engine}", *run.fuzz_replay_options]
        if run.fuzz.db:
            args.append(f"--fcp-fuzz-db={run.fuzz.db}")
        if not run.fuzz.steer:
            args.append("--fcp-fuzz-steer=off")
        args.append(f"--fcp-fuzz-shards={n}")  # always: an addopts -n elsewhere would change the default
        if n > 1:
            args.append(f"--fcp-fuzz-shard={k}")
        return shlex.join(args)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """The search's report as is (no traceback)."""
        if isinstance(excinfo.value, FuzzFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)  # type: ignore[arg-type]

    def reportinfo(self) -> tuple[pathlib.Path, int, str]:
        """Where the item is, for pytest's report header line."""
        k, n = self.shard
        return self.path, 0, f"fcp fuzz [{self.engine}]" + (f" shard {k}/{n}" if n > 1 else "")
