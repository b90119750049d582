"""Contract verdicts: what the FCP contract requires of a fetch, and nothing an honest engine may do
differently. Pure functions over an :class:`~pytest_fcp.world.observation.Observation`: nothing here starts
or reads a live world.

:func:`plan` (the oracle) decides for every needed day which sources may serve it and whether it can be
had; :func:`judge` runs the registered checks (:data:`CHECKS`, one small function each) and returns one
:class:`Verdict` per failed check.

Latitude granted to every correct engine: retry transient errors or not; on 429/418 raise RateLimitError or
wait >= Retry-After and retry; ask for the zip or the .CHECKSUM first; cache complete old days that came
from REST or not; treat an empty REST page as no data.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pytest_fcp.contract.checks import CHECKS
from pytest_fcp.contract.group import GROUP_CHECKS, judge_group
from pytest_fcp.contract.oracle import DayPlan, plan
from pytest_fcp.contract.verdict import Case, Verdict

if TYPE_CHECKING:
    from pytest_fcp.world.observation import Observation
    from pytest_fcp.world.spec import WorldSpec

__all__ = ["CHECKS", "GROUP_CHECKS", "Case", "DayPlan", "Verdict", "judge", "judge_group", "plan"]


def judge(spec: WorldSpec, obs: Observation, *, skip: Iterable[str] = ()) -> list[Verdict]:
    """Apply the default checks to one fetch; an empty list means the contract was kept."""
    skipped = set(skip)
    case = Case(spec, obs, plan(spec, obs))
    verdicts: list[Verdict] = []
    for name, check in CHECKS.items():
        if name not in skipped:
            verdicts.extend(check(case))
    return verdicts
