"""Write scenarios/matrix.toml: a covering design for the cells of the coverage map the examples leave empty.

    python scripts/gen_matrix.py           # rewrite scenarios/matrix.toml
    python scripts/gen_matrix.py --check   # exit 1 if the file differs from what this script writes

Each candidate scenario combines several dimension values at once (several faults, each scoped to its own day;
an interval; a market; cached days in several states; a clock; a request shape; later requests via ``at`` for
the engine's lifetime) and states the cells it is built to reach. A greedy covering picks, again and again, the
candidate that reaches the most cells not reached yet, until no candidate adds one: the theme stays small.
The cells a candidate states are its design; ``tests/test_matrix.py`` runs the theme with the coverage map and
checks them.
"""

from __future__ import annotations

import datetime as dt
import pathlib
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_fcp.core.markets import MARKETS, MAX_PAGE_LIMIT, bars_per_day, interval_ms  # noqa: E402
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
MAX_REQUEST_DAYS = 400


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


# --- per interval: every Vision and cache fault on its own day of one month-long old range ------------------
def vision_and_cache(interval: str) -> Candidate:
    """Every Vision fault and every per-day cache fault, each on its own old day of a month, plus write_fails."""
    now = _at(dt.date(2024, 3, 20), 12)
    days = _days(dt.date(2024, 2, 15), 32)  # 2024-02-15 .. 2024-03-17: all old, a month, 29 February inside
    vision_days, cache_days = days[1 : 1 + len(VISION)], days[2 + len(VISION) :]
    faults = [_fault(f, [d], **_swap_params(f, interval)) for f, d in zip(VISION, vision_days, strict=True)]
    faults += [_fault(f, [d]) for f, d in zip(CACHE_DAY, cache_days, strict=False)]
    faults.append(_fault("cache.write_fails"))
    cells: set[Cell] = set()
    for f in VISION:
        cells |= _hit(f, _vision_target(f), interval)
    for f in [*CACHE_DAY, "cache.write_fails"]:
        cells |= _hit(f, _cache_target(f), interval)
    cells |= {("cache state x interval", s, interval) for s in BROKEN}
    cells |= {("shape x interval", "a month or more", interval), ("shape x interval", "aligned to days", interval)}
    if len(days) * bars_per_day(interval) > MAX_PAGE_LIMIT:
        cells.add(("shape x interval", "longer than any page", interval))
    return Candidate(
        f"vision_and_cache_faults_{interval}",
        f"{interval} bars over a month of old days: each Vision fault on its own day (REST serves it), each broken "
        "cache file on its own day (a miss, refetched), and no cache write succeeds.",
        now,
        [_req(days[0], days[-1] + dt.timedelta(days=1))],
        cells,
        faults,
        interval=interval,
    )


# --- per interval: every REST fault, on REST ranges separated by Vision days; the fatal ones a fetch each ----
def rest_faults(interval: str) -> Candidate:
    """REST faults each on its own REST range of one fetch (Vision days between), the fatal ones each a fetch."""
    now = _at(dt.date(2024, 3, 20), 12)
    first = dt.date(2024, 2, 20)
    rest_days = [first + dt.timedelta(days=2 * i) for i in range(len(REST_PASSABLE))]
    span_end = rest_days[-1] + dt.timedelta(days=1)
    fatal_days = _days(span_end + dt.timedelta(days=1), len(REST_FATAL))
    faults = [_fault("vision.http404", [*rest_days, *fatal_days])]
    faults += [
        _fault(f, [d], attempts="first:1")
        if FAULTS[f].obtainable != "yes" and f != "rest.row_fields"
        else _fault(f, [d])
        for f, d in zip(REST_PASSABLE, rest_days, strict=True)
    ]
    faults += [_fault(f, [d]) for f, d in zip(REST_FATAL, fatal_days, strict=True)]
    faults.append(_fault("cache.read_only_dir"))
    step = dt.timedelta(milliseconds=interval_ms(interval))
    mid = _at(rest_days[1]) + step * max(1, bars_per_day(interval) // 2)
    reqs = [_req(first, span_end)]
    reqs += [_req(d, d + dt.timedelta(days=1)) for d in fatal_days]
    # shapes on days the first fetch served: one bar, bars within a day, off the grid by seconds
    reqs.append(_req(mid, mid + step))
    if bars_per_day(interval) > 1:
        reqs.append(_req(mid, mid + 2 * step))
    reqs.append(_req(mid + dt.timedelta(seconds=17), mid + 2 * step + dt.timedelta(seconds=17)))
    cells: set[Cell] = {("fault x interval", "vision.http404", interval)}
    for f in REST:
        cells |= _hit(f, "REST first page", interval)
    cells.add(("fault x target", "rest.http500", "REST one of several ranges"))
    cells |= _hit("cache.read_only_dir", "cache write", interval)
    cells |= {("shape x interval", s, interval) for s in ("one bar", "off grid by seconds", "several days")}
    if bars_per_day(interval) > 1:
        cells |= {("shape x interval", s, interval) for s in ("bars within a day", "mid-day on grid")}
    return Candidate(
        f"rest_faults_{interval}",
        f"{interval} bars: each REST fault on its own REST range (Vision serves the days between); a rate limit, "
        "broken JSON and an empty page each end a fetch of their own; the cache directory is read-only; then "
        "one bar, two bars and a range off the grid by seconds.",
        now,
        reqs,
        cells,
        faults,
        interval=interval,
    )


# --- REST pages: each REST fault on the second page of the second of two REST ranges (1m: 1440 bars a day) ---
def rest_pages() -> Candidate:
    """Each REST fault on a later page of one of two separate REST ranges, a fetch each (a cached day between)."""
    now = _at(dt.date(2024, 3, 20), 12)
    reqs, faults, cached, lost = [], [], [], []
    cells: set[Cell] = {("fault x interval", "vision.http404", "1m")}
    for k, fid in enumerate(REST):
        first = dt.date(2024, 1, 2) + dt.timedelta(days=3 * k)
        held, second = first + dt.timedelta(days=1), first + dt.timedelta(days=2)
        lost += [first, second]
        cached.append(held)
        if FAULTS[fid].rate_limit:  # a one-page second range: no other request of the range in flight to race it
            faults.append(_fault(fid, [second]))
            reqs.append(_req(_at(first, 23), _at(second, 1)))
            cells.add(("fault x target", fid, "REST one of several ranges"))  # its later page: the edges theme
            continue
        faults.append(_fault(fid, [second], attempts="nth:2"))
        reqs.append(_req(_at(first, 23), second + dt.timedelta(days=1)))
        cells |= {("fault x target", fid, "REST later page"), ("fault x target", fid, "REST one of several ranges")}
    faults.insert(0, _fault("vision.http404", lost))
    return Candidate(
        "rest_fault_on_a_later_page_of_one_of_two_ranges",
        "1m bars, a fetch per REST fault: the last hour of one day and the whole of the day after next come from "
        "REST (Vision answers 404, the day between is cached); the fault answers the second page of the second range "
        "(a rate limit: the first hour of the second range, one page).",
        now,
        reqs,
        cells,
        faults,
        cached,
        interval="1m",
    )


def checksum_http() -> Candidate:
    """Each Vision HTTP or transport fault on a day's .CHECKSUM: the second request for that day, after its zip."""
    now = _at(dt.date(2024, 3, 20), 12)
    days = _days(dt.date(2024, 3, 1), len(VISION_HTTP))
    faults = [_fault(f, [d], attempts="nth:2") for f, d in zip(VISION_HTTP, days, strict=True)]
    return Candidate(
        "vision_checksum_fails_after_its_zip",
        "1h bars: the zip of each day answers, then its .CHECKSUM gets a 403, 404, 500, 503, a refused connection "
        "or a timeout (the day's second Vision request): the day is never cached unverified.",
        now,
        [_req(days[0], days[-1] + dt.timedelta(days=1))],
        {("fault x target", f, "Vision .CHECKSUM") for f in VISION_HTTP},
        faults,
    )


def long_rest_range(interval: str) -> Candidate:
    """More bars than any REST page holds, from REST (Vision blocked): the engine must page."""
    now = _at(dt.date(2024, 12, 20), 12)
    days = MAX_PAGE_LIMIT // bars_per_day(interval) + 1
    end = now.date() - dt.timedelta(days=3)
    return Candidate(
        f"longer_than_a_page_from_rest_{interval}",
        f"{interval} bars over {days} old days while Vision answers 403: more bars than any REST page holds.",
        now,
        [_req(end - dt.timedelta(days=days), end)],
        {("shape x interval", "longer than any page", interval), ("fault x interval", "vision.http403", interval)},
        [_fault("vision.http403")],
        interval=interval,
    )


def _market_requests(now: dt.datetime, market: str, intervals: Sequence[str]) -> list[dict[str, str]]:
    start = _at(now.date() - dt.timedelta(days=1), 0)
    return [_req(start, now, market=market, interval=i) for i in intervals]


def markets_clock(half: int) -> Candidate:
    """Futures intervals at a clock off the grid late in the UTC day (east) or early in it (west, waiting)."""
    cells: set[Cell] = set()
    reqs: list[dict[str, str]] = []
    if half == 0:
        now, zone, labels = (
            _at(dt.date(2024, 3, 20), 22.6),
            "Asia/Tokyo",
            ("off grid", "forming bar", "late UTC day", "zone east of UTC"),
        )
        faults: list[str] = []
    else:
        now, zone, labels = (
            _at(dt.date(2024, 3, 20), 1.5),
            "America/New_York",
            ("clock step", "early UTC day", "zone west of UTC", "on grid"),
        )
        faults = [_fault("vision.slow", [now.date() - dt.timedelta(days=3)])]
    reqs.append(_req(_at(now.date() - dt.timedelta(days=3)), now))
    if half:
        old = now.date() - dt.timedelta(days=3)
        reqs += [_req(old, old + dt.timedelta(days=1), market=m) for m in ("futures_usdt", "futures_coin")]
    for market in ("futures_usdt", "futures_coin"):
        intervals = [i for i in MARKETS[market].intervals][half::2]
        reqs += _market_requests(now, market, intervals)
        cells |= {("market x interval", market, i) for i in intervals}
    for market in MARKETS:
        cells |= {("clock x market", label, market) for label in labels}
    what = (
        "late in the UTC day, off every grid (the last bar still forming), in Tokyo"
        if half == 0
        else "early in the UTC day, in New York, after a slow Vision answer moved the clock"
    )
    return Candidate(
        f"futures_intervals_{'late_off_grid_east' if half == 0 else 'early_west_clock_step'}",
        f"Every other interval of both futures markets, {what}: each from yesterday's midnight to now.",
        now,
        reqs,
        cells,
        faults,
        local_tz=zone,
    )


def rest_faults_1s() -> Candidate:
    """Each REST fault on a ten-minute 1s window of the day, a day later each time (the engine asked again)."""
    now = _at(dt.date(2023, 12, 31), 12)
    reqs, faults = [], []
    cells: set[Cell] = set()
    for k, fid in enumerate(REST):
        day = now.date() + dt.timedelta(days=k)
        at = _at(day, 12)
        reqs.append({**_req(_at(day, 0), _at(day, 1 / 6)), **({"at": _iso(at)} if k else {})})
        faults.append(_fault(fid, [day], attempts="first:1"))
        cells |= _hit(fid, "REST first page", "1s")
    cells |= {("shape x interval", "mid-day on grid", "1s"), ("shape x interval", "bars within a day", "1s")}
    cells |= {("calendar x interval", "year end", "1s"), ("lifetime x cache state", "again days later", "missing")}
    return Candidate(
        "rest_faults_on_1s_windows_day_after_day",
        "1s bars, the first ten minutes of today, asked again every day at noon: each day another REST fault "
        "answers (from 31 December 2023 on).",
        now,
        reqs,
        cells,
        faults,
        interval="1s",
    )


# --- the engine's lifetime: days it served read back minutes, hours and days later; broken days met later ---
#: The interval each young broken day is asked in (a cache fault scoped to another series' file of the day).
YOUNG_BROKEN = {
    "cache.stale_day": "4h",
    "cache.unreadable": "2h",
    "cache.missing_column": "6h",
    "cache.ns_timestamps": "8h",
    "cache.zero_byte": "12h",
    "cache.truncated": "30m",
    "cache.duplicate_rows": "15m",
}


def lifetime() -> Candidate:
    """One engine asked again and again: seeded, Vision, REST and Vision-then-REST days read back from its cache
    minutes, hours and days later; broken days first met on each later fetch; young days cached or broken."""
    now = _at(dt.date(2024, 3, 10), 12)
    main = dt.date(2024, 3, 3)  # seeded; 03-04 from Vision; 03-05 from REST; 03-08 from REST, later from Vision
    young = dt.date(2024, 3, 9)
    width = dt.timedelta(days=len(CACHE_DAY))
    blocks = {  # the broken days each later fetch meets first, older the later it comes
        name: _days(main - k * width, len(CACHE_DAY)) for k, name in enumerate(("days", "minutes", "hours"), start=1)
    }
    faults = [_fault("vision.http404", [dt.date(2024, 3, 5)], attempts="first:1")]
    for block in blocks.values():
        faults += [_fault(f, [d]) for f, d in zip(CACHE_DAY, block, strict=True)]
    faults += [_fault(f, [young], interval=i) for f, i in YOUNG_BROKEN.items()]
    end = young + dt.timedelta(days=1)
    reqs = [_req(main, end)]
    reqs += [_req(young, end, interval=i) for i in YOUNG_BROKEN.values()]
    later = now + dt.timedelta(days=3)
    reqs.append({**_req(blocks["days"][0], end), "at": _iso(later)})
    reqs.append({**_req(blocks["minutes"][0], end), "at": _iso(later + dt.timedelta(minutes=10))})
    reqs.append({**_req(blocks["hours"][0], end), "at": _iso(later + dt.timedelta(hours=5))})
    reqs.append({**_req(blocks["hours"][0], end), "at": _iso(later + dt.timedelta(days=2))})
    broken = ("partial", "stale", "unreadable", "schema", "extra", "corrupt")
    cells: set[Cell] = set()
    for life in ("again minutes later", "again hours later", "again days later", "after Vision published"):
        cells |= {("lifetime x origin", life, o) for o in ("seeded", "vision", "rest", "vision and rest")}
        cells |= {("lifetime x cache state", life, s) for s in ("valid", "missing", *broken)}
    cells |= {("age x cache state", "young", s) for s in ("valid", *broken)}
    cells |= {("age x cache state", "a month and more", s) for s in broken}
    cells |= {("lifetime x cache state", "first fetch", "extra"), ("age x cache state", "old", "extra")}
    return Candidate(
        "one_engine_asked_again_minutes_hours_and_days_later",
        "1h bars through one engine: a seeded day, a Vision day, a REST day (Vision failed once) and a day REST "
        "served young and Vision later, read back minutes, hours and days later; each later fetch first meets "
        "ten broken cache files (a month old for the last); yesterday's files of six intervals broken or cached.",
        now,
        reqs,
        cells,
        faults,
        [main, young],
    )


# --- 1s bars: a day of them is 86,400 rows, so every 1s scenario asks for minutes and shares one old day ---
ONE_SECOND_DAY = dt.date(2024, 1, 10)  # the old 1s day whose Vision zip the 1s scenarios share


def _window(day: dt.date, minutes: float = 10) -> dict[str, str]:
    return _req(_at(day), _at(day, minutes / 60))


def vision_faults_1s() -> Candidate:
    """Every Vision fault on one old 1s day, fetch after fetch (each fault answers one attempt at the day)."""
    now = _at(dt.date(2024, 1, 20), 12)
    day = ONE_SECOND_DAY
    zip_first = [f for f in VISION if FAULTS[f].objects != ("checksum",) and f != "vision.slow"]
    # attempts are counted per fault over the objects it hits: count this engine's zip and .CHECKSUM requests
    checksums = 0
    faults, reqs = [], []
    order = [*zip_first, *[f for f in VISION if FAULTS[f].objects == ("checksum",)], "vision.slow"]
    for zips, fid in enumerate(order):
        objects = FAULTS[fid].objects
        nth = {("zip", "checksum"): zips + checksums + 1, ("zip",): zips + 1, ("checksum",): checksums + 1}[objects]
        faults.append(_fault(fid, [day], attempts=f"nth:{nth}", **_swap_params(fid, "1s")))
        checksums += 0 if fid in VISION_HTTP else 1  # a zip answered 200 is followed by its .CHECKSUM
        reqs.append(_window(day))
    reqs.append(_window(day))  # the slow but right answer was cached: read back
    faults.append(_fault("cache.read_only_dir"))
    cells: set[Cell] = set()
    for f in [*VISION, "cache.read_only_dir"]:
        cells.add(("fault x interval", f, "1s"))
    return Candidate(
        "vision_faults_on_one_1s_day_fetch_after_fetch",
        "1s bars, the first ten minutes of one old day asked again and again: each time another Vision fault "
        "answers the day's zip or .CHECKSUM (REST serves the minutes), until a slow but right answer; the cache "
        "directory is read-only.",
        now,
        reqs,
        cells,
        faults,
        interval="1s",
    )


def cache_faults_1s() -> Candidate:
    """Every broken cache file on a young 1s day, a day later each time; then a write that fails on the old day."""
    now = _at(dt.date(2024, 2, 1), 12)
    reqs, faults, cells = [], [], set()
    cached = [now.date() - dt.timedelta(days=1)]
    for k, fid in enumerate([None, *CACHE_DAY]):
        today = now.date() + dt.timedelta(days=k)
        yesterday = today - dt.timedelta(days=1)
        req = _req(_at(yesterday, 23 + 50 / 60), _at(today))  # yesterday's last ten minutes: its file only
        reqs.append({**req, **({"at": _iso(_at(today, 12))} if k else {})})
        if fid is not None:
            faults.append(_fault(fid, [yesterday]))
            cells.add(("fault x interval", fid, "1s"))
    reqs.append(_window(ONE_SECOND_DAY))
    faults.append(_fault("cache.write_fails"))
    cells.add(("fault x interval", "cache.write_fails", "1s"))
    cells |= {("cache state x interval", s, "1s") for s in ("valid", *BROKEN)}
    return Candidate(
        "broken_1s_cache_files_day_after_day",
        "1s bars, yesterday's last ten minutes, asked again every day at noon: yesterday's file is cached, then each "
        "day broken another way (REST serves the minutes); last, minutes of an old day whose cache write fails.",
        now,
        reqs,
        cells,
        faults,
        cached,
        interval="1s",
    )


def shapes_1s() -> Candidate:
    """1s requests early in the day: none at midnight (aligned to days), one bar, ends half a second off the grid."""
    now = _at(dt.date(2024, 3, 20), 1 / 6)
    day = now.date()
    reqs = [
        _req(day, day),  # empty, on a day boundary: a whole 1s day is 86,400 bars (87 pages for some engines)
        _req(_at(day, 0.05), _at(day, 0.05) + dt.timedelta(seconds=1)),
        {"start": _iso(_at(day, 0.1)).replace("Z", ".500Z"), "end": _iso(_at(day, 0.11)).replace("Z", ".500Z")},
    ]
    cells = {("shape x interval", s, "1s") for s in ("aligned to days", "one bar", "off grid by seconds")}
    return Candidate(
        "one_second_empty_at_midnight_one_bar_and_half_seconds",
        "1s bars ten minutes into the UTC day: an empty request at midnight (start = end, aligned to days), one "
        "bar, and a range whose ends sit half a second off the grid.",
        now,
        reqs,
        cells,
        interval="1s",
    )


def render(candidates: Sequence[Candidate]) -> str:
    """The whole theme file."""
    head = [
        "# Generated by scripts/gen_matrix.py; edit the script, not this file.",
        'description = "A covering design for the coverage map: every fault on every interval, REST pages and '
        "ranges, markets, clocks, request shapes and the engine's lifetime, several at once per scenario.\"",
    ]
    return "\n\n".join(["\n".join(head), *(c.toml() for c in candidates)]) + "\n"


def candidates() -> list[Candidate]:
    """Every candidate scenario, in the order ties are broken."""
    out: list[Candidate] = []
    for interval in MINUTE_UP:
        out.append(vision_and_cache(interval))
        out.append(rest_faults(interval))
    out += [lifetime(), rest_pages(), checksum_http(), markets_clock(0), markets_clock(1), rest_faults_1s()]
    out += [vision_faults_1s(), cache_faults_1s(), shapes_1s()]
    out += [long_rest_range(i) for i in MINUTE_UP if MAX_PAGE_LIMIT // bars_per_day(i) + 1 <= MAX_REQUEST_DAYS]
    return out


def greedy(pool: Sequence[Candidate]) -> list[Candidate]:
    """A greedy cover: take the candidate reaching the most cells not reached yet until none adds one."""
    left = list(pool)
    covered: set[Cell] = set()
    chosen: list[Candidate] = []
    while left:
        best = max(left, key=lambda c: len(c.cells - covered))
        if not best.cells - covered:
            break
        chosen.append(best)
        covered |= best.cells
        left.remove(best)
    return chosen


def main(argv: list[str]) -> int:
    """Write the theme, or with ``--check`` report whether it is up to date."""
    text = render(greedy(candidates()))
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text(encoding="utf-8") != text:
            print(f"{TARGET} is out of date: run python scripts/gen_matrix.py")
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
