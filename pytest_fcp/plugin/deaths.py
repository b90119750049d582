"""An isolated engine that died or hung: the verdict that names it, and the test's reports, made in the parent.

The child's streamed trace events say how far it got: which fetch, and the last cache operation or request
the world saw. The reports go through pytest's own ``pytest_runtest_makereport`` hooks with a stand-in world
holding those events, so the decision-trace section, the replay line, ``report.fcp_trace`` (JSON Lines, HTML)
and, for a scenario, its baseline comparison (``report.fcp_scenario``) are made as for any other test. A
scenario's baseline can record a death like any failure: ``failures = ["engine_death: engine process died:
SIGBUS during fetch 2"]``, its fetch's outcome ``SIGBUS``; the day tables of a death are not recorded.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_fcp.plugin.forkserver import Death
from pytest_fcp.plugin.settings import ENGINE_NAME_KEY, WORLD_KEY
from pytest_fcp.trace import Event, Trace

__all__ = ["DeadWorld", "death_reports", "death_verdict"]

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_VERBS = {"read": "reading", "write": "writing", "replace": "replacing", "delete": "deleting"}


@dataclass(frozen=True)
class _Faults:
    faults: tuple[Any, ...]


@dataclass
class DeadWorld:
    """What the reporting hooks read of a world, for a test whose world died with its process."""

    trace: Trace
    faults: _Faults
    results: tuple[()] = ()
    violations: tuple[()] = ()


def _last(events: list[dict[str, Any]]) -> str:
    """The last cache operation or request the world saw in the last fetch, in words; else what the cache held
    when that fetch began (a native read is seen only at the engine's next request)."""
    for event in reversed(events):
        if event.get("kind") == "request":
            cached = sorted(day for day, word in (event.get("cache_days") or {}).items() if word != "miss")
            return "before any request" + (f" (its cache held {', '.join(cached)})" if cached else "")
        if event.get("kind") == "cache":
            path = str(event.get("path", ""))
            found = _DAY.findall(path)
            return f"after {_VERBS.get(str(event.get('op')), str(event.get('op')))} {found[-1] if found else path}"
        if event.get("kind") == "http":
            answer = event.get("status") or event.get("error") or "?"
            return f"after {event.get('method', 'GET')} {event.get('url', '')} ({answer})"
    return ""


def _fetch(events: list[dict[str, Any]]) -> tuple[int, bool]:
    """How many fetches began, and whether the last of them had ended."""
    kinds = [e.get("kind") for e in events if e.get("kind") in ("request", "outcome")]
    return kinds.count("request"), bool(kinds) and kinds[-1] == "outcome"


def death_verdict(death: Death) -> tuple[str, str, str]:
    """``(check, verdict, stable key)``: e.g. ``engine_death``, ``engine process died: SIGBUS during fetch 2,
    after reading 2024-01-03`` and the same without what follows the fetch number."""
    fetches, ended = _fetch(death.events)
    when = "before its first fetch" if not fetches else f"{'after' if ended else 'during'} fetch {fetches}"
    last = _last(death.events)
    if death.kind == "died":
        key = f"engine process died: {death.what} {when}"
        return "engine_death", key + (f", {last}" if last else ""), key
    key = f"engine hung {when}" if death.kind == "hung" else f"engine still running {when}"
    head = f"engine hung: {death.what} {when}" if death.kind == "hung" else f"engine {death.what} {when}"
    return "engine_hung", head + (f" ({last})" if last else ""), key


def _record(death: Death, check: str, key: str) -> Any:
    """The scenario's baseline record: each fetch's outcome (the dying one's the signal, exit code or hang), the
    failure, and totals counted from the streamed events (request weights are not streamed: 0)."""
    from pytest_fcp.baseline import FetchRecord, Record, Totals

    outcomes: list[str] = []
    for event in death.events:
        if event.get("kind") == "request":
            outcomes.append("")
        elif event.get("kind") == "outcome" and outcomes:
            outcomes[-1] = str(event.get("error") or "data")
    dying = re.sub(r"[^A-Za-z0-9_]+", "_", death.what if death.kind == "died" else death.kind)
    outcomes = [o or dying for o in outcomes] or [dying]
    http = [e for e in death.events if e.get("kind") == "http"]
    counts = Counter(str(e.get("source")) for e in http)
    urls = Counter((e.get("source"), e.get("door"), e.get("url")) for e in http)
    retries = sum(n - 1 for n in urls.values())
    sleeps = sum(1 for e in death.events if e.get("kind") == "sleep")
    totals = Totals(counts["vision"], counts["rest"], 0, retries, sleeps)
    return Record(tuple(FetchRecord(o, ()) for o in outcomes), (f"{check}: {key}",), totals)


def death_reports(item: pytest.Item, death: Death) -> list[pytest.TestReport]:
    """The setup, call and teardown reports of ``item`` whose child died or hung, made by pytest's hooks."""
    from _pytest.runner import CallInfo

    check, verdict, key = death_verdict(death)
    trace = Trace()
    trace.events = [Event.from_dict(e) for e in death.events]
    scenario = getattr(item, "scenario", None)
    item.stash[WORLD_KEY] = DeadWorld(trace, _Faults(tuple(scenario.faults) if scenario is not None else ()))  # type: ignore[arg-type]
    engine = getattr(item, "engine", None)
    if engine:
        item.stash[ENGINE_NAME_KEY] = engine
    path = trace.path()

    def call() -> None:
        conclude = getattr(item, "conclude", None)
        if callable(conclude):
            conclude(_record(death, check, key), [f"[{check}] {verdict}"], path)
        else:
            pytest.fail(f"{item.name}: {verdict}\n  FAIL [{check}] {verdict}\n  path: {path}", pytrace=False)

    reports: list[pytest.TestReport] = []
    for when, func in (("setup", lambda: None), ("call", call), ("teardown", lambda: None)):
        info = CallInfo.from_call(func, when=when, reraise=(pytest.exit.Exception, KeyboardInterrupt))  # type: ignore[arg-type]
        reports.append(item.ihook.pytest_runtest_makereport(item=item, call=info))
    if death.native:
        lines = [line for line in death.native.splitlines() if not line.startswith("Extension modules")]
        reports[1].sections.append(("fcp engine traceback", "\n".join(lines[:80])))
    return reports
