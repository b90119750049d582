"""Contract verdicts: what the FCP contract requires of a fetch, and nothing an honest engine may do
differently.

:func:`plan` is the oracle. From the world alone (now, cache state before the fetch, published Vision files,
the fault schedule) it decides for every needed UTC day which sources may serve it and whether it is
*certainly*, *possibly* (it depends on an engine's legitimate choices, e.g. whether it retries a fault that
recovers) or *not* obtainable. :func:`judge` then applies the checks to what the engine did; each failed
check is a :class:`Verdict` with a one-line reason.

Latitude granted to every correct engine: retry transient errors or not; on 429/418 raise RateLimitError or
wait >= Retry-After and retry; ask for the zip or the .CHECKSUM first; cache complete old days that came
from REST or not; treat an empty REST page as no data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from pytest_fcp.core.freshness import FRESHNESS
from pytest_fcp.core.markets import DAY_MS, day_of_ms, ms_to_datetime, to_ms
from pytest_fcp.core.schemas import PRICE_COLUMNS
from pytest_fcp.world.vision import parse_key

if TYPE_CHECKING:
    from pytest_fcp.faults import Fault
    from pytest_fcp.trace import Event
    from pytest_fcp.world import FetchResult, World

__all__ = ["CHECKS", "DayPlan", "Verdict", "judge", "plan"]

_EPOCH = dt.date(1970, 1, 1)

#: The default checks, by name (a scenario may switch any of them off with ``skip_checks``).
CHECKS = (
    "outcome",
    "rows",
    "sources",
    "order",
    "needed_only",
    "rate_limit",
    "cache",
    "network",
)

# Faults that leave the data obtainable even when they fire every time.
_VISION_HARMLESS = {"vision.slow"}
_REST_HARMLESS = {"rest.out_of_range", "rest.duplicate_rows"}
_RATE = {"rest.http429", "rest.http418"}


@dataclass
class DayPlan:
    day: dt.date
    cached: bool  # a valid cache file before the fetch
    old: bool  # day end at least 48 h before now: Vision-eligible and cacheable
    vision: str  # certain | possible | impossible
    rest: str  # certain | possible | impossible | empty (may legitimately read as "no data")
    rate_limited: bool = False  # an always-firing 429/418 stands in REST's way

    @property
    def allowed_sources(self) -> set[str]:
        if self.cached:
            return {"cache"}
        allowed = set()
        if self.vision != "impossible":
            allowed.add("vision")
        if self.vision != "certain" and self.rest != "impossible":
            allowed.add("rest")
        return allowed

    @property
    def obtainable(self) -> str:
        if self.cached or self.vision == "certain":
            return "certain"
        if self.rest == "certain" and self.vision == "impossible":
            return "certain"
        if self.vision == "impossible" and self.rest == "impossible":
            return "impossible"
        if self.vision == "possible" or self.rest in ("possible", "certain", "empty"):
            return "possible"
        return "impossible"


@dataclass(frozen=True)
class Verdict:
    check: str
    reason: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.reason}"


def _day_end(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(days=1)


def _state(faults: Iterable[Fault], harmless: set[str], base: str, *, door_split: bool = False) -> str:
    """Combine the faults hitting one day of one source into certain / possible / impossible."""
    state = base
    for item in faults:
        if item.id in harmless:
            continue
        if item.attempts.recovers or (door_split and item.door is not None) or not item.kind.fatal:
            state = "possible" if state == "certain" else state
        elif item.id == "vision.missing_checksum":
            state = "possible" if state != "impossible" else state  # genuine zip, unverifiable
        else:
            return "impossible"
    return state


def _reachable(faults: Iterable[Fault]) -> list[Fault]:
    """The faults that can fire at all, in schedule order.

    The world lets the first fault that fires on a request answer it, so a fault that fires on every
    attempt (on both doors) hides every later fault that hits the same kind of request.
    """
    out: list[Fault] = []
    taken: set[str] = set()  # objects whose every request an earlier fault already answers
    for item in faults:
        objects = set(item.kind.objects)
        if objects <= taken:
            continue
        out.append(item)
        if item.attempts.mode == "always" and item.door is None:
            taken |= objects
    return out


def plan(world: World, result: FetchResult) -> dict[dt.date, DayPlan]:
    """The oracle: for each needed day, where the data may come from and whether it can be had."""
    now = result.now
    plans: dict[dt.date, DayPlan] = {}
    for day in result.days:
        cached = result.cache_before.get(day) is not None and result.cache_before[day].valid
        old = _day_end(day) <= now - FRESHNESS
        in_scope = [f for f in world.faults.faults if f.in_scope(result.market, result.symbol, result.interval, day)]
        published = (
            _day_end(day) + world.publish_delay <= now
            and world.truth_day(day, result.symbol, result.market, result.interval).num_rows > 0
        )
        vision = "certain" if old and published else "impossible"
        vision_faults = _reachable(f for f in in_scope if f.source == "vision")
        vision = _state(vision_faults, _VISION_HARMLESS, vision, door_split=True)
        rest_faults = _reachable(f for f in in_scope if f.source == "rest")
        rest = _state((f for f in rest_faults if f.id != "rest.empty_page"), _REST_HARMLESS, "certain")
        if rest != "impossible" and any(f.id == "rest.empty_page" for f in rest_faults):
            rest = "empty"
        rate_limited = any(f.id in _RATE and not f.attempts.recovers for f in rest_faults)
        plans[day] = DayPlan(day, cached, old, vision, rest, rate_limited)
    return plans


def _http(world: World) -> list[Event]:
    return [e for e in world.trace.events if e.kind == "http"]


def _rest_days(url: str) -> list[dt.date]:
    import urllib.parse

    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    if "startTime" not in query:
        return []
    start = int(query["startTime"])
    end = int(query.get("endTime", start))
    first, last = day_of_ms(start), day_of_ms(max(start, end))
    return [dt.date.fromordinal(o) for o in range(first.toordinal(), last.toordinal() + 1)]


def _virtual(event: Event) -> dt.datetime:
    when = dt.datetime.fromisoformat(event.virtual.replace("Z", "+00:00"))
    return when - dt.timedelta(seconds=float(event.data.get("duration_s", 0) or 0))


def judge(
    world: World,
    result: FetchResult,
    *,
    skip: Iterable[str] = (),
    events: list[Event] | None = None,
) -> list[Verdict]:
    """Apply the default checks to one fetch; an empty list means the contract was kept."""
    skip = set(skip)
    plans = plan(world, result)
    verdicts: list[Verdict] = []
    add = verdicts.append
    http = events if events is not None else _http(world)

    # --- outcome ------------------------------------------------------------------------------------
    impossible = [d for d, p in plans.items() if p.obtainable == "impossible"]
    certain = all(p.obtainable == "certain" for p in plans.values())
    served_rate_limit = any(e.data.get("status") in (429, 418) for e in http)
    if "outcome" not in skip:
        if result.error is not None:
            names = {c.__name__ for c in type(result.error).__mro__}
            message = str(result.error).strip()
            if certain:
                add(
                    Verdict(
                        "outcome",
                        f"raised {type(result.error).__name__} ({message[:120]}) although every day was obtainable",
                    )
                )
            elif not ({"DataSourceError", "RateLimitError"} & names):
                add(
                    Verdict(
                        "outcome",
                        f"raised {type(result.error).__name__} ({message[:120]}), not the documented "
                        f"DataSourceError / RateLimitError",
                    )
                )
            elif "RateLimitError" in names and "DataSourceError" not in names and not served_rate_limit:
                add(Verdict("outcome", "raised RateLimitError although no 429/418 was served"))
            elif len(message) < 8:
                add(Verdict("outcome", f"{type(result.error).__name__} has no clear message ({message!r})"))
        elif impossible:
            days = ", ".join(d.isoformat() for d in impossible)
            add(
                Verdict(
                    "outcome",
                    f"returned data although day(s) {days} could not be obtained from any source "
                    f"(expected DataSourceError{' or RateLimitError' if served_rate_limit else ''})",
                )
            )

    # --- rows ---------------------------------------------------------------------------------------
    if result.table is not None and "rows" not in skip:
        verdicts.extend(_check_rows(world, result, plans))
    if result.table is not None and "sources" not in skip:
        verdicts.extend(_check_sources(result, plans))

    # --- requests: order, need, rate limits --------------------------------------------------------
    vision_days: dict[dt.date, list[int]] = {}
    rest_days: dict[dt.date, list[int]] = {}
    for event in http:
        if event.data.get("source") == "vision":
            item = parse_key(_key_of(event.data.get("url", "")))
            if item is not None:
                vision_days.setdefault(item.day, []).append(event.index)
        elif event.data.get("source") == "rest":
            for day in _rest_days(event.data.get("url", "")):
                rest_days.setdefault(day, []).append(event.index)
    if "order" not in skip:
        for day, indexes in sorted(vision_days.items()):
            if day in rest_days and min(rest_days[day]) < max(indexes) and day in plans:
                add(Verdict("order", f"{day}: asked Vision after REST (FCP order is cache -> Vision -> REST)"))
        for day, plan_ in sorted(plans.items()):
            if day in vision_days and not plan_.old and not plan_.cached:
                add(Verdict("order", f"{day}: asked Vision for a day younger than 48 h (Vision is for older days)"))
    if "needed_only" not in skip:
        for label, touched in (("Vision", vision_days), ("REST", rest_days)):
            extra = sorted(d for d in touched if d not in plans)
            if extra:
                add(
                    Verdict(
                        "needed_only",
                        f"asked {label} for day(s) outside the request: {', '.join(d.isoformat() for d in extra)}",
                    )
                )
            cached = sorted(d for d in touched if d in plans and plans[d].cached)
            if cached:
                add(
                    Verdict(
                        "needed_only",
                        f"asked {label} for day(s) already valid in the cache: "
                        f"{', '.join(d.isoformat() for d in cached)}",
                    )
                )
        needless_rest = sorted(
            d for d in rest_days if d in plans and plans[d].vision == "certain" and not plans[d].cached
        )
        if needless_rest:
            add(
                Verdict(
                    "needed_only",
                    "asked REST for day(s) Vision had served: " + ", ".join(d.isoformat() for d in needless_rest),
                )
            )
    if "rate_limit" not in skip:
        verdicts.extend(_check_rate_limits(http))

    # --- cache after ----------------------------------------------------------------------------------
    if "cache" not in skip:
        verdicts.extend(_check_cache(world, result, plans))
    if "network" not in skip and world.violations:
        add(Verdict("network", "left the simulated world: " + "; ".join(world.violations[:3])))
    return verdicts


def _key_of(url: str) -> str:
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    path = urllib.parse.unquote(parts.path).lstrip("/")
    if parts.hostname and parts.hostname.startswith("s3"):
        path = path.partition("/")[2]  # path-style S3: bucket first
    return path


def _check_rows(world: World, result: FetchResult, plans: dict[dt.date, DayPlan]) -> list[Verdict]:
    table = result.table
    assert table is not None
    out: list[Verdict] = []
    names = table.schema.names
    missing_cols = [c for c in ("open_time", *PRICE_COLUMNS, "source") if c not in names]
    if missing_cols:
        return [Verdict("rows", f"result lacks column(s) {', '.join(missing_cols)}")]
    otype = table.schema.field("open_time").type
    if not (pa.types.is_timestamp(otype) and otype.tz in ("UTC", "+00:00", "Etc/UTC")):
        out.append(Verdict("rows", f"open_time is {otype}, not a UTC timestamp"))
    try:
        null, times = result.open_times()  # whole-column numpy checks: a month of 1m bars is 43,200 rows
    except pa.ArrowException as exc:
        return [*out, Verdict("rows", f"open_time cannot be read as a time: {exc}")]
    truth = world.expected(result.start, result.end, result.symbol, result.market, result.interval)
    truth_times = truth["open_time"].to_numpy()
    if not null.any() and np.array_equal(times, truth_times):
        # The usual result: exactly the truth's bars, in order (so none outside, repeated or missing).
        if _same_prices(table, truth):
            return out
        at: slice | np.ndarray = slice(None)
        in_truth = np.ones(len(times), dtype=bool)
    else:
        out.extend(_check_bars(result, plans, null, times, truth_times))
        if not len(truth_times):
            return out
        at = np.minimum(np.searchsorted(truth_times, times), len(truth_times) - 1)
        in_truth = ~null & (truth_times[at] == times)
    wrong = np.zeros(len(times), dtype=bool)
    for name in PRICE_COLUMNS:
        wrong |= ~_equal_values(table[name], truth[name].to_numpy()[at])  # a null or NaN equals nothing
    wrong &= in_truth
    if wrong.any():
        first = ms_to_datetime(int(times[np.argmax(wrong)])).isoformat()
        out.append(Verdict("rows", f"{int(wrong.sum())} bar(s) differ from the source data, first at {first}"))
    return out


def _same_prices(table: pa.Table, truth: pa.Table) -> bool:
    """One Arrow comparison for the usual case: the price columns are the truth's, value for value."""
    try:
        return table.select(PRICE_COLUMNS).equals(truth.select(PRICE_COLUMNS))
    except (pa.ArrowException, KeyError):
        return False


def _check_bars(
    result: FetchResult, plans: dict[dt.date, DayPlan], null: np.ndarray, times: np.ndarray, truth_times: np.ndarray
) -> list[Verdict]:
    """Rows outside the range, repeated bars, and bars missing (with the empty-page latitude)."""
    out: list[Verdict] = []
    start_ms, end_ms = to_ms(result.start), to_ms(result.end)
    outside = null | (times < start_ms) | (times >= end_ms)
    if outside.any():
        first = int(np.argmax(outside))
        when = "null" if null[first] else ms_to_datetime(int(times[first])).isoformat()
        out.append(Verdict("rows", f"{int(outside.sum())} row(s) outside [start, end), first at {when}"))
    valid_times = times[~null] if null.any() else times
    increasing = bool(np.all(valid_times[1:] > valid_times[:-1]))  # sorted, no repeats
    if not increasing:
        _, first_seen = np.unique(valid_times, return_index=True)
        repeat = np.ones(len(valid_times), dtype=bool)
        repeat[first_seen] = False
        if repeat.any():
            first = ms_to_datetime(int(valid_times[np.argmax(repeat)])).isoformat()
            out.append(Verdict("rows", f"{int(repeat.sum())} duplicated bar(s), first at {first}"))
    # a day REST may legitimately answer with an empty page may be absent as a whole, never in part
    empty_days = [
        (d - _EPOCH).days for d, p in plans.items() if p.rest == "empty" and p.vision != "certain" and not p.cached
    ]
    missing = ~_contains(valid_times, truth_times, increasing)
    if empty_days:
        truth_days = truth_times // DAY_MS
        missing &= ~(np.isin(truth_days, empty_days) & ~np.isin(truth_days, valid_times // DAY_MS))
    if missing.any():
        first = ms_to_datetime(int(truth_times[missing].min())).isoformat()
        out.append(Verdict("rows", f"{int(missing.sum())} bar(s) missing (gaps), first at {first}"))
    return out


def _contains(haystack: np.ndarray, needles: np.ndarray, increasing: bool) -> np.ndarray:
    """Which of ``needles`` occur in ``haystack`` (a binary search when the haystack is increasing)."""
    if not increasing:
        return np.isin(needles, haystack)
    if not len(haystack):
        return np.zeros(len(needles), dtype=bool)
    at = np.minimum(np.searchsorted(haystack, needles), len(haystack) - 1)
    return haystack[at] == needles


def _equal_values(column: pa.ChunkedArray, want: np.ndarray) -> np.ndarray:
    """Row-wise ``column == want``; a value that is not a number (null, NaN, text) equals nothing."""
    kind = column.type
    if kind == pa.float64():
        return column.to_numpy() == want  # nulls become NaN
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)):
        return np.zeros(len(want), dtype=bool)
    try:
        got = column.cast(pa.float64()).combine_chunks().to_numpy(zero_copy_only=False)  # nulls become NaN
    except pa.ArrowException:
        return np.zeros(len(want), dtype=bool)
    return got == want


def _check_sources(result: FetchResult, plans: dict[dt.date, DayPlan]) -> list[Verdict]:
    table = result.table
    assert table is not None
    out: list[Verdict] = []
    for day, sources in sorted(result.sources_by_day().items()):
        day_plan = plans.get(day)
        if day_plan is None:
            continue
        bad = sources - day_plan.allowed_sources
        if bad:
            allowed = " or ".join(sorted(day_plan.allowed_sources)) or "nothing"
            out.append(Verdict("sources", f"{day}: rows tagged {', '.join(sorted(bad))}; expected {allowed}"))
    return out


def _check_rate_limits(http: list[Event]) -> list[Verdict]:
    out: list[Verdict] = []
    rest = [e for e in http if e.data.get("source") == "rest"]
    for i, event in enumerate(rest):
        if event.data.get("status") not in (429, 418):
            continue
        retry_after = _retry_after(event)
        if i + 1 < len(rest):
            waited = (
                _virtual(rest[i + 1]) - dt.datetime.fromisoformat(event.virtual.replace("Z", "+00:00"))
            ).total_seconds()
            if waited + 1e-6 < retry_after:
                out.append(
                    Verdict(
                        "rate_limit",
                        f"sent a REST request {waited:g}s after a {event.data['status']} "
                        f"with Retry-After {retry_after:g}s (hammering)",
                    )
                )
                break
    return out


def _retry_after(event: Event) -> float:
    value = event.data.get("retry_after")
    return float(value) if value is not None else 0.0


def _check_cache(world: World, result: FetchResult, plans: dict[dt.date, DayPlan]) -> list[Verdict]:
    out: list[Verdict] = []
    if world.engine is None:
        return out
    served = result.sources_by_day()
    read_only = any(f.id == "cache.read_only_dir" for f in world.faults.faults)
    for day, day_plan in sorted(plans.items()):
        after = world.cache_state(day, result.symbol, result.market, result.interval)
        before = result.cache_before.get(day)
        if before is not None and before.valid and not after.valid:
            out.append(Verdict("cache", f"{day}: a valid cached day was lost ({after.status} afterwards)"))
            continue
        if after.status == "missing":
            if day_plan.old and served.get(day) == {"vision"} and not read_only:
                out.append(Verdict("cache", f"{day}: a complete old day served by Vision was not cached"))
            continue
        if not day_plan.old and (before is None or before.status == "missing"):
            out.append(Verdict("cache", f"{day}: cached a day younger than 48 h ({after.status})"))
            continue
        if after.valid:
            continue
        unchanged = before is not None and before.status == after.status and before.size == after.size
        if unchanged and (served.get(day, set()) <= {"rest"} or read_only or day_plan.obtainable != "certain"):
            continue  # left alone; the engine may not cache REST days, or could not write
        if unchanged and "unreadable" in after.status and any(f.id == "cache.unreadable" for f in world.faults.faults):
            continue  # an unreadable file cannot always be replaced
        out.append(
            Verdict(
                "cache",
                f"{day}: the cache holds a {after.status} file afterwards ({after.detail})".rstrip(" ()"),
            )
        )
    return out
