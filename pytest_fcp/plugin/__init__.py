"""pytest-fcp's pytest plugin (the ``pytest11`` entry point ``fcp``): hooks, each a call into one part.

The parts: :mod:`~pytest_fcp.plugin.settings` (the run's settings, read once), ``options``, ``fixtures``
(marker, fixtures, engine parametrisation), ``reporting``, ``items`` and ``conformance`` (``--fcp-scenarios``),
``fuzz_items`` (``--fcp-fuzz``), ``html_report`` (``--fcp-html``) and ``xdist``. Importing this package imports
pytest and the standard library only; the simulated world, pyarrow, moto, respx and Hypothesis load when a test
or an option asks for them.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import Any

import pytest


def _leave_own_asserts_alone() -> None:
    """pytest rewrites the asserts of every module of a plugin's distribution. pytest-fcp's own modules hold no
    assert a test relies on (failures are reported through pytest.fail), and rewriting costs tens of
    milliseconds a module in every run and worker where Python may not cache bytecode
    (``PYTHONDONTWRITEBYTECODE``): so they are imported as written."""
    for finder in sys.meta_path:
        marked = getattr(finder, "_must_rewrite", None)
        if isinstance(marked, set) and "pytest_fcp" in marked:
            marked.discard("pytest_fcp")
            cache = getattr(finder, "_marked_for_rewrite_cache", None)
            if isinstance(cache, dict):
                cache.clear()


_leave_own_asserts_alone()

from pytest_fcp.plugin import fixtures, lean, options  # noqa: E402 - after opting out of rewriting
from pytest_fcp.plugin.fixtures import (  # noqa: E402
    fcp_baseline,
    fcp_crash,
    fcp_engine,
    fcp_engine_name,
    fcp_trace,
    fcp_world,
)
from pytest_fcp.plugin.settings import SETTINGS_KEY, RunSettings, build_settings, header_line, settings  # noqa: E402

__all__ = [
    "fcp_baseline",
    "fcp_crash",
    "fcp_engine",
    "fcp_engine_name",
    "fcp_trace",
    "fcp_world",
    "pytest_addoption",
    "pytest_configure",
    "pytest_generate_tests",
    "pytest_load_initial_conftests",
    "pytest_report_header",
    "pytest_runtest_call",
    "pytest_sessionfinish",
    "settings",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register pytest-fcp's options and ini keys."""
    options.addoption(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Correct the rootdir if pytest took an ``--fcp-* DIR`` option's value for a test path."""
    from pytest_fcp.plugin.replay import fix_rootdir

    fix_rootdir(early_config)


def pytest_configure(config: pytest.Config) -> None:
    """Build the run's settings once, decide what to collect, and register the parts this run needs."""
    _register_parts(config, _store(config, build_settings(config)))


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The seed (with its replay option), the engines and where traces go: in a run given an ``--fcp-*`` option
    (any other run that tests an engine says it in its summary, see ``Reporter``)."""
    run = settings(config)
    return [header_line(run)] if run.announced else []


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise tests that use ``fcp_engine_name`` over the run's engines."""
    fixtures.parametrize_engines(metafunc)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Reseed ``random`` for a pytest-fcp test (the engine's retry jitter replays with the seed); others keep it."""
    fixtures.reseed(item)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """With ``--fcp-lean``, set aside Hypothesis's plugin when its summary would be empty (see
    :mod:`~pytest_fcp.plugin.lean`)."""
    run = settings(session.config)
    if run.lean and run.scenarios:
        lean.set_aside_idle_hypothesis(session.config)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    """Fail a test whose engine left the simulated world."""
    return (yield from fixtures.after_call(item))


# --- wiring --------------------------------------------------------------------------------------------
def _store(config: pytest.Config, run: RunSettings) -> RunSettings:
    config.stash[SETTINGS_KEY] = run
    return run


def _register_parts(config: pytest.Config, run: RunSettings) -> None:
    from pytest_fcp.plugin.reporting import Reporter
    from pytest_fcp.plugin.user_baselines import UserBaselines

    config.addinivalue_line("markers", fixtures.MARKER_DOC)
    if run.lean:
        lean.skip_final_collections(scenarios=run.scenarios or run.fuzz.enabled)
    args = run.collection_args()
    if args is not None:  # the one place that decides what a --fcp-scenarios / --fcp-fuzz run collects
        config.args[:] = args
    manager = config.pluginmanager
    if manager.hasplugin("xdist"):
        from pytest_fcp.plugin.xdist import XdistHooks

        manager.register(XdistHooks(), "fcp-xdist")
    manager.register(Reporter(config, run), "fcp-reporter")
    manager.register(UserBaselines(run), "fcp-user-baselines")
    if run.html is not None:
        from pytest_fcp.plugin.html_report import HtmlReport

        manager.register(HtmlReport(config, run), "fcp-html")
    if run.coverage:
        from pytest_fcp.plugin.coverage import CoverageReport

        manager.register(CoverageReport(run), "fcp-coverage")
    from pytest_fcp.plugin.isolation import apply_budget

    apply_budget(run.isolation)
    if run.isolation.mode == "fork" and (run.scenarios or run.fuzz.enabled):
        from pytest_fcp.plugin.isolated_items import Isolation

        manager.register(Isolation(run.engines, run.isolation, run.fuzz.enabled), "fcp-isolation")
    if run.fuzz.enabled:
        from pytest_fcp.plugin.fuzz_items import FuzzPlugin

        manager.register(FuzzPlugin(run), "fcp-fuzz")
        config.addinivalue_line("markers", "fcp_fuzz: a property-based FCP fuzz item")
    if run.scenarios:
        from pytest_fcp.plugin.conformance import Conformance
        from pytest_fcp.plugin.items import COLLECTOR_NAME, ScenarioCollector

        collector = ScenarioCollector(run)
        manager.register(collector, COLLECTOR_NAME)
        manager.register(Conformance(run, collector.baselines), "fcp-conformance")
        config.addinivalue_line("markers", "fcp_scenario: an item generated from an FCP scenario file")
