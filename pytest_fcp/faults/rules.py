"""Setups that contradict themselves or test nothing: one set of rules for scenario files and the marker.

A world's setup is its series, its "now", its pre-cached days and its faults. :func:`setup_conflicts` finds
where one part undoes another (a cached day that a cache fault also breaks, two cache faults on one file, a
fault that an earlier fault always answers for); :func:`unreached` finds, given the requests a scenario
makes, the faults and cached days no request reaches. Each finding is a :class:`Conflict` naming the field
(``cached[0]``, ``faults[2].days``) and saying why; the TOML validator turns it into a collection error,
the marker into a one-line failure of its test.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_fcp.core.freshness import day_end, is_old
from pytest_fcp.core.markets import default_symbol
from pytest_fcp.faults.schedule import Fault

__all__ = ["Conflict", "Series", "cache_fault_series", "setup_conflicts", "unreached"]

#: (symbol, market, interval)
Series = tuple[str, str, str]


@dataclass(frozen=True)
class Conflict:
    """One refused part of a setup: the ``field`` it is in and why."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    def at(self, index: int) -> Conflict:
        """This conflict, its field under ``faults[index]``."""
        return Conflict(f"faults[{index}]{self.field}", self.message)


def cache_fault_series(item: Fault, world: Series) -> Series:
    """The series whose files a per-day cache fault breaks: its own scope, else the world's series (a fault
    naming another market and no symbol means that market's usual symbol, as a request would)."""
    symbol, market, interval = world
    if item.market is not None and item.market != market:
        market, symbol = item.market, default_symbol(item.market)
    return (item.symbol or symbol, market, item.interval or interval)


def _covers(first: Fault, second: Fault) -> bool:
    """Whether ``first`` fires on every attempt of every request ``second`` could fire on."""
    if first.source != second.source or first.attempts.recovers:
        return False
    if not set(second.kind.objects) <= set(first.kind.objects):
        return False
    for name in ("market", "symbol", "interval", "door"):
        if getattr(first, name) is not None and getattr(first, name) != getattr(second, name):
            return False
    return first.days is None or (second.days is not None and set(second.days) <= set(first.days))


def _same_file(item: Fault, series: Series, days: Sequence[dt.date] | None = None) -> Conflict | None:
    """A ``vision.wrong_symbol`` / ``wrong_interval`` whose ``other`` is the very series it would hit (on one of
    ``days``; ``None``: on any day)."""
    swap = item.kind.effect.swap
    if days is None:
        days = item.days or (dt.date.min,)
    if not swap or not any(item.in_scope(series[1], series[0], series[2], d) for d in days):
        return None
    mine = series[0] if swap == "symbol" else series[2]
    if item.param("other") != mine:
        return None
    return Conflict(
        ".other",
        f"{mine!r} is the {swap} asked for: the swapped file is the right one, so the fault would change nothing "
        f"(and the day would be judged lost); name another {swap}",
    )


def setup_conflicts(
    faults: Sequence[Fault], cached: Sequence[dt.date], series: Series, now: dt.datetime
) -> list[Conflict]:
    """Where the setup undoes itself (module docstring); empty when it is consistent."""
    out: list[Conflict] = []
    for i, day in enumerate(cached):
        if day_end(day) > now:
            out.append(
                Conflict(
                    f"cached[{i}]",
                    f"{day} has not ended by now ({now.isoformat()}): a cached day is a whole day's file; "
                    "cache only days that ended before now",
                )
            )
    seen: dict[tuple[Series, dt.date], int] = {}
    whole_dir: int | None = None
    for j, item in enumerate(faults):
        if item.source != "cache":
            continue
        if not item.kind.needs_days:
            if whole_dir is not None:
                out.append(
                    Conflict(
                        f"faults[{j}]",
                        f"{item.id} and faults[{whole_dir}] ({faults[whole_dir].id}) both make every cache write "
                        "fail; the first would decide the error the engine sees: keep one",
                    )
                )
            else:
                whole_dir = j
            continue
        target = cache_fault_series(item, series)
        for day in item.days or ():
            earlier = seen.get((target, day))
            if earlier is not None:
                out.append(
                    Conflict(
                        f"faults[{j}].days",
                        f"{day} already has faults[{earlier}] ({faults[earlier].id}): a day's file holds one state, "
                        f"so {item.id} would overwrite it; one cache fault per day",
                    )
                )
            else:
                seen[target, day] = j
    for i, day in enumerate(cached):
        earlier = seen.get((series, day))
        if earlier is not None:
            out.append(
                Conflict(
                    f"cached[{i}]",
                    f"{day} is also broken by faults[{earlier}] ({faults[earlier].id}): a cached day is a valid file, "
                    "the fault a broken one, and one would overwrite the other; list the day in one of them",
                )
            )
    for j, item in enumerate(faults):
        if item.source == "cache":
            continue
        same = _same_file(item, series)
        if same is not None:
            out.append(same.at(j))
        for i in range(j):
            if _covers(faults[i], item):
                out.append(
                    Conflict(
                        f"faults[{j}]",
                        f"{item.id} never fires: faults[{i}] ({faults[i].id}, every attempt) answers every request "
                        "it would (the first fault in scope answers); narrow the earlier fault's days, attempts or "
                        "scope, or drop this one",
                    )
                )
                break
    return out


def unreached(
    faults: Sequence[Fault],
    cached: Sequence[dt.date],
    series: Series,
    requests: Sequence[tuple[Series, Sequence[dt.date], dt.datetime]],
) -> list[Conflict]:
    """Faults and cached days no request reaches: ``requests`` are ``(series, days, now at that fetch)``."""
    days = sorted({d for _s, ds, _n in requests for d in ds})
    span = f"{days[0]}..{days[-1]}" if days else "no day"
    out: list[Conflict] = []
    for j, item in enumerate(faults):
        for index, name in ((1, "market"), (0, "symbol"), (2, "interval")):
            value = getattr(item, name)
            if value is not None and value not in {s[index] for s, _d, _n in requests}:
                have = ", ".join(sorted({s[index] for s, _d, _n in requests}))
                out.append(
                    Conflict(
                        f"faults[{j}].{name}",
                        f"{value!r} is not the {name} of any request ({have}): the fault would never fire",
                    )
                )
                break
        else:
            out.extend(_unreached_days(j, item, cached, series, requests, span))
            same = [c for s, ds, _n in requests if (c := _same_file(item, s, ds)) is not None]
            out.extend(c.at(j) for c in same[:1])
    for i, day in enumerate(cached):
        if day not in days:
            out.append(Conflict(f"cached[{i}]", f"{day} is outside every request ({span}): caching it tests nothing"))
    return out


def _unreached_days(
    j: int,
    item: Fault,
    cached: Sequence[dt.date],
    series: Series,
    requests: Sequence[tuple[Series, Sequence[dt.date], dt.datetime]],
    span: str,
) -> list[Conflict]:
    """The days ``item`` names that no request of its scope reaches (a cached old day is served from cache)."""
    out: list[Conflict] = []
    for day in item.days or ():
        if item.source == "cache":
            if not any(day in ds for _s, ds, _n in requests):
                out.append(
                    Conflict(
                        f"faults[{j}].days", f"{day} is outside every request ({span}): the fault would never fire"
                    )
                )
            continue
        reaching = [(s, n) for s, ds, n in requests if day in ds and item.in_scope(s[1], s[0], s[2], day)]
        if not reaching:
            where = (
                "outside every request"
                if not any(day in ds for _s, ds, _n in requests)
                else ("only in requests outside the fault's market, symbol or interval")
            )
            out.append(Conflict(f"faults[{j}].days", f"{day} is {where} ({span}): the fault would never fire"))
        elif all(s == series and day in cached and is_old(day, n) for s, n in reaching):
            out.append(
                Conflict(
                    f"faults[{j}].days",
                    f"{day} is cached (a valid old day, served from cache) in every request that reaches it: "
                    f"no {item.source} request is made for it, so the fault would never fire",
                )
            )
    return out
