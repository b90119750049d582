"""Loading scenario TOML files, with errors that name the file, the scenario and the field.

File format (see ``scenarios/README.md``)::

    description = "what this theme covers"          # optional
    [defaults]                                       # optional: any scenario key
    now = "2024-01-10T12:00:00Z"

    [[scenario]]
    name = "403_falls_back_to_rest"
    description = "Vision answers 403 for every file; the days come from REST."
    faults = ["vision.http403", { id = "rest.http503", days = ["2024-01-03"], attempts = "first:1" }]
    cached = ["2024-01-02"]
    request = { start = "2024-01-02", end = "2024-01-05" }   # or a list of requests, run in order
    [scenario.expect]
    outcome = "data"
    sources = { default = "rest" }
"""

from __future__ import annotations

import datetime as dt
import pathlib
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

from pytest_fcp.contract import CHECKS
from pytest_fcp.core.cache_states import DAY_STATES as CACHE_STATES
from pytest_fcp.core.freshness import FRESHNESS
from pytest_fcp.core.markets import INTERVALS, MARKETS, days_between
from pytest_fcp.core.sources import OUTCOMES, SOURCES
from pytest_fcp.faults import Fault, FaultSpecError, fault
from pytest_fcp.scenarios.model import (
    Expect,
    Request,
    Scenario,
    ScenarioError,
    count_ok,
)

__all__ = ["catalog_dir", "load_dir", "load_file", "parse_file"]

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
    "expect",
}
EXPECT_KEYS = {"outcome", "sources", "requests", "cache_after", "skip_checks"}
FILE_KEYS = {"description", "defaults", "scenario"}
EDGE_MARGIN = dt.timedelta(hours=1)


def catalog_dir() -> pathlib.Path:
    """The bundled catalog: inside the wheel, or the repository's ``scenarios/``."""
    here = pathlib.Path(__file__).resolve().parent.parent
    packaged = here / "_catalog"
    return packaged if packaged.is_dir() else here.parent / "scenarios"


def _when(value: Any, fail: Any, what: str) -> dt.datetime:
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
        return value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), dt.UTC)
    fail(what, f"expected a date or time, got {type(value).__name__} {value!r}")
    raise AssertionError  # unreachable


def _day(value: Any, fail: Any, what: str) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    fail(what, f"{value!r} is not a day (write 2024-01-02)")
    raise AssertionError  # unreachable


def _alternatives(value: Any, allowed: Iterable[str], fail: Any, what: str) -> frozenset[str]:
    items = value if isinstance(value, list) else str(value).split("|") if isinstance(value, str) else None
    if not items:
        fail(what, f"expected a name or a list of names from {', '.join(allowed)}, got {value!r}")
    out = frozenset(str(i).strip() for i in items)  # type: ignore[union-attr]
    bad = sorted(out - set(allowed))
    if bad:
        fail(what, f"unknown {', '.join(map(repr, bad))}; allowed: {', '.join(allowed)}")
    return out


def _faults(raw: Any, fail: Any) -> tuple[Fault, ...]:
    if not isinstance(raw, list):
        fail("faults", f"expected a list of fault ids or tables, got {type(raw).__name__}")
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
        except TypeError as exc:
            fail(what, f"bad fault fields: {exc}")
    return tuple(out)


def _expect(raw: Any, fail: Any) -> Expect:
    if not isinstance(raw, dict):
        fail("expect", f"expected a table, got {type(raw).__name__}")
    unknown = sorted(set(raw) - EXPECT_KEYS)
    if unknown:
        fail(f"expect.{unknown[0]}", f"unknown key; allowed: {', '.join(sorted(EXPECT_KEYS))}")
    outcome = tuple(sorted(_alternatives(raw["outcome"], OUTCOMES, fail, "expect.outcome"))) if "outcome" in raw else ()
    sources: dict[str, frozenset[str]] = {}
    for key, value in (raw.get("sources") or {}).items():
        if key != "default":
            _day(key, fail, f"expect.sources.{key}")
        sources[key] = _alternatives(value, SOURCES, fail, f"expect.sources.{key}")
    cache_after: dict[str, frozenset[str]] = {}
    for key, value in (raw.get("cache_after") or {}).items():
        if key != "default":
            _day(key, fail, f"expect.cache_after.{key}")
        cache_after[key] = _alternatives(value, CACHE_STATES, fail, f"expect.cache_after.{key}")
    requests: dict[str, str] = {}
    for key, value in (raw.get("requests") or {}).items():
        if key not in ("vision", "rest"):
            fail(f"expect.requests.{key}", "unknown source; allowed: vision, rest")
        try:
            count_ok(value, 0)
        except ValueError:
            fail(f"expect.requests.{key}", f"{value!r} is not a count like 0, '>=1' or '<=3'")
        requests[key] = str(value)
    skip = raw.get("skip_checks", [])
    if not isinstance(skip, list) or any(s not in CHECKS for s in skip):
        fail("expect.skip_checks", f"expected a list of check names from {', '.join(CHECKS)}, got {skip!r}")
    return Expect(outcome, sources, requests, cache_after, frozenset(skip))


def parse_scenario(raw: Mapping[str, Any], *, theme: str, file: str, defaults: Mapping[str, Any]) -> Scenario:
    """Validate one raw scenario table (merged over ``defaults``) into a Scenario; raise ``ScenarioError``."""
    name = raw.get("name")

    def fail(field: str, message: str) -> None:
        raise ScenarioError(message, file=file, scenario=str(name or "?"), field=field)

    if not isinstance(name, str) or not name or any(c in name for c in " /[]:"):
        fail("name", f"every scenario needs a name without spaces, '/', ':' or brackets, got {name!r}")
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
    market = data.get("market", "spot")
    if market not in MARKETS:
        fail("market", f"unknown market {market!r}; allowed: {', '.join(MARKETS)}")
    interval = data.get("interval", "1h")
    if interval not in INTERVALS or interval not in MARKETS[market].intervals:
        fail(
            "interval",
            f"{interval!r} is not a {market} interval; allowed: {', '.join(MARKETS[market].intervals)}",
        )
    symbol = data.get("symbol") or ("BTCUSD_PERP" if market == "futures_coin" else "BTCUSDT")
    if not isinstance(symbol, str):
        fail("symbol", "expected a string")
    truth = data.get("truth", "synthetic")
    if truth not in ("synthetic", "golden"):
        fail("truth", f"unknown truth {truth!r}; allowed: synthetic, golden")
    raw_requests = data["request"]
    if isinstance(raw_requests, dict):
        raw_requests = [raw_requests]
    if not isinstance(raw_requests, list) or not raw_requests:
        fail("request", "expected a table {start, end} or a list of them")
    requests = []
    for i, req in enumerate(raw_requests):
        what = f"request[{i}]" if len(raw_requests) > 1 else "request"
        if not isinstance(req, dict) or set(req) != {"start", "end"}:
            fail(what, "expected exactly the keys start and end")
        start, end = _when(req["start"], fail, f"{what}.start"), _when(req["end"], fail, f"{what}.end")
        if start >= end:
            fail(what, f"start {start.isoformat()} is not before end {end.isoformat()}")
        if start >= now:
            fail(what, f"start {start.isoformat()} is not before now {now.isoformat()}")
        requests.append(Request(start, end))
    delay = data.get("publish_delay_hours", 24.0)
    if not isinstance(delay, (int, float)) or delay < 0:
        fail("publish_delay_hours", f"expected a number >= 0, got {delay!r}")
    # keep clear of the freshness edges, where engines may legitimately differ
    for req in requests:
        for day in days_between(req.start, req.end):
            day_end = dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(days=1)
            for label, edge in (
                ("48 h freshness", now - FRESHNESS),
                ("Vision publication", now - dt.timedelta(hours=delay)),
            ):
                if abs(day_end - edge) < EDGE_MARGIN:
                    fail(
                        "now",
                        f"day {day} ends within an hour of the {label} edge ({edge.isoformat()}); "
                        "move now by an hour or more",
                    )
    faults = _faults(data.get("faults", []), fail)
    cached = tuple(_day(d, fail, f"cached[{i}]") for i, d in enumerate(data.get("cached", [])))
    expect = _expect(data.get("expect", {}), fail)
    return Scenario(
        name=name,
        description=data["description"],
        now=now,
        requests=tuple(requests),
        market=market,
        symbol=symbol,
        interval=interval,
        truth=truth,
        faults=faults,
        cached=cached,
        publish_delay_hours=float(delay),
        expect=expect,
        theme=theme,
        file=file,
    )


def parse_file(text: str, *, file: str, theme: str) -> list[Scenario]:
    """Parse a TOML scenario file's text into its scenarios; raise ``ScenarioError`` on any problem."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"not valid TOML: {exc}", file=file) from None
    unknown = sorted(set(doc) - FILE_KEYS)
    if unknown:
        raise ScenarioError(
            f"unknown top-level key {unknown[0]!r}; allowed: {', '.join(sorted(FILE_KEYS))} "
            "(scenarios go in [[scenario]] tables)",
            file=file,
        )
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ScenarioError("[defaults] must be a table", file=file)
    bad = sorted(set(defaults) - (SCENARIO_KEYS - {"name"}))
    if bad:
        raise ScenarioError(f"unknown key {bad[0]!r} in [defaults]", file=file, field=f"defaults.{bad[0]}")
    raw = doc.get("scenario", [])
    if not isinstance(raw, list):
        raise ScenarioError("scenarios must be an array of tables: write [[scenario]]", file=file)
    out: list[Scenario] = []
    names: set[str] = set()
    for entry in raw:
        scenario = parse_scenario(entry, theme=theme, file=file, defaults=defaults)
        if scenario.name in names:
            raise ScenarioError("duplicate scenario name in this file", file=file, scenario=scenario.name, field="name")
        names.add(scenario.name)
        out.append(scenario)
    return out


def load_file(path: pathlib.Path, *, display: str | None = None) -> list[Scenario]:
    """Read and parse a scenario file, its theme being the file's stem."""
    return parse_file(path.read_text(encoding="utf-8"), file=display or str(path), theme=path.stem)


def load_dir(directory: pathlib.Path) -> list[Scenario]:
    """Scenarios of every ``*.toml`` file in ``directory``, in file-name order."""
    out: list[Scenario] = []
    for path in sorted(directory.glob("*.toml")):
        out.extend(load_file(path))
    return out
