"""The isolation settings: ``--fcp-isolation fork|off``, ``--fcp-hang-seconds``, ``--fcp-item-seconds`` and the
fetch budget ``--fcp-max-requests`` / ``--fcp-max-sleep``, read and checked once (a leaf below ``settings``).

The plugin that runs items in the fork server is :mod:`~pytest_fcp.plugin.isolated_items`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_fcp.core.limits import DEFAULT_HANG_SECONDS, DEFAULT_ITEM_SECONDS, MAX_FETCH_REQUESTS, MAX_FETCH_SLEEP_S
from pytest_fcp.plugin.invocation import number, usage

__all__ = ["MODES", "IsolationSettings", "apply_budget", "budget_replay_options", "default_mode", "isolation_settings"]

MODES = ("fork", "off")


def default_mode() -> str:
    """``fork`` on Linux; ``off`` where fork is missing (Windows) or not the safe default (macOS: system
    frameworks are not fork-safe once threads ran, and Python's own default start method there is spawn)."""
    return "fork" if hasattr(os, "fork") and sys.platform.startswith("linux") else "off"


@dataclass(frozen=True)
class IsolationSettings:
    """How scenario and fuzz items are isolated, and the bounds on a fetch and an isolated item."""

    mode: str = "off"
    hang_seconds: float = DEFAULT_HANG_SECONDS
    item_seconds: float = DEFAULT_ITEM_SECONDS
    max_requests: int = MAX_FETCH_REQUESTS
    max_sleep: float = MAX_FETCH_SLEEP_S


def _value(config: pytest.Config, dest: str) -> tuple[Any, str]:
    """The option's value (named by its flag) or the ini key's (named ``ini fcp_...``), or ``None``."""
    given = config.getoption(dest, None)
    if given is not None:
        return given, "--" + dest.replace("_", "-")
    ini = str(config.getini(dest) or "").strip()
    return (ini or None), f"ini {dest}"


def _positive(config: pytest.Config, dest: str, kind: type[int] | type[float], default: float) -> Any:
    raw, where = _value(config, dest)
    if raw is None:
        return default
    unit = "a whole number" if kind is int else "a number of seconds"
    message = f"{where} {raw}: must be {unit} greater than 0"
    value = number(raw, kind, message)
    if value <= 0:
        raise usage(message)
    return value


def isolation_settings(config: pytest.Config) -> IsolationSettings:
    """Read and check the isolation options and ini keys; a bad value is one clear usage error."""
    raw, where = _value(config, "fcp_isolation")
    mode = default_mode() if raw is None else str(raw).strip().lower()
    if mode not in MODES:
        raise usage(f"{where} {raw}: allowed: {' or '.join(MODES)}")
    if mode == "fork" and not hasattr(os, "fork"):
        raise usage(f"{where} fork: this platform ({sys.platform}) has no os.fork; use --fcp-isolation off")
    return IsolationSettings(
        mode=mode,
        hang_seconds=_positive(config, "fcp_hang_seconds", float, DEFAULT_HANG_SECONDS),
        item_seconds=_positive(config, "fcp_item_seconds", float, DEFAULT_ITEM_SECONDS),
        max_requests=_positive(config, "fcp_max_requests", int, MAX_FETCH_REQUESTS),
        max_sleep=_positive(config, "fcp_max_sleep", float, MAX_FETCH_SLEEP_S),
    )


def apply_budget(settings: IsolationSettings) -> None:
    """Give the run's worlds a fetch budget other than the default (only then is the world's module loaded)."""
    if (settings.max_requests, settings.max_sleep) != (MAX_FETCH_REQUESTS, MAX_FETCH_SLEEP_S):
        from pytest_fcp.world.budget import FetchBudget, set_fetch_budget

        set_fetch_budget(FetchBudget(settings.max_requests, settings.max_sleep))


def budget_replay_options(settings: IsolationSettings) -> tuple[str, ...]:
    """The fetch budget's options a replay line repeats (it changes verdicts): only those off their default."""
    out = []
    if settings.max_requests != MAX_FETCH_REQUESTS:
        out.append(f"--fcp-max-requests={settings.max_requests}")
    if settings.max_sleep != MAX_FETCH_SLEEP_S:
        out.append(f"--fcp-max-sleep={settings.max_sleep:g}")
    return tuple(out)
