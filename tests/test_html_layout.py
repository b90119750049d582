"""The flow SVG's labels never overlap: label boxes computed from the SVG itself, for many days and events."""

from __future__ import annotations

import datetime as dt
import itertools
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_fcp.report import flow_svg
from pytest_fcp.report.layout import BOLD, FONT, Shelf, place, text_width

NS = "{http://www.w3.org/2000/svg}"
T0 = dt.datetime(2024, 2, 10, 12, tzinfo=dt.UTC)
Box = tuple[str, float, float, float, float]  # what, left, top, right, bottom


def label_boxes(svg: str) -> list[Box]:
    """Every text's box (from its x, y, anchor, class font size and text) and every outcome pill of ``svg``."""
    root = ET.fromstring(svg)
    boxes: list[Box] = []
    for el in root.iter():
        cls = el.get("class") or ""
        if el.tag == f"{NS}text" and cls != "ot":  # an outcome's text sits in its pill (see _pills_hold_text)
            size = FONT.get(cls, 10)
            width = text_width(el.text or "", size, cls in BOLD)
            x, y = float(el.get("x", 0)), float(el.get("y", 0))
            left = x - width / 2 if cls == "day" else x
            boxes.append((f"{cls}:{el.text}", left, y - 0.95 * size, left + width, y + 0.25 * size))
        elif el.tag == f"{NS}rect" and cls in ("ok", "oe"):
            x, y = float(el.get("x", 0)), float(el.get("y", 0))
            boxes.append((f"pill@{x:g}", x, y, x + float(el.get("width", 0)), y + float(el.get("height", 0))))
    return boxes


def overlaps(boxes: list[Box]) -> list[tuple[str, str]]:
    """The pairs of boxes that intersect (touching edges do not count)."""
    out = []
    for a, b in itertools.combinations(boxes, 2):
        if a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]:
            out.append((a[0], b[0]))
    return out


def _pills_hold_text(svg: str) -> bool:
    """Whether each outcome's text fits inside its pill."""
    root = ET.fromstring(svg)
    pills = [el for el in root.iter(f"{NS}rect") if el.get("class") in ("ok", "oe")]
    texts = [el for el in root.iter(f"{NS}text") if el.get("class") == "ot"]
    return len(pills) == len(texts) and all(
        float(t.get("x", 0)) + text_width(t.text or "", FONT["ot"], True)
        <= float(r.get("x", 0)) + float(r.get("width", 0))
        for r, t in zip(pills, texts, strict=True)
    )


def _inside(svg: str) -> list[str]:
    """Labels that stick out of the SVG's width."""
    width = float(ET.fromstring(svg).get("width", 0))
    return [b[0] for b in label_boxes(svg) if b[1] < 0 or b[3] > width]


def _stamp(raw: list[tuple[str, float, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Trace events from (kind, virtual seconds after T0, data)."""
    return [
        {"index": i, "kind": k, "virtual": (T0 + dt.timedelta(seconds=s)).isoformat().replace("+00:00", "Z"), **d}
        for i, (k, s, d) in enumerate(raw)
    ]


def month_from_vision(days: int = 35) -> list[dict[str, Any]]:
    """One month-long fetch from Vision: per day a zip, its CHECKSUM and a cache write, all in one instant."""
    raw: list[tuple[str, float, dict[str, Any]]] = [("request", 0, {"symbol": "BTCUSDT"})]
    for n in range(days):
        day = (dt.date(2024, 1, 1) + dt.timedelta(days=n)).isoformat()
        url = f"https://data.binance.vision/x/BTCUSDT-1h-{day}.zip"
        raw += [("cache", 0, {"op": "read", "path": f"spot/BTCUSDT/1h/{day}.arrow"})]
        raw += [("http", 0, {"source": "vision", "url": url, "status": 200})]
        raw += [("http", 0, {"source": "vision", "url": url + ".CHECKSUM", "status": 200})]
        raw += [("cache", 0, {"op": "write", "path": f"spot/BTCUSDT/1h/{day}.arrow", "valid": True})]
    return _stamp([*raw, ("outcome", 0, {"rows": 24 * days})])


def one_bar_fetches(fetches: int = 40) -> list[dict[str, Any]]:
    """Many 1-bar fetches through one engine, the clock stepping before each, some retried after a wait."""
    raw: list[tuple[str, float, dict[str, Any]]] = []
    second = 0.0
    for n in range(fetches):
        day = (dt.date(2024, 1, 1) + dt.timedelta(days=n % 28)).isoformat()
        second += 60
        raw += [("request", second, {"interval": "1m"}), ("cache", second, {"op": "read", "path": f"a/{day}.arrow"})]
        if n % 3 == 0:
            raw += [("http", second, {"source": "rest", "url": f"u{n}", "status": 429, "retry_after": 0.125})]
            raw += [("sleep", second, {"seconds": 0.125 * (n + 1)})]
            second += 0.125 * (n + 1)
        raw += [("http", second, {"source": "rest", "url": f"u{n}", "status": 200})]
        raw += [("cache", second, {"op": "write", "path": f"a/{day}.arrow"})]
        outcome = {"error": "DataSourceError", "message": "no source left"} if n % 5 == 4 else {"rows": 1}
        raw += [("outcome", second, outcome)]
    return _stamp(raw)


def retry_storm(attempts: int = 60) -> list[dict[str, Any]]:
    """A REST 429 storm: every request its own instant, each followed by a growing wait, then an error."""
    raw: list[tuple[str, float, dict[str, Any]]] = [("request", 0, {})]
    second = 0.0
    for n in range(attempts):
        raw += [("fault", second, {"id": "rest.http429", "source": "rest"})]
        raw += [("http", second, {"source": "rest", "url": "u", "status": 429})]
        raw += [("sleep", second, {"seconds": 1.5**n})]
        second += 1.5**n
    raw += [("violation", second, {"what": "unserved"}), ("outcome", second, {"error": "RateLimitErrorWWWMMM"})]
    return _stamp(raw)


def clock_steps(steps: int = 60) -> list[dict[str, Any]]:
    """Every event its own instant, far from the first (long offset labels), cache days back to back."""
    raw: list[tuple[str, float, dict[str, Any]]] = []
    for n in range(steps):
        day = (dt.date(2024, 1, 1) + dt.timedelta(days=n)).isoformat()
        raw += [("http", 10_000.001 * n, {"source": "rest", "url": f"u{n}", "status": 200})]
        raw += [("cache", 10_000.001 * n + 0.5, {"op": "write", "path": f"a/{day}.arrow"})]
    return _stamp(raw)


@pytest.mark.parametrize(
    "events",
    [month_from_vision(), one_bar_fetches(), retry_storm(), clock_steps()],
    ids=["month", "1bar", "429", "clock"],
)
def test_no_two_labels_overlap(events: list[dict[str, Any]]) -> None:
    svg = flow_svg(events, note="first 300 of 400 events shown")
    boxes = label_boxes(svg)
    assert overlaps(boxes) == [] and _inside(svg) == [] and _pills_hold_text(svg)
    days = [b for b in boxes if b[0].startswith("day:")]
    assert len(days) == sum(1 for e in events if e["kind"] == "cache")  # every cache day keeps its label
    assert len([b for b in boxes if b[0].startswith("fl:")]) == sum(1 for e in events if e["kind"] == "request")
    # the events keep their order left to right
    root = ET.fromstring(svg)
    xs = [float(c.get("cx")) for c in root.iter(f"{NS}circle") if c.get("class") not in ("ring", "cr")]
    assert xs == sorted(xs)


def test_back_to_back_days_use_both_bands_and_stay_compact() -> None:
    dense = _stamp([("cache", 0, {"op": "write", "path": f"a/2024-01-{d:02}.arrow"}) for d in range(1, 32)])
    svg = flow_svg(dense)
    assert overlaps(label_boxes(svg)) == []
    assert len({b[4] for b in label_boxes(svg) if b[0].startswith("day:")}) == 2  # back to back: two bands
    assert float(ET.fromstring(svg).get("width", 0)) < 31 * 24  # and no wider than it needs


def test_the_overlap_check_sees_overlapping_labels() -> None:
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40">'
        '<text class="day" x="50" y="20">01-02</text><text class="day" x="60" y="20">01-03</text>'
        '<text class="tl" x="100" y="10">12:00:00</text><text class="fl" x="100" y="30">fetch 1</text></svg>'
    )
    assert overlaps(label_boxes(svg)) == [("day:01-02", "day:01-03")]
    assert _inside(svg.replace('width="200"', 'width="145"')) == ["tl:12:00:00"]


def test_place_moves_a_label_right_until_it_clears_its_shelf() -> None:
    shelves = {"a": Shelf(), "b": Shelf()}
    assert place(10, [(("a",), 0, 30)], shelves) == (10, ["a"])
    assert place(20, [(("a", "b"), 0, 30)], shelves) == (20, ["b"])  # the other band is free
    x, chosen = place(25, [(("a", "b"), 0, 30)], shelves)
    assert chosen == ["a"] and x == 44  # both taken: after the first band's label (40) and a 4 px gap


_KINDS = st.sampled_from(["request", "cache", "http", "fault", "sleep", "outcome", "violation"])


@st.composite
def _traces(draw: st.DrawFn) -> list[dict[str, Any]]:
    raw: list[tuple[str, float, dict[str, Any]]] = []
    second = 0.0
    for _ in range(draw(st.integers(1, 120))):
        second += draw(st.sampled_from([0, 0, 0, 0.001, 1, 3600, 86400 * 3]))
        kind = draw(_KINDS)
        day = dt.date(2024, 1, 1) + dt.timedelta(days=draw(st.integers(0, 60)))
        data: dict[str, Any] = {
            "request": {},
            "cache": {"op": draw(st.sampled_from(["read", "write", "delete"])), "path": f"x/{day}.arrow"},
            "http": {"source": draw(st.sampled_from(["vision", "rest"])), "url": "u", "status": 200},
            "fault": {"id": "f", "source": "rest"},
            "sleep": {"seconds": draw(st.floats(0.001, 1e6))},
            "outcome": draw(st.sampled_from([{"rows": 10**6}, {"error": "WWW" * 6}, {"rows": 0}])),
            "violation": {"what": "x"},
        }[kind]
        raw.append((kind, second, data))
    return _stamp(raw)


@settings(max_examples=60, deadline=None)
@given(_traces())
def test_no_overlap_in_any_trace(events: list[dict[str, Any]]) -> None:
    svg = flow_svg(events)
    assert overlaps(label_boxes(svg)) == [] and _inside(svg) == [] and _pills_hold_text(svg)
