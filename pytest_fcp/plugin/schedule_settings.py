"""The run's ``--fcp-schedule*`` settings: how many interleavings each scenario whose engine instances run
together is tried under, which one alone (a replay), and the strategy that picks them (a leaf below ``settings``)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pytest_fcp.core.schedules import DEFAULT_STRATEGY, STRATEGIES
from pytest_fcp.plugin.invocation import number, usage

__all__ = ["MAX_SCHEDULES", "ScheduleSettings", "schedule_settings"]

#: The most schedules one scenario may be tried under in one run.
MAX_SCHEDULES = 1000


@dataclass(frozen=True)
class ScheduleSettings:
    """``--fcp-schedules K`` (schedules 1..K), ``--fcp-schedule N`` (that one alone) and the strategy."""

    count: int = 1
    only: int | None = None
    strategy: str = DEFAULT_STRATEGY

    @property
    def numbers(self) -> tuple[int, ...]:
        """The schedules each such scenario runs under."""
        return (self.only,) if self.only is not None else tuple(range(1, self.count + 1))

    def replay(self, schedule: int) -> list[str]:
        """The options that rerun exactly ``schedule``."""
        out = [f"--fcp-schedule={schedule}"]
        if self.strategy != DEFAULT_STRATEGY:
            out.append(f"--fcp-schedule-strategy={self.strategy}")
        return out


def _count(text: object, option: str) -> int:
    value = number(text, int, f"{option} {text!r} is not a whole number; give 1 to {MAX_SCHEDULES}")
    if not 1 <= value <= MAX_SCHEDULES:
        raise usage(f"{option} {value} is out of range; give 1 to {MAX_SCHEDULES}")
    return int(value)


def schedule_settings(config: pytest.Config) -> ScheduleSettings:
    """``--fcp-schedules``, ``--fcp-schedule`` and ``--fcp-schedule-strategy`` (and their ini keys), checked."""
    count_text = config.getoption("fcp_schedules", None) or config.getini("fcp_schedules") or "1"
    count = _count(count_text, "--fcp-schedules")
    only_text = config.getoption("fcp_schedule", None)
    only = _count(only_text, "--fcp-schedule") if only_text is not None else None
    strategy = (
        config.getoption("fcp_schedule_strategy", None) or config.getini("fcp_schedule_strategy") or DEFAULT_STRATEGY
    )
    if strategy not in STRATEGIES:
        raise usage(f"--fcp-schedule-strategy {strategy!r} is not a strategy; use one of {', '.join(STRATEGIES)}")
    return ScheduleSettings(count, only, strategy)
