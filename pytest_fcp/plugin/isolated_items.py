"""The pytest plugin of ``--fcp-isolation fork``: scenario and fuzz items run in the process's fork server.

:class:`Isolation` hands each scenario and fuzz item to the :class:`~pytest_fcp.plugin.forkserver.ForkServer`
and calls pytest's logstart / logreport / logfinish hooks with what comes back, or with the reports
:mod:`~pytest_fcp.plugin.deaths` makes of a death. Other tests run in-process: their fixtures may live for the
whole session (a session fixture set up in a child would be set up again in every child and torn down in the
wrong process) and they may share state with the tests around them; a scenario or fuzz item owns its world.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_fcp.plugin.isolation import IsolationSettings

__all__ = ["Isolation", "isolated"]


def isolated(item: pytest.Item) -> bool:
    """Whether ``item`` runs in the fork server: a scenario item or a fuzz item."""
    return item.get_closest_marker("fcp_scenario") is not None or bool(getattr(item, "fuzz_item", False))


class Isolation:
    """Runs scenario and fuzz items in this process's fork server (registered with ``--fcp-isolation fork``)."""

    def __init__(self, engines: tuple[str, ...], settings: IsolationSettings, fuzz: bool) -> None:
        self.engines, self.settings, self.fuzz = engines, settings, fuzz
        self.server: Any = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
        """Run an isolated item in the child; report what it sent back, or its death."""
        if not isolated(item) or item.config.getoption("usepdb", False) or item.config.getoption("trace", False):
            return None  # a debugger needs the terminal: --pdb and --trace run every item in-process
        from pytest_fcp.plugin.deaths import death_reports
        from pytest_fcp.plugin.forkserver import Death, ForkServer

        if self.server is None:
            self._prepare()
            self.server = ForkServer(item.session, self.settings.hang_seconds, self.settings.item_seconds)
        hook = item.ihook
        hook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        result = self.server.run(item, nextitem)
        reports = death_reports(item, result) if isinstance(result, Death) else result
        for report in reports:
            hook.pytest_runtest_logreport(report=report)
        hook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    def _prepare(self) -> None:
        """Import, once in this process, what every child would otherwise import again after each death."""
        import importlib

        from pytest_fcp.engines import EngineLoadError, load_engine

        for module in ("moto", "pytest_fcp.scenarios.runner", "pytest_fcp.baseline", "pytest_fcp.scenarios.decisions"):
            importlib.import_module(module)
        if self.fuzz:
            importlib.import_module("pytest_fcp.fuzz.search")
        for engine in self.engines:
            try:
                load_engine(engine)
            except EngineLoadError:
                continue  # the item skips or fails with the loader's words, in the child

    def pytest_sessionfinish(self) -> None:
        """Let the idle child go."""
        if self.server is not None:
            self.server.stop()
