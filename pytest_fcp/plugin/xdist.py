"""pytest-xdist support: the controller hands its seed to every worker (registered only when xdist is present)."""

from __future__ import annotations

from typing import Any

from pytest_fcp.plugin.settings import settings

__all__ = ["XdistHooks"]


class XdistHooks:
    """Hooks of pytest-xdist's own: registered only when pytest-xdist is installed and active."""

    def pytest_configure_node(self, node: Any) -> None:
        """Put the controller's seed in the worker's input (its settings read it from there)."""
        node.workerinput["fcp_seed"] = settings(node.config).seed
