"""How a scenario's behaviour differs from its baseline: same, worse, better, changed or new, with readable lines."""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_fcp.baseline.record import DAY_FIELDS, TOTAL_FIELDS, DayRow, FetchRecord, Record

__all__ = ["KINDS", "Change", "compare", "first_line", "render"]

#: The kinds of change, from the baseline to a run.
KINDS = ("same", "worse", "better", "changed", "new")

_NONE = "(none)"
_ABSENT = "(absent)"


@dataclass(frozen=True)
class Change:
    """A scenario's change from its baseline: ``kind`` (one of :data:`KINDS`) and its lines, most important first."""

    kind: str
    lines: list[str] = field(default_factory=list)


def _line(text: str) -> str:
    return text.replace("\n", "\\n").replace("\r", "\\r")


def _failure(key: str) -> str:
    key = _line(key)
    check, sep, text = key.partition(": ")
    return f"[{check}] {text}" if sep and check and " " not in check else key


def _shown(value: str) -> str:
    return _line(value) if value else _NONE


def _day_summary(row: DayRow) -> str:
    parts = [f"{name} {_line(getattr(row, name))}" for name in DAY_FIELDS if getattr(row, name)]
    return ", ".join(parts) if parts else "(nothing)"


def _day_lines(expected: FetchRecord | None, actual: FetchRecord | None, prefix: str) -> list[str]:
    before = {row.day: row for row in expected.days} if expected else {}
    after = {row.day: row for row in actual.days} if actual else {}
    lines = []
    for day in sorted(before.keys() | after.keys()):
        old, new = before.get(day), after.get(day)
        if old is None or new is None:
            old_text = _day_summary(old) if old else _ABSENT
            new_text = _day_summary(new) if new else _ABSENT
            lines.append(f"{prefix}{day}: {old_text} -> {new_text}")
            continue
        for name in DAY_FIELDS:
            if getattr(old, name) != getattr(new, name):
                lines.append(f"{prefix}{day}: {name} {_shown(getattr(old, name))} -> {_shown(getattr(new, name))}")
    return lines


def compare(expected: Record | None, actual: Record) -> Change:
    """How ``actual`` differs from the baseline's ``expected`` record (``None``: the scenario is not in it)."""
    if expected is None:
        count = len(actual.failures)
        summary = f"{count} failure{'s' if count != 1 else ''}" if count else "no failures"
        lines = [f"not in the baseline: outcome {' / '.join(actual.outcomes)}, {summary}"]
        return Change("new", lines + [f"failing {_failure(key)}" for key in actual.failures])
    lines: list[str] = []
    worse = other = False
    old_fetches, new_fetches = expected.fetches, actual.fetches
    several = max(len(old_fetches), len(new_fetches)) > 1
    if len(old_fetches) != len(new_fetches):
        lines.append(f"fetches {len(old_fetches)} -> {len(new_fetches)}")
        other = True
    pairs = [
        (old_fetches[i] if i < len(old_fetches) else None, new_fetches[i] if i < len(new_fetches) else None)
        for i in range(max(len(old_fetches), len(new_fetches)))
    ]
    for i, (old, new) in enumerate(pairs):
        old_outcome, new_outcome = old.outcome if old else _ABSENT, new.outcome if new else _ABSENT
        if old_outcome != new_outcome:
            label = f"fetch {i + 1}: outcome" if several else "outcome"
            lines.append(f"{label} {old_outcome} -> {new_outcome}")
            if old_outcome == "data" and new_outcome != _ABSENT:
                worse = True
            else:
                other = True
    added = sorted(set(actual.failures) - set(expected.failures))
    removed = sorted(set(expected.failures) - set(actual.failures))
    lines += [f"newly failing {_failure(key)}" for key in added]
    lines += [f"no longer failing {_failure(key)}" for key in removed]
    worse = worse or bool(added)
    for i, (old, new) in enumerate(pairs):
        day_lines = _day_lines(old, new, f"fetch {i + 1}, " if several else "")
        lines += day_lines
        other = other or bool(day_lines)
    totals = [
        f"{name} {getattr(expected.totals, name)} -> {getattr(actual.totals, name)}"  # counts: always integers
        for name in TOTAL_FIELDS
        if getattr(expected.totals, name) != getattr(actual.totals, name)
    ]
    if totals:
        lines.append("totals: " + ", ".join(totals))
        other = True
    kind = "worse" if worse else "changed" if other else "better" if removed else "same"
    return Change(kind, lines)


def first_line(change: Change) -> str:
    """The change in one line, for a run's summary: its kind, its first line, and how many more there are."""
    if not change.lines:
        return change.kind
    more = len(change.lines) - 1
    return f"{change.kind}: {change.lines[0]}" + (f" (+{more} more)" if more else "")


def render(change: Change, limit: int = 20) -> str:
    """The change's lines, one per line, capped at ``limit`` lines and then "… N more differences"."""
    lines = change.lines
    if len(lines) > limit:
        rest = len(lines) - limit
        lines = [*lines[:limit], f"… {rest} more difference{'s' if rest != 1 else ''}"]
    return "\n".join(lines)
