"""The decision trace: what an engine did, observed from outside it, in order.

Every event has a monotonic ``index``, the virtual time (the world's clock) and the real time since the
trace began, a ``kind`` and its data:

=========  ==================================================================================
kind       data
=========  ==================================================================================
request    the fetch asked of the engine (symbol, market, interval, start, end)
fault      a fault the world injected (id, source, day, attempt, url) - what was *done to* the engine
http       a request and its answer (door, method, url, status or exception, duration)
sleep      the engine slept (virtual seconds); no real time passes
cache      a cache file was read / written / replaced / deleted (path relative to the root, size, valid)
log        an engine log line (where the adapter can capture them)
warning    a Python warning the engine raised (category, message, module, count: deduplicated per fetch)
violation  something the world forbids (an unserved URL, a real socket)
outcome    rows per source per day, or the exception type and message
=========  ==================================================================================

:func:`render_path` folds a trace into one line such as
``cache miss 4d -> vision 403 x4 -> rest 200 x1 -> 96 rows (rest 96)``.

:func:`canonical` is the order-free form of a trace: an engine that fetches in threads records its requests in
the order the thread scheduler chose, so two runs with the same seed can differ in order only. The canonical
form drops the wall-clock fields (``real_ms``, ``took_ms``) and ``index``, writes random ids in log lines
(8+ hex characters) as ``<id>``, and sorts the events between each fetch's ``request`` and its ``outcome``; the
same seed gives the same canonical form, and :func:`canonical_path` renders the decision path from it.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pytest_fcp.core.cache_states import PATH_ORDER
from pytest_fcp.core.logs import DEFAULT_LOG_LEVEL, LOG_LEVELS

__all__ = [
    "DEFAULT_LOG_LEVEL",
    "LOG_LEVELS",
    "VOLATILE_FIELDS",
    "Event",
    "Trace",
    "TraceMismatch",
    "canonical",
    "canonical_path",
    "render_path",
    "render_table",
]

#: what differs between two runs with the same seed: wall-clock times and the scheduler's order
VOLATILE_FIELDS = ("index", "real_ms", "took_ms")


#: a random id in an engine's log line (ckvd's ``trace_id=36dfe666``): hex, 8+ characters, letters and digits
_RANDOM_ID = re.compile(r"(?<![0-9A-Za-z])(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{8,}(?![0-9A-Za-z])")


def _stable(raw: dict[str, Any]) -> dict[str, Any]:
    event = {k: v for k, v in raw.items() if k not in VOLATILE_FIELDS}
    if event.get("kind") == "log" and isinstance(event.get("message"), str):
        event["message"] = _RANDOM_ID.sub("<id>", event["message"])
    return event


def canonical(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events without their volatile fields, each fetch's events (between request and outcome) sorted."""
    out: list[dict[str, Any]] = []
    middle: list[dict[str, Any]] = []

    def flush() -> None:
        out.extend(sorted(middle, key=lambda e: json.dumps(e, sort_keys=True, default=str)))
        middle.clear()

    for raw in events:
        event = _stable(raw)
        if event.get("kind") in ("request", "outcome"):
            flush()
            out.append(event)
        else:
            middle.append(event)
    flush()
    return out


def canonical_path(events: Iterable[dict[str, Any]]) -> str:
    """The decision path rendered from the canonical order: the same for every run with the same seed."""
    return render_path(Event(0, e["kind"], e.get("virtual", ""), 0.0, _data(e)) for e in canonical(events))


def _data(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in ("kind", "virtual")}


@dataclass(slots=True)
class Event:
    """One trace event: index, virtual and real time, kind and data."""

    index: int
    kind: str
    virtual: str
    real_ms: float
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The event as a flat JSON-ready mapping (data keys alongside the fixed fields)."""
        return {
            "index": self.index,
            "kind": self.kind,
            "virtual": self.virtual,
            "real_ms": self.real_ms,
            **self.data,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Event:
        """Rebuild an event from :meth:`to_dict` output."""
        raw = dict(raw)
        return cls(raw.pop("index"), raw.pop("kind"), raw.pop("virtual"), raw.pop("real_ms"), raw)


class TraceMismatch(AssertionError):
    """The observed decision path is not the expected one (the message holds a diff)."""


class Trace:
    """An ordered list of events; append-only while the world runs."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._t0 = time.perf_counter()
        self._last_ns, self._last_text = -1, ""
        self._lock = threading.Lock()  # engines fetch from worker threads: one index per event, in order

    def _virtual_now(self) -> str:
        """The virtual time as text; the world's clock stands still between sleeps, so it is cached."""
        ns = time.time_ns()  # virtual while the world's clock is active
        if ns != self._last_ns:
            now = dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)
            self._last_ns, self._last_text = ns, now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return self._last_text

    def record(self, kind: str, **data: Any) -> Event:
        """Append an event of ``kind`` with the non-``None`` ``data``, stamped now; return it."""
        kept = {k: v for k, v in data.items() if v is not None}
        with self._lock:
            event = Event(
                index=len(self.events),
                kind=kind,
                virtual=self._virtual_now(),
                real_ms=round((time.perf_counter() - self._t0) * 1000, 3),
                data=kept,
            )
            self.events.append(event)
        return event

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def of_kind(self, *kinds: str) -> list[Event]:
        """Events of any of ``kinds``, in order."""
        return [e for e in self.events if e.kind in kinds]

    def requests(self, source: str | None = None) -> list[Event]:
        """HTTP events, optionally of one source (``vision`` or ``rest``)."""
        return [e for e in self.events if e.kind == "http" and (source is None or e.data.get("source") == source)]

    @property
    def outcome(self) -> Event | None:
        """The last ``outcome`` event, or ``None``."""
        outcomes = self.of_kind("outcome")
        return outcomes[-1] if outcomes else None

    def path(self) -> str:
        """The trace folded into one line (see :func:`render_path`)."""
        return render_path(self.events)

    def table(self) -> str:
        """The trace as a fixed-width table (see :func:`render_table`)."""
        return render_table(self.events)

    def to_list(self) -> list[dict[str, Any]]:
        """Every event as a mapping, in order."""
        return [e.to_dict() for e in self.events]

    def to_json(self) -> str:
        """The events as a JSON array."""
        return json.dumps(self.to_list(), default=str)

    def assert_path(self, expected: str) -> None:
        """Fail with a diff when the folded path is not ``expected`` (``*`` in a step matches anything)."""
        actual = self.path()
        if _path_matches(expected, actual):
            return
        exp_steps, act_steps = expected.split(" -> "), actual.split(" -> ")
        diff = "\n".join(difflib.ndiff(exp_steps, act_steps))
        raise TraceMismatch(
            f"decision path differs\n  expected: {expected}\n  actual:   {actual}\n"
            f"step diff (- expected, + actual):\n{diff}"
        )


def _path_matches(expected: str, actual: str) -> bool:
    import fnmatch

    exp, act = expected.split(" -> "), actual.split(" -> ")
    return len(exp) == len(act) and all(fnmatch.fnmatchcase(a, e) for e, a in zip(exp, act, strict=True))


def _http_token(event: Event) -> str:
    status = event.data.get("status", event.data.get("error", "?"))
    return f"{event.data.get('source', 'net')} {status}"


def _tokens(events: Iterable[Event]) -> Iterator[str]:
    for event in events:
        data = event.data
        if event.kind == "request" and "cache_days" in data:
            counts: dict[str, int] = {}
            for state in data["cache_days"].values():
                counts[state] = counts.get(state, 0) + 1
            for state in PATH_ORDER:
                if counts.get(state):
                    yield f"cache {state} {counts[state]}d"
        elif event.kind == "http":
            yield _http_token(event)
        elif event.kind == "sleep":
            yield f"sleep {_seconds(data['seconds'])}"
        elif event.kind == "violation":
            yield f"VIOLATION {data.get('what', '?')}"
        elif event.kind == "outcome":
            if "error" in data:
                yield f"{data['error']}"
            else:
                per_source = data.get("rows_by_source", {})
                detail = ", ".join(f"{s} {n}" for s, n in sorted(per_source.items()))
                yield f"{data.get('rows', 0)} rows" + (f" ({detail})" if detail else "")


def _seconds(value: float) -> str:
    return f"{value:g}s"


def render_path(events: Iterable[Event]) -> str:
    """Fold events into one line; runs of the same step become ``step xN`` (sleeps are summed)."""
    folded: list[list[Any]] = []
    for token in _tokens(events):
        if folded and token.startswith("sleep ") and folded[-1][0].startswith("sleep "):
            total = float(folded[-1][0][6:-1]) + float(token[6:-1])
            folded[-1][0] = f"sleep {_seconds(total)}"
        elif folded and folded[-1][0] == token and not token.startswith(("sleep ", "cache ")):
            folded[-1][1] += 1
        else:
            folded.append([token, 1])
    steps = []
    for token, count in folded:
        is_http = token.split(" ", 1)[0] in ("vision", "rest", "net")
        steps.append(f"{token} x{count}" if is_http else token if count == 1 else f"{token} x{count}")
    return " -> ".join(steps) if steps else "(no events)"


def _describe(event: Event) -> str:
    d = dict(event.data)
    if event.kind == "http":
        result = d.get("status", d.get("error"))
        dur = d.get("duration_s")
        extra = f" ({dur:g}s)" if dur else ""
        return f"{d.get('door', '')} {d.get('method', 'GET')} {d.get('url', '')} -> {result}{extra}"
    if event.kind == "fault":
        where = d.get("day", "")
        return f"{d['id']} on {d.get('source')} {where} attempt {d.get('attempt', '')} {d.get('url', '')}".strip()
    if event.kind == "cache":
        valid = d.get("valid")
        state = "" if valid is None else (" valid" if valid else " INVALID")
        size = f" {d['size']}B" if "size" in d else ""
        return f"{d['op']} {d['path']}{size}{state}"
    if event.kind == "sleep":
        return f"{d['seconds']:g}s (virtual)"
    if event.kind == "log":
        return f"{d.get('level', '')} {d.get('message', '')}"[:160]
    if event.kind == "warning":
        return f"{d.get('category', '')} x{d.get('count', 1)} from {d.get('module', '')}: {d.get('message', '')}"[:200]
    return ", ".join(f"{k}={v}" for k, v in d.items())[:200]


def render_table(events: Iterable[Event]) -> str:
    """A readable fixed-width table, one line an event."""
    lines = [f"{'#':>3}  {'virtual time':<24} {'real ms':>8}  {'kind':<9} detail"]
    for e in events:
        lines.append(f"{e.index:>3}  {e.virtual:<24} {e.real_ms:>8.1f}  {e.kind:<9} {_describe(e)}")
    return "\n".join(lines)
