"""One scenario's recorded behaviour on one engine: how each fetch ended, its failures, its days and totals.

The plain-data shape (:meth:`Record.to_data` / :meth:`Record.from_data`) is exactly a scenario's table in the
baseline file: ``outcome`` (a string, or a list with one outcome per fetch when the scenario fetches several
times), ``failures`` (a list of strings), ``totals`` (a table) and ``days`` (the first fetch's days, one table per
UTC day ``YYYY-MM-DD``), then ``days_2``, ``days_3`` ... for the second, third ... fetch.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DAY_FIELDS", "TOTAL_FIELDS", "DayRow", "FetchRecord", "Record", "RecordError", "Totals", "days_key"]

#: A day's fields, in file and diff order.
DAY_FIELDS = ("cache_before", "vision", "rest", "rows", "cache_after")
#: The totals' fields, in file and diff order (all counted, never timed: how long an engine sleeps is its own
#: random jitter; the contract's rule on waiting, >= Retry-After, is a check of its own).
TOTAL_FIELDS = ("vision", "rest", "rest_weight", "retries", "sleeps")

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_OUTCOME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_DAYS_N = re.compile(r"days_([1-9][0-9]*)")
_ALLOWED_OUTCOME = 'allowed: "data" or an exception class name such as "RuntimeError" (a list of them, one per fetch)'
_ALLOWED_DAY = "allowed: a table { " + ", ".join(f'{f} = "..."' for f in DAY_FIELDS) + " }"
_TOML_TYPES = {str: "string", bool: "boolean", int: "integer", float: "float", list: "array", dict: "table"}


class RecordError(ValueError):
    """A record's plain data is malformed: the field, what is wrong with it, and what is allowed."""

    def __init__(self, field: str, problem: str, allowed: str = "") -> None:
        super().__init__(f"field {field}: {problem}" + (f"; {allowed}" if allowed else ""))
        self.field, self.problem, self.allowed = field, problem, allowed


def describe(value: object) -> str:
    """A short one-line description of a parsed TOML value, for error messages."""
    kind = _TOML_TYPES.get(type(value), "date/time" if isinstance(value, dt.date | dt.time) else type(value).__name__)
    if isinstance(value, dict | list):
        return f"a{'n' if kind == 'array' else ''} {kind}"
    text = repr(value) if not isinstance(value, str) else '"' + value.replace("\n", "\\n") + '"'
    return f"{text[:60] + '…' if len(text) > 60 else text} ({kind})"


def days_key(index: int) -> str:
    """The key holding the days of fetch ``index`` (0-based): ``days``, then ``days_2``, ``days_3`` ..."""
    return "days" if index == 0 else f"days_{index + 1}"


def _text(value: object, name: str, allowed: str) -> str:
    if not isinstance(value, str):
        raise RecordError(name, f"is {describe(value)}", allowed)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordError(name, "holds a lone surrogate, which is not Unicode text", allowed) from None
    return value


def _check_day(day: object, name: str) -> str:
    if not isinstance(day, str) or not _DAY.fullmatch(day):
        raise RecordError(name, f"{describe(day)} is not a day", "allowed: a UTC day as YYYY-MM-DD")
    try:
        dt.date.fromisoformat(day)
    except ValueError:
        raise RecordError(name, f"{day} is not a calendar day", "allowed: a UTC day as YYYY-MM-DD") from None
    return day


def _check_outcome(value: object, name: str) -> str:
    _text(value, name, _ALLOWED_OUTCOME)
    if not _OUTCOME.fullmatch(value):  # type: ignore[arg-type]
        raise RecordError(name, f"{describe(value)} is not an outcome", _ALLOWED_OUTCOME)
    return value  # type: ignore[return-value]


@dataclass(frozen=True)
class DayRow:
    """What happened to one UTC day of a fetch's request: cache before, Vision and REST answers, rows, cache after."""

    day: str
    cache_before: str = ""
    vision: str = ""
    rest: str = ""
    rows: str = ""
    cache_after: str = ""

    def __post_init__(self) -> None:
        _check_day(self.day, "day")
        for name in DAY_FIELDS:
            _text(getattr(self, name), name, 'allowed: a string such as "https 200 x2", "" for none')

    def to_data(self) -> dict[str, str]:
        """The day's fields as a plain dict, in :data:`DAY_FIELDS` order (without the day)."""
        return {name: getattr(self, name) for name in DAY_FIELDS}


@dataclass(frozen=True)
class Totals:
    """A scenario's counts: requests to Vision and to REST, REST weight, retries (a request sent again) and
    sleeps."""

    vision: int = 0
    rest: int = 0
    rest_weight: int = 0
    retries: int = 0
    sleeps: int = 0

    def __post_init__(self) -> None:
        for name in TOTAL_FIELDS:
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise RecordError(f"totals.{name}", f"is {describe(value)}", "allowed: a non-negative integer")

    def to_data(self) -> dict[str, int]:
        """The totals as a plain dict, in :data:`TOTAL_FIELDS` order."""
        return {name: getattr(self, name) for name in TOTAL_FIELDS}


@dataclass(frozen=True)
class FetchRecord:
    """One fetch of a scenario: its outcome (``"data"`` or the exception class name) and its days, sorted."""

    outcome: str
    days: tuple[DayRow, ...] = ()

    def __post_init__(self) -> None:
        _check_outcome(self.outcome, "outcome")
        days = tuple(sorted(self.days, key=lambda row: row.day))
        for before, after in itertools.pairwise(days):
            if before.day == after.day:
                raise RecordError(f"days.{after.day}", "appears twice", "allowed: one row per day")
        object.__setattr__(self, "days", days)

    def day(self, day: str) -> DayRow | None:
        """The row of ``day``, or ``None``."""
        return next((row for row in self.days if row.day == day), None)


@dataclass(frozen=True)
class Record:
    """A scenario's behaviour on one engine: its fetches (at least one), failure keys (sorted, unique), totals."""

    fetches: tuple[FetchRecord, ...]
    failures: tuple[str, ...] = ()
    totals: Totals = field(default_factory=Totals)

    def __post_init__(self) -> None:
        fetches = tuple(self.fetches)
        if not fetches:
            raise RecordError("outcome", "no fetch recorded", "allowed: at least one fetch")
        for i, key in enumerate(self.failures):
            _text(key, f"failures[{i}]", "allowed: a failure key string")
        object.__setattr__(self, "fetches", fetches)
        object.__setattr__(self, "failures", tuple(sorted(set(self.failures))))

    @classmethod
    def single(
        cls, outcome: str, days: Iterable[DayRow] = (), failures: Iterable[str] = (), totals: Totals | None = None
    ) -> Record:
        """A record of a scenario with one fetch."""
        return cls((FetchRecord(outcome, tuple(days)),), tuple(failures), totals or Totals())

    @property
    def outcomes(self) -> tuple[str, ...]:
        """Each fetch's outcome, in fetch order."""
        return tuple(fetch.outcome for fetch in self.fetches)

    def to_data(self) -> dict[str, Any]:
        """The record as plain data, shaped as its table in the baseline file."""
        outcomes = self.outcomes
        data: dict[str, Any] = {
            "outcome": outcomes[0] if len(outcomes) == 1 else list(outcomes),
            "failures": list(self.failures),
            "totals": self.totals.to_data(),
        }
        for i, fetch in enumerate(self.fetches):
            data[days_key(i)] = {row.day: row.to_data() for row in fetch.days}
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Record:
        """The record of plain data shaped as in the file; raises :class:`RecordError` naming the bad field."""
        if "outcome" not in data:
            raise RecordError("outcome", "missing", _ALLOWED_OUTCOME)
        raw = data["outcome"]
        if isinstance(raw, list):
            if not raw:
                raise RecordError("outcome", "is an empty array", _ALLOWED_OUTCOME)
            outcomes = [_check_outcome(value, f"outcome[{i}]") for i, value in enumerate(raw)]
        else:
            outcomes = [_check_outcome(raw, "outcome")]
        allowed_keys = ["outcome", "failures", "totals", *(days_key(i) for i in range(len(outcomes)))]
        for key in data:
            if key not in allowed_keys:
                hint = " (one days table per fetch: list one outcome per fetch)" if _DAYS_N.fullmatch(key) else ""
                raise RecordError(key, f"unknown key{hint}", "allowed: " + ", ".join(allowed_keys))
        for key in allowed_keys[1:]:
            if key not in data:
                raise RecordError(key, "missing", f"allowed: {_ALLOWED_KEY_TEXT.get(key, 'a table of days')}")
        failures = data["failures"]
        if not isinstance(failures, list):
            raise RecordError("failures", f"is {describe(failures)}", "allowed: an array of failure key strings")
        keys = tuple(_text(key, f"failures[{i}]", "allowed: a failure key string") for i, key in enumerate(failures))
        return cls(
            tuple(FetchRecord(outcome, _days(data[days_key(i)], days_key(i))) for i, outcome in enumerate(outcomes)),
            keys,
            _totals(data["totals"]),
        )


_ALLOWED_KEY_TEXT = {
    "failures": "an array of failure key strings, [] for none",
    "totals": "a table { " + ", ".join(f"{name} = 0" for name in TOTAL_FIELDS) + " }",
}


def _totals(raw: object) -> Totals:
    if not isinstance(raw, dict):
        raise RecordError("totals", f"is {describe(raw)}", "allowed: " + _ALLOWED_KEY_TEXT["totals"])
    for key in raw:
        if key not in TOTAL_FIELDS:
            raise RecordError(f"totals.{key}", "unknown key", "allowed: " + ", ".join(TOTAL_FIELDS))
    for key in TOTAL_FIELDS:
        if key not in raw:
            raise RecordError(f"totals.{key}", "missing", "allowed: " + _ALLOWED_KEY_TEXT["totals"])
    return Totals(**raw)


def _days(raw: object, name: str) -> tuple[DayRow, ...]:
    if not isinstance(raw, dict):
        raise RecordError(name, f"is {describe(raw)}", "allowed: a table of days, one YYYY-MM-DD = { ... } per day")
    rows = []
    for day, values in raw.items():
        where = f"{name}.{day}"
        _check_day(day, where)
        if not isinstance(values, dict):
            raise RecordError(where, f"is {describe(values)}", _ALLOWED_DAY)
        for key in values:
            if key not in DAY_FIELDS:
                raise RecordError(f"{where}.{key}", "unknown key", "allowed: " + ", ".join(DAY_FIELDS))
        for key in DAY_FIELDS:
            if key not in values:
                raise RecordError(f"{where}.{key}", "missing", _ALLOWED_DAY)
            _text(values[key], f"{where}.{key}", 'allowed: a string such as "https 200 x2", "" for none')
        rows.append(DayRow(day, **values))
    return tuple(rows)
