"""``fcp diagnose ... --html PATH``: the diagnosed fetch's decision flow as a self-contained HTML page.

The same picture as ``pytest --fcp-html`` draws for each test (:func:`pytest_fcp.report.render_single`): the
flow along the lanes cache, Vision and REST, the contract's verdicts (simulated runs), the faults and the
per-day decision table, built here from the :class:`~pytest_fcp.cli.diagnose.Diagnosis`.
"""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import re
from collections import Counter
from typing import TYPE_CHECKING, Any

from pytest_fcp.cli.args import UsageError
from pytest_fcp.cli.output import iso

if TYPE_CHECKING:
    from pytest_fcp.cli.diagnose import Diagnosis

__all__ = ["check_html_path", "diagnosis_data", "write_html"]

_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})")
_MS = re.compile(r"(startTime|endTime)=(\d+)")


def check_html_path(path: pathlib.Path | None) -> pathlib.Path | None:
    """The ``--html`` path made absolute, or a usage error when its directory is missing or not writable."""
    if path is None:
        return None
    target = path.resolve()
    if target.is_dir():
        raise UsageError(f"--html {path}: is a directory; give the path of a file")
    if not target.parent.is_dir():
        raise UsageError(f"--html {path}: no such directory {target.parent}")
    if not os.access(target.parent, os.W_OK):
        raise UsageError(f"--html {path}: {target.parent} is not writable")
    return target


def _days_of(event: Any) -> list[str]:
    """The UTC days an http event asked about: a Vision file's day, a REST request's range."""
    url = str(event.data.get("url", ""))
    found = dict(_MS.findall(url))
    if "startTime" in found:
        start = dt.datetime.fromtimestamp(int(found["startTime"]) / 1000, dt.UTC).date()
        end_ms = int(found.get("endTime", found["startTime"]))
        end = dt.datetime.fromtimestamp(end_ms / 1000, dt.UTC).date()
        return [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
    day = _DAY.search(url)
    return [day.group(1)] if day else []


def _answers(d: Diagnosis) -> tuple[dict[str, Counter[str]], dict[str, Counter[str]]]:
    vision: dict[str, Counter[str]] = {}
    rest: dict[str, Counter[str]] = {}
    for event in d.events:
        if event.kind != "http":
            continue
        source = event.data.get("source")
        answer = str(event.data.get("status", event.data.get("error", "?")))
        label = f"{event.data.get('door', '')} {answer}".strip() if source == "vision" else answer
        into = vision if source == "vision" else rest
        for day in _days_of(event):
            into.setdefault(day, Counter())[label] += 1
    return vision, rest


def _counted(counts: Counter[str] | None) -> str:
    return ", ".join(f"{item} x{n}" for item, n in sorted((counts or Counter()).items()))


def diagnosis_data(d: Diagnosis) -> dict[str, Any]:
    """The diagnosis as the report's plain test data (events, faults, verdicts, the per-day table)."""
    from pytest_fcp.core.markets import days_between
    from pytest_fcp.report import cap_events, event_totals

    vision, rest = _answers(d)
    days = sorted({x.isoformat() for x in days_between(d.start, d.end)} | set(vision) | set(rest))
    table = {
        day: {
            "cache_before": d.cache_before.get(day, ""),
            "vision": _counted(vision.get(day)),
            "rest": _counted(rest.get(day)),
            "rows": ", ".join(f"{s} {n}" for s, n in sorted(d.rows_by_day.get(day, {}).items())),
            "cache_after": d.cache_after.get(day, ""),
        }
        for day in days
    }
    events = [e.to_dict() for e in d.events]
    failures = [f"{check}: {reason}" for check, reason in d.verdicts or []]
    sources = d.sources()
    if d.verdicts is None:
        label = "live: not judged"
    else:
        label = "contract kept" if not failures else f"contract broken ({len(failures)} verdict(s))"
    return {
        "nodeid": f"fcp diagnose {d.symbol} {d.market} {d.interval}",
        "engine": d.engine,
        "outcome": "failed" if d.error or failures else "passed",
        "label": label,
        "first": failures[0] if failures else "",
        "path": d.path,
        "faults": list(d.faults),
        "events": cap_events(events),
        "events_total": event_totals(events),
        "record": {
            "outcome": "data" if d.error is None else d.error.split(":", 1)[0],
            "failures": failures,
            "totals": {
                "vision": sources["vision"]["requests"],
                "rest": sources["rest"]["requests"],
                "sleeps": sum(1 for e in d.events if e.kind == "sleep"),
            },
            "days": table,
        },
    }


def write_html(d: Diagnosis, target: pathlib.Path) -> pathlib.Path:
    """Write the diagnosis's page to ``target``; return the path."""
    from pytest_fcp.report import render_single

    where = "simulated world (offline)" if d.mode == "simulated" else "live Binance"
    lines = [
        f"engine {d.engine}, {where}; range {iso(d.start)} .. {iso(d.end)}, now {iso(d.now)}",
        f"faults: {', '.join(d.faults) or 'none'}; cache dir {d.cache_dir}",
        "Outcome: " + (f"FAILED - {d.error}" if d.error else f"{d.rows} rows in {d.wall_ms:.0f} ms"),
    ]
    lines += [f"{h['severity']} {h['id']}: {h['text']}" for h in d.hints]
    text = render_single(diagnosis_data(d), f"fcp diagnose {d.symbol} {d.market} {d.interval}", lines)
    target.write_text(text, encoding="utf-8")
    return target
