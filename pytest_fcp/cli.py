"""The ``fcp`` command: check a real kline cache, and diagnose one fetch of an FCP engine.

``fcp cache-health``
    Scans a cache directory (default: ckvd's, as ckvd resolves it) and reports, per market / symbol /
    interval, whether the directory is writable, the day files, their size, coverage and gaps, and every
    file that is empty, unreadable, not Arrow, of the wrong schema or types, partial, duplicated, out of its
    day, suspected stale, or younger than 48 h (see :mod:`pytest_fcp.health`).

``fcp diagnose SYMBOL MARKET INTERVAL``
    Runs one fetch of the last ``--days`` days through an engine adapter, traced, and reports rows per
    source, each source's latency, the decision path and hints. Live against Binance by default (the
    network is checked first, in seconds); ``--simulate FAULT...`` runs the same fetch in the simulated
    world, offline, with those faults injected.

Exit status: 0 healthy / fetch fine, 1 problems found, 2 usage error (or no network for a live diagnose).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import pathlib
import re
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from pytest_fcp.core.markets import INTERVALS, MARKETS, day_bounds_ms, days_between, market_spec, to_ms

if TYPE_CHECKING:
    from rich.console import Console

    from pytest_fcp.health import HealthReport
    from pytest_fcp.trace import Event

__all__ = ["EXIT_OK", "EXIT_PROBLEMS", "EXIT_USAGE", "UsageError", "build_parser", "main"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
VISION_HOST = "data.binance.vision"
MIN_AGE = dt.timedelta(hours=48)
#: Bad files listed in the human report without --verbose.
SHOWN_BAD_FILES = 20
#: How a row without a source (e.g. a NaN row an engine padded a gap with) is counted.
NO_SOURCE = "(none)"
#: Show a progress bar (on a TTY) from this many files on (environment: FCP_PROGRESS_FROM).
PROGRESS_FROM = 2_000


class UsageError(Exception):
    """Bad input: printed as one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (no usage block) and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --- argument types ---
def _market(text: str) -> str:
    if text not in MARKETS:
        raise argparse.ArgumentTypeError(f"unknown market {text!r}; expected one of {', '.join(MARKETS)}")
    return text


def _interval(text: str) -> str:
    if text not in INTERVALS:
        raise argparse.ArgumentTypeError(f"unknown interval {text!r}; expected one of {', '.join(INTERVALS)}")
    return text


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2024-01-31 (YYYY-MM-DD)") from None


def _now(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time like 2024-01-10T12:00:00Z") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no timezone; write it in UTC, e.g. 2024-01-10T12:00:00Z")
    return moment.astimezone(dt.UTC)


def _symbol(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9]+(_[A-Za-z0-9]+)?", text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a Binance symbol; expected letters and digits like BTCUSDT (COIN-M: BTCUSD_PERP)"
        )
    return text.upper()


def _positive_days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 366:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days from 1 to 366")
    return value


def _workers(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes >= 1")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 60:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds in (0, 60]")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fcp",
        description="Check an FCP engine's kline cache, and diagnose one fetch (cache -> Vision -> REST).",
        epilog="Exit status: 0 healthy, 1 problems found, 2 usage error.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    health = commands.add_parser(
        "cache-health",
        help="scan a kline cache and report its health per market / symbol / interval",
        description=(
            "Scan a kline cache (ckvd's layout and the reference engine's) and report, per market / symbol / "
            "interval, the directory's state, day files, size, coverage and gaps, and every bad file."
        ),
        epilog="Exit status: 0 healthy, 1 problems found, 2 usage error.",
    )
    health.add_argument(
        "--cache-dir",
        type=pathlib.Path,
        metavar="DIR",
        help="the cache directory (default: ckvd's default cache dir, as ckvd resolves it)",
    )
    health.add_argument("--verbose", "-v", action="store_true", help="list every bad file and gap")
    health.add_argument("--json", action="store_true", help="machine-readable output (no progress bar)")
    health.add_argument("--market", type=_market, metavar="M", help=f"only this market ({', '.join(MARKETS)})")
    health.add_argument("--symbol", type=_symbol, metavar="S", help="only this symbol, e.g. BTCUSDT")
    health.add_argument("--interval", type=_interval, metavar="I", help="only this interval, e.g. 1h")
    health.add_argument("--from", dest="day_from", type=_day, metavar="D", help="first day (YYYY-MM-DD)")
    health.add_argument("--to", dest="day_to", type=_day, metavar="D", help="last day (YYYY-MM-DD)")
    health.add_argument(
        "--now", type=_now, metavar="ISO", help="judge ages against this UTC time (default: the current time)"
    )
    health.add_argument(
        "--workers", type=_workers, metavar="N", help="scan processes (default: all cores for large caches)"
    )

    diagnose = commands.add_parser(
        "diagnose",
        help="run one traced fetch through an engine and explain what happened",
        description=(
            "Run one fetch of the last --days days through an engine adapter, traced: rows per source, "
            "latency per source, the decision path and hints. Live against Binance unless --simulate."
        ),
        epilog=("Exit status: 0 the fetch went well, 1 problems found, 2 usage error or no network for a live run."),
    )
    diagnose.add_argument("symbol", type=_symbol, metavar="SYMBOL", help="e.g. BTCUSDT (COIN-M: BTCUSD_PERP)")
    diagnose.add_argument("market", type=_market, metavar="MARKET", help=", ".join(MARKETS))
    diagnose.add_argument("interval", type=_interval, metavar="INTERVAL", help="e.g. 1h")
    diagnose.add_argument(
        "--days",
        type=_positive_days,
        default=3,
        metavar="N",
        help="fetch the last N whole UTC days plus today so far (3)",
    )
    diagnose.add_argument("--engine", default="reference", metavar="NAME", help="engine adapter (reference)")
    diagnose.add_argument(
        "--simulate",
        nargs="+",
        metavar="FAULT",
        help="run offline in the simulated world with these faults (fault ids; 'none' for no fault)",
    )
    diagnose.add_argument(
        "--now",
        type=_now,
        metavar="ISO",
        help="the simulated world's UTC now (default: the current time); --simulate only",
    )
    diagnose.add_argument(
        "--warm", action="store_true", help="--simulate only: pre-fill the cache with the range's old days"
    )
    diagnose.add_argument(
        "--cache-dir",
        type=pathlib.Path,
        metavar="DIR",
        help="live only: the engine's cache dir (default: the engine's own default location)",
    )
    diagnose.add_argument(
        "--timeout",
        type=_seconds,
        default=3.0,
        metavar="S",
        help="live only: seconds to wait for the network check (3)",
    )
    diagnose.add_argument("--json", action="store_true", help="machine-readable output")
    diagnose.add_argument("--verbose", "-v", action="store_true", help="also print the full event trace")
    return parser


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    width = None if tty else int(os.environ.get("COLUMNS", "0") or 0) or 150
    return Console(file=stream, width=width, highlight=False, soft_wrap=True, emoji=False, markup=False)


# --- cache-health ---
def cmd_cache_health(args: argparse.Namespace) -> int:
    from pytest_fcp.health import default_cache_dir, scan_cache

    if args.day_from and args.day_to and args.day_from > args.day_to:
        raise UsageError(f"--from {args.day_from} is after --to {args.day_to}; give --from <= --to")
    if args.cache_dir is not None:
        root = args.cache_dir.expanduser()
        how = "given with --cache-dir"
        if not root.exists():
            raise UsageError(f"--cache-dir: {str(root)!r} does not exist; give the directory of the engine's cache")
        if not root.is_dir():
            raise UsageError(f"--cache-dir: {str(root)!r} is not a directory")
    else:
        root, how = default_cache_dir()
        if not root.is_dir():
            raise UsageError(
                f"no cache at {str(root)!r} ({how}): ckvd has not cached anything there yet; "
                f"give the cache's directory with --cache-dir DIR"
            )

    now = args.now or dt.datetime.now(dt.UTC)
    progress_factory, stop_progress = _progress(enabled=not args.json and sys.stderr.isatty())
    try:
        report = scan_cache(
            root,
            root_source=how,
            now=now,
            market=args.market,
            symbol=args.symbol,
            interval=args.interval,
            day_from=args.day_from,
            day_to=args.day_to,
            workers=args.workers,
            progress=progress_factory,
        )
    finally:
        stop_progress()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_health(report, verbose=args.verbose)
    return report.exit_status


def _progress(enabled: bool) -> tuple[Callable[[int], Any] | None, Callable[[], None]]:
    """A progress bar on stderr for large scans (TTY only); returns (factory for scan_cache, stop)."""
    if not enabled:
        return None, lambda: None
    state: dict[str, Any] = {}

    def factory(total: int) -> Callable[[int, int], None] | None:
        if total < int(os.environ.get("FCP_PROGRESS_FROM", PROGRESS_FROM)):
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(
            TextColumn("scanning day files"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=_console(stderr=True),
            transient=True,
        )
        task = bar.add_task("scan", total=total)
        bar.start()
        state["bar"] = bar

        def hook(done: int, _total: int) -> None:
            bar.update(task, completed=done)

        return hook

    def stop() -> None:
        if "bar" in state:
            state.pop("bar").stop()

    return factory, stop


def _compact(problem: str) -> str:
    """'3 partial_day' -> 'partial_day(3)' (one unbreakable word per problem in a narrow column)."""
    count, _, name = problem.partition(" ")
    if not count.isdigit() or " " in name:
        return problem
    return name if count == "1" else f"{name}({count})"


def _runs_text(runs: Sequence[Sequence[str]], limit: int | None) -> str:
    parts = [a if a == b else f"{a}..{b}" for a, b in runs]
    if limit is not None and len(parts) > limit:
        return ", ".join(parts[:limit]) + f", ... (+{len(parts) - limit})"
    return ", ".join(parts) or "none"


def _print_health(report: HealthReport, verbose: bool) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from pytest_fcp.health import human_bytes

    console = _console()
    data = report.to_dict()
    state = "missing" if not report.root_exists else "writable" if report.root_writable else "NOT writable"
    console.print(Text(f"Cache dir: {report.root}", style="bold"))
    console.print(f"  ({report.root_source}); directory {state}")
    layouts = ", ".join(data["layouts"]) or "none recognised"
    console.print(
        f"  now {data['now']} · layouts: {layouts} · {report.files:,} day files scanned in {report.seconds:.2f} s"
    )
    if report.filters:
        console.print("  filters: " + ", ".join(f"{k}={v}" for k, v in report.filters.items()))

    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for name, kwargs in (
        ("Series", {"no_wrap": True}),
        ("Layout", {"no_wrap": True}),
        ("Dir", {"no_wrap": True}),
        ("Files", {"justify": "right", "no_wrap": True}),
        ("Size", {"justify": "right", "no_wrap": True}),
        ("Coverage", {"no_wrap": True}),
        ("Gaps", {"overflow": "fold"}),
        ("Problems", {"overflow": "fold", "min_width": 20}),
    ):
        table.add_column(name, **kwargs)
    for series in report.series:
        s = series.to_dict()
        directory = "missing" if not s["exists"] else "rw" if s["writable"] else "NOT writable"
        coverage = f"{s['first_day']}..{s['last_day']}" if s["files"] else "-"
        gaps = "none" if not s["gaps"] else f"{s['gap_days']}d: " + _runs_text(s["gaps"], None if verbose else 3)
        problems = ", ".join(_compact(problem) for problem in s["problems"]) or "none"
        table.add_row(
            f"{series.market} {series.symbol} {series.interval}",
            series.layout,
            directory,
            f"{s['files']:,}",
            human_bytes(s["bytes"]),
            coverage,
            gaps,
            Text(problems, style="red" if s["problems"] else "green"),
        )
    if report.series:
        console.print(table)
    else:
        console.print("No series directory of a known layout found (see `fcp cache-health --help`).")

    for series in report.series:
        coverage = series.requested_coverage()
        if coverage is None:
            continue
        missing = _runs_text(coverage["missing"], None if verbose else 5)
        console.print(
            f"Requested {coverage['from']}..{coverage['to']} for {series.market} {series.symbol} "
            f"{series.interval} ({series.layout}): "
            f"{coverage['healthy_days']} of {coverage['cacheable_days']} "
            f"cacheable day(s) healthy; {coverage['missing_days']} missing ({missing}); "
            f"{coverage['unusable_days']} bad; {coverage['too_recent_days']} too recent to be cached"
        )

    bad = [(series, f) for series in report.series for f in series.bad_files]
    if bad:
        shown = bad if verbose else bad[:SHOWN_BAD_FILES]
        files = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, title_justify="left")
        files.title = f"Bad files ({len(bad)})" + ("" if len(shown) == len(bad) else f", first {len(shown)}")
        for name in ("Series", "Day", "Status", "Size"):
            files.add_column(name, no_wrap=True, justify="right" if name == "Size" else "left")
        files.add_column("Detail", overflow="fold")
        if verbose:
            files.add_column("File", overflow="fold")
        for series, f in shown:
            cells = [
                f"{series.market} {series.symbol} {series.interval} ({series.layout})",
                f.day.isoformat(),
                ", ".join(f.issues),
                human_bytes(f.size),
                f.detail,
            ]
            files.add_row(*cells, *([f.path] if verbose else []))
        console.print(files)
        if len(shown) < len(bad):
            console.print(f"... and {len(bad) - len(shown)} more bad file(s): use --verbose or --json")
    if report.unrecognised:
        sample = report.unrecognised if verbose else report.unrecognised[:5]
        more = "" if len(sample) == len(report.unrecognised) else f" ... (+{len(report.unrecognised) - 5})"
        console.print(
            f"{len(report.unrecognised)} .arrow file(s) outside any known layout (not judged): "
            + ", ".join(sample)
            + more
        )
    verdict = report.verdict()
    console.print(Text(verdict, style="bold green" if report.healthy else "bold red"))


# --- diagnose ---
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

    @property
    def path(self) -> str:
        from pytest_fcp.trace import render_path

        return render_path(self.events)

    @property
    def problems(self) -> bool:
        return any(h["severity"] == "problem" for h in self.hints)

    @property
    def exit_status(self) -> int:
        return EXIT_PROBLEMS if self.problems else EXIT_OK

    def old_days(self) -> list[str]:
        """Days of the range that ended at least 48 h before now (Vision has them; engines cache them)."""
        limit = to_ms(self.now - MIN_AGE)
        return [d.isoformat() for d in days_between(self.start, self.end) if day_bounds_ms(d)[1] <= limit]

    def whole_old_days(self) -> list[str]:
        """Old days that the range covers whole (an engine can cache only those)."""
        lo, hi = to_ms(self.start), to_ms(self.end)
        return [
            day
            for day in self.old_days()
            if lo <= day_bounds_ms(dt.date.fromisoformat(day))[0] and day_bounds_ms(dt.date.fromisoformat(day))[1] <= hi
        ]

    def recent_days(self) -> list[str]:
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
        return round(sum(float(e.data.get("seconds", 0.0)) for e in self.events if e.kind == "sleep"), 3)

    def to_dict(self) -> dict[str, Any]:
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


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _fetch_range(now: dt.datetime, days: int) -> tuple[dt.datetime, dt.datetime]:
    """The last ``days`` whole UTC days before today, plus today up to ``now``."""
    midnight = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - dt.timedelta(days=days), now


def cmd_diagnose(args: argparse.Namespace) -> int:
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
    if args.simulate is not None:
        diagnosis = _diagnose_simulated(args, factory, faults)
    else:
        diagnosis = _diagnose_live(args, factory)
    _add_hints(diagnosis)
    if args.json:
        print(json.dumps(diagnosis.to_dict(), indent=2, default=str))
    else:
        _print_diagnosis(diagnosis, verbose=args.verbose)
    return diagnosis.exit_status


def _parse_faults(names: list[str] | None) -> list[Any]:
    if not names:
        return []
    from pytest_fcp.faults import FaultSpecError, fault

    out = []
    for name in names:
        if name == "none":
            continue
        try:
            # cache faults need days: checked here with a stand-in, scoped to the fetched range later
            days = [dt.date(2000, 1, 1)] if name.startswith("cache.") and name != "cache.read_only_dir" else None
            out.append(fault(name, days=days))
        except FaultSpecError as exc:
            raise UsageError(f"--simulate: {exc}") from None
    return out


def _diagnose_simulated(args: argparse.Namespace, factory: Any, faults: list[Any]) -> Diagnosis:
    from pytest_fcp.faults import fault
    from pytest_fcp.world import World
    from pytest_fcp.world.world import WorldError

    now = args.now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    start, end = _fetch_range(now, args.days)
    days = days_between(start, end)
    # Cache faults describe files, so they need days: every day of the range (read_only_dir: the directory).
    scoped = [
        fault(f.id, days=days, **dict(f.params)) if f.source == "cache" and f.id != "cache.read_only_dir" else f
        for f in faults
    ]
    faulted_days = {d for f in scoped if f.source == "cache" and f.days for d in f.days}
    with tempfile.TemporaryDirectory(prefix="fcp-diagnose-") as tmp:
        try:
            world = World(
                pathlib.Path(tmp) / "cache",
                now,
                market=args.market,
                symbol=args.symbol,
                interval=args.interval,
                faults=scoped,
            )
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
        _warm_up_imports()
        with world:
            world.create_engine(factory)
            if args.warm:
                limit = to_ms(now - MIN_AGE)
                warm = [d for d in days if day_bounds_ms(d)[1] <= limit and d not in faulted_days]
                world.seed_cache(warm)
            t0 = time.perf_counter()
            result = world.fetch(start, end)
            diagnosis.wall_ms = (time.perf_counter() - t0) * 1000
            after = {d.isoformat(): world.cache_state(d).status for d in days}
            expected = world.expected(start, end).num_rows
        diagnosis.events = list(world.trace.events)
        diagnosis.cache_before = {d.isoformat(): s.status for d, s in result.cache_before.items()}
        diagnosis.cache_after = after
        diagnosis.expected_rows = expected
        _fill_outcome(diagnosis, result.table, result.error)
        world.sandbox.restore()
    return diagnosis


def _warm_up_imports() -> None:
    """Import what engines import lazily on their first call (pyarrow's to_numpy pulls in pandas: seconds),
    so that a one-time import is not reported as the latency of whichever source triggered it."""
    for name in ("pandas", "pyarrow.compute", "pyarrow.csv"):
        with contextlib.suppress(ImportError):
            __import__(name)


def _fill_outcome(diagnosis: Diagnosis, table: Any, error: BaseException | None) -> None:
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


# --- live ---
class NoNetwork(Exception):
    """Binance cannot be reached from here (the message says what was tried)."""


def check_network(hosts: Sequence[str], timeout: float) -> dict[str, str | None]:
    """host -> None if a TCP connection to host:443 opens within ``timeout`` s, else why not (in parallel)."""

    def probe(host: str) -> str | None:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                return None
        except socket.gaierror as exc:
            return f"DNS lookup failed ({exc.strerror or exc})"
        except TimeoutError:
            return f"no answer within {timeout:g} s"
        except OSError as exc:
            return f"{type(exc).__name__}: {exc.strerror or exc}"

    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        return dict(zip(hosts, pool.map(probe, hosts), strict=True))


def _source_of(host: str) -> str:
    if host == VISION_HOST:
        return "vision"
    if host in {spec.rest_host for spec in MARKETS.values()}:
        return "rest"
    return "net"


@contextlib.contextmanager
def _traced_httpx(trace: Any) -> Iterator[None]:
    """Record every httpx request (sync and async transports) as an ``http`` event of ``trace``."""
    import httpx

    sync_send = httpx.HTTPTransport.handle_request
    async_send = httpx.AsyncHTTPTransport.handle_async_request

    def record(request: httpx.Request, t0: float, status: int | None, error: str | None) -> None:
        took = (time.perf_counter() - t0) * 1000
        trace.record(
            "http",
            source=_source_of(request.url.host),
            door="https",
            method=request.method,
            url=str(request.url),
            status=status,
            error=error,
            duration_s=round(took / 1000, 3),
            took_ms=round(took, 3),
        )

    def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        t0 = time.perf_counter()
        try:
            response = sync_send(self, request)
        except Exception as exc:
            record(request, t0, None, type(exc).__name__)
            raise
        record(request, t0, response.status_code, None)
        return response

    async def handle_async_request(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        t0 = time.perf_counter()
        try:
            response = await async_send(self, request)
        except Exception as exc:
            record(request, t0, None, type(exc).__name__)
            raise
        record(request, t0, response.status_code, None)
        return response

    httpx.HTTPTransport.handle_request = handle_request  # type: ignore[method-assign]
    httpx.AsyncHTTPTransport.handle_async_request = handle_async_request  # type: ignore[method-assign]
    try:
        yield
    finally:
        httpx.HTTPTransport.handle_request = sync_send  # type: ignore[method-assign]
        httpx.AsyncHTTPTransport.handle_async_request = async_send  # type: ignore[method-assign]


def _default_live_cache_dir(engine: str) -> pathlib.Path:
    if engine == "ckvd":
        from pytest_fcp.health import default_cache_dir

        return default_cache_dir()[0]
    import platformdirs

    return pathlib.Path(platformdirs.user_cache_path("pytest-fcp")) / engine.replace(":", "_").replace("/", "_")


_HEALTH_TO_PATH = {"ok": "hit", "missing": "miss", "partial_day": "partial", "stale_day": "stale"}


def _live_cache_state(engine: Any, diagnosis: Diagnosis, day: dt.date, layout: str) -> str:
    """hit / miss / partial / stale / corrupt / recent for a day's file, judged by the health checks."""
    from pytest_fcp.health import check_day_file

    path = engine.cache_file(diagnosis.symbol, diagnosis.market, diagnosis.interval, day)
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return "miss"
    except OSError:
        return "corrupt"
    report = check_day_file(str(path), size, day, diagnosis.interval, layout, to_ms(diagnosis.now))
    issues = [i for i in report.issues if i != "too_recent"]
    if not issues:
        return "hit"
    return _HEALTH_TO_PATH.get(issues[0], "corrupt")


def _diagnose_live(args: argparse.Namespace, factory: Any) -> Diagnosis:
    from pytest_fcp.trace import Trace

    spec = market_spec(args.market)
    hosts = [VISION_HOST, spec.rest_host]
    reach = check_network(hosts, args.timeout)
    if all(reach.values()):
        detail = "; ".join(f"{h}:443: {why}" for h, why in reach.items())
        raise NoNetwork(
            f"cannot reach Binance ({detail}). A live diagnose needs the internet; "
            f"run it offline against the "
            f"simulated world instead, e.g. fcp diagnose {args.symbol} {args.market} {args.interval} "
            f"--simulate vision.http403"
        )
    cache_dir = (args.cache_dir or _default_live_cache_dir(args.engine)).expanduser()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start, end = _fetch_range(now, args.days)
    diagnosis = Diagnosis("live", args.engine, args.symbol, args.market, args.interval, start, end, now, str(cache_dir))
    layout = "ckvd" if args.engine == "ckvd" else "reference"
    engine = factory(cache_dir)
    trace = Trace()
    days = days_between(start, end)
    try:
        diagnosis.cache_before = {d.isoformat(): _live_cache_state(engine, diagnosis, d, layout) for d in days}
        trace.record(
            "request",
            symbol=args.symbol,
            market=args.market,
            interval=args.interval,
            start=start.isoformat(),
            end=end.isoformat(),
            cache_days=dict(diagnosis.cache_before),
        )
        for host, why in reach.items():
            if why:
                trace.record("log", level="WARNING", message=f"network check: {host}:443 {why}")
        _warm_up_imports()
        t0 = time.perf_counter()
        table, error = None, None
        with _traced_httpx(trace):
            try:
                table = engine.fetch(args.symbol, args.market, args.interval, start, end)
            except Exception as exc:
                error = exc
        diagnosis.wall_ms = (time.perf_counter() - t0) * 1000
        if error is None and table is not None:
            by_day: dict[str, dict[str, int]] = {}
            counts: dict[str, int] = {}
            times = table["open_time"].cast("int64").to_pylist()
            for t, source in zip(times, table["source"].to_pylist(), strict=True):
                day = "null" if t is None else dt.datetime.fromtimestamp(t / 1000, dt.UTC).date().isoformat()
                per = by_day.setdefault(day, {})
                key = NO_SOURCE if source is None else str(source)
                per[key] = per.get(key, 0) + 1
                counts[key] = counts.get(key, 0) + 1
            trace.record("outcome", rows=table.num_rows, rows_by_source=counts, rows_by_day=by_day)
        else:
            trace.record("outcome", error=type(error).__name__, message=str(error)[:500])
        diagnosis.cache_after = {d.isoformat(): _live_cache_state(engine, diagnosis, d, layout) for d in days}
    finally:
        close = getattr(engine, "close", None)
        if callable(close):
            close()
    diagnosis.events = list(trace.events)
    _fill_outcome(diagnosis, table, error)
    return diagnosis


# --- hints ---
def _add_hints(d: Diagnosis) -> None:
    def hint(key: str, severity: str, text: str) -> None:
        d.hints.append({"id": key, "severity": severity, "text": text})

    http = [e for e in d.events if e.kind == "http"]
    vision = [e for e in http if e.data.get("source") == "vision"]
    rest = [e for e in http if e.data.get("source") == "rest"]
    recent = d.recent_days()

    if d.error is not None:
        hint("fetch_failed", "problem", f"the fetch failed: {d.error}")
    forbidden = [e for e in vision if e.data.get("status") == 403]
    if forbidden:
        hint(
            "vision_403",
            "problem",
            f"Binance Vision answered 403 Forbidden to {len(forbidden)} request(s). "
            "data.binance.vision refuses "
            "some networks and regions (it is geo-blocked e.g. in the US, and behind some proxies and cloud "
            "hosts); the engine had to fall back to REST, which is slower, rate-limited and per-request "
            "weighted. Run from a network Vision serves, or expect REST-only fetches.",
        )
    limited = [e for e in rest if e.data.get("status") in (418, 429)]
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
            f"{len(recent)} day(s) of the range ({recent[0]}..{recent[-1]}) ended less than 48 h before now: "
            "Binance Vision publishes a day's file only after that, so these days must come from REST and should "
            "not be cached. Expected.",
        )
        asked = [e for e in vision if any(day in str(e.data.get("url", "")) for day in recent)]
        if asked:
            hint(
                "vision_asked_too_early",
                "info",
                f"the engine asked Vision for {len(asked)} object(s) of days younger than 48 h (answers: "
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
        if e.data.get("status") is None or (e.data["status"] >= 400 and e.data["status"] not in (418, 429))
    ]
    if rest_failed:
        hint("rest_failed", "problem", f"REST failed {len(rest_failed)} time(s) ({_statuses(rest_failed)}).")

    # Cache use: hits the engine ignored, and old days it fetched but did not leave in the cache.
    hits = [day for day, state in d.cache_before.items() if state == "hit"]
    refetched = [day for day in hits if set(d.rows_by_day.get(day, {})) - {"cache"}]
    if refetched:
        hint(
            "cache_not_used",
            "problem",
            f"the cache held valid files for {len(refetched)} day(s) ({', '.join(refetched)}) but the engine "
            "fetched them again from the network.",
        )
    fetched_old = [day for day in d.whole_old_days() if set(d.rows_by_day.get(day, {})) & {"vision", "rest"}]
    not_stored = [day for day in fetched_old if d.cache_after.get(day) not in ("valid", "hit")]
    if d.error is None and not_stored:
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
            "problem" if left else "info",
            f"{len(bad_before)} cache file(s) were unusable before the fetch "
            f"({_count(bad_before.values())}) and had to be fetched again; {len(repaired)} valid afterwards"
            + (f"; still bad: {', '.join(left)}" if left else "")
            + ". Run `fcp cache-health` on the real cache.",
        )
    written_young = [
        day for day in recent if d.cache_before.get(day) in absent and d.cache_after.get(day) not in (*absent, None)
    ]
    if written_young:
        hint(
            "cached_too_recent",
            "problem",
            f"the engine wrote cache files for {len(written_young)} day(s) younger than 48 h "
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
    if d.expected_rows is not None and d.error is None and d.rows != d.expected_rows:
        hint(
            "rows_differ",
            "problem",
            f"the engine returned {d.rows} row(s); the simulated truth has {d.expected_rows} for the range.",
        )
    if d.nan_rows:
        hint(
            "nan_rows",
            "problem",
            f"{d.nan_rows} of {d.rows} row(s) came back with NaN/null prices"
            + (f" ({d.rows_by_source[NO_SOURCE]} without a source)" if NO_SOURCE in d.rows_by_source else "")
            + ": the engine padded bars it did not get instead of returning data or failing.",
        )
    violations = [e for e in d.events if e.kind == "violation"]
    if violations:
        hint(
            "violations",
            "problem",
            f"{len(violations)} forbidden network access(es): "
            + "; ".join(str(e.data.get("detail", "")) for e in violations[:3]),
        )
    if not d.hints or all(h["severity"] == "info" for h in d.hints):
        hint("ok", "info", "no problem seen: the engine handled this fetch as the FCP contract expects.")


def _statuses(events: Sequence[Event]) -> str:
    return _count(str(e.data.get("status", e.data.get("error", "?"))) for e in events)


def _count(values: Any) -> str:
    counts: dict[str, int] = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return ", ".join(f"{k} x{n}" for k, n in sorted(counts.items()))


def _print_diagnosis(d: Diagnosis, verbose: bool) -> None:
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
            "yes" if day in old else "no (< 48 h)",
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


# --- entry point ---
def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # --help (0) or a usage error already printed (2)
        return int(exc.code or 0)
    command = f"fcp {args.command}"
    try:
        if args.command == "cache-health":
            return cmd_cache_health(args)
        return cmd_diagnose(args)
    except UsageError as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NoNetwork as exc:
        print(f"{command}: error: no network: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `fcp cache-health | head`
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the interpreter's final flush
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
