"""The values of a scenario's ``expect`` table (outcome, sources, request counts, cache states, checks to
skip) and the day values every field shares, each checked with one clear line."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from pytest_fcp.core.cache_states import DAY_STATES as CACHE_STATES
from pytest_fcp.core.markets import LISTED_SINCE
from pytest_fcp.core.sources import OUTCOMES, SOURCES
from pytest_fcp.scenarios.model import Expect, count_ok
from pytest_fcp.scenarios.validate_runs import Fail

__all__ = ["EXPECT_KEYS", "SKIPPABLE", "parse_day", "parse_expect"]

EXPECT_KEYS = {"outcome", "sources", "requests", "cache_after", "skip_checks"}
#: The checks a scenario may switch off: those about how the engine asked, never about what it returned or cached.
SKIPPABLE = ("order", "needed_only", "rate_limit")


def parse_day(value: Any, fail: Fail, what: str) -> dt.date:
    """A day from a TOML date or an ISO string, not before the listing day."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        day = value
    elif isinstance(value, str):
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            fail(what, f"{value!r} is not a day (write 2024-01-02)")
    else:
        fail(what, f"{value!r} is not a day (write 2024-01-02)")
    if day < LISTED_SINCE:
        fail(what, f"{day} is before the market's listing day {LISTED_SINCE}: no bar exists then")
    return day


def _alternatives(value: Any, allowed: Iterable[str], fail: Fail, what: str) -> frozenset[str]:
    items = value if isinstance(value, list) else str(value).split("|") if isinstance(value, str) else None
    if not items:
        fail(what, f"expected a name or a list of names from {', '.join(allowed)}, got {value!r}")
    out = frozenset(str(i).strip() for i in items)
    bad = sorted(out - set(allowed))
    if bad:
        fail(what, f"unknown {', '.join(map(repr, bad))}; allowed: {', '.join(allowed)}")
    return out


def parse_expect(raw: Any, fail: Fail) -> Expect:
    """A scenario's ``expect`` table, each key checked."""
    if not isinstance(raw, dict):
        fail("expect", f"expected a table, got {type(raw).__name__}")
    unknown = sorted(set(raw) - EXPECT_KEYS)
    if unknown:
        fail(f"expect.{unknown[0]}", f"unknown key; allowed: {', '.join(sorted(EXPECT_KEYS))}")
    outcome = tuple(sorted(_alternatives(raw["outcome"], OUTCOMES, fail, "expect.outcome"))) if "outcome" in raw else ()
    tables: dict[str, dict[str, frozenset[str]]] = {"sources": {}, "cache_after": {}}
    for name, allowed in (("sources", SOURCES), ("cache_after", CACHE_STATES)):
        value = raw.get(name) or {}
        if not isinstance(value, dict):
            fail(f"expect.{name}", f"expected a table of days (or default) to names, got {value!r}")
        for key, names in value.items():
            day = key if key == "default" else parse_day(key, fail, f"expect.{name}.{key}").isoformat()
            tables[name][day] = _alternatives(names, allowed, fail, f"expect.{name}.{key}")
    requests: dict[str, str] = {}
    counts = raw.get("requests") or {}
    if not isinstance(counts, dict):
        fail("expect.requests", f"expected a table like {{ vision = 0, rest = '>=1' }}, got {counts!r}")
    for key, value in counts.items():
        if key not in ("vision", "rest"):
            fail(f"expect.requests.{key}", "unknown source; allowed: vision, rest")
        try:
            count_ok(value, 0)
        except ValueError:
            fail(f"expect.requests.{key}", f"{value!r} is not a count like 0, '>=1' or '<=3'")
        requests[key] = str(value)
    skip = raw.get("skip_checks", [])
    if not isinstance(skip, list) or any(s not in SKIPPABLE for s in skip):
        from pytest_fcp.contract import CHECKS  # only for this message: the checks need numpy and pyarrow

        guarded = ", ".join(c for c in CHECKS if c not in SKIPPABLE)
        fail(
            "expect.skip_checks",
            f"expected a list of check names from {', '.join(SKIPPABLE)}, got {skip!r} "
            f"({guarded} judge the data and the cache: no scenario may switch them off)",
        )
    return Expect(outcome, tables["sources"], requests, tables["cache_after"], frozenset(skip))
