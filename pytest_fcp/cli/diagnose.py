"""``fcp diagnose``: the Diagnosis of one fetch, the simulated run, the contract's verdicts, and printing."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import pathlib
import tempfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_fcp.cli.args import EXIT_OK, EXIT_PROBLEMS, UsageError
from pytest_fcp.cli.output import console as _console
from pytest_fcp.cli.output import iso as _iso
from pytest_fcp.core.freshness import FRESHNESS_HOURS, is_old
from pytest_fcp.core.markets import day_bounds_ms, days_between, market_spec, to_ms

if TYPE_CHECKING:
    from pytest_fcp.engines import EngineFactory
    from pytest_fcp.faults import Fault
    from pytest_fcp.trace import Event
    from pytest_fcp.world.observation import Observation
    from pytest_fcp.world.spec import WorldSpec

__all__ = [
    "NO_SOURCE",
    "Diagnosis",
    "diagnose_simulated",
    "fetch_range",
    "fill_outcome",
    "prepare",
    "print_diagnosis",
    "show",
    "warm_up_imports",
]

#: How a row without a source (e.g. a NaN row an engine padded a gap with) is counted.
NO_SOURCE = "(none)"


@dataclass
class Diagnosis:
    """Everything ``fcp diagnose`` found out about one fetch."""

    mode: str  # "live" or "simulated"
    engine: str
    symbol: str
    market: str
    interval: str
    start: dt.datetime
    end: dt.datetime
    now: dt.datetime
    cache_dir: str
    faults: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    rows_by_source: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    expected_rows: int | None = None
    error: str | None = None
    error_kind: str | None = None
    cache_before: dict[str, str] = field(default_factory=dict)
    cache_after: dict[str, str] = field(default_factory=dict)
    rows_by_day: dict[str, dict[str, int]] = field(default_factory=dict)
    wall_ms: float = 0.0
    hints: list[dict[str, str]] = field(default_factory=list)
    nan_rows: int = 0
    #: The contract's verdicts as ``(check, reason)`` (simulated runs only; ``None``: not judged).
    verdicts: list[tuple[str, str]] | None = None

    @property
    def path(self) -> str:
        """The decision path the trace shows."""
        from pytest_fcp.trace import render_path

        return render_path(self.events)

    @property
    def problems(self) -> bool:
        """Whether any hint is a problem."""
        return any(h["severity"] == "problem" for h in self.hints)

    @property
    def exit_status(self) -> int:
        """1 if any hint is a problem, else 0."""
        return EXIT_PROBLEMS if self.problems else EXIT_OK

    def old_days(self) -> list[str]:
        """Days of the range old enough for Vision (and for the cache): see :mod:`pytest_fcp.core.freshness`."""
        return [d.isoformat() for d in days_between(self.start, self.end) if is_old(d, self.now)]

    def whole_old_days(self) -> list[str]:
        """Old days that the range covers whole (an engine can cache only those)."""
        lo, hi = to_ms(self.start), to_ms(self.end)
        return [
            day
            for day in self.old_days()
            if lo <= day_bounds_ms(dt.date.fromisoformat(day))[0] and day_bounds_ms(dt.date.fromisoformat(day))[1] <= hi
        ]

    def recent_days(self) -> list[str]:
        """Days of the range too recent for Vision."""
        old = set(self.old_days())
        return [d.isoformat() for d in days_between(self.start, self.end) if d.isoformat() not in old]

    def sources(self) -> dict[str, dict[str, Any]]:
        """Per source: rows, requests, statuses, errors and latency."""
        out: dict[str, dict[str, Any]] = {}
        request_ms = next((e.real_ms for e in self.events if e.kind == "request"), 0.0)
        first_net = next((e.real_ms for e in self.events if e.kind == "http"), None)
        outcome_ms = next((e.real_ms for e in self.events if e.kind == "outcome"), request_ms)
        reads = sum(1 for e in self.events if e.kind == "cache" and e.data.get("op") == "read")
        writes = sum(1 for e in self.events if e.kind == "cache" and e.data.get("op") in ("write", "replace"))
        out["cache"] = {
            "rows": self.rows_by_source.get("cache", 0),
            "files_read": reads,
            "files_written": writes,
            # The cache is local: its latency is the time the engine spent before its first network request
            # (or the whole fetch when it made none), an upper bound on the cache lookups.
            "latency_ms": round((first_net if first_net is not None else outcome_ms) - request_ms, 1),
        }
        for source in ("vision", "rest"):
            http = [e for e in self.events if e.kind == "http" and e.data.get("source") == source]
            statuses: dict[str, int] = {}
            for e in http:
                key = str(e.data.get("status", e.data.get("error", "?")))
                statuses[key] = statuses.get(key, 0) + 1
            took = [float(e.data.get("took_ms", 0.0)) for e in http]
            out[source] = {
                "rows": self.rows_by_source.get(source, 0),
                "requests": len(http),
                "statuses": statuses,
                "latency_ms": round(sum(took), 1),
                "mean_ms": round(sum(took) / len(took), 1) if took else None,
                "virtual_s": round(sum(float(e.data.get("duration_s", 0.0) or 0.0) for e in http), 3),
            }
        others = {k: v for k, v in self.rows_by_source.items() if k not in ("cache", "vision", "rest")}
        for name, rows in others.items():
            out[name] = {"rows": rows}
        return out

    def sleeps(self) -> float:
        """Seconds the engine slept (virtual when simulated)."""
        return round(sum(float(e.data.get("seconds", 0.0)) for e in self.events if e.kind == "sleep"), 3)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` report."""
        return {
            "mode": self.mode,
            "engine": self.engine,
            "symbol": self.symbol,
            "market": self.market,
            "interval": self.interval,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "now": _iso(self.now),
            "cache_dir": self.cache_dir,
            "faults": list(self.faults),
            "ok": self.error is None,
            "rows": self.rows,
            "nan_rows": self.nan_rows,
            "expected_rows": self.expected_rows,
            "rows_by_source": dict(self.rows_by_source),
            "rows_by_day": self.rows_by_day,
            "error": self.error,
            "error_kind": self.error_kind,
            "decision_path": self.path,
            "sources": self.sources(),
            "sleep_s": self.sleeps(),
            "cache_before": self.cache_before,
            "cache_after": self.cache_after,
            "days_too_recent_for_vision": self.recent_days(),
            "wall_ms": round(self.wall_ms, 1),
            "hints": self.hints,
            "problems": self.problems,
            "exit_status": self.exit_status,
            "trace": [e.to_dict() for e in self.events],
        }


def fetch_range(now: dt.datetime, days: int) -> tuple[dt.datetime, dt.datetime]:
    """The last ``days`` whole UTC days before today, plus today up to ``now``."""
    midnight = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - dt.timedelta(days=days), now


def prepare(args: argparse.Namespace) -> tuple[EngineFactory, list[Fault]]:
    """Check the diagnose arguments together; the engine factory and the faults to simulate."""
    from pytest_fcp.engines import EngineLoadError, load_engine

    spec = market_spec(args.market)
    if args.interval not in spec.intervals:
        raise UsageError(
            f"interval {args.interval!r} does not exist on {args.market}; allowed: {', '.join(spec.intervals)}"
        )
    if args.market == "futures_coin" and "_" not in args.symbol:
        raise UsageError(f"symbol {args.symbol!r}: COIN-M symbols look like BTCUSD_PERP")
    faults = _parse_faults(args.simulate)
    if args.simulate is None:
        for option in ("now", "warm"):
            if getattr(args, option):
                raise UsageError(f"--{option} applies to --simulate runs only; add --simulate FAULT... (or none)")
    elif args.cache_dir is not None:
        raise UsageError("--cache-dir applies to live runs only; --simulate always uses a temporary cache")
    try:
        factory = load_engine(args.engine)
    except EngineLoadError as exc:
        raise UsageError(str(exc)) from None
    return factory, faults


def _parse_faults(names: list[str] | None) -> list[Fault]:
    if not names:
        return []
    from pytest_fcp.faults import FAULTS, FaultSpecError, fault

    out = []
    for name in names:
        if name == "none":
            continue
        try:
            # cache faults need days: checked here with a stand-in, scoped to the fetched range later
            days = [dt.date(2000, 1, 1)] if name in FAULTS and FAULTS[name].needs_days else None
            out.append(fault(name, days=days))
        except FaultSpecError as exc:
            raise UsageError(f"--simulate: {exc}") from None
    return out


def diagnose_simulated(args: argparse.Namespace, factory: EngineFactory, faults: list[Fault]) -> Diagnosis:
    """Run the fetch offline in the simulated world with ``faults``, judged by the contract."""
    from pytest_fcp.faults import fault
    from pytest_fcp.world.spec import WorldError, WorldSpec
    from pytest_fcp.world.world import World

    now = args.now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    start, end = fetch_range(now, args.days)
    days = days_between(start, end)
    # Cache faults describe files, so they need days: every day of the range (read_only_dir: the directory).
    scoped = [fault(f.id, days=days, **dict(f.params)) if f.kind.needs_days else f for f in faults]
    faulted_days = {d for f in scoped if f.source == "cache" and f.days for d in f.days}
    with tempfile.TemporaryDirectory(prefix="fcp-diagnose-") as tmp:
        try:
            spec = WorldSpec(now, args.market, args.symbol, args.interval, faults=tuple(scoped))
            world = World.from_spec(spec, pathlib.Path(tmp) / "cache")
        except WorldError as exc:
            raise UsageError(str(exc)) from None
        diagnosis = Diagnosis(
            "simulated",
            args.engine,
            args.symbol,
            args.market,
            args.interval,
            start,
            end,
            now,
            cache_dir="(temporary)",
            faults=[f.describe() for f in scoped],
        )
        warm_up_imports()
        with world:
            world.create_engine(factory)
            if args.warm:
                warm = [d for d in days if is_old(d, now) and d not in faulted_days]
                world.seed_cache(warm)
            t0 = time.perf_counter()
            result = world.fetch(start, end)
            diagnosis.wall_ms = (time.perf_counter() - t0) * 1000
            diagnosis.verdicts = _contract_verdicts(spec, result)
        diagnosis.cache_after = {d.isoformat(): s.status for d, s in result.cache_after.items()}
        diagnosis.expected_rows = result.expected.num_rows
        diagnosis.events = list(world.trace.events)
        diagnosis.cache_before = {d.isoformat(): s.status for d, s in result.cache_before.items()}
        fill_outcome(diagnosis, result.table, result.error)
        world.sandbox.restore()
    return diagnosis


def warm_up_imports() -> None:
    """Import what engines import lazily on their first call (pyarrow's to_numpy pulls in pandas: seconds).

    So a one-time import is not reported as the latency of whichever source triggered it.
    """
    for name in ("pandas", "pyarrow.compute", "pyarrow.csv"):
        with contextlib.suppress(ImportError):
            __import__(name)


def fill_outcome(diagnosis: Diagnosis, table: Any, error: BaseException | None) -> None:
    """Rows per source and per day, NaN rows, or the error, from a fetch's result."""
    from pytest_fcp.engines import error_kind

    if error is not None:
        diagnosis.error = f"{type(error).__name__}: {error}"[:1000]
        diagnosis.error_kind = error_kind(error)
        return
    import pyarrow.compute as pc

    diagnosis.rows = table.num_rows
    counts: dict[str, int] = {}
    for source in table["source"].to_pylist():
        key = NO_SOURCE if source is None else str(source)
        counts[key] = counts.get(key, 0) + 1
    diagnosis.rows_by_source = counts
    if table.num_rows:
        empty = pc.or_kleene(pc.is_null(table["close"]), pc.is_nan(table["close"]))
        diagnosis.nan_rows = int(pc.sum(empty.cast("int64")).as_py() or 0)
    outcome = next((e for e in reversed(diagnosis.events) if e.kind == "outcome"), None)
    if outcome is not None:
        nulls = NO_SOURCE in counts and "None" not in counts
        diagnosis.rows_by_day = {
            day: {(NO_SOURCE if nulls and k == "None" else k): n for k, n in per.items()}
            for day, per in outcome.data.get("rows_by_day", {}).items()
        }


def _contract_verdicts(spec: WorldSpec, result: Observation) -> list[tuple[str, str]]:
    """The contract's verdicts on one simulated fetch as ``(check, reason)``: the one call into the contract."""
    from pytest_fcp.contract import judge

    return [(verdict.check, verdict.reason) for verdict in judge(spec, result)]


def show(diagnosis: Diagnosis, args: argparse.Namespace) -> int:
    """Print the diagnosis (``--json`` or for people); the exit status."""
    if args.json:
        print(json.dumps(diagnosis.to_dict(), indent=2, default=str))
    else:
        print_diagnosis(diagnosis, verbose=args.verbose)
    return diagnosis.exit_status


def print_diagnosis(d: Diagnosis, verbose: bool) -> None:
    """Print the diagnosis for people: header, sources, days, hints, verdict."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from pytest_fcp.trace import render_table

    console = _console()
    where = "simulated world (offline)" if d.mode == "simulated" else "live Binance"
    console.print(Text(f"fcp diagnose {d.symbol} {d.market} {d.interval} - engine {d.engine}, {where}", style="bold"))
    console.print(
        f"  range {_iso(d.start)} .. {_iso(d.end)} ({len(days_between(d.start, d.end))} UTC days), now {_iso(d.now)}"
    )
    console.print(f"  cache dir {d.cache_dir}" + (f"; faults: {', '.join(d.faults)}" if d.faults else ""))
    console.print(Text("Decision path: ", style="bold") + Text(d.path))
    if d.error:
        console.print(Text(f"Outcome: FAILED - {d.error}", style="red"))
    else:
        expected = f" (truth: {d.expected_rows})" if d.expected_rows is not None else ""
        console.print(f"Outcome: {d.rows} rows{expected} in {d.wall_ms:.0f} ms")

    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, title="Sources", title_justify="left")
    for name in ("Source", "Rows", "Requests", "Answers", "Latency", "Notes"):
        table.add_column(name, justify="right" if name in ("Rows", "Requests") else "left")
    for source, info in d.sources().items():
        if source == "cache":
            latency = f"<= {info['latency_ms']:.1f} ms"
            notes = (
                f"{info['files_read']} read(s), {info['files_written']} write(s) seen"
                if d.mode == "simulated"
                else "local files"
            )
            table.add_row("cache", str(info["rows"]), "-", "-", latency, notes)
        elif "requests" in info:
            answers = ", ".join(f"{k} x{n}" for k, n in info["statuses"].items()) or "-"
            latency = f"{info['latency_ms']:.1f} ms" if info["requests"] else "-"
            if info["requests"]:
                latency += f" (mean {info['mean_ms']:.1f} ms)"
            notes = f"{info['virtual_s']:g} s simulated" if d.mode == "simulated" and info["virtual_s"] else ""
            table.add_row(source, str(info["rows"]), str(info["requests"]), answers, latency, notes)
        else:
            table.add_row(source, str(info["rows"]), "-", "-", "-", "rows the engine gave no known source")
    console.print(table)
    if d.sleeps():
        console.print(f"The engine slept {d.sleeps():g} s (virtual in --simulate) while backing off.")

    days = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, title="Days", title_justify="left")
    for name in ("Day", "Vision has it", "Cache before", "Rows by source", "Cache after"):
        days.add_column(name)
    old = set(d.old_days())
    for day in [x.isoformat() for x in days_between(d.start, d.end)]:
        rows = ", ".join(f"{s} {n}" for s, n in sorted(d.rows_by_day.get(day, {}).items())) or "-"
        days.add_row(
            day,
            "yes" if day in old else f"no (< {FRESHNESS_HOURS} h)",
            d.cache_before.get(day, "?"),
            rows,
            d.cache_after.get(day, "?"),
        )
    console.print(days)
    hints = Table.grid(padding=(0, 1))
    hints.add_column(no_wrap=True)
    hints.add_column(overflow="fold")
    for h in d.hints:
        style = "red" if h["severity"] == "problem" else "cyan"
        hints.add_row(Text(f"  {h['severity']:<7} {h['id']}", style=style), Text(h["text"]))
    console.print(Text("Hints:", style="bold"))
    console.print(hints)
    if verbose:
        console.print(Text("Trace:", style="bold"))
        console.print(render_table(d.events), markup=False)
    verdict = "PROBLEMS FOUND" if d.problems else "OK"
    console.print(Text(f"{verdict}: {d.path}", style="bold red" if d.problems else "bold green"))
