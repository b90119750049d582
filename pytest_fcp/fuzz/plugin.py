"""``pytest --fcp-fuzz``: one property-test item per engine (generated scenarios, judged by the contract).

Wiring: :func:`addoption` and :func:`configure` are called from :mod:`pytest_fcp.plugin`'s
``pytest_addoption`` / ``pytest_configure``. Standalone (``-p pytest_fcp.fuzz.plugin``) this module's own
``pytest_addoption`` / ``pytest_configure`` hooks do the same; they stand aside when the main plugin has
already registered the options.

Each item runs up to ``--fcp-fuzz-examples`` generated scenarios (ini ``fcp_fuzz_examples``, default 100)
on its engine, within ``--fcp-fuzz-budget`` seconds (ini ``fcp_fuzz_budget``). Hypothesis is seeded with
the run's ``--fcp-seed`` (profile ``ci`` derandomizes instead: the same examples on every run). A contract
break fails the item with the shrunk scenario as TOML, its verdicts and decision path; with
``--fcp-fuzz-save DIR`` the scenario is saved there as a catalog file.
"""

from __future__ import annotations

import contextlib
import pathlib
from typing import Any

import pytest

__all__ = ["FuzzItem", "FuzzPlugin", "addoption", "configure"]

DEFAULT_EXAMPLES = 100
_REGISTERED = "fcp-fuzz"


def addoption(parser: pytest.Parser) -> None:
    """Register the ``--fcp-fuzz*`` options and ini keys (call from ``pytest_addoption``)."""
    group = parser.getgroup("fcp", "pytest-fcp (Failover Control Protocol harness)")
    group.addoption(
        "--fcp-fuzz",
        action="store_true",
        dest="fcp_fuzz",
        help="add one property-based test per engine: generated fault schedules judged by the FCP contract",
    )
    group.addoption(
        "--fcp-fuzz-examples",
        type=int,
        dest="fcp_fuzz_examples",
        metavar="N",
        help=f"generated scenarios per engine (default: ini fcp_fuzz_examples, else {DEFAULT_EXAMPLES})",
    )
    parser.addini("fcp_fuzz_examples", default=str(DEFAULT_EXAMPLES), help="generated scenarios per engine")
    group.addoption(
        "--fcp-fuzz-budget",
        type=float,
        dest="fcp_fuzz_budget",
        metavar="SECONDS",
        help="wall-time budget of the search per engine (default: ini fcp_fuzz_budget, else the profile's)",
    )
    parser.addini("fcp_fuzz_budget", default="", help="wall-time budget of the fuzz search per engine (s)")
    group.addoption(
        "--fcp-fuzz-save",
        dest="fcp_fuzz_save",
        metavar="DIR",
        help="save each shrunk counterexample as a scenario TOML file in DIR",
    )
    group.addoption(
        "--fcp-fuzz-profile",
        dest="fcp_fuzz_profile",
        choices=("ci", "deep"),
        default=None,
        help="ci: derandomized and bounded (120 s budget); deep: 10x the examples, seeded by --fcp-seed",
    )


def configure(config: pytest.Config) -> None:
    """Register the fuzz items when ``--fcp-fuzz`` is given (call from ``pytest_configure``)."""
    if not config.getoption("fcp_fuzz", False) or config.pluginmanager.has_plugin(_REGISTERED):
        return
    config.pluginmanager.register(FuzzPlugin(config), _REGISTERED)
    config.addinivalue_line("markers", "fcp_fuzz: a property-based FCP fuzz item")


# --- standalone hooks (``-p pytest_fcp.fuzz.plugin``) ------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    with contextlib.suppress(ValueError):  # already registered by the main plugin
        addoption(parser)


def pytest_configure(config: pytest.Config) -> None:
    configure(config)


# --- settings ----------------------------------------------------------------------------------------------
def fuzz_settings(config: pytest.Config) -> dict[str, Any]:
    """examples, budget, derandomize, save_dir and seed for this run, from options, ini and profile."""
    from pytest_fcp.fuzz.runner import PROFILES
    from pytest_fcp.plugin import SEED_KEY

    profile = PROFILES.get(config.getoption("fcp_fuzz_profile", None) or "", {})
    examples = config.getoption("fcp_fuzz_examples", None)
    if examples is None:
        try:
            examples = int(config.getini("fcp_fuzz_examples") or DEFAULT_EXAMPLES)
        except ValueError:
            raise pytest.UsageError("pytest-fcp: ini fcp_fuzz_examples must be a whole number") from None
    examples = max(1, round(examples * profile.get("examples_factor", 1.0)))
    budget = config.getoption("fcp_fuzz_budget", None)
    if budget is None and config.getini("fcp_fuzz_budget"):
        try:
            budget = float(config.getini("fcp_fuzz_budget"))
        except ValueError:
            raise pytest.UsageError("pytest-fcp: ini fcp_fuzz_budget must be a number of seconds") from None
    if budget is None:
        budget = profile.get("budget")
    save = config.getoption("fcp_fuzz_save", None)
    return {
        "examples": examples,
        "budget": budget,
        "derandomize": bool(profile.get("derandomize", False)),
        "save_dir": pathlib.Path(save) if save else None,
        "seed": config.stash[SEED_KEY],
    }


class FuzzPlugin:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results: list[Any] = []
        explicit = config.args_source == pytest.Config.ArgsSource.ARGS
        if not explicit and not config.getoption("fcp_scenarios", False):
            config.args[:] = []  # no paths given: run the fuzz items only

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        from pytest_fcp.plugin import engine_names

        for engine in engine_names(config):
            items.append(FuzzItem.from_parent(session, name=f"fcp_fuzz[{engine}]", engine=engine))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # on the controller too (pytest-xdist ships user_properties with each report)
        if report.when == "call":
            self.results += [value for name, value in report.user_properties if name == "fcp_fuzz_summary"]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.results:
            return
        terminalreporter.section("FCP fuzz")
        for line in self.results:
            terminalreporter.write_line(line)


class FuzzFailed(Exception):
    pass


class FuzzItem(pytest.Item):
    def __init__(self, *, engine: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.engine = engine
        self.add_marker(pytest.mark.fcp_fuzz)

    def runtest(self) -> None:
        from pytest_fcp.fuzz.runner import fuzz_engine
        from pytest_fcp.plugin import ENGINE_NAME_KEY, load_factory

        options = fuzz_settings(self.config)
        factory = load_factory(self.engine)  # skips an unavailable bundled engine, names any other
        self.stash[ENGINE_NAME_KEY] = self.engine
        result = fuzz_engine(
            factory,
            examples=options["examples"],
            seed_value=options["seed"],
            derandomize=options["derandomize"],
            budget=options["budget"],
            save_dir=options["save_dir"],
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
        if isinstance(excinfo.value, FuzzFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)  # type: ignore[arg-type]

    def reportinfo(self) -> tuple[pathlib.Path, int, str]:
        return self.path, 0, f"fcp fuzz [{self.engine}]"
