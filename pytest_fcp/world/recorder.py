"""The recorder: the one port through which the world's services report what happened.

Services (Vision, REST, the sealed network, the clock, the cache watch) never see the world; they get a
:class:`Recorder` and call it. It keeps the decision trace (:class:`~pytest_fcp.trace.Trace`) and, beside it,
structured records the contract reads instead of re-parsing URLs: one :class:`RequestRecord` a request, one
:class:`FaultFiring` a fault that answered, and the violations. :meth:`Recorder.mark` and
:meth:`Recorder.since` cut them per fetch.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import email.utils
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_fcp.trace import Event, Trace
from pytest_fcp.world.answer import Target

__all__ = [
    "FETCH",
    "FaultFiring",
    "Mark",
    "Recorder",
    "RequestRecord",
    "Target",
    "retry_after_seconds",
    "set_event_sink",
]

#: The fetch the current code runs for (set by the world around each engine call that runs beside others; the
#: engine's threads inherit it, see :func:`~pytest_fcp.world.threads.carry_context`): what it records is that
#: fetch's. ``None``: not inside such a call.
FETCH: contextvars.ContextVar[int | None] = contextvars.ContextVar("fcp_fetch", default=None)
#: Where every recorder of this process also hands each event as it is recorded (an isolated test's child
#: process streams them to its parent, which reports a death with the trace up to it); ``None``: nowhere.
_sink: list[Callable[[Event], None] | None] = [None]


def set_event_sink(sink: Callable[[Event], None] | None) -> None:
    """Hand every event recorded from now on, in this process, to ``sink`` too (``None``: stop)."""
    _sink[0] = sink


def retry_after_seconds(value: str | None, now: dt.datetime) -> float | None:
    """A ``Retry-After`` header in seconds: delay-seconds (``30``) or an HTTP date counted from ``now``."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, round((when - now).total_seconds(), 3))


@dataclass(frozen=True)
class RequestRecord:
    """One request the engine sent and how it was answered."""

    index: int  # the trace event's index
    source: str  # vision | rest
    door: str  # https | s3
    method: str
    url: str
    target: Target
    attempt: int  # the how-manieth request of this source for the same (symbol, interval, first day, object)
    status: int | None
    error: str | None
    retry_after: float | None
    virtual: dt.datetime  # when the answer arrived (virtual time, millisecond precision)
    duration_s: float  # virtual seconds the answer took
    fault: str | None  # the id of the fault that answered, if one did

    @property
    def days(self) -> tuple[dt.date, ...]:
        """The UTC days the request asked about."""
        return self.target.days

    @property
    def started(self) -> dt.datetime:
        """When the request was sent (virtual time)."""
        return self.virtual - dt.timedelta(seconds=self.duration_s)


@dataclass(frozen=True)
class FaultFiring:
    """A fault that answered a request (or, for cache faults, set a day's file before the fetch)."""

    id: str
    source: str
    day: dt.date | None
    attempt: int
    url: str | None


@dataclass(frozen=True)
class Mark:
    """A position in everything recorded so far."""

    events: int
    requests: int
    firings: int
    violations: int


class Recorder:
    """The trace plus structured request, fault and violation records; safe to call from engine threads."""

    def __init__(self) -> None:
        self.trace = Trace()
        self.requests: list[RequestRecord] = []
        self.firings: list[FaultFiring] = []
        self.violations: list[str] = []
        self.owners: dict[int, int] = {}  # event index -> the fetch it was recorded for (see FETCH)
        self._firing_owners: list[int | None] = []
        self._lock = threading.Lock()
        self._attempts: dict[tuple[Any, ...], int] = {}
        self._pending = threading.local()  # the fault that answered this thread's request in progress

    def event(self, kind: str, **data: Any) -> Event:
        """Record a trace event (a ``cache`` event belongs to no fetch: the cache is shared, its watch sees files)."""
        event = self.trace.record(kind, **data)
        if kind != "cache":
            self._owned(event)
        sink = _sink[0]
        if sink is not None:
            sink(event)
        return event

    def _owned(self, event: Event) -> Event:
        owner = FETCH.get()
        if owner is not None:
            with self._lock:
                self.owners[event.index] = owner
        return event

    def fault(self, fault_id: str, source: str, day: dt.date | None, attempt: int = 0, url: str | None = None) -> None:
        """Record that a fault fired (Vision and REST: on the request this thread is answering)."""
        self.event(
            "fault", id=fault_id, source=source, day=day.isoformat() if day else None, attempt=attempt or None, url=url
        )
        with self._lock:
            self.firings.append(FaultFiring(fault_id, source, day, attempt, url))
            self._firing_owners.append(FETCH.get())
        if url is not None:
            self._pending.fault = fault_id

    def http(
        self,
        source: str,
        door: str,
        method: str,
        url: str,
        target: Target | None,
        *,
        status: int | None = None,
        error: str | None = None,
        v0: dt.datetime,
        r0: float,
        now: dt.datetime,
        retry_after: str | None = None,
    ) -> None:
        """Record a request and its answer (a status, or the exception the engine saw)."""
        fault, self._pending.fault = getattr(self._pending, "fault", None), None
        duration = round((now - v0).total_seconds(), 3)
        wait = retry_after_seconds(retry_after, now)
        event = self.event(
            "http",
            source=source,
            door=door,
            method=method,
            url=url,
            status=status,
            error=error,
            retry_after=wait,
            duration_s=duration,
            took_ms=round((time.perf_counter() - r0) * 1000, 3),
        )
        target = target or Target()
        key = (source, target.symbol, target.interval, target.days[:1], target.obj)
        with self._lock:
            attempt = self._attempts[key] = self._attempts.get(key, 0) + 1
            virtual = dt.datetime.fromisoformat(event.virtual.replace("Z", "+00:00"))
            self.requests.append(
                RequestRecord(
                    event.index,
                    source,
                    door,
                    method,
                    url,
                    target,
                    attempt,
                    status,
                    error,
                    wait,
                    virtual,
                    duration,
                    fault,
                )
            )

    def violation(self, what: str, detail: str) -> None:
        """Record something the world forbids (an unserved URL, a real socket or DNS lookup)."""
        with self._lock:
            self.violations.append(detail)
        self.event("violation", what=what, detail=detail)

    def mark(self) -> Mark:
        """The current position (see :meth:`since`)."""
        with self._lock:
            return Mark(len(self.trace.events), len(self.requests), len(self.firings), len(self.violations))

    def since(self, mark: Mark) -> tuple[tuple[Event, ...], tuple[RequestRecord, ...], tuple[FaultFiring, ...]]:
        """Events, requests and fault firings recorded after ``mark``, each in order."""
        with self._lock:
            requests = sorted(self.requests[mark.requests :], key=lambda r: r.index)
            return tuple(self.trace.events[mark.events :]), tuple(requests), tuple(self.firings[mark.firings :])

    def of_fetch(
        self, fetch: int, mark: Mark
    ) -> tuple[tuple[Event, ...], tuple[RequestRecord, ...], tuple[FaultFiring, ...]]:
        """What was recorded after ``mark`` for ``fetch`` (see :data:`FETCH`), each in order."""
        with self._lock:
            events = tuple(e for e in self.trace.events[mark.events :] if self.owners.get(e.index) == fetch)
            requests = sorted(
                (r for r in self.requests[mark.requests :] if self.owners.get(r.index) == fetch), key=lambda r: r.index
            )
            pairs = zip(self.firings[mark.firings :], self._firing_owners[mark.firings :], strict=True)
            return events, tuple(requests), tuple(f for f, owner in pairs if owner == fetch)
