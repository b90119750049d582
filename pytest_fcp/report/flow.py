"""One fetch's decision flow as an inline SVG: lanes cache, Vision, REST and result along the virtual clock.

A pure function of plain trace events (:meth:`pytest_fcp.trace.Event.to_dict` mappings). The x axis is the
virtual clock, but the clock mostly stands still (sleeps alone move it), so x is the event's order within its
virtual instant, and each new instant opens a gap labelled with its offset from the first. Every request is a
mark coloured by its answer, a repeated request (a retry) has a ring, faults are red triangles above the lane
of their source, sleeps are bands across the lanes, cache reads and writes sit on the cache lane with their day.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from pytest_fcp.core.sources import is_rate_limited
from pytest_fcp.report.layout import Shelf, label_width, place

__all__ = ["DRAWN", "LANES", "LANE_Y", "flow_svg", "status_class", "url_label"]

#: The lanes, top to bottom, in the order the FCP diagram reads (cache -> Vision -> REST -> result / error).
LANES = ("cache", "vision", "rest", "result")
#: The event kinds that get a mark (log records are listed beside the flow, not drawn).
DRAWN = ("request", "cache", "fault", "http", "sleep", "outcome", "violation")

_STEP = 18  # px between two events of one instant
_GAP = 26  # px added where the virtual clock moved
_ROOMY = 24  # flows of fewer events than this get wider steps
_LEFT = 58  # px of lane labels
_TICK_Y, _FETCH_Y, _SLEEP_Y = 11, 25, 38  # baselines of the instant, fetch and sleep labels
_SLEEP_TOP = 29  # px: where the sleep bands start
#: The y of each lane, top to bottom; the cache lane leaves room below it for two bands of day labels.
LANE_Y = dict(zip(LANES, (54, 100, 130, 160), strict=True))
_DAY_Y = (70, 81)  # baselines of the two bands of cache day labels
_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})")
_MS = re.compile(r"(startTime|endTime)=(\d+)")


def status_class(event: Mapping[str, Any]) -> str:
    """The CSS class of an http event's answer: ``s2`` 2xx, ``s4`` 4xx, ``rl`` 429/418, ``s5`` 5xx, ``sx`` error."""
    status = event.get("status")
    if status is None:
        return "sx"
    status = int(status)
    if is_rate_limited(status):
        return "rl"
    return {2: "s2", 4: "s4", 5: "s5"}.get(status // 100, "s3")


def url_label(url: str) -> str:
    """A short name for a URL: a Vision file's name, or a REST request's UTC range as days."""
    found = dict(_MS.findall(url))
    if found:
        days = [
            dt.datetime.fromtimestamp(int(found[k]) / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M") for k in sorted(found)
        ]
        endpoint = url.split("?", 1)[0].rsplit("/", 2)
        return f"{'/'.join(endpoint[-2:])} {' .. '.join(reversed(days))}"
    return url.rsplit("/", 1)[-1] or url


def _day_of(text: str) -> str:
    found = _DAY.search(text)
    return found.group(1) if found else ""


def _instant(virtual: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(virtual.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None


def _offset(first: dt.datetime | None, now: dt.datetime | None) -> str:
    if first is None or now is None:
        return ""
    seconds = (now - first).total_seconds()
    if seconds == 0:
        return now.strftime("%H:%M:%S")
    return f"+{seconds:.3f}".rstrip("0").rstrip(".") + " s"


def _title(text: str) -> str:
    return f"<title>{escape(text)}</title>"


def _http(event: Mapping[str, Any], x: float, y: float, retry: bool) -> str:
    answer = event.get("status", event.get("error", "?"))
    extra = f" retry-after {event['retry_after']:g}s" if event.get("retry_after") is not None else ""
    where = url_label(str(event.get("url", "")))
    note = " (retry: the same request again)" if retry else ""
    tip = f"#{event.get('index', '')} {event.get('source')} {event.get('door', '')} {answer}{extra} · {where}{note}"
    ring = f'<circle class="ring" cx="{x:g}" cy="{y:g}" r="8"/>' if retry else ""
    return f'<g>{ring}<circle class="{status_class(event)}" cx="{x:g}" cy="{y:g}" r="5">{_title(tip)}</circle></g>'


def _day_label(event: Mapping[str, Any]) -> str:
    """The day a cache event names, as ``MM-DD`` (empty if it names none)."""
    return _day_of(str(event.get("path", "")))[5:]


def _cache(event: Mapping[str, Any], x: float, y: float, label_y: float) -> str:
    op = str(event.get("op", "?"))
    path = str(event.get("path", ""))
    day = _day_of(path)
    valid = event.get("valid")
    state = "" if valid is None else (" valid" if valid else " INVALID")
    size = f" {event['size']} B" if "size" in event else ""
    tip = _title(f"#{event.get('index', '')} cache {op} {day or path}{size}{state}")
    bad = " bad" if valid is False else ""
    label = f'<text class="day" x="{x:g}" y="{label_y:g}">{escape(day[5:])}</text>' if day else ""
    if op == "read":
        return f'<g><circle class="cr{bad}" cx="{x:g}" cy="{y:g}" r="4.5">{tip}</circle>{label}</g>'
    if op == "delete":
        return f'<g><path class="cd" d="M{x - 4:g} {y - 4:g}l8 8m0-8l-8 8">{tip}</path>{label}</g>'
    return f'<g><rect class="cw{bad}" x="{x - 4.5:g}" y="{y - 4.5:g}" width="9" height="9">{tip}</rect>{label}</g>'


def _fault(event: Mapping[str, Any], x: float, y: float) -> str:
    where = " ".join(str(event[k]) for k in ("day", "attempt") if k in event)
    tip = _title(f"#{event.get('index', '')} fault {event.get('id')} {where}".strip())
    return f'<path class="flt" d="M{x - 5:g} {y - 15:g}h10l-5 7z">{tip}</path>'


def _outcome_text(event: Mapping[str, Any]) -> str:
    """What the result lane says of an outcome: the error's type, or the rows."""
    return str(event["error"]) if "error" in event else f"{event.get('rows', 0)} rows"


def _outcome_width(event: Mapping[str, Any]) -> float:
    return round(label_width("ot", _outcome_text(event)) + 10, 1)


def _outcome(event: Mapping[str, Any], x: float, y: float) -> str:
    text = _outcome_text(event)
    if "error" in event:
        cls, tip = "oe", f"{event['error']}: {event.get('message', '')}"[:300]
    else:
        per = event.get("rows_by_source") or {}
        cls, tip = "ok", f"{text} (" + ", ".join(f"{s} {n}" for s, n in sorted(per.items())) + ")"
    width = _outcome_width(event)
    return (
        f'<g><rect class="{cls}" x="{x - 5:g}" y="{y - 8:g}" width="{width:g}" height="16" rx="8">{_title(tip)}</rect>'
        f'<text class="ot" x="{x:g}" y="{y + 4:g}">{escape(text)}</text></g>'
    )


def _sleep_label(event: Mapping[str, Any]) -> str:
    return f"{float(event.get('seconds', 0.0)):.3g}s"


def _sleep(event: Mapping[str, Any], x: float, bottom: float) -> str:
    seconds = float(event.get("seconds", 0.0))
    tip = _title(f"#{event.get('index', '')} sleep {seconds:g} s (virtual)")
    return (
        f'<g><rect class="slp" x="{x - 5:g}" y="{_SLEEP_TOP}" width="10" height="{bottom - _SLEEP_TOP}">{tip}</rect>'
        f'<text class="st" x="{x - 5:g}" y="{_SLEEP_Y}">{escape(_sleep_label(event))}</text></g>'
    )


def _request(event: Mapping[str, Any], x: float, top: float, bottom: float, number: int) -> str:
    states: dict[str, int] = {}
    for state in (event.get("cache_days") or {}).values():
        states[state] = states.get(state, 0) + 1
    before = ", ".join(f"{n} {s}" for s, n in states.items())
    tip = (
        f"fetch {number}: {event.get('market', '')} {event.get('symbol', '')} {event.get('interval', '')} "
        f"{event.get('start', '')} .. {event.get('end', '')}" + (f"; cache before: {before}" if before else "")
    )
    return (
        f'<g><path class="fetch" d="M{x:g} {top:g}V{bottom:g}">{_title(tip)}</path>'
        f'<text class="fl" x="{x + 3:g}" y="{_FETCH_Y}">fetch {number}</text></g>'
    )


def _wants(event: Mapping[str, Any], fetches: int) -> list[tuple[tuple[str, ...], float, float]]:
    """The labels an event draws: the shelves each may go on, its left edge relative to x, its width."""
    kind = event.get("kind")
    if kind == "request":
        return [(("fetch",), 3.0, label_width("fl", f"fetch {fetches + 1}")), (("result",), 0.0, 1.0)]
    if kind == "sleep":
        return [(("sleep",), -5.0, max(10.0, label_width("st", _sleep_label(event))))]
    if kind == "cache" and _day_label(event):
        width = label_width("day", _day_label(event))
        return [(("day0", "day1"), -width / 2, width)]
    if kind == "outcome":
        return [(("result",), -5.0, _outcome_width(event))]
    if kind == "violation":
        return [(("result",), -5.0, 10.0)]
    return []


def _layout(events: Sequence[Mapping[str, Any]]) -> tuple[list[tuple[float, str]], list[tuple[float, str]], float]:
    """x and label shelf of each event, the instant labels, and the rightmost x any label or mark reaches."""
    shelves = {name: Shelf() for name in ("tick", "fetch", "sleep", "day0", "day1", "result")}
    placed: list[tuple[float, str]] = []
    ticks: list[tuple[float, str]] = []
    x = float(_LEFT + 14)
    first = last = None
    fetches = 0
    spread = max(1.0, min(2.0, _ROOMY / max(1, len(events))))  # a short flow gets wider steps, up to twice
    for i, event in enumerate(events):
        virtual = str(event.get("virtual", ""))
        wants = _wants(event, fetches)
        fetches += event.get("kind") == "request"
        tick = ""
        if i == 0 or virtual != last:
            moment = _instant(virtual)
            x += _GAP * spread if i else 0
            first = first or moment
            tick = _offset(first, moment)
            wants.append((("tick",), -4.0, label_width("tl", tick)))
            last = virtual
        else:
            x += _STEP * spread
        x, chosen = place(x, wants, shelves)
        if tick:
            ticks.append((x, tick))
        placed.append((x, chosen[0] if chosen else ""))
    right = max([x + 12, *(s.right for s in shelves.values())])
    return placed, ticks, right


def flow_svg(events: Iterable[Mapping[str, Any]], note: str = "") -> str:
    """The decision flow of ``events`` (trace event mappings, in order) as one ``<svg>`` element."""
    drawn = sorted((e for e in events if e.get("kind") in DRAWN), key=lambda e: e.get("index", 0))
    lane_y = LANE_Y
    placed, ticks, right = _layout(drawn)
    bottom = lane_y["result"] + 16
    width = int(max(right + 8, _LEFT + 40, label_width("note", note) + 12 if note else 0))
    height = bottom + (16 if note else 4)
    parts = [
        f'<svg class="flow" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="decision flow">'
    ]
    for lane, y in lane_y.items():
        parts.append(
            f'<path class="lane" d="M{_LEFT:g} {y}H{width - 6}"/><text class="ln" x="4" y="{y + 4}">{lane}</text>'
        )
    for x, label in ticks:
        parts.append(
            f'<path class="tick" d="M{x - 6:g} 14V{bottom}"/><text class="tl" x="{x - 4:g}" y="{_TICK_Y}">'
            f"{escape(label)}</text>"
        )
    seen: set[tuple[Any, ...]] = set()
    flow_points: list[str] = []
    marks: list[str] = []
    fetches = 0
    for event, (x, shelf) in zip(drawn, placed, strict=True):
        kind = event.get("kind")
        if kind == "request":
            fetches += 1
            marks.append(_request(event, x, 14, bottom, fetches))
        elif kind == "http":
            source = event.get("source")
            y = lane_y["vision" if source == "vision" else "rest"]
            key = (source, event.get("door"), event.get("url"))
            marks.append(_http(event, x, y, key in seen))
            seen.add(key)
            flow_points.append(f"{x:g},{y}")
        elif kind == "cache":
            marks.append(_cache(event, x, lane_y["cache"], _DAY_Y[shelf == "day1"]))
            flow_points.append(f"{x:g},{lane_y['cache']}")
        elif kind == "fault":
            source = str(event.get("source", "rest"))
            marks.append(_fault(event, x, lane_y.get(source, lane_y["rest"])))
        elif kind == "sleep":
            marks.append(_sleep(event, x, bottom))
        elif kind == "outcome":
            y = lane_y["result"]
            marks.append(_outcome(event, x, y))
            flow_points.append(f"{x:g},{y}")
        elif kind == "violation":
            tip = _title(f"violation: {event.get('what', '?')} {event.get('detail', '')}".strip())
            y = lane_y["result"]
            marks.append(f'<path class="vio" d="M{x - 5:g} {y - 5:g}l10 10m0-10l-10 10">{tip}</path>')
    if len(flow_points) > 1:
        parts.append(f'<polyline class="path" points="{" ".join(flow_points)}"/>')
    parts.extend(marks)
    if note:
        parts.append(f'<text class="note" x="4" y="{height - 4}">{escape(note)}</text>')
    parts.append("</svg>")
    return "".join(parts)
