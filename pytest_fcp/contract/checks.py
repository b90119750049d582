"""The default checks other than the rows: one small function each, registered by name in FCP order.

Each takes a :class:`~pytest_fcp.contract.verdict.Case` and returns its verdicts (empty: kept).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable

from pytest_fcp.contract.answers import needs_bars
from pytest_fcp.contract.rows import check_rows
from pytest_fcp.contract.verdict import Case, Verdict
from pytest_fcp.core.freshness import is_old
from pytest_fcp.core.sources import error_names, is_rate_limited
from pytest_fcp.world.budget import EndlessRetry
from pytest_fcp.world.recorder import RequestRecord

__all__ = ["CHECKS", "Check"]

Check = Callable[[Case], list[Verdict]]


#: Runs of at least this many consecutive days are written ``first .. last (N days)``: a verdict about five years of
#: daily bars stays one readable line.
RUN_DAYS = 8


def _days(days: list[dt.date]) -> str:
    parts: list[str] = []
    i = 0
    while i < len(days):
        j = i
        while j + 1 < len(days) and (days[j + 1] - days[j]).days == 1:
            j += 1
        if j - i + 1 >= RUN_DAYS:
            parts.append(f"{days[i].isoformat()} .. {days[j].isoformat()} ({j - i + 1} days)")
        else:
            parts += [d.isoformat() for d in days[i : j + 1]]
        i = j + 1
    return ", ".join(parts)


def _served_rate_limit(case: Case) -> bool:
    return any(is_rate_limited(r.status) for r in case.obs.requests)


def check_outcome(case: Case) -> list[Verdict]:
    """Data when every day can be had; else the documented error, with a clear message."""
    obs, plans = case.obs, case.plans
    impossible = [d for d, p in plans.items() if p.obtainable == "impossible" and needs_bars(obs, d)]
    certain = all(p.obtainable == "certain" for p in plans.values())
    served_rate_limit = _served_rate_limit(case)
    if obs.error is None:
        if not impossible:
            return []
        either = " or RateLimitError" if served_rate_limit else ""
        return [
            Verdict(
                "outcome",
                f"returned data although day(s) {_days(impossible)} could not be obtained from any source "
                f"(expected DataSourceError{either})",
            )
        ]
    if not isinstance(obs.error, Exception):
        return []  # a BaseException is the engine_death check's
    names = error_names(obs.error)
    name, message = type(obs.error).__name__, (obs.error_text or str(obs.error)).strip()
    if certain:
        return [Verdict("outcome", f"raised {name} ({message[:120]}) although every day was obtainable")]
    if not ({"DataSourceError", "RateLimitError"} & names):
        reason = f"raised {name} ({message[:120]}), not the documented DataSourceError / RateLimitError"
        return [Verdict("outcome", reason)]
    if "RateLimitError" in names and "DataSourceError" not in names and not served_rate_limit:
        return [Verdict("outcome", "raised RateLimitError although no 429/418 was served")]
    if len(message) < 8:
        return [Verdict("outcome", f"{name} has no clear message ({message!r})")]
    return []


def check_sources(case: Case) -> list[Verdict]:
    """Each day's rows are tagged with a source that may serve it."""
    if case.obs.table is None:
        return []
    out: list[Verdict] = []
    for day, sources in sorted(case.obs.sources_by_day().items()):
        day_plan = case.plans.get(day)
        if day_plan is None:
            continue
        bad = sources - day_plan.allowed_sources
        allowed = " or ".join(sorted(day_plan.allowed_sources)) or "nothing"
        if "None" in bad:  # rows without a source tag
            count = case.obs.rows_per_day[day]["None"]
            out.append(Verdict("sources", f"{day}: {count} row(s) carry no source tag; expected {allowed}"))
            bad.discard("None")
        if bad:
            out.append(Verdict("sources", f"{day}: rows tagged {', '.join(sorted(bad))}; expected {allowed}"))
    return out


def _same_series(case: Case, record: RequestRecord) -> bool:
    target, obs = record.target, case.obs
    return (
        target.market in (None, obs.market)
        and target.symbol in (None, obs.symbol)
        and target.interval
        in (
            None,
            obs.interval,
        )
    )


def _asked(case: Case, source: str) -> dict[dt.date, list[int]]:
    """Day -> indexes of the requests of ``source`` for the fetched series that asked about it."""
    asked: dict[dt.date, list[int]] = {}
    for record in case.obs.requests:
        if record.source == source and _same_series(case, record):
            for day in record.days:
                asked.setdefault(day, []).append(record.index)
    return asked


def check_order(case: Case) -> list[Verdict]:
    """Cache -> Vision -> REST, and Vision only for days older than 48 h."""
    vision_days, rest_days, plans = _asked(case, "vision"), _asked(case, "rest"), case.plans
    out: list[Verdict] = []
    for day, indexes in sorted(vision_days.items()):
        if day in rest_days and min(rest_days[day]) < max(indexes) and day in plans:
            out.append(Verdict("order", f"{day}: asked Vision after REST (FCP order is cache -> Vision -> REST)"))
    for day, plan_ in sorted(plans.items()):
        if day in vision_days and not plan_.old and not plan_.cached:
            out.append(Verdict("order", f"{day}: asked Vision for a day younger than 48 h (Vision is for older days)"))
    return out


def _end_day(case: Case) -> dt.date | None:
    """The day that starts at the request's (exclusive) end, when the end is a midnight."""
    end = case.obs.end.astimezone(dt.UTC)
    return end.date() if end.time() == dt.time() else None


def check_needed_only(case: Case) -> list[Verdict]:
    """No request for days outside the request, days already cached, days Vision served, or other series."""
    plans, out = case.plans, []
    rest_days, vision_days = _asked(case, "rest"), _asked(case, "vision")
    end_day = _end_day(case)
    inclusive = [label for label, touched in (("Vision", vision_days), ("REST", rest_days)) if end_day in touched]
    if inclusive:
        out.append(
            Verdict(
                "needed_only",
                f"treated the request's end as inclusive: asked {' and '.join(inclusive)} for {end_day}, "
                "the day that starts at the exclusive end",
            )
        )
    out.extend(_other_series(case))
    for label, touched in (("Vision", vision_days), ("REST", rest_days)):
        extra = sorted(d for d in touched if d not in plans and d != end_day)
        if extra:
            out.append(Verdict("needed_only", f"asked {label} for day(s) outside the request: {_days(extra)}"))
        cached = sorted(d for d in touched if d in plans and plans[d].cached)
        if cached:
            out.append(Verdict("needed_only", f"asked {label} for day(s) already valid in the cache: {_days(cached)}"))
    needless = sorted(d for d in rest_days if d in plans and plans[d].vision == "certain" and not plans[d].cached)
    if needless:
        out.append(Verdict("needed_only", "asked REST for day(s) Vision had served: " + _days(needless)))
    return out


def _other_series(case: Case) -> list[Verdict]:
    """Requests for another market, symbol or interval than the fetch asked for, one verdict per series."""
    obs, found = case.obs, {}
    for record in obs.requests:
        if _same_series(case, record):
            continue
        target = record.target
        what = (
            f"another interval's files ({target.interval})"
            if target.interval != obs.interval
            else f"another symbol's files ({target.symbol})"
            if target.symbol != obs.symbol
            else f"another market's files ({target.market})"
        )
        label = "Vision" if record.source == "vision" else "REST"
        found.setdefault((label, what), set()).update(record.days)
    return [
        Verdict(
            "needed_only",
            f"asked {label} for {what} for a {obs.interval} {obs.symbol} request: day(s) {_days(sorted(days))}",
        )
        for (label, what), days in sorted(found.items())
    ]


def check_rate_limit(case: Case) -> list[Verdict]:
    """After a 429 / 418, no REST request before Retry-After has passed."""
    rest: list[RequestRecord] = [r for r in case.obs.requests if r.source == "rest"]
    for answered, following in itertools.pairwise(rest):
        if not is_rate_limited(answered.status):
            continue
        retry_after = answered.retry_after or 0.0
        waited = (following.started - answered.virtual).total_seconds()
        if waited + 1e-6 < retry_after:
            return [
                Verdict(
                    "rate_limit",
                    f"sent a REST request {waited:g}s after a {answered.status} "
                    f"with Retry-After {retry_after:g}s (hammering)",
                )
            ]
    return []


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _unverified(case: Case, day: dt.date) -> bool:
    """Whether the day's Vision zip could not be verified: its .CHECKSUM was withheld and none came later."""
    from pytest_fcp.faults import FAULTS

    obs = case.obs
    withheld = any(f.day == day and f.source == "vision" and FAULTS[f.id].unverifiable for f in obs.firings)
    return withheld and not any(
        r.source == "vision" and r.target.obj == "checksum" and r.status == 200 and r.fault is None and day in r.days
        for r in obs.requests
    )


def check_cache(case: Case) -> list[Verdict]:
    """The cache holds only valid, complete, verified old days afterwards, and loses none of its valid rows."""
    from pytest_fcp.contract.causes import content_cause

    obs, out = case.obs, []
    served = obs.sources_by_day()
    read_only = any(f.kind.effect.kind == "read_only" for f in case.spec.faults)
    unreadable = any(f.kind.effect.kind == "unreadable" for f in case.spec.faults)
    for day, day_plan in sorted(case.plans.items()):
        after = obs.cache_after[day]
        before = obs.cache_before.get(day)
        if day_plan.cut is not None and after.size == day_plan.cut:
            continue  # the file as the world cut it while the engine read it
        if before is not None and before.valid and not after.valid:
            out.append(Verdict("cache", f"{day}: a valid cached day was lost ({after.status} afterwards)"))
            continue
        if before is not None and before.status == "partial" and not after.valid and after.rows < before.rows:
            lost = before.rows - after.rows
            reason = (
                f"{day}: the cache lost {lost} of the {before.rows} valid bar(s) it held ({after.status} afterwards)"
            )
            out.append(Verdict("cache", reason))
            continue
        if after.status == "missing":
            if day_plan.old and served.get(day) == {"vision"} and not read_only and not _unverified(case, day):
                out.append(Verdict("cache", f"{day}: a complete old day served by Vision was not cached"))
            continue
        if not day_plan.old and (before is None or before.status == "missing"):
            out.append(Verdict("cache", f"{day}: cached a day younger than 48 h ({after.status})"))
            continue
        unchanged = before is not None and before.status == after.status and before.size == after.size
        if after.valid:
            from_vision = "vision" in served.get(day, set())
            if not unchanged and from_vision and not (before is not None and before.valid) and _unverified(case, day):
                reason = (
                    f"{day}: cached the rows of a Vision zip that could not be verified (its .CHECKSUM was missing)"
                )
                out.append(Verdict("cache", reason))
            continue
        if unchanged and (served.get(day, set()) <= {"rest"} or read_only or day_plan.obtainable != "certain"):
            continue  # left alone; the engine may not cache REST days, or could not write
        if unchanged and (day_plan.stale_cache or ("unreadable" in after.status and unreadable)):
            continue  # a valid-looking stale file cannot be told from the truth; an unreadable one not always replaced
        cause = content_cause(obs, day) if after.status in ("stale", "extra") else None
        if cause is not None:
            out.append(Verdict("cache", f"{day}: cached the rows of {cause}"))
            continue
        detail = f" ({after.detail})" if after.detail else ""
        out.append(Verdict("cache", f"{day}: the cache holds {_a(after.status)} file afterwards{detail}"))
    out.extend(_outside(case))
    return out


def _outside(case: Case) -> list[Verdict]:
    """Cache files the fetch wrote for the days just outside the request, judged like any other."""
    out = []
    for day, (before, after) in sorted(case.obs.cache_outside.items()):
        if after == before or after.status == "missing":
            continue
        if not after.valid:
            detail = f" ({after.detail})" if after.detail else ""
            reason = f"{day} (outside the request): the cache holds {_a(after.status)} file afterwards{detail}"
            out.append(Verdict("cache", reason))
        elif not is_old(day, case.obs.now):
            out.append(Verdict("cache", f"{day} (outside the request): cached a day younger than 48 h"))
    return out


def check_network(case: Case) -> list[Verdict]:
    """Every request stayed inside the simulated world."""
    if not case.obs.violations:
        return []
    return [Verdict("network", "left the simulated world: " + "; ".join(case.obs.violations[:3]))]


def check_engine_death(case: Case) -> list[Verdict]:
    """The engine raised a ``BaseException`` (a pyo3 ``PanicException``, ``SystemExit``): it would kill its caller."""
    error = case.obs.error
    if error is None or isinstance(error, Exception | EndlessRetry):
        return []
    message = quoted_message(error)
    return [
        Verdict(
            "engine_death",
            f"engine raised {type(error).__name__} during fetch {case.obs.fetch_number}, a BaseException "
            f"`except Exception` does not catch" + (f": {message}" if message else " (its message is in the trace)"),
        )
    ]


def quoted_message(error: BaseException) -> str:
    """What a verdict quotes of an error's message: its first line, none for a Rust panic (pyo3's
    ``PanicException``), whose message nests the panics of native tasks in the order they happened to finish,
    differently in every run; the trace's ``outcome`` event keeps it whole."""
    if type(error).__name__ == "PanicException":
        return ""
    return (str(error).strip().splitlines() or [""])[0][:200]


def check_endless_retry(case: Case) -> list[Verdict]:
    """The fetch stayed within its budget of requests and virtual sleep (``world/budget.py``)."""
    error = case.obs.error
    return [Verdict("endless_retry", str(error))] if isinstance(error, EndlessRetry) else []


#: The default checks, by name, in the order they run (a scenario may switch any off with ``skip_checks``).
CHECKS: dict[str, Check] = {
    "engine_death": check_engine_death,
    "endless_retry": check_endless_retry,
    "outcome": check_outcome,
    "rows": lambda case: check_rows(case) if case.obs.table is not None else [],
    "sources": check_sources,
    "order": check_order,
    "needed_only": check_needed_only,
    "rate_limit": check_rate_limit,
    "cache": check_cache,
    "network": check_network,
}
