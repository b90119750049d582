"""Checks across fetches that ran together on one cache: what no single fetch's verdicts can see.

* **lost update**: a day whose file holds fewer bars afterwards than the instances fetched for it together:
  two writers each saved what they had, and the last one's rows won (ckvd's partial-day saves do this).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pytest_fcp.contract.verdict import Verdict

if TYPE_CHECKING:
    from pytest_fcp.world.observation import Observation

__all__ = ["GROUP_CHECKS", "judge_group"]


def check_lost_update(observations: Sequence[Observation]) -> list[Verdict]:
    """No day's file keeps fewer bars than the instances running together fetched for it and wrote."""
    together = [o for o in observations if o.together > 1]
    fetched: dict[dt.date, set[int]] = {}
    after = {}
    for obs in together:
        for day, state in obs.cache_after.items():
            after[day] = state
        for day, times in _times_by_day(obs).items():
            fetched.setdefault(day, set()).update(times)
    out = []
    for day, state in sorted(after.items()):
        wanted = len(fetched.get(day, ()))
        if state.status == "partial" and 0 < state.rows < wanted:
            reason = (  # how many bars survive is the timing's: the key names the loss, not the count
                f"{day}: the cache kept only some of the {wanted} bars the instances fetched together "
                "(each saved what it had; the last writer's rows won)"
            )
            out.append(Verdict("cache", reason))
    return out


def _times_by_day(obs: Observation) -> dict[dt.date, set[int]]:
    """The distinct open times (ms) a fetch returned, per UTC day (none when it raised or has no times)."""
    if obs.table is None:
        return {}
    try:
        null, ms = obs.open_times()
    except Exception:  # no usable open_time: the fetch's own verdicts say so
        return {}
    out: dict[dt.date, set[int]] = {}
    for value in ms[~null].tolist():
        out.setdefault(dt.date(1970, 1, 1) + dt.timedelta(milliseconds=value), set()).add(value)
    return out


#: The checks across a group of fetches, by name.
GROUP_CHECKS: dict[str, Callable[[Sequence[Observation]], list[Verdict]]] = {"lost_update": check_lost_update}


def judge_group(observations: Sequence[Observation]) -> list[Verdict]:
    """Apply the checks across fetches that ran together (none when no fetch did)."""
    return [v for check in GROUP_CHECKS.values() for v in check(observations)]
