"""The rows check: what a fetch returned equals the source data (whole-column numpy work; a month of 1m bars is
43,200 rows), with a fast path for the usual result (exactly the truth's bars, in order)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from pytest_fcp.contract.oracle import DayPlan
from pytest_fcp.contract.verdict import Case, Verdict
from pytest_fcp.core.markets import DAY_MS, ms_to_datetime, to_ms
from pytest_fcp.core.schemas import PRICE_COLUMNS
from pytest_fcp.world.observation import Observation

__all__ = ["check_rows"]

_EPOCH = dt.date(1970, 1, 1)


def check_rows(case: Case) -> list[Verdict]:
    """Rows equal the truth: values, no gaps or duplicates, exactly ``[start, end)``, UTC times."""
    result, plans = case.obs, case.plans
    table = result.table
    assert table is not None
    out: list[Verdict] = []
    names = table.schema.names
    missing_cols = [c for c in ("open_time", *PRICE_COLUMNS, "source") if c not in names]
    if missing_cols:
        return [Verdict("rows", f"result lacks column(s) {', '.join(missing_cols)}")]
    otype = table.schema.field("open_time").type
    if not (pa.types.is_timestamp(otype) and otype.tz in ("UTC", "+00:00", "Etc/UTC")):
        out.append(Verdict("rows", f"open_time is {otype}, not a UTC timestamp"))
    try:
        null, times = result.open_times()  # whole-column numpy checks: a month of 1m bars is 43,200 rows
    except pa.ArrowException as exc:
        return [*out, Verdict("rows", f"open_time cannot be read as a time: {exc}")]
    truth = result.expected
    truth_times = truth["open_time"].to_numpy()
    if not null.any() and np.array_equal(times, truth_times):
        # The usual result: exactly the truth's bars, in order (so none outside, repeated or missing).
        if _same_prices(table, truth):
            return out
        at: slice | np.ndarray = slice(None)
        in_truth = np.ones(len(times), dtype=bool)
    else:
        out.extend(_check_bars(result, plans, null, times, truth_times))
        if not len(truth_times):
            return out
        at = np.minimum(np.searchsorted(truth_times, times), len(truth_times) - 1)
        in_truth = ~null & (truth_times[at] == times)
    wrong = np.zeros(len(times), dtype=bool)
    for name in PRICE_COLUMNS:
        wrong |= ~_equal_values(table[name], truth[name].to_numpy()[at])  # a null or NaN equals nothing
    wrong &= in_truth
    if wrong.any():
        wrong &= ~_stale_served(case, table, times, wrong)
    if wrong.any():
        out.extend(_wrong_values(case, table, times, wrong))
    return out


def _stale_served(case: Case, table: pa.Table, times: np.ndarray, wrong: np.ndarray) -> np.ndarray:
    """Which wrong rows are a stale-but-valid-looking cached day's values, served from that cache file (an
    engine cannot tell such a file from the truth, so serving it is no fault)."""
    from pytest_fcp.contract.causes import stale_values

    ok = np.zeros(len(times), dtype=bool)
    stale_days = [d for d, p in case.plans.items() if p.stale_cache]
    if not stale_days:
        return ok
    tags = np.array(table["source"].to_pylist(), dtype=object)
    truth = case.obs.expected
    for day in stale_days:
        lo = (day - _EPOCH).days * DAY_MS
        rows = wrong & (times >= lo) & (times < lo + DAY_MS) & (tags == "cache")
        if not rows.any():
            continue
        day_truth = truth.filter((truth["open_time"].to_numpy() >= lo) & (truth["open_time"].to_numpy() < lo + DAY_MS))
        stale = stale_values(day_truth)
        stale_times = day_truth["open_time"].to_numpy()
        where = np.minimum(np.searchsorted(stale_times, times), max(len(stale_times) - 1, 0))
        same = np.ones(len(times), dtype=bool)
        for name in PRICE_COLUMNS:
            same &= _equal_values(table[name], stale[name].to_numpy()[where])
        ok |= rows & same
    return ok


def _wrong_values(case: Case, table: pa.Table, times: np.ndarray, wrong: np.ndarray) -> list[Verdict]:
    """Name why bars differ: placeholders without values, a spoiled payload the engine took, or else the
    plain difference."""
    from pytest_fcp.contract.causes import content_cause

    out: list[Verdict] = []
    blank = np.ones(len(times), dtype=bool)
    for name in PRICE_COLUMNS:
        blank &= ~_equal_values(table[name], table[name].to_numpy(zero_copy_only=False).astype(float, copy=False))
    blank &= wrong
    if blank.any():
        first = ms_to_datetime(int(times[np.argmax(blank)])).isoformat()
        out.append(
            Verdict(
                "rows", f"{int(blank.sum())} bar(s) are placeholders without values (NaN or null), first at {first}"
            )
        )
    rest = wrong & ~blank
    days = times // DAY_MS
    for code in sorted(set(days[rest].tolist())):
        day = _EPOCH + dt.timedelta(days=code)
        cause = content_cause(case.obs, day)
        if cause is not None:
            on_day = rest & (days == code)
            out.append(Verdict("rows", f"{day}: {int(on_day.sum())} bar(s) come from {cause}"))
            rest &= ~on_day
    if rest.any():
        first = ms_to_datetime(int(times[np.argmax(rest)])).isoformat()
        out.append(Verdict("rows", f"{int(rest.sum())} bar(s) differ from the source data, first at {first}"))
    return out


def _same_prices(table: pa.Table, truth: pa.Table) -> bool:
    """One Arrow comparison for the usual case: the price columns are the truth's, value for value."""
    try:
        return table.select(PRICE_COLUMNS).equals(truth.select(PRICE_COLUMNS))
    except (pa.ArrowException, KeyError):
        return False


def _check_bars(
    result: Observation, plans: dict[dt.date, DayPlan], null: np.ndarray, times: np.ndarray, truth_times: np.ndarray
) -> list[Verdict]:
    """Rows outside the range, repeated bars, and bars missing (with the empty-page latitude)."""
    out: list[Verdict] = []
    start_ms, end_ms = to_ms(result.start), to_ms(result.end)
    outside = null | (times < start_ms) | (times >= end_ms)
    if outside.any():
        first = int(np.argmax(outside))
        when = "null" if null[first] else ms_to_datetime(int(times[first])).isoformat()
        out.append(Verdict("rows", f"{int(outside.sum())} row(s) outside [start, end), first at {when}"))
    valid_times = times[~null] if null.any() else times
    increasing = bool(np.all(valid_times[1:] > valid_times[:-1]))  # sorted, no repeats
    backwards = np.flatnonzero(valid_times[1:] < valid_times[:-1])
    if len(backwards):
        at = int(backwards[0]) + 1
        when, after = (ms_to_datetime(int(valid_times[i])).isoformat() for i in (at, at - 1))
        out.append(Verdict("rows", f"rows are not in time order: {when} comes after {after}"))
    if not increasing:
        _, first_seen = np.unique(valid_times, return_index=True)
        repeat = np.ones(len(valid_times), dtype=bool)
        repeat[first_seen] = False
        if repeat.any():
            first = ms_to_datetime(int(valid_times[np.argmax(repeat)])).isoformat()
            out.append(Verdict("rows", f"{int(repeat.sum())} duplicated bar(s), first at {first}"))
    # a day REST may legitimately answer with an empty page may be absent as a whole, never in part
    empty_days = [
        (d - _EPOCH).days for d, p in plans.items() if p.rest == "empty" and p.vision != "certain" and not p.cached
    ]
    missing = ~_contains(valid_times, truth_times, increasing)
    if empty_days:
        truth_days = truth_times // DAY_MS
        missing &= ~(np.isin(truth_days, empty_days) & ~np.isin(truth_days, valid_times // DAY_MS))
    if missing.any():
        first = ms_to_datetime(int(truth_times[missing].min())).isoformat()
        out.append(Verdict("rows", f"{int(missing.sum())} bar(s) missing (gaps), first at {first}"))
    return out


def _contains(haystack: np.ndarray, needles: np.ndarray, increasing: bool) -> np.ndarray:
    """Which of ``needles`` occur in ``haystack`` (a binary search when the haystack is increasing)."""
    if not increasing:
        return np.isin(needles, haystack)
    if not len(haystack):
        return np.zeros(len(needles), dtype=bool)
    at = np.minimum(np.searchsorted(haystack, needles), len(haystack) - 1)
    return haystack[at] == needles


def _equal_values(column: pa.ChunkedArray, want: np.ndarray) -> np.ndarray:
    """Row-wise ``column == want``; a value that is not a number (null, NaN, text) equals nothing."""
    kind = column.type
    if kind == pa.float64():
        return column.to_numpy() == want  # nulls become NaN
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)):
        return np.zeros(len(want), dtype=bool)
    try:
        got = column.cast(pa.float64()).combine_chunks().to_numpy(zero_copy_only=False)  # nulls become NaN
    except pa.ArrowException:
        return np.zeros(len(want), dtype=bool)
    return got == want
