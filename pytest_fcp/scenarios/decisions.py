"""A run's behaviour as a baseline record: per fetch its outcome and a decision table per UTC day, the
contract failures as stable keys, and counted totals. Canonical and order-free, so the same engine version
gives the same record whatever order its threads ran in.

Fetches that ran together with others (several engine instances on one cache) keep only what does not depend on
their timing: the outcome, the failures, each day's cache state before and after and its row count.

Per day: the cache state before; Vision's answers (door, status or exception, count); REST's answers
(status or exception, count) for every request whose range touched the day; rows by source; the cache state
after. Days outside the request appear when the engine asked about them or returned rows for them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from pytest_fcp.baseline import DayRow, FetchRecord, Record, Totals
from pytest_fcp.contract import Verdict
from pytest_fcp.world.observation import Observation
from pytest_fcp.world.recorder import RequestRecord

__all__ = ["failure_key", "fetch_record", "record_of"]

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
_TASK = re.compile(r"\b(Id|ThreadId)\(\d+\)")  # a Rust async task's or thread's number in a panic: new every run
_TEMP = re.compile(r"(/[^\s'\"]*?)?/(fcp-[A-Za-z0-9_]+|pytest-of-[^/\s'\"]+|tmp[A-Za-z0-9_]{6,})(/[^\s'\"),]*)?")


def failure_key(verdict: Verdict, cache_root: str | None = None) -> str:
    """``check: reason`` with temporary paths, memory addresses and Rust task numbers masked, so the key is stable
    run to run."""
    reason = verdict.reason
    if cache_root:
        reason = reason.replace(cache_root, "<cache>")
    reason = _ADDRESS.sub("0x…", reason)
    reason = _TASK.sub(r"\1(…)", reason)
    reason = _TEMP.sub("<tmp>", reason)
    return f"{verdict.at}: [{verdict.check}] {reason}" if verdict.at else f"{verdict.check}: {reason}"


def _answer(record: RequestRecord) -> str:
    return str(record.status) if record.status is not None else str(record.error or "?")


def _counted(items: Iterable[str]) -> str:
    counts = Counter(items)
    return ", ".join(f"{item} x{n}" for item, n in sorted(counts.items()))


def fetch_record(obs: Observation) -> FetchRecord:
    """One fetch's outcome and decision table."""
    vision: dict[dt.date, list[str]] = {}
    rest: dict[dt.date, list[str]] = {}
    for record in obs.requests:
        into = vision if record.source == "vision" else rest
        label = f"{record.door} {_answer(record)}" if record.source == "vision" else _answer(record)
        for day in record.days:
            into.setdefault(day, []).append(label)
    rows = {day: per for day, per in obs.rows_per_day.items() if day is not None}
    days = sorted(set(obs.days) | set(vision) | set(rest) | set(rows))
    table = []
    alone = obs.together == 1  # beside other fetches, which source served a day is the timing's, not the engine's
    for day in days:
        before, after = obs.cache_before.get(day), obs.cache_after.get(day)
        per = rows.get(day, {})
        table.append(
            DayRow(
                day.isoformat(),
                cache_before=before.status if before else "",
                vision=_counted(vision.get(day, ())) if alone else "",
                rest=_counted(rest.get(day, ())) if alone else "",
                rows=", ".join(f"{source} {n}" for source, n in sorted(per.items()))
                if alone
                else (f"{sum(per.values())}" if per else ""),
                cache_after=after.status if after else "",
            )
        )
    outcome = "data" if obs.error is None else type(obs.error).__name__
    return FetchRecord(outcome, tuple(table))


def _totals(observations: Sequence[Observation]) -> Totals:
    seen: set[tuple[str, str, str]] = set()
    retries = weight = sleeps = 0
    counts: Counter[str] = Counter()
    for obs in observations:
        if obs.together > 1:
            continue  # how many requests fetches running together make depends on their timing
        for record in obs.requests:
            counts[record.source] += 1
            weight += record.target.weight
            key = (record.source, record.door, record.url)
            retries += key in seen
            seen.add(key)
        sleeps += sum(1 for e in obs.events if e.kind == "sleep")
    return Totals(counts["vision"], counts["rest"], weight, retries, sleeps)


def record_of(
    observations: Sequence[Observation], verdicts: Iterable[Verdict], cache_root: str | None = None
) -> Record:
    """The baseline record of a run: its fetches, its failures and its totals."""
    failures = tuple(sorted({failure_key(v, cache_root) for v in verdicts}))
    return Record(tuple(fetch_record(obs) for obs in observations), failures, _totals(observations))
