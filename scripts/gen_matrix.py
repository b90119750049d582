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
from collections.abc import Sequence

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from matrix_one_second import (
    cache_faults_1s,
    lifetime,
    month_of_1s,
    rest_faults_1s,
    shapes_1s,
    vision_faults_1s,
    write_fails_1s,
)
from matrix_parts import (
    BROKEN,
    CACHE_DAY,
    MAX_REQUEST_DAYS,
    MINUTE_UP,
    REST,
    REST_FATAL,
    REST_PASSABLE,
    TARGET,
    VISION,
    VISION_HTTP,
    Candidate,
    Cell,
    _at,
    _cache_target,
    _days,
    _fault,
    _hit,
    _req,
    _swap_params,
    _vision_target,
)

from pytest_fcp.core.markets import MARKETS, MAX_PAGE_LIMIT, bars_per_day, interval_ms
from pytest_fcp.faults.table import FAULTS


# --- per interval: every Vision and cache fault on its own day of one month-long old range ------------------
def vision_and_cache(interval: str) -> Candidate:
    """Every Vision fault and every per-day cache fault, each on its own old day of a month, plus write_fails."""
    now = _at(dt.date(2024, 3, 20), 12)
    count = 2 + len(VISION) + len(CACHE_DAY)  # a day for each fault, ending 2024-03-17: all old, 29 February inside
    days = _days(dt.date(2024, 3, 18) - dt.timedelta(days=count), count)
    vision_days, cache_days = days[1 : 1 + len(VISION)], days[2 + len(VISION) :]
    faults = [_fault(f, [d], **_swap_params(f, interval)) for f, d in zip(VISION, vision_days, strict=True)]
    faults += [_fault(f, [d]) for f, d in zip(CACHE_DAY, cache_days, strict=True)]
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
        if FAULTS[fid].rate_limit:  # a one-page second range, Retry-After 0: a range in flight beside it is no race
            faults.append(_fault(fid, [second], retry_after=0))
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
        "(a rate limit, Retry-After 0: the first hour of the second range, one page).",
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
    out += [vision_faults_1s(), cache_faults_1s(), write_fails_1s(), shapes_1s(), month_of_1s()]
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
