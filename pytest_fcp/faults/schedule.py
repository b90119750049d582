"""Scheduled faults: a fault id from the table plus its scope, and the schedule that decides which request a
fault answers.

A fault is a stable id (``vision.http403``, ``rest.http429``, ``cache.zero_byte`` ...) plus a scope: which
market / symbol / interval / UTC days it hits and which attempts. Attempts are counted per fault and per
UTC day: every Vision request for a day's zip or ``.CHECKSUM`` and every REST request whose range touches
the day is one attempt at that day. ``attempts`` is one of ``"always"`` (every attempt), ``"first:N"`` (the
first N attempts fail, then the source recovers) or ``"nth:N"`` (only the Nth attempt fails). The first
fault in schedule order that fires on a request answers it. Cache faults are not attempts: they describe the
state of a day's cache file before the fetch.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_fcp.core.sources import SOURCES
from pytest_fcp.faults.table import (
    FAULTS,
    NO_EFFECT,
    PARAM_RULES,
    SCOPE_KEYS,
    FaultKind,
    FaultSpecError,
    faults_for_source,
)

__all__ = ["MAX_ATTEMPTS", "MAX_DAYS", "Attempts", "Fault", "FaultSchedule", "fault"]

#: The most days a fault may name, and the highest N of ``first:N`` / ``nth:N``.
MAX_DAYS = 400
MAX_ATTEMPTS = 1000


@dataclass(frozen=True)
class Attempts:
    """Which attempts a fault hits: ``always``, ``first:N`` or ``nth:N``."""

    mode: str = "always"
    n: int = 0

    @classmethod
    def parse(cls, text: str | Attempts) -> Attempts:
        """Parse ``always``, ``first:N`` or ``nth:N`` (an ``Attempts`` passes through); else ``FaultSpecError``."""
        if isinstance(text, Attempts):
            return text
        mode, _, number = str(text).partition(":")
        if mode == "always" and not number:
            return cls()
        if mode in ("first", "nth") and number.isdigit() and int(number) >= 1:
            return cls(mode, int(number))
        raise FaultSpecError(
            f"bad attempts {text!r}: expected 'always', 'first:N' (fail the first N attempts, then recover) "
            f"or 'nth:N' (fail only the Nth attempt), with N >= 1"
        )

    def hits(self, attempt: int) -> bool:
        """Whether attempt number ``attempt`` (1-based) fails."""
        if self.mode == "always":
            return True
        if self.mode == "first":
            return attempt <= self.n
        return attempt == self.n

    @property
    def recovers(self) -> bool:
        """Whether the fault stops hitting after some attempt (any mode but ``always``)."""
        return self.mode != "always"

    def __str__(self) -> str:
        return "always" if self.mode == "always" else f"{self.mode}:{self.n}"


def _check_param(fault_id: str, name: str, value: Any, default: Any) -> None:
    """Refuse a parameter value of the wrong type or outside its range, naming what is allowed."""
    rule = PARAM_RULES.get((fault_id, name), PARAM_RULES.get(name))
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise FaultSpecError(f"fault {fault_id!r}: {name} must be a number, got {value!r}")
        low, high = rule if rule else (0, math.inf)
        if not low <= value <= high:
            raise FaultSpecError(f"fault {fault_id!r}: {name} must be a number from {low} to {high}, got {value!r}")
        inert = NO_EFFECT.get((FAULTS[fault_id].effect.kind, name))
        if inert is not None and value == inert[0]:
            raise FaultSpecError(
                f"fault {fault_id!r}: {name} {value!r} {inert[1]}: the fault would change nothing; "
                f"give a value from {low} to {high} other than {inert[0]}"
            )
        return
    if not isinstance(value, type(default)):
        raise FaultSpecError(f"fault {fault_id!r}: {name} must be a {type(default).__name__}, got {value!r}")
    if name == "other":
        from pytest_fcp.core.markets import INTERVALS

        if FAULTS[fault_id].effect.swap == "interval" and value not in INTERVALS:
            raise FaultSpecError(
                f"fault {fault_id!r}: other {value!r} is not an interval; allowed: {', '.join(INTERVALS)}"
            )
        if not value.replace("_", "").isalnum():
            raise FaultSpecError(f"fault {fault_id!r}: other must be a symbol like 'ETHUSDT', got {value!r}")
    elif rule and value not in rule:
        raise FaultSpecError(f"fault {fault_id!r}: {name} {value!r} is not allowed; allowed: {', '.join(rule)}")


def _as_day(value: object, what: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise FaultSpecError(f"bad day {value!r} in {what}: expected a date like 2024-01-02") from None


@dataclass(frozen=True)
class Fault:
    """One scheduled fault: a library id plus its scope and parameters."""

    id: str
    days: tuple[dt.date, ...] | None = None
    attempts: Attempts = Attempts()
    market: str | None = None
    symbol: str | None = None
    interval: str | None = None
    door: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> FaultKind:
        """The library entry for this fault's id."""
        return FAULTS[self.id]

    @property
    def source(self) -> str:
        """The source this fault acts on (``cache``, ``vision`` or ``rest``)."""
        return self.kind.source

    def param(self, name: str) -> Any:
        """The value of parameter ``name``: the one given, else the library default."""
        return self.params.get(name, self.kind.params[name])

    def in_scope(self, market: str, symbol: str, interval: str, day: dt.date) -> bool:
        """Whether the fault applies to this market, symbol, interval and day."""
        return (
            (self.market is None or self.market == market)
            and (self.symbol is None or self.symbol == symbol)
            and (self.interval is None or self.interval == interval)
            and (self.days is None or day in self.days)
        )

    def describe(self) -> str:
        """A one-line human description: the id plus any scope and parameters."""
        scope = []
        if self.days is not None:
            scope.append("days " + ",".join(d.isoformat() for d in self.days))
        if self.attempts.mode != "always":
            scope.append(f"attempts {self.attempts}")
        for name in ("market", "symbol", "interval", "door"):
            if getattr(self, name) is not None:
                scope.append(f"{name} {getattr(self, name)}")
        if self.params:
            scope.append(", ".join(f"{k}={v}" for k, v in sorted(self.params.items())))
        return self.id + (f" [{'; '.join(scope)}]" if scope else "")

    def to_dict(self) -> dict[str, Any]:
        """The fault as the keyword arguments of :func:`fault` that rebuild it (unset scope omitted)."""
        out: dict[str, Any] = {"id": self.id}
        if self.days is not None:
            out["days"] = [d.isoformat() for d in self.days]
        if self.attempts.mode != "always":
            out["attempts"] = str(self.attempts)
        for name in ("market", "symbol", "interval", "door"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        out.update(self.params)
        return out


def fault(
    id: str,
    *,
    days: Iterable[dt.date | str] | dt.date | str | None = None,
    attempts: str | Attempts = "always",
    market: str | None = None,
    symbol: str | None = None,
    interval: str | None = None,
    door: str | None = None,
    **params: Any,
) -> Fault:
    """Build a validated :class:`Fault`; raises :class:`FaultSpecError` saying what is wrong and allowed."""
    if id not in FAULTS:
        close = difflib.get_close_matches(str(id), FAULTS, n=3)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        source = str(id).split(".", 1)[0]
        known = faults_for_source(source) if source in SOURCES else list(FAULTS)
        raise FaultSpecError(f"unknown fault id {id!r}.{hint} Known faults: {', '.join(known)}")
    kind = FAULTS[id]
    unknown = sorted(set(params) - set(kind.params))
    if unknown:
        allowed = ", ".join(kind.params) or "none"
        near = difflib.get_close_matches(unknown[0], [*SCOPE_KEYS, *kind.params], n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise FaultSpecError(
            f"fault {id!r} takes no parameter {', '.join(map(repr, unknown))}; its parameters: {allowed}; "
            f"scope keys: {', '.join(SCOPE_KEYS)}{hint}"
        )
    for name, value in params.items():
        _check_param(id, name, value, kind.params[name])
    if door is not None and (kind.source != "vision" or door not in ("https", "s3")):
        raise FaultSpecError(
            f"fault {id!r}: door {door!r} is not allowed; only Vision faults take a door, 'https' or 's3'"
        )
    if not isinstance(attempts, (str, Attempts)):
        raise FaultSpecError(
            f"fault {id!r}: attempts must be a word like 'always', 'first:2' or 'nth:3', got {attempts!r}"
        )
    parsed_attempts = Attempts.parse(attempts)
    if parsed_attempts.n > MAX_ATTEMPTS:
        raise FaultSpecError(f"fault {id!r}: attempts {attempts!r} is too many; at most {MAX_ATTEMPTS}")
    if not kind.takes_attempts and parsed_attempts.mode != "always":
        raise FaultSpecError(
            f"fault {id!r}: cache faults describe a file's state before the fetch and take no attempts"
        )
    day_tuple: tuple[dt.date, ...] | None
    if days is None and kind.needs_days:
        raise FaultSpecError(
            f"fault {id!r}: cache faults describe given days' files; say which, e.g. days=['2024-01-03']"
        )
    if days is not None and kind.source == "cache" and not kind.needs_days:
        raise FaultSpecError(f"fault {id!r} acts on the whole cache directory and takes no days; leave days out")
    scoped = [n for n, v in (("market", market), ("symbol", symbol), ("interval", interval)) if v is not None]
    if scoped and kind.source == "cache" and not kind.needs_days:
        raise FaultSpecError(f"fault {id!r} acts on the whole cache directory and takes no {scoped[0]}; leave it out")
    if days is None:
        day_tuple = None
    elif isinstance(days, (str, dt.date)):
        day_tuple = (_as_day(days, id),)
    elif not isinstance(days, (list, tuple, set, frozenset)):
        raise FaultSpecError(f"fault {id!r}: days must be a list of days, e.g. ['2024-01-02'], got {days!r}")
    else:
        if len(days) > MAX_DAYS:
            raise FaultSpecError(f"fault {id!r}: {len(days)} days; at most {MAX_DAYS}")
        day_tuple = tuple(sorted({_as_day(d, id) for d in days}))
        if not day_tuple:
            raise FaultSpecError(f"fault {id!r}: days is empty; leave it out to hit every day")
    if market is not None:
        from pytest_fcp.core.markets import MARKETS

        if market not in MARKETS:
            raise FaultSpecError(f"fault {id!r}: unknown market {market!r}; expected one of {', '.join(MARKETS)}")
    if symbol is not None and (not isinstance(symbol, str) or not symbol.replace("_", "").isalnum()):
        raise FaultSpecError(f"fault {id!r}: symbol must be a symbol like 'BTCUSDT', got {symbol!r}")
    if interval is not None:
        from pytest_fcp.core.markets import INTERVALS

        if interval not in INTERVALS:
            raise FaultSpecError(
                f"fault {id!r}: interval {interval!r} is not an interval; allowed: {', '.join(INTERVALS)}"
            )
    return Fault(id, day_tuple, parsed_attempts, market, symbol, interval, door, dict(params))


class FaultSchedule:
    """The faults of one world, with the per-(fault, day) attempt counters."""

    def __init__(self, faults: Sequence[Fault] = ()) -> None:
        self.faults: list[Fault] = list(faults)
        self._attempts: dict[tuple[int, dt.date], int] = defaultdict(int)
        # Engines may fetch from worker threads: counting is atomic, and what fired is kept per thread.
        self._lock = threading.Lock()
        self._fired = threading.local()

    @property
    def last_attempt(self) -> int:
        """The attempt number at which the fault that answered this thread's last request fired."""
        return getattr(self._fired, "attempt", 0)

    @property
    def last_day(self) -> dt.date | None:
        """The day that fault fired on."""
        return getattr(self._fired, "day", None)

    def add(self, item: Fault) -> None:
        """Schedule one more fault."""
        self.faults.append(item)

    def of_source(self, source: str) -> list[Fault]:
        """The scheduled faults that act on ``source``."""
        return [f for f in self.faults if f.source == source]

    def answering_fault(
        self,
        source: str,
        market: str,
        symbol: str,
        interval: str,
        days: Iterable[dt.date],
        *,
        door: str | None = None,
        obj: str | None = None,
    ) -> Fault | None:
        """Count one attempt at each of ``days`` for every fault in scope; the first fault that fires wins."""
        days = list(days)
        fired: Fault | None = None
        with self._lock:
            for index, item in enumerate(self.faults):
                if item.source != source or (item.door is not None and item.door != door):
                    continue
                if obj is not None and obj not in item.kind.objects:
                    continue
                hit = False
                for day in days:
                    if not item.in_scope(market, symbol, interval, day):
                        continue
                    self._attempts[index, day] += 1
                    if not hit and item.attempts.hits(self._attempts[index, day]):
                        hit, attempt, at = True, self._attempts[index, day], day
                if hit and fired is None:
                    fired, self._fired.attempt, self._fired.day = item, attempt, at
        return fired
