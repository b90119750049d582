"""pytest-xdist support: the controller hands its seed and launcher to every worker (registered with xdist)."""

from __future__ import annotations

from typing import Any

from pytest_fcp.plugin.settings import settings

__all__ = ["XdistHooks"]


class XdistHooks:
    """Hooks of pytest-xdist's own: registered only when pytest-xdist is installed and active."""

    def pytest_configure_node(self, node: Any) -> None:
        """Put the controller's seed and launcher in the worker's input (its settings read them from there)."""
        run = settings(node.config)
        node.workerinput["fcp_seed"] = run.seed
        node.workerinput["fcp_launcher"] = list(run.launcher)
