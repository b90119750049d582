"""Validating one raw scenario table into a :class:`~pytest_fcp.scenarios.model.Scenario`.

Every problem is one :class:`~pytest_fcp.scenarios.model.ScenarioError` naming the file, the scenario and the
field, saying what is wrong and what is allowed. Besides types and names it bounds what a scenario may ask of
the world: dates inside what the market truth serves, sizes (bars, days, requests, faults) and numbers, and
it refuses what would silently test nothing (a fault or a cached day no request can reach).
"""

from __future__ import annotations

import datetime as dt
import math
import pathlib
from collections.abc import Mapping
from typing import Any, NoReturn

from pytest_fcp.core.freshness import FRESHNESS
from pytest_fcp.core.limits import SCENARIO_LIMITS
from pytest_fcp.core.markets import INTERVALS, MARKETS, days_between, default_symbol, interval_ms
from pytest_fcp.faults import Fault, FaultSpecError, fault
from pytest_fcp.faults.rules import setup_conflicts, unreached
from pytest_fcp.scenarios.model import Request, Scenario, ScenarioError
from pytest_fcp.scenarios.validate_expect import parse_day, parse_expect
from pytest_fcp.scenarios.validate_runs import Fail, crash_value, engines_asked, instances
from pytest_fcp.world.spec import (
    LATEST_NOW,
    LISTED_SINCE,
    MAX_PUBLISH_DELAY,
    WorldError,
    check_cache_from,
    check_env,
    check_local_tz,
)

__all__ = ["LIMITS", "crash_value", "parse_scenario"]

SCENARIO_KEYS = {
    "name",
    "description",
    "now",
    "market",
    "symbol",
    "interval",
    "truth",
    "faults",
    "cached",
    "request",
    "publish_delay_hours",
    "local_tz",
    "env",
    "engines",
    "together",
    "crash",
    "cache_from",
    "expect",
}
REQUEST_KEYS = ("start", "end", "symbol", "market", "interval", "at", "engine")
EDGE_MARGIN = dt.timedelta(hours=1)
#: What one scenario may ask for at most.
LIMITS = SCENARIO_LIMITS
_LISTED = dt.datetime.combine(LISTED_SINCE, dt.time(), dt.UTC)


def _when(value: Any, fail: Fail, what: str) -> dt.datetime:
    """A UTC time from a TOML date, datetime or string; a bare day means its midnight UTC."""
    if isinstance(value, str):
        text = value.replace("Z", "+00:00")
        try:
            value = dt.datetime.fromisoformat(text) if "T" in text or " " in text else dt.date.fromisoformat(text)
        except ValueError:
            fail(what, f"{value!r} is not a date or time (write 2024-01-02 or 2024-01-02T06:00:00Z)")
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            fail(what, f"{value.isoformat()} has no timezone: add Z (UTC), e.g. 2024-01-10T12:00:00Z")
        try:
            value = value.astimezone(dt.UTC)
        except OverflowError:
            fail(what, f"{value.isoformat()} is out of range; allowed: {LISTED_SINCE} to {LATEST_NOW.date()}")
    elif isinstance(value, dt.date):
        value = dt.datetime.combine(value, dt.time(), dt.UTC)
    else:
        fail(what, f"expected a date or time, got {type(value).__name__} {value!r}")
    if not _LISTED <= value <= LATEST_NOW:
        fail(
            what,
            f"{value.isoformat()} is outside what the market truth serves: from the listing day {LISTED_SINCE} "
            f"to {LATEST_NOW.date()}",
        )
    return value


def _series(
    data: Mapping[str, Any], fail: Fail, prefix: str, base: tuple[str, str, str] | None
) -> tuple[str, str, str]:
    """``(symbol, market, interval)`` from ``data``'s keys, over ``base`` (the scenario's series)."""
    market = data.get("market", base[1] if base else "spot")
    if not isinstance(market, str) or market not in MARKETS:
        fail(prefix + "market", f"unknown market {market!r}; allowed: {', '.join(MARKETS)}")
    interval = data.get("interval", base[2] if base else "1h")
    if not isinstance(interval, str) or interval not in INTERVALS or interval not in MARKETS[market].intervals:
        fail(
            prefix + "interval",
            f"{interval!r} is not a {market} interval; allowed: {', '.join(MARKETS[market].intervals)}",
        )
    default = default_symbol(market)
    if base and "market" not in data and base[1] == market:
        default = base[0]
    symbol = data.get("symbol") or default
    coin = market == "futures_coin"
    if not isinstance(symbol, str) or not symbol.replace("_", "").isalnum() or ("_" in symbol) != coin:
        form = "with '_', e.g. 'BTCUSD_PERP'" if coin else "letters and digits, e.g. 'ETHUSDT'"
        fail(prefix + "symbol", f"{symbol!r} is not a {market} symbol ({form})")
    return symbol, market, interval


def _requests(
    raw: Any, now: dt.datetime, series: tuple[str, str, str], delay: float, fail: Fail
) -> tuple[Request, ...]:
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        fail("request", "expected a table {start, end} or a list of them")
    if len(raw) > LIMITS["requests"]:
        fail("request", f"{len(raw)} requests; at most {LIMITS['requests']}")
    out: list[Request] = []
    clock = now
    for i, req in enumerate(raw):
        what = f"request[{i}]" if len(raw) > 1 else "request"
        if not isinstance(req, dict) or not {"start", "end"} <= set(req) or set(req) - set(REQUEST_KEYS):
            extra = sorted(set(req) - set(REQUEST_KEYS)) if isinstance(req, dict) else []
            got = f"; unknown {extra[0]!r}" if extra else ""
            fail(what, f"expected a table with start and end (optional: symbol, market, interval, at, engine){got}")
        start, end = _when(req["start"], fail, f"{what}.start"), _when(req["end"], fail, f"{what}.end")
        at = None
        if "at" in req:
            at = _when(req["at"], fail, f"{what}.at")
            if at < clock:
                fail(
                    f"{what}.at",
                    f"{at.isoformat()} is before the world's now then ({clock.isoformat()}): time only moves forward",
                )
            clock = at
        if start > end:
            fail(what, f"start {start.isoformat()} is after end {end.isoformat()} (start == end asks for no bars)")
        if start >= clock:
            fail(what, f"start {start.isoformat()} is not before now {clock.isoformat()}")
        symbol, market, interval = _series(req, fail, f"{what}.", series)
        days = len(days_between(start, end))
        if days > LIMITS["request_days"]:
            fail(what, f"{days} days; a request may span at most {LIMITS['request_days']} days")
        _edges(start, end, clock, delay, f"{what}.at" if at else "now", fail)
        engine = req.get("engine", 1)
        if isinstance(engine, bool) or not isinstance(engine, int) or engine < 1:
            fail(f"{what}.engine", f"{engine!r} is not an engine instance; allowed: 1 .. the scenario's engines")
        out.append(
            Request(
                start,
                end,
                symbol if symbol != series[0] else None,
                market if market != series[1] else None,
                interval if interval != series[2] else None,
                at,
                engine - 1,
            )
        )
    bars = sum(int((r.end - r.start) / dt.timedelta(milliseconds=interval_ms(r.interval or series[2]))) for r in out)
    if bars > LIMITS["bars"]:
        fail(
            "request",
            f"asks for {bars:,} bars; a scenario may ask for at most {LIMITS['bars']:,} "
            "(shorten it or use a longer interval)",
        )
    return tuple(out)


def _edges(start: dt.datetime, end: dt.datetime, now: dt.datetime, delay: float, field: str, fail: Fail) -> None:
    """Keep clear of the freshness edges, where engines may legitimately differ."""
    for day in days_between(start, end):
        day_end = dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(days=1)
        for label, edge in (
            ("48 h freshness", now - FRESHNESS),
            ("Vision publication", now - dt.timedelta(hours=delay)),
        ):
            if abs(day_end - edge) < EDGE_MARGIN:
                fail(
                    field,
                    f"day {day} ends within an hour of the {label} edge ({edge.isoformat()}); "
                    "move now by an hour or more",
                )


def _faults(raw: Any, fail: Fail) -> tuple[Fault, ...]:
    if not isinstance(raw, list):
        fail("faults", f"expected a list of fault ids or tables, got {type(raw).__name__}")
    if len(raw) > LIMITS["faults"]:
        fail("faults", f"{len(raw)} faults; at most {LIMITS['faults']}")
    out = []
    for i, entry in enumerate(raw):
        what = f"faults[{i}]"
        if isinstance(entry, str):
            entry = {"id": entry}
        if not isinstance(entry, dict) or "id" not in entry:
            fail(what, "expected a fault id or a table with an 'id' key")
        spec = dict(entry)
        fid = spec.pop("id")
        try:
            out.append(fault(str(fid), **spec))
        except FaultSpecError as exc:
            fail(what, str(exc))
        except (TypeError, ValueError, OverflowError) as exc:
            fail(what, f"bad fault fields: {exc}")
    return tuple(out)


def _reachable(faults: tuple[Fault, ...], reqs: tuple[Request, ...], scenario: Scenario, fail: Fail) -> None:
    """Refuse a setup that undoes itself, and a fault or cached day no request reaches: it would test nothing."""
    series = (scenario.symbol, scenario.market, scenario.interval)
    found = setup_conflicts(faults, scenario.cached, series, scenario.now)
    clock, reached = scenario.now, []
    for r in reqs:
        clock = r.at or clock
        reached.append((r.series(scenario), days_between(r.start, r.end), clock))
    found += unreached(faults, scenario.cached, series, reached)
    if found:
        fail(found[0].field, found[0].message)
    judged = reqs[0] if scenario.crash is not None else reqs[-1]  # a crash scenario: expect is about its first fetch
    last = set(days_between(judged.start, judged.end))
    for name in ("sources", "cache_after"):
        for key in getattr(scenario.expect, name):
            if key != "default" and dt.date.fromisoformat(key) not in last:
                fail(
                    f"expect.{name}.{key}",
                    f"{key} is not a day of the {'first' if judged is reqs[0] else 'last'} request "
                    f"({_span(sorted(last))}): expect is judged on that request only, so this would never be checked",
                )


def _span(days: list[dt.date]) -> str:
    return f"{days[0]}..{days[-1]}" if days else "no day"


def _cached(raw: Any, fail: Fail) -> tuple[dt.date, ...]:
    if not isinstance(raw, list):
        fail("cached", f'cached must be a list of days, e.g. ["2024-01-02"], got {raw!r}')
    if len(raw) > LIMITS["cached"]:
        fail("cached", f"{len(raw)} days; at most {LIMITS['cached']}")
    return tuple(parse_day(d, fail, f"cached[{i}]") for i, d in enumerate(raw))


def _delay(data: Mapping[str, Any], fail: Fail) -> float:
    delay = data.get("publish_delay_hours", 24.0)
    limit = MAX_PUBLISH_DELAY / dt.timedelta(hours=1)
    if (
        isinstance(delay, bool)
        or not isinstance(delay, (int, float))
        or not math.isfinite(delay)
        or not 0 <= delay <= limit
    ):
        fail("publish_delay_hours", f"expected a number of hours from 0 to {limit:g}, got {delay!r}")
    return float(delay)


def _cache_from(value: Any, base: pathlib.Path | None, fail: Fail) -> pathlib.Path:
    """``cache_from``: a directory, relative to the scenario file's (``base``; else the working directory)."""
    if not isinstance(value, str) or not value:
        fail("cache_from", f'expected the path of a saved cache directory, e.g. "caches/warm", got {value!r}')
    path = pathlib.Path(value).expanduser()
    try:
        return check_cache_from(path if path.is_absolute() or base is None else base / path)
    except WorldError as exc:
        fail("cache_from", str(exc))


def parse_scenario(
    raw: Mapping[str, Any],
    *,
    theme: str,
    file: str,
    defaults: Mapping[str, Any],
    base: pathlib.Path | None = None,
) -> Scenario:
    """Validate one raw scenario table (merged over ``defaults``) into a Scenario; raise ``ScenarioError``.

    ``base``: the directory a relative ``cache_from`` is read from (the scenario file's)."""
    name = raw.get("name") if isinstance(raw, Mapping) else None

    def fail(field: str, message: str) -> NoReturn:
        raise ScenarioError(message, file=file, scenario=str(name or "?"), field=field)

    if not isinstance(raw, Mapping):
        fail("scenario", "each [[scenario]] must be a table")
    if not isinstance(name, str) or not name or any(c in name for c in " /[]:") or len(name) > 120:
        fail(
            "name",
            f"every scenario needs a name (at most 120 characters) without spaces, '/', ':' or brackets, got {name!r}",
        )
    data = {**defaults, **raw}
    unknown = sorted(set(data) - SCENARIO_KEYS)
    if unknown:
        fail(unknown[0], f"unknown key; allowed: {', '.join(sorted(SCENARIO_KEYS))}")
    for key in ("description", "now", "request"):
        if key not in data:
            fail(key, "missing (every scenario states its description, now and request)")
    if not isinstance(data["description"], str):
        fail("description", "expected a string")
    now = _when(data["now"], fail, "now")
    if now == _LISTED:
        fail("now", f"{now.isoformat()} is the listing moment: no bar has opened yet; move now later")
    symbol, market, interval = _series(data, fail, "", None)
    truth = data.get("truth", "synthetic")
    if truth not in ("synthetic", "golden"):
        fail("truth", f"unknown truth {truth!r}; allowed: synthetic, golden")
    local_tz = data.get("local_tz")
    if local_tz is not None:
        try:
            check_local_tz(local_tz)
        except WorldError as exc:
            fail("local_tz", str(exc))
    env: tuple[tuple[str, str], ...] = ()
    if "env" in data:
        try:
            env = check_env(data["env"])
        except ValueError as exc:
            fail("env", str(exc))
    delay = _delay(data, fail)
    engines, together = instances(data, fail)
    cache_from = _cache_from(data["cache_from"], base, fail) if "cache_from" in data else None
    requests = _requests(data["request"], now, (symbol, market, interval), delay, fail)
    engines_asked(requests, engines, together, fail)
    faults = _faults(data.get("faults", []), fail)
    cached = _cached(data.get("cached", []), fail)
    expect = parse_expect(data.get("expect", {}), fail)
    crash = crash_value(data.get("crash"), len(requests), fail)
    if crash is not None and engines > 1:
        fail("crash", "crash points replay one engine instance's writes; drop engines (or crash)")
    scenario = Scenario(
        name=name,
        description=data["description"],
        now=now,
        requests=requests,
        market=market,
        symbol=symbol,
        interval=interval,
        truth=truth,
        faults=faults,
        cached=cached,
        publish_delay_hours=delay,
        local_tz=local_tz,
        env=env,
        engines=engines,
        together=together,
        crash=crash,
        expect=expect,
        theme=theme,
        file=file,
        cache_from=cache_from,
    )
    _reachable(faults, requests, scenario, fail)
    if truth == "golden":
        _golden(scenario, fail)
    return scenario


def _golden(scenario: Scenario, fail: Fail) -> None:
    """Refuse a request the recorded week cannot answer: it would see no bars at all, whatever it tests."""
    from pytest_fcp.world.truth import GoldenTruth

    first, last = GoldenTruth.FIRST_DAY, GoldenTruth.LAST_DAY
    covered = ", ".join(f"{m} {s} {i}" for m, s, i in GoldenTruth.FILES)
    if (scenario.market, scenario.symbol, scenario.interval) not in GoldenTruth.FILES:
        fail(
            "truth",
            f"the golden truth has no {scenario.market} {scenario.symbol} {scenario.interval}; it covers {covered}",
        )
    for i, request in enumerate(scenario.requests):
        what = f"request[{i}]" if len(scenario.requests) > 1 else "request"
        symbol, market, interval = request.series(scenario)
        if (market, symbol, interval) not in GoldenTruth.FILES:
            fail(what, f"the golden truth has no {market} {symbol} {interval}; it covers {covered}")
        outside = [d for d in days_between(request.start, request.end) if not first <= d <= last]
        if outside:
            fail(what, f"{outside[0]} is outside the golden truth's recorded week ({first}..{last}): no bar there")
