"""The hints of ``fcp diagnose``: what went wrong and what to do.

Advice about the environment (Vision refusing a region, rate limits, failing sources, days too recent for
Vision, unusable cache files) is given in both modes. Whether the engine kept the FCP contract is, in a
simulated run, the contract's own verdicts (:func:`pytest_fcp.contract.judge`, one problem hint per verdict,
keyed by its check); a live run has no truth to judge against, so it applies the same rules heuristically.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from pytest_fcp.cli.diagnose import NO_SOURCE, Diagnosis
from pytest_fcp.core.freshness import FRESHNESS_HOURS
from pytest_fcp.core.markets import VISION_HOST
from pytest_fcp.core.sources import is_rate_limited

if TYPE_CHECKING:
    from pytest_fcp.trace import Event

__all__ = ["add_hints"]


def add_hints(d: Diagnosis) -> None:
    """Append the diagnosis' hints, most important first, ending with ``ok`` when none is a problem."""

    def hint(key: str, severity: str, text: str) -> None:
        d.hints.append({"id": key, "severity": severity, "text": text})

    http = [e for e in d.events if e.kind == "http"]
    vision = [e for e in http if e.data.get("source") == "vision"]
    rest = [e for e in http if e.data.get("source") == "rest"]
    recent = d.recent_days()
    judged = d.verdicts  # the contract's verdicts (simulated) replace the rule hints marked "judged is None"

    if d.error is not None:
        hint("fetch_failed", "problem", f"the fetch failed: {d.error}")
    forbidden = [e for e in vision if e.data.get("status") == 403]
    if forbidden:
        hint(
            "vision_403",
            "problem",
            f"Binance Vision answered 403 Forbidden to {len(forbidden)} request(s). "
            f"{VISION_HOST} refuses "
            "some networks and regions (it is geo-blocked e.g. in the US, and behind some proxies and cloud "
            "hosts); the engine had to fall back to REST, which is slower, rate-limited and per-request "
            "weighted. Run from a network Vision serves, or expect REST-only fetches.",
        )
    limited = [e for e in rest if is_rate_limited(e.data.get("status"))]
    if limited or d.error_kind == "RateLimitError":
        codes = sorted({str(e.data.get("status")) for e in limited}) or ["RateLimitError"]
        hint(
            "rate_limited",
            "problem",
            f"Binance REST rate-limited the fetch ({', '.join(codes)}; {len(limited)} answer(s)). 429 means "
            "too many request weight units per minute, 418 an IP ban after ignoring 429s; "
            "honour Retry-After, "
            "fetch fewer/longer ranges, and let the cache and Vision serve old days.",
        )
    if recent:
        hint(
            "too_recent_for_vision",
            "info",
            f"{len(recent)} day(s) of the range ({recent[0]}..{recent[-1]}) ended less than {FRESHNESS_HOURS} h "
            "before now: "
            "Binance Vision publishes a day's file only after that, so these days must come from REST and should "
            "not be cached. Expected.",
        )
        asked = [e for e in vision if any(day in str(e.data.get("url", "")) for day in recent)]
        if asked and judged is None:
            hint(
                "vision_asked_too_early",
                "info",
                f"the engine asked Vision for {len(asked)} object(s) of days younger than {FRESHNESS_HOURS} h "
                f"(answers: "
                f"{_statuses(asked)}); that costs a round trip each and cannot succeed reliably.",
            )
    other_vision = [
        e
        for e in vision
        if e.data.get("status") != 403
        and (e.data.get("status") is None or e.data["status"] >= 400)
        and not any(day in str(e.data.get("url", "")) for day in recent)
    ]
    if other_vision:
        hint(
            "vision_failed",
            "problem",
            f"Vision failed {len(other_vision)} time(s) for days it should have ({_statuses(other_vision)}); "
            "the engine fell back to REST for them.",
        )
    rest_failed = [
        e
        for e in rest
        if e.data.get("status") is None or (e.data["status"] >= 400 and not is_rate_limited(e.data["status"]))
    ]
    if rest_failed:
        hint("rest_failed", "problem", f"REST failed {len(rest_failed)} time(s) ({_statuses(rest_failed)}).")

    # Cache use: hits the engine ignored, and old days it fetched but did not leave in the cache.
    hits = [day for day, state in d.cache_before.items() if state == "hit"]
    refetched = [day for day in hits if set(d.rows_by_day.get(day, {})) - {"cache"}]
    if refetched and judged is None:
        hint(
            "cache_not_used",
            "problem",
            f"the cache held valid files for {len(refetched)} day(s) ({', '.join(refetched)}) but the engine "
            "fetched them again from the network.",
        )
    fetched_old = [day for day in d.whole_old_days() if set(d.rows_by_day.get(day, {})) & {"vision", "rest"}]
    not_stored = [day for day in fetched_old if d.cache_after.get(day) not in ("valid", "hit")]
    if d.error is None and not_stored and judged is None:
        hint(
            "cache_not_written",
            "problem",
            f"the engine fetched {len(not_stored)} complete old day(s) "
            f"({not_stored[0]}..{not_stored[-1]}) but "
            f"left no valid cache file for them (cache dir {d.cache_dir}; states after: "
            f"{_count(d.cache_after[day] for day in not_stored)}): the next fetch will download them again. "
            "Check the directory is writable and run `fcp cache-health`.",
        )
    good, absent = ("valid", "hit"), ("missing", "miss")
    bad_before = {day: s for day, s in d.cache_before.items() if s not in (*good, *absent)}
    if bad_before:
        repaired = [day for day in bad_before if d.cache_after.get(day) in good]
        cacheable = set(d.whole_old_days())
        left = [day for day in bad_before if day not in repaired and day in cacheable]
        hint(
            "cache_files_unusable",
            "problem" if left and judged is None else "info",
            f"{len(bad_before)} cache file(s) were unusable before the fetch "
            f"({_count(bad_before.values())}) and had to be fetched again; {len(repaired)} valid afterwards"
            + (f"; still bad: {', '.join(left)}" if left else "")
            + ". Run `fcp cache-health` on the real cache.",
        )
    written_young = [
        day for day in recent if d.cache_before.get(day) in absent and d.cache_after.get(day) not in (*absent, None)
    ]
    if written_young and judged is None:
        hint(
            "cached_too_recent",
            "problem",
            f"the engine wrote cache files for {len(written_young)} day(s) younger than {FRESHNESS_HOURS} h "
            f"({', '.join(written_young)}; after: {_count(d.cache_after[day] for day in written_young)}): "
            "such days may still change or be incomplete (today's certainly is), and a cache hit will keep "
            "serving them as they are.",
        )
    if d.mode == "live" and all(s in ("miss", "missing") for s in d.cache_before.values()):
        hint(
            "cache_empty",
            "info",
            f"the cache ({d.cache_dir}) held none of the range's days before the fetch.",
        )
    if d.expected_rows is not None and d.error is None and d.rows != d.expected_rows and judged is None:
        hint(
            "rows_differ",
            "problem",
            f"the engine returned {d.rows} row(s); the simulated truth has {d.expected_rows} for the range.",
        )
    if d.nan_rows and judged is None:
        hint(
            "nan_rows",
            "problem",
            f"{d.nan_rows} of {d.rows} row(s) came back with NaN/null prices"
            + (f" ({d.rows_by_source[NO_SOURCE]} without a source)" if NO_SOURCE in d.rows_by_source else "")
            + ": the engine padded bars it did not get instead of returning data or failing.",
        )
    violations = [e for e in d.events if e.kind == "violation"]
    if violations and judged is None:
        hint(
            "violations",
            "problem",
            f"{len(violations)} forbidden network access(es): "
            + "; ".join(str(e.data.get("detail", "")) for e in violations[:3]),
        )
    for check, reason in judged or ():
        hint(check, "problem", reason)
    if not d.hints or all(h["severity"] == "info" for h in d.hints):
        hint("ok", "info", "no problem seen: the engine handled this fetch as the FCP contract expects.")


def _statuses(events: Sequence[Event]) -> str:
    return _count(str(e.data.get("status", e.data.get("error", "?"))) for e in events)


def _count(values: Iterable[object]) -> str:
    counts: dict[str, int] = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return ", ".join(f"{k} x{n}" for k, n in sorted(counts.items()))
