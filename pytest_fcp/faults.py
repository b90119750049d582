"""The fault library: named faults, their scope, and which request a fault hits.

A fault is a stable id (``vision.http403``, ``rest.http429``, ``cache.zero_byte`` ...) plus a scope: which
market / symbol / interval / UTC days it hits and which attempts. Attempts are counted per fault and per
UTC day: every Vision request for a day's zip or ``.CHECKSUM`` and every REST request whose range touches
the day is one attempt at that day. ``attempts`` is one of

* ``"always"`` - every attempt;
* ``"first:N"`` - the first N attempts fail, then the source recovers;
* ``"nth:N"`` - only the Nth attempt fails.

Cache faults are not attempts: they describe the state of a day's cache file before the fetch.
The effects live beside the sources they break (:mod:`pytest_fcp.world.vision`, ``rest``, ``cache``); this
module is the catalogue and the scoping rules.
"""

from __future__ import annotations

import datetime as dt
import difflib
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_fcp.core.sources import SOURCES

__all__ = [
    "FAULTS",
    "Attempts",
    "Effect",
    "Fault",
    "FaultKind",
    "FaultSchedule",
    "FaultSpecError",
    "fault",
    "faults_for_source",
]


class FaultSpecError(ValueError):
    """A fault that cannot be built; the message says what is wrong and what is allowed."""


@dataclass(frozen=True)
class Effect:
    """What a fault does, as data: an effect ``kind`` the source implements once, plus its constants.

    Vision kinds: ``s3_error`` (status, S3 error code, message), ``connect``, ``timeout`` (param ``timeout``),
    ``delay`` (param ``delay``, then the normal answer), ``truncate`` (param ``keep``), ``html_page``,
    ``alter_values``, ``other_file`` (``swap`` = ``symbol`` or ``interval``, param ``other``).
    REST kinds: ``binance_error`` (status, Binance code, message; param ``retry_after`` where it has one),
    ``html_error`` (status, title), ``connect``, ``timeout``, ``malformed_json``, ``rows_empty``, ``rows_keep``
    (param ``keep``), ``rows_twice``, ``rows_out_of_range`` (param ``extra``).
    Cache kinds: ``zero_byte``, ``truncate``, ``random_bytes``, ``stream``, ``drop_column``, ``strings``,
    ``ns_times``, ``keep_first``, ``alter_values``, ``unreadable``, ``read_only``.
    """

    kind: str
    status: int = 0
    code: str = ""
    message: str = ""
    swap: str = ""


@dataclass(frozen=True)
class FaultKind:
    """One entry of the fault library: what the fault is, what it does, and what the oracle must know."""

    id: str
    description: str
    effect: Effect
    params: Mapping[str, Any] = field(default_factory=dict)
    #: For Vision faults: which objects it hits (``zip``, ``checksum``).
    objects: tuple[str, ...] = ("zip", "checksum")
    #: Whether the day can still be had from this source when the fault fires on every attempt:
    #: ``yes`` (the answer is late or spoiled in a way a correct engine repairs), ``maybe`` (it depends on
    #: the engine's legitimate choices) or ``no``.
    obtainable: str = "no"
    #: A 429 / 418: the contract allows RateLimitError, and waiting >= Retry-After.
    rate_limit: bool = False
    #: An answer a correct engine may read as "no data" (an empty REST page).
    reads_as_no_data: bool = False
    #: The payload cannot be verified (no CHECKSUM): it may be returned, never cached.
    unverifiable: bool = False
    #: A cache file a generous Arrow reader can still read: judged by the fault while the file is as it was left.
    format_fault: bool = False

    @property
    def source(self) -> str:
        """``vision``, ``rest`` or ``cache``."""
        return self.id.split(".", 1)[0]

    @property
    def needs_days(self) -> bool:
        """Whether a scheduled fault of this kind must name its days (cache files are per day)."""
        return self.source == "cache" and self.effect.kind != "read_only"

    @property
    def takes_attempts(self) -> bool:
        """Whether ``attempts`` applies (cache faults are a file's state before the fetch, not attempts)."""
        return self.source != "cache"

    @property
    def fatal(self) -> bool:
        """Whether the day is lost to this source when the fault fires on every attempt."""
        return self.obtainable == "no"


def _kinds(*kinds: FaultKind) -> dict[str, FaultKind]:
    return {k.id: k for k in kinds}


_S3_ERROR = "s3_error"
_BINANCE = "binance_error"
_RATE_429 = (
    "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute. Please use the "
    "websocket for live updates to avoid polling the API."
)
_BAN_418 = (
    "Way too many requests; IP(127.0.0.1) banned until further notice. Please use the websocket "
    "for live updates to avoid bans."
)
_NO_SUCH_KEY = Effect(_S3_ERROR, 404, "NoSuchKey", "The specified key does not exist.")

FAULTS: dict[str, FaultKind] = _kinds(
    # --- Vision (both doors: HTTPS and the S3 API) ---
    FaultKind(
        "vision.http403",
        "403 AccessDenied with S3's XML body (what Binance's regional blocks look like)",
        Effect(_S3_ERROR, 403, "AccessDenied", "Access Denied"),
    ),
    FaultKind("vision.http404", "404 NoSuchKey although the file is published", _NO_SUCH_KEY),
    FaultKind(
        "vision.http500",
        "500 InternalError with S3's XML body",
        Effect(_S3_ERROR, 500, "InternalError", "We encountered an internal error. Please try again."),
    ),
    FaultKind(
        "vision.http503",
        "503 SlowDown with S3's XML body",
        Effect(_S3_ERROR, 503, "SlowDown", "Please reduce your request rate."),
    ),
    FaultKind("vision.connect_error", "the connection is refused before any byte is sent", Effect("connect")),
    FaultKind(
        "vision.read_timeout", "the server stops answering; the read times out", Effect("timeout"), {"timeout": 30.0}
    ),
    FaultKind(
        "vision.slow",
        "the answer is right but arrives after `delay` virtual seconds",
        Effect("delay"),
        {"delay": 20.0},
        obtainable="yes",
    ),
    FaultKind(
        "vision.truncated_zip",
        "the zip is cut short (its tail is missing)",
        Effect("truncate"),
        {"keep": 0.5},
        ("zip",),
    ),
    FaultKind(
        "vision.not_a_zip",
        "the zip object holds an HTML error page instead of a zip",
        Effect("html_page"),
        {},
        ("zip",),
    ),
    FaultKind(
        "vision.checksum_mismatch",
        "the zip's values are altered, so its sha256 differs from the published .CHECKSUM",
        Effect("alter_values"),
        {},
        ("zip",),
    ),
    FaultKind(
        "vision.missing_checksum",
        "the .CHECKSUM object is missing (404 NoSuchKey)",
        _NO_SUCH_KEY,
        {},
        ("checksum",),
        obtainable="maybe",  # the genuine zip, unverifiable
        unverifiable=True,
    ),
    FaultKind(
        "vision.wrong_symbol",
        "the published zip (with a matching .CHECKSUM) holds another symbol's file",
        Effect("other_file", swap="symbol"),
        {"other": "ETHUSDT"},
    ),
    FaultKind(
        "vision.wrong_interval",
        "the published zip (with a matching .CHECKSUM) holds another interval's file",
        Effect("other_file", swap="interval"),
        {"other": "1m"},
    ),
    # --- REST ---
    FaultKind(
        "rest.http429",
        "429 with Retry-After and Binance's -1003 body",
        Effect(_BINANCE, 429, "-1003", _RATE_429),
        {"retry_after": 30},
        rate_limit=True,
    ),
    FaultKind(
        "rest.http418",
        "418 (IP banned) with Retry-After and Binance's -1003 body",
        Effect(_BINANCE, 418, "-1003", _BAN_418),
        {"retry_after": 120},
        rate_limit=True,
    ),
    FaultKind(
        "rest.http500",
        "500 with Binance's -1000 body",
        Effect(_BINANCE, 500, "-1000", "An unknown error occurred while processing the request."),
    ),
    FaultKind("rest.http502", "502 Bad Gateway (HTML body)", Effect("html_error", 502, message="Bad Gateway")),
    FaultKind("rest.http503", "503 with Binance's -1008 body", Effect(_BINANCE, 503, "-1008", "Service Unavailable.")),
    FaultKind("rest.http504", "504 Gateway Timeout (HTML body)", Effect("html_error", 504, message="Gateway Timeout")),
    FaultKind("rest.connect_error", "the connection is refused before any byte is sent", Effect("connect")),
    FaultKind(
        "rest.read_timeout", "the server stops answering; the read times out", Effect("timeout"), {"timeout": 30.0}
    ),
    FaultKind("rest.malformed_json", "200 whose body is cut-off JSON", Effect("malformed_json")),
    FaultKind(
        "rest.empty_page", "200 with an empty list although bars exist", Effect("rows_empty"), reads_as_no_data=True
    ),
    FaultKind(
        "rest.short_page",
        "200 with only the first `keep` rows of the page",
        Effect("rows_keep"),
        {"keep": 3},
        obtainable="maybe",
    ),
    FaultKind(
        "rest.out_of_range",
        "200 whose page also holds `extra` bars before startTime and after endTime",
        Effect("rows_out_of_range"),
        {"extra": 2},
        obtainable="yes",
    ),
    FaultKind("rest.duplicate_rows", "200 whose page repeats every row twice", Effect("rows_twice"), obtainable="yes"),
    # --- Cache (the state of a day's file before the fetch) ---
    FaultKind("cache.zero_byte", "the day's cache file exists with zero bytes", Effect("zero_byte")),
    FaultKind("cache.truncated", "the day's Arrow file is cut short", Effect("truncate"), {"keep": 0.5}),
    FaultKind("cache.random_bytes", "the day's cache file holds random bytes", Effect("random_bytes")),
    FaultKind(
        "cache.arrow_stream",
        "the day's file is Arrow IPC *stream* format instead of file format",
        Effect("stream"),
        format_fault=True,
    ),
    FaultKind("cache.missing_column", "the day's file lacks a column", Effect("drop_column"), {"column": "close"}),
    FaultKind("cache.wrong_types", "the day's file stores prices as strings", Effect("strings"), format_fault=True),
    FaultKind(
        "cache.ns_timestamps",
        "the day's file stores open_time in nanoseconds instead of milliseconds",
        Effect("ns_times"),
        format_fault=True,
    ),
    FaultKind(
        "cache.partial_day", "the day's file holds only its first `keep` bars", Effect("keep_first"), {"keep": 0.5}
    ),
    FaultKind(
        "cache.stale_day", "the day's file is complete but its values differ from the truth", Effect("alter_values")
    ),
    FaultKind("cache.unreadable", "the day's cache file cannot be opened for reading", Effect("unreadable")),
    FaultKind("cache.read_only_dir", "the cache directory cannot be written to", Effect("read_only")),
)


def faults_for_source(source: str) -> list[str]:
    return [k for k, v in FAULTS.items() if v.source == source]


@dataclass(frozen=True)
class Attempts:
    """Which attempts a fault hits: ``always``, ``first:N`` or ``nth:N``."""

    mode: str = "always"
    n: int = 0

    @classmethod
    def parse(cls, text: str | Attempts) -> Attempts:
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
        return self.mode != "always"

    def __str__(self) -> str:
        return "always" if self.mode == "always" else f"{self.mode}:{self.n}"


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
        return FAULTS[self.id]

    @property
    def source(self) -> str:
        return self.kind.source

    def param(self, name: str) -> Any:
        return self.params.get(name, self.kind.params[name])

    def in_scope(self, market: str, symbol: str, interval: str, day: dt.date) -> bool:
        return (
            (self.market is None or self.market == market)
            and (self.symbol is None or self.symbol == symbol)
            and (self.interval is None or self.interval == interval)
            and (self.days is None or day in self.days)
        )

    def describe(self) -> str:
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
        raise FaultSpecError(f"fault {id!r} takes no parameter {', '.join(map(repr, unknown))}; parameters: {allowed}")
    for name, value in params.items():
        default = kind.params[name]
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise FaultSpecError(f"fault {id!r}: {name} must be a number >= 0, got {value!r}")
        elif not isinstance(value, type(default)):
            raise FaultSpecError(f"fault {id!r}: {name} must be a {type(default).__name__}, got {value!r}")
    if door is not None and (kind.source != "vision" or door not in ("https", "s3")):
        raise FaultSpecError(
            f"fault {id!r}: door {door!r} is not allowed; only Vision faults take a door, 'https' or 's3'"
        )
    parsed_attempts = Attempts.parse(attempts)
    if not kind.takes_attempts and parsed_attempts.mode != "always":
        raise FaultSpecError(
            f"fault {id!r}: cache faults describe a file's state before the fetch and take no attempts"
        )
    day_tuple: tuple[dt.date, ...] | None
    if days is None and kind.needs_days:
        raise FaultSpecError(
            f"fault {id!r}: cache faults describe given days' files; say which, e.g. days=['2024-01-03']"
        )
    if days is None:
        day_tuple = None
    elif isinstance(days, (str, dt.date)):
        day_tuple = (_as_day(days, id),)
    else:
        day_tuple = tuple(sorted({_as_day(d, id) for d in days}))
        if not day_tuple:
            raise FaultSpecError(f"fault {id!r}: days is empty; leave it out to hit every day")
    if market is not None:
        from pytest_fcp.core.markets import MARKETS

        if market not in MARKETS:
            raise FaultSpecError(f"fault {id!r}: unknown market {market!r}; expected one of {', '.join(MARKETS)}")
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
        """The attempt number at which the fault this thread's last strike fired, fired."""
        return getattr(self._fired, "attempt", 0)

    @property
    def last_day(self) -> dt.date | None:
        """The day that fault fired on."""
        return getattr(self._fired, "day", None)

    def add(self, item: Fault) -> None:
        self.faults.append(item)

    def of_source(self, source: str) -> list[Fault]:
        return [f for f in self.faults if f.source == source]

    def strike(
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
