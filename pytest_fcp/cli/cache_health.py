"""``fcp cache-health``: scan a cache directory and print its health (see ``docs/cli.md``)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pytest_fcp.cli.args import UsageError
from pytest_fcp.cli.output import console as _console

if TYPE_CHECKING:
    from pytest_fcp.health import HealthReport

__all__ = ["PROGRESS_FROM", "SHOWN_BAD_FILES", "cmd_cache_health", "print_health"]

#: Bad files listed in the human report without --verbose.
SHOWN_BAD_FILES = 20
#: Show a progress bar (on a TTY) from this many files on (environment: FCP_PROGRESS_FROM).
PROGRESS_FROM = 2_000


def cmd_cache_health(args: argparse.Namespace) -> int:
    """Run ``fcp cache-health``; the exit status."""
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
        print_health(report, verbose=args.verbose)
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


def print_health(report: HealthReport, verbose: bool) -> None:
    """Print a health report for people: the series table, requested coverage, bad files, verdict."""
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
