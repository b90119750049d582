"""A verdict (one failed check, with a one-line reason) and the case every check reads."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_fcp.contract.oracle import DayPlan
    from pytest_fcp.world.observation import Observation
    from pytest_fcp.world.spec import WorldSpec

__all__ = ["Case", "Verdict"]


@dataclass(frozen=True)
class Verdict:
    """One failed check: its name and why (``at``: which fetch of several, e.g. a crash point, when it matters)."""

    check: str
    reason: str
    at: str = ""

    def __str__(self) -> str:
        return f"{self.at}: [{self.check}] {self.reason}" if self.at else f"[{self.check}] {self.reason}"


@dataclass(frozen=True)
class Case:
    """What every check reads: the world's spec, the observation of one fetch and the oracle's plan."""

    spec: WorldSpec
    obs: Observation
    plans: dict[dt.date, DayPlan]
