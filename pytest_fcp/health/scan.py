"""Walking a cache tree: find the series directories of the known layouts and judge their day files, in a
process pool for large caches."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import multiprocessing
import os
import pathlib
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from pytest_fcp.health.files import FileReport, FileVerdict, Job, check_many
from pytest_fcp.health.layouts import expected_series_dir, guess_layouts, layout, series_of
from pytest_fcp.health.report import HealthReport, SeriesReport, last_cacheable_day

__all__ = ["POOL_THRESHOLD", "STALE_JUMP", "ProgressHook", "scan_cache"]

#: Relative price jump at a day boundary above which a boundary counts as broken (stale_day heuristic).
STALE_JUMP = 0.01
#: From this many files on, the scan uses a process pool.
POOL_THRESHOLD = 4_000


def _writable(directory: pathlib.Path) -> bool:
    """Whether a file can be created in ``directory`` (probed: root ignores mode bits, not immutability)."""
    if not os.access(directory, os.W_OK | os.X_OK):
        return False
    try:
        fd, name = tempfile.mkstemp(prefix=".fcp-health-", dir=directory)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


ProgressHook = Callable[[int, int], None]


def scan_cache(
    root: pathlib.Path,
    *,
    root_source: str = "",
    now: dt.datetime | None = None,
    market: str | None = None,
    symbol: str | None = None,
    interval: str | None = None,
    day_from: dt.date | None = None,
    day_to: dt.date | None = None,
    workers: int | None = None,
    progress: Callable[[int], ProgressHook | None] | None = None,
) -> HealthReport:
    """Scan ``root`` (which must exist) and judge every day file of the recognised layouts.

    ``progress(total)`` may return a callback ``hook(done, total)`` that is called as files are judged.
    """
    started = time.perf_counter()
    now = now or dt.datetime.now(dt.UTC)
    now_ms = int(now.timestamp() * 1000)
    root = pathlib.Path(root)
    report = HealthReport(
        str(root),
        root_source,
        now,
        root.is_dir(),
        _writable(root) if root.is_dir() else None,
        filters={
            k: v
            for k, v in {
                "market": market,
                "symbol": symbol,
                "interval": interval,
                "from": day_from and day_from.isoformat(),
                "to": day_to and day_to.isoformat(),
            }.items()
            if v
        },
    )
    requested = None
    if day_from is not None or day_to is not None:
        requested = (day_from or dt.date.min, day_to or dt.date.max)
    series: dict[str, SeriesReport] = {}
    runner = _Runner(now_ms, workers)
    seen_layouts: set[str] = set()
    owners: list[SeriesReport] = []
    root_text = str(root)
    for dirpath, dirnames, filenames in os.walk(root_text):
        rel = os.path.relpath(dirpath, root_text).replace(os.sep, "/")
        ident = series_of(dirpath.replace(os.sep, "/"))
        if ident is None:
            report.unrecognised.extend(os.path.join(rel, name) for name in filenames if name.endswith(".arrow"))
            continue
        layout_name, mkt, sym, ivl = ident
        day_layout = layout(layout_name)
        seen_layouts.add(layout_name)
        if (
            (market and mkt != market)
            or (symbol and sym.upper() != symbol.upper() and sym.upper() != f"{symbol.upper()}_PERP")
            or (interval and ivl != interval)
        ):
            dirnames[:] = []
            continue
        entry = SeriesReport(layout_name, mkt, sym, ivl, dirpath, requested=None, now_ms=now_ms)
        series[dirpath] = entry
        entry.writable = _writable(pathlib.Path(dirpath))
        names = [(name, False) for name in filenames] + [(name, True) for name in dirnames]
        dirnames[:] = []  # a day "file" that is a directory is reported, not walked into
        for name, is_dir in names:
            day = day_layout.day_of_file(name, sym, ivl)
            if day is None:
                entry.other_files.append(name)
                continue
            if requested and not (requested[0] <= day <= requested[1]):
                continue
            full = os.path.join(dirpath, name)
            if is_dir:
                entry.files.append(FileReport(day, full, 0, ["unreadable"], detail="is a directory, not a file"))
                continue
            runner.add((full, day, ivl, layout_name))
            owners.append(entry)

    if market and symbol and interval and not series:
        # The one series asked for has no directory: name where it would be.
        for name in sorted(seen_layouts or guess_layouts(root)):
            where = expected_series_dir(root, name, market, symbol, interval)
            series[str(where)] = SeriesReport(name, market, symbol, interval, str(where), exists=False, now_ms=now_ms)

    hook = progress(len(runner.jobs)) if progress is not None else None
    results = runner.results(hook)
    for entry, job, (size, issues, rows, detail, first_open, last_close) in zip(
        owners, runner.jobs, results, strict=True
    ):
        entry.files.append(FileReport(job[1], job[0], size, list(issues), rows, detail, first_open, last_close))
    for entry in series.values():
        entry.files.sort(key=lambda f: f.day)
        if requested is not None:
            lo = requested[0] if requested[0] != dt.date.min else (entry.days[0] if entry.days else requested[1])
            hi = requested[1] if requested[1] != dt.date.max else last_cacheable_day(now_ms)
            entry.requested = (lo, hi) if lo <= hi else (lo, lo)
        _flag_stale(entry)
    report.series = sorted(series.values(), key=lambda s: (s.market, s.symbol, s.interval, s.layout, s.directory))
    report.unrecognised.sort()
    report.seconds = time.perf_counter() - started
    return report


def _flag_stale(entry: SeriesReport) -> None:
    """Flag a day whose first open and last close both jump away from its neighbours (stale values)."""
    by_day = {f.day: f for f in entry.files}
    one = dt.timedelta(days=1)
    for report in entry.files:
        before, after = by_day.get(report.day - one), by_day.get(report.day + one)
        if before is None or after is None:
            continue
        values = (before.last_close, report.first_open, report.last_close, after.first_open)
        if any(v is None for v in values):
            continue
        prev_close, first_open, last_close, next_open = values  # type: ignore[misc]
        if _jump(prev_close, first_open) and _jump(last_close, next_open):
            report.issues.insert(
                report.issues.index("too_recent") if "too_recent" in report.issues else len(report.issues),
                "stale_day",
            )
            note = (
                f"prices jump at both day boundaries ({prev_close:g} -> {first_open:g}, "
                f"{last_close:g} -> {next_open:g}): values likely differ from the exchange's"
            )
            report.detail = "; ".join(x for x in (report.detail, note) if x)


def _jump(a: float, b: float) -> bool:
    return abs(a - b) > STALE_JUMP * max(abs(a), abs(b), 1e-12)


def _pool_context() -> Any:
    if sys.platform == "linux":
        return multiprocessing.get_context("fork")
    return None


class _Runner:
    """Judges jobs as the walk finds them: inline for small caches, else in a process pool that starts as
    soon as the count reaches :data:`POOL_THRESHOLD` (so the walk and the checks overlap)."""

    CHUNK = 1_000

    def __init__(self, now_ms: int, workers: int | None) -> None:
        self.now_ms = now_ms
        self.workers = workers
        self.jobs: list[Job] = []
        self.pieces: list[tuple[int, int]] = []  # [start, end) of each submitted chunk
        self.futures: dict[concurrent.futures.Future[list[FileVerdict]], int] = {}
        self.pool: concurrent.futures.ProcessPoolExecutor | None = None
        self.submitted = 0

    def _pool_size(self) -> int:
        if self.workers is not None:
            return self.workers
        return min(os.cpu_count() or 1, 8) if len(self.jobs) >= POOL_THRESHOLD else 1

    def add(self, job: Job) -> None:
        """Queue a day file; submit a chunk to the pool once it is full."""
        self.jobs.append(job)
        if len(self.jobs) - self.submitted >= self.CHUNK and (self.pool is not None or self._pool_size() > 1):
            self._submit(len(self.jobs))

    def _submit(self, end: int) -> None:
        if self.pool is None:
            self.pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self._pool_size(), mp_context=_pool_context()
            )
        while self.submitted < end:
            stop = min(end, self.submitted + self.CHUNK)
            future = self.pool.submit(check_many, self.jobs[self.submitted : stop], self.now_ms)
            self.futures[future] = len(self.pieces)
            self.pieces.append((self.submitted, stop))
            self.submitted = stop

    def results(self, hook: ProgressHook | None) -> list[FileVerdict]:
        """Every job's verdict, in job order (``hook(done, total)`` as they come)."""
        total = len(self.jobs)
        if self.pool is None and (self._pool_size() <= 1 or total < 2):
            out: list[FileVerdict] = []
            for start in range(0, total, 500):
                out.extend(check_many(self.jobs[start : start + 500], self.now_ms))
                if hook is not None:
                    hook(len(out), total)
            return out
        self._submit(total)
        assert self.pool is not None
        results: list[list[FileVerdict]] = [[] for _ in self.pieces]
        done = 0
        try:
            for future in concurrent.futures.as_completed(self.futures):
                index = self.futures[future]
                results[index] = future.result()
                done += self.pieces[index][1] - self.pieces[index][0]
                if hook is not None:
                    hook(done, total)
        finally:
            self.pool.shutdown(cancel_futures=True)
        return [verdict for piece in results for verdict in piece]
