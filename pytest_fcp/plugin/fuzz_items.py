"""``pytest --fcp-fuzz``: one property-test item per engine (generated scenarios, judged by the contract).

Each item runs up to ``--fcp-fuzz-examples`` generated scenarios (ini ``fcp_fuzz_examples``, default 100)
on its engine, within ``--fcp-fuzz-budget`` seconds (ini ``fcp_fuzz_budget``). Hypothesis is seeded with
the run's ``--fcp-seed`` (profile ``ci`` derandomizes instead: the same examples on every run). A contract
break fails the item with the shrunk scenario as TOML, its verdicts and decision path; with
``--fcp-fuzz-save DIR`` the scenario is saved there as a catalog file. Hypothesis loads when an item runs.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from pytest_fcp.plugin.fixtures import load_factory
from pytest_fcp.plugin.settings import ENGINE_NAME_KEY, RunSettings, settings

__all__ = ["FuzzFailed", "FuzzItem", "FuzzPlugin"]


class FuzzPlugin:
    """Adds one :class:`FuzzItem` per engine to the collected items and prints the ``FCP fuzz`` summary."""

    def __init__(self, run: RunSettings) -> None:
        self.run = run
        self.results: list[Any] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """Append the fuzz items, one per engine."""
        for engine in self.run.engines:
            items.append(FuzzItem.from_parent(session, name=f"fcp_fuzz[{engine}]", engine=engine))

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


class FuzzFailed(Exception):
    """The search found a contract break: the report with the shrunk scenario."""


class FuzzItem(pytest.Item):
    """The property-based search on one engine."""

    def __init__(self, *, engine: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.engine = engine
        self.add_marker(pytest.mark.fcp_fuzz)

    def runtest(self) -> None:
        """Search for a contract break; record the summary and rate; fail with the shrunk scenario."""
        from pytest_fcp.fuzz.search import fuzz_engine

        run = settings(self.config)
        factory = load_factory(self.engine)  # skips an unavailable bundled engine, names any other
        self.stash[ENGINE_NAME_KEY] = self.engine
        result = fuzz_engine(
            factory,
            examples=run.fuzz.examples,
            seed_value=run.seed,
            derandomize=run.fuzz.derandomize,
            budget=run.fuzz.budget,
            save_dir=run.fuzz.save_dir,
            name=self.engine,
        )
        status = "passed" if result.passed else "FAILED"
        budget = " (budget reached)" if result.budget_hit else ""
        summary = (
            f"{result.engine}: {status}, {result.examples} scenarios in {result.seconds:.1f}s "
            f"({result.rate:.1f} examples/s during the search, seed {result.seed}){budget}"
        )
        self.user_properties.append(("fcp_fuzz_summary", summary))
        self.user_properties.append(("fcp_fuzz_examples", result.examples))
        self.user_properties.append(("fcp_fuzz_rate", round(result.rate, 2)))
        if not result.passed:
            raise FuzzFailed(result.report())

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """The search's report as is (no traceback)."""
        if isinstance(excinfo.value, FuzzFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)  # type: ignore[arg-type]

    def reportinfo(self) -> tuple[pathlib.Path, int, str]:
        """Where the item is, for pytest's report header line."""
        return self.path, 0, f"fcp fuzz [{self.engine}]"
