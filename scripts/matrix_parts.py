"""The parts scripts/gen_matrix.py builds its candidate scenarios from: the fault lists, a candidate and its
TOML, and the small helpers every family uses."""

from __future__ import annotations

import datetime as dt
import pathlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_fcp.core.limits import SCENARIO_LIMITS  # noqa: E402
from pytest_fcp.core.markets import MARKETS  # noqa: E402
from pytest_fcp.faults.table import FAULTS  # noqa: E402

TARGET = ROOT / "scenarios" / "matrix.toml"
Cell = tuple[str, str, str]

VISION = [k for k, v in FAULTS.items() if v.source == "vision"]
REST = [k for k, v in FAULTS.items() if v.source == "rest"]
CACHE_DAY = [k for k, v in FAULTS.items() if v.source == "cache" and v.needs_days]
CACHE_DIR = [k for k, v in FAULTS.items() if v.source == "cache" and not v.needs_days]
#: REST faults a correct engine gets past within one fetch when they fail once (retried, or a page it repairs).
REST_PASSABLE = [k for k in REST if not FAULTS[k].rate_limit and k not in ("rest.malformed_json", "rest.empty_page")]
#: REST faults that end a fetch (a rate limit, an answer no engine can use).
REST_FATAL = [k for k in REST if k not in REST_PASSABLE]
#: Vision faults answering with an HTTP status or a transport error, which can hit the .CHECKSUM as well as the zip.
VISION_HTTP = [
    k for k, v in FAULTS.items() if v.source == "vision" and v.effect.kind in ("s3_error", "connect", "timeout")
]
VISION_HTTP = [k for k in VISION_HTTP if FAULTS[k].objects == ("zip", "checksum")]
#: The broken states the per-day cache faults leave (every state but valid and missing).
BROKEN = ("partial", "stale", "unreadable", "schema", "extra", "corrupt")
#: The interval a swapped Vision file holds: another one than the series asks for.
OTHER_INTERVAL = {"1d": "1h"}
SPOT = MARKETS["spot"].intervals
#: Intervals the per-interval themes cover from Vision and the cache (1s days are built second by second:
#: the 1s scenarios take the faults from short windows instead).
MINUTE_UP = [i for i in SPOT if i != "1s"]
#: The longest request a scenario file may make (the loader's limit).
MAX_REQUEST_DAYS = SCENARIO_LIMITS["request_days"]


def _iso(moment: dt.datetime | dt.date) -> str:
    if isinstance(moment, dt.datetime):
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat()


def _at(day: dt.date, hours: float = 0.0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(hours=hours)


def _days(first: dt.date, n: int) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range(n)]


@dataclass
class Candidate:
    """One scenario of the theme and the cells it is built to reach."""

    name: str
    description: str
    now: dt.datetime
    requests: list[dict[str, str]]
    cells: set[Cell]
    faults: list[str] = field(default_factory=list)
    cached: list[dt.date] = field(default_factory=list)
    interval: str = "1h"
    market: str = ""
    local_tz: str = ""

    def toml(self) -> str:
        """The ``[[scenario]]`` table."""
        lines = ["[[scenario]]", f'name = "{self.name}"', f'description = "{self.description}"']
        if self.market:
            lines.append(f'market = "{self.market}"')
        lines += [f'interval = "{self.interval}"', f'now = "{_iso(self.now)}"']
        if self.local_tz:
            lines.append(f'local_tz = "{self.local_tz}"')
        if self.faults:
            lines.append("faults = [\n  " + ",\n  ".join(self.faults) + ",\n]")
        if self.cached:
            lines.append("cached = [" + ", ".join(f'"{d.isoformat()}"' for d in self.cached) + "]")
        reqs = ["{ " + ", ".join(f'{k} = "{v}"' for k, v in r.items()) + " }" for r in self.requests]
        if len(reqs) == 1:
            lines.append(f"request = {reqs[0]}")
        else:
            lines.append("request = [\n  " + ",\n  ".join(reqs) + ",\n]")
        return "\n".join(lines)


def _fault(fid: str, days: Iterable[dt.date] = (), **extra: object) -> str:
    parts = [f'id = "{fid}"']
    days = list(days)
    if days:
        parts.append("days = [" + ", ".join(f'"{d.isoformat()}"' for d in days) + "]")
    for key, value in extra.items():
        parts.append(f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value}")
    return "{ " + ", ".join(parts) + " }"


def _swap_params(fid: str, interval: str) -> dict[str, object]:
    if fid == "vision.wrong_interval":
        return {"other": OTHER_INTERVAL.get(interval, "1d")}
    return {}


def _req(start: dt.datetime | dt.date, end: dt.datetime | dt.date, **extra: str) -> dict[str, str]:
    return {"start": _iso(start), "end": _iso(end), **extra}


def _hit(fid: str, target: str, interval: str) -> set[Cell]:
    return {("fault x target", fid, target), ("fault x interval", fid, interval)}


def _vision_target(fid: str) -> str:
    return "Vision .CHECKSUM" if FAULTS[fid].objects == ("checksum",) else "Vision zip"


def _cache_target(fid: str) -> str:
    return "cache write" if fid in CACHE_DIR else "cache read"
