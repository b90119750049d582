"""The candidates of scripts/gen_matrix.py for 1s bars (a day of them is 86,400 rows: every 1s scenario asks
for minutes), and the one engine asked again and again over its lifetime."""

from __future__ import annotations

import datetime as dt
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from matrix_parts import (
    BROKEN,
    CACHE_DAY,
    FAULTS,
    REST,
    VISION,
    VISION_HTTP,
    Candidate,
    Cell,
    _at,
    _days,
    _fault,
    _hit,
    _iso,
    _req,
    _swap_params,
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
        failed = fid in VISION_HTTP or (FAULTS[fid].effect.kind == "reset" and "zip" in objects)  # no 200 zip
        checksums += 0 if failed else 1  # a zip answered 200 is followed by its .CHECKSUM
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


def write_fails_1s() -> Candidate:
    """Minutes of an old 1s day, nothing cached, whose cache write fails (a scenario of its own: an engine that
    overwrites broken day files in place cannot be stopped by ``cache.write_fails``, so no broken file is near)."""
    now = _at(dt.date(2024, 2, 1), 12)
    return Candidate(
        "failing_1s_cache_write",
        "1s bars, ten minutes of an old day, nothing cached: every write into the cache fails; the data still comes.",
        now,
        [_window(ONE_SECOND_DAY)],
        {("fault x interval", "cache.write_fails", "1s")},
        [_fault("cache.write_fails")],
        [],
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
    cells |= {("cache state x interval", s, "1s") for s in ("valid", *BROKEN)}
    return Candidate(
        "broken_1s_cache_files_day_after_day",
        "1s bars, yesterday's last ten minutes, asked again every day at noon: yesterday's file is cached, then each "
        "day broken another way (REST serves the minutes).",
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


def month_of_1s() -> Candidate:
    """A month of 1s bars (2.6 million), all old and cached but 1 March, which Vision serves: a whole day file
    read back 29 times, one zip of 86,400 rows (a cache makes this cheap enough for every run)."""
    now = _at(dt.date(2024, 3, 20), 12)
    days = _days(dt.date(2024, 2, 10), 30)
    fetched = dt.date(2024, 3, 1)
    return Candidate(
        "a_month_of_1s_bars_mostly_cached",
        "1s bars over 30 old days across 29 February (2,592,000 bars): every day cached but 1 March, which Vision "
        "serves.",
        now,
        [_req(days[0], days[-1] + dt.timedelta(days=1))],
        {("shape x interval", "a month or more", "1s")},
        cached=[d for d in days if d != fetched],
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
