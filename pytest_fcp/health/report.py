"""What a health scan found: per series and for the whole tree, with the verdict and exit status."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_fcp.core.cache_states import HEALTH_ISSUES
from pytest_fcp.core.freshness import last_old_day
from pytest_fcp.core.markets import ms_to_datetime
from pytest_fcp.health.files import FileReport

__all__ = ["ISSUES", "PROBLEM_ISSUES", "HealthReport", "SeriesReport", "human_bytes"]

#: Issue names, in the order of precedence used for a file's headline status.
ISSUES = tuple(HEALTH_ISSUES)
#: Every issue is a problem (exit status 1); kept as a set for callers that want to relax it.
PROBLEM_ISSUES = frozenset(ISSUES)


@dataclass
class SeriesReport:
    """One market / symbol / interval directory of one layout."""

    layout: str
    market: str
    symbol: str
    interval: str
    directory: str
    exists: bool = True
    writable: bool | None = None
    files: list[FileReport] = field(default_factory=list)
    other_files: list[str] = field(default_factory=list)
    requested: tuple[dt.date, dt.date] | None = None
    now_ms: int = 0

    @property
    def key(self) -> tuple[str, str, str, str]:
        """(market, symbol, interval, layout)."""
        return (self.market, self.symbol, self.interval, self.layout)

    @property
    def total_bytes(self) -> int:
        """The size of the day files."""
        return sum(f.size for f in self.files)

    @property
    def days(self) -> list[dt.date]:
        """The days with a file, in order."""
        return sorted(f.day for f in self.files)

    @property
    def bad_files(self) -> list[FileReport]:
        """The files with an issue."""
        return [f for f in self.files if f.issues]

    def issue_counts(self) -> dict[str, int]:
        """Files per issue, in precedence order."""
        counts: dict[str, int] = {}
        for report in self.files:
            for issue in report.issues:
                counts[issue] = counts.get(issue, 0) + 1
        return {name: counts[name] for name in ISSUES if name in counts}

    def gaps(self) -> list[tuple[dt.date, dt.date]]:
        """Runs of days without a file between the first and the last day that has one."""
        return _missing_runs(self.days)

    def requested_coverage(self) -> dict[str, Any] | None:
        """Coverage of ``--from``/``--to``: days with a healthy file, and the cacheable days without one."""
        if self.requested is None:
            return None
        lo, hi = self.requested
        healthy = {f.day for f in self.files if not f.issues}
        present = {f.day for f in self.files}
        cutoff = last_cacheable_day(self.now_ms)
        wanted = [dt.date.fromordinal(o) for o in range(lo.toordinal(), hi.toordinal() + 1)]
        cacheable = [d for d in wanted if d <= cutoff]
        missing = [d for d in cacheable if d not in present]
        unusable = [d for d in cacheable if d in present and d not in healthy]
        return {
            "from": lo.isoformat(),
            "to": hi.isoformat(),
            "days": len(wanted),
            "cacheable_days": len(cacheable),
            "healthy_days": sum(1 for d in cacheable if d in healthy),
            "missing_days": len(missing),
            "missing": [[a.isoformat(), b.isoformat()] for a, b in _runs(missing)],
            "unusable_days": len(unusable),
            "too_recent_days": len(wanted) - len(cacheable),
        }

    def problems(self) -> list[str]:
        """One short phrase per problem kind of this series (empty: healthy)."""
        out = [f"{n} {name}" for name, n in self.issue_counts().items() if name in PROBLEM_ISSUES]
        if not self.exists:
            out.insert(0, "directory missing")
        elif self.writable is False:
            out.insert(0, "directory not writable")
        coverage = self.requested_coverage()
        if coverage and coverage["missing_days"]:
            out.append(f"{coverage['missing_days']} requested day(s) not cached")
        return out

    def to_dict(self, verbose: bool = True) -> dict[str, Any]:
        """The series as JSON."""
        days = self.days
        bad = self.bad_files
        return {
            "layout": self.layout,
            "market": self.market,
            "symbol": self.symbol,
            "interval": self.interval,
            "directory": self.directory,
            "exists": self.exists,
            "writable": self.writable,
            "files": len(self.files),
            "bytes": self.total_bytes,
            "first_day": days[0].isoformat() if days else None,
            "last_day": days[-1].isoformat() if days else None,
            "healthy_files": len(self.files) - len(bad),
            "gaps": [[a.isoformat(), b.isoformat()] for a, b in self.gaps()],
            "gap_days": sum((b - a).days + 1 for a, b in self.gaps()),
            "requested": self.requested_coverage(),
            "issues": self.issue_counts(),
            "problems": self.problems(),
            "bad_files": [f.to_dict() for f in bad],
            "other_files": list(self.other_files),
        }


@dataclass
class HealthReport:
    """What a scan of one cache directory found."""

    root: str
    root_source: str
    now: dt.datetime
    root_exists: bool
    root_writable: bool | None
    series: list[SeriesReport] = field(default_factory=list)
    unrecognised: list[str] = field(default_factory=list)
    filters: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def files(self) -> int:
        """The number of day files judged."""
        return sum(len(s.files) for s in self.series)

    @property
    def bad_files(self) -> int:
        """The number of day files with an issue."""
        return sum(len(s.bad_files) for s in self.series)

    def issue_counts(self) -> dict[str, int]:
        """Files per issue, in precedence order."""
        counts: dict[str, int] = {}
        for series in self.series:
            for name, n in series.issue_counts().items():
                counts[name] = counts.get(name, 0) + n
        return {name: counts[name] for name in ISSUES if name in counts}

    @property
    def healthy(self) -> bool:
        """No problem anywhere (and the cache dir is writable)."""
        return self.root_writable is not False and not any(s.problems() for s in self.series)

    @property
    def exit_status(self) -> int:
        """0 healthy, 1 problems."""
        return 0 if self.healthy else 1

    def verdict(self) -> str:
        """One line: HEALTHY or PROBLEMS, and what."""
        n_series = len(self.series)
        size = human_bytes(sum(s.total_bytes for s in self.series))
        base = f"{self.files:,} day file(s), {size}, {n_series} series"
        if self.healthy:
            if not self.files:
                return "HEALTHY (empty): no day files of a known layout found, nothing to judge"
            return f"HEALTHY: {base}, no problems found"
        parts = []
        if self.root_writable is False:
            parts.append("cache directory not writable")
        if self.bad_files:
            issues = ", ".join(f"{n} {name}" for name, n in self.issue_counts().items())
            parts.append(f"{self.bad_files:,} bad file(s) ({issues})")
        unwritable = sum(1 for s in self.series if s.exists and s.writable is False)
        if unwritable:
            parts.append(f"{unwritable} series directory(ies) not writable")
        absent = sum(1 for s in self.series if not s.exists)
        if absent:
            parts.append(f"{absent} series directory(ies) missing")
        uncovered = sum((s.requested_coverage() or {}).get("missing_days", 0) for s in self.series)
        if uncovered:
            parts.append(f"{uncovered} requested day(s) not cached")
        return f"PROBLEMS: {base}: " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` report."""
        return {
            "cache_dir": self.root,
            "cache_dir_source": self.root_source,
            "now": self.now.isoformat().replace("+00:00", "Z"),
            "exists": self.root_exists,
            "writable": self.root_writable,
            "filters": self.filters,
            "layouts": sorted({s.layout for s in self.series}),
            "series": [s.to_dict() for s in self.series],
            "unrecognised_files": list(self.unrecognised),
            "summary": {
                "series": len(self.series),
                "files": self.files,
                "bytes": sum(s.total_bytes for s in self.series),
                "bad_files": self.bad_files,
                "issues": self.issue_counts(),
                "healthy": self.healthy,
                "seconds": round(self.seconds, 3),
            },
            "verdict": self.verdict(),
            "exit_status": self.exit_status,
        }


def human_bytes(n: int) -> str:
    """``n`` bytes for people: ``512 B``, ``1.5 KiB``, ... ``GiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _runs(days: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    runs: list[list[dt.date]] = []
    for day in sorted(days):
        if runs and (day - runs[-1][1]).days == 1:
            runs[-1][1] = day
        else:
            runs.append([day, day])
    return [(a, b) for a, b in runs]


def _missing_runs(days: Sequence[dt.date]) -> list[tuple[dt.date, dt.date]]:
    out = []
    for before, after in itertools.pairwise(days):
        if (after - before).days > 1:
            out.append((before + dt.timedelta(days=1), after - dt.timedelta(days=1)))
    return out


def last_cacheable_day(now_ms: int) -> dt.date:
    """The last UTC day old enough to be cached at ``now_ms`` (see :func:`pytest_fcp.core.freshness.last_old_day`)."""
    return last_old_day(ms_to_datetime(now_ms))
