"""Verdicts that name the cause: each with a planted defect on a hand-built observation (no engine, no world),
and each silent on the truth. The two correct engines keep the whole catalog (scripts/verdicts.py, the catalog
tests), so none of these fires on an honest engine there."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pyarrow as pa

from pytest_fcp.contract import judge
from pytest_fcp.core.cache_states import DayFileState
from pytest_fcp.faults import fault
from pytest_fcp.world.recorder import FaultFiring
from pytest_fcp.world.spec import WorldSpec
from tests.conftest import utc
from tests.test_contract import NOW, Truth, observe, request_record, result_table, with_value
from tests.test_contract import world as world  # the fixture

DAY = dt.date(2024, 1, 3)
START, END = utc(2024, 1, 3), utc(2024, 1, 4)


def verdicts(obs, spec: WorldSpec | None = None, skip=()) -> list[str]:
    """The verdicts on ``obs``, a fetch of old days Vision has published."""
    obs = dataclasses.replace(obs, published=frozenset(obs.days))
    return [str(v) for v in judge(spec or WorldSpec(NOW, seed=3), obs, skip=skip)]


def vision_day(world: Truth) -> pa.Table:
    return result_table(world, START, END)


def test_placeholder_rows_and_untagged_rows_are_named(world):
    table = vision_day(world)
    for name in ("open", "high", "low", "close", "volume"):
        table = table.set_column(table.schema.get_field_index(name), name, pa.array([float("nan")] * 24))
    table = table.set_column(6, "source", pa.nulls(24, pa.string()))
    found = verdicts(observe(world, table, START, END), skip={"cache"})
    assert found == [
        "[rows] 24 bar(s) are placeholders without values (NaN or null), first at 2024-01-03T00:00:00+00:00",
        "[sources] 2024-01-03: 24 row(s) carry no source tag; expected vision",
    ]
    assert verdicts(observe(world, vision_day(world), START, END), skip={"cache"}) == []


def test_rows_of_a_spoiled_vision_payload_name_the_fault(world):
    table = with_value(vision_day(world), "close", 5, 1.0)
    for fid, text in [
        ("vision.checksum_mismatch", "a Vision zip that failed its checksum"),
        ("vision.wrong_symbol", "another symbol's Vision file"),
        ("vision.wrong_interval", "another interval's Vision file"),
    ]:
        obs = dataclasses.replace(observe(world, table, START, END), firings=(FaultFiring(fid, "vision", DAY, 1, "u"),))
        assert verdicts(obs, skip={"cache"}) == [f"[rows] 2024-01-03: 1 bar(s) come from {text} ({fid})"]
    assert verdicts(observe(world, table, START, END), skip={"cache"}) == [
        "[rows] 1 bar(s) differ from the source data, first at 2024-01-03T05:00:00+00:00"
    ]


def test_rows_out_of_time_order_are_named(world):
    table = vision_day(world)
    swapped = table.take(pa.array([0, 1, 3, 2, *range(4, 24)]))
    assert verdicts(observe(world, swapped, START, END), skip={"cache"}) == [
        "[rows] rows are not in time order: 2024-01-03T02:00:00+00:00 comes after 2024-01-03T03:00:00+00:00"
    ]


def cache_obs(world: Truth, before: DayFileState, after: DayFileState, **changes):
    obs = observe(world, vision_day(world), START, END)
    return dataclasses.replace(obs, cache_before={DAY: before}, cache_after={DAY: after}, **changes)


def test_a_partial_cached_day_overwritten_with_fewer_bars_loses_rows(world):
    obs = cache_obs(world, DayFileState("partial", rows=12, size=900), DayFileState("partial", rows=6, size=500))
    assert verdicts(obs, skip={"sources"}) == [
        "[cache] 2024-01-03: the cache lost 6 of the 12 valid bar(s) it held (partial afterwards)"
    ]
    repaired = cache_obs(world, DayFileState("partial", rows=12, size=900), DayFileState("valid", rows=24, size=1800))
    assert verdicts(repaired, skip={"sources"}) == []


def test_a_zip_without_its_checksum_may_be_returned_but_never_cached(world):
    withheld = (FaultFiring("vision.missing_checksum", "vision", DAY, 1, "u"),)
    cached = cache_obs(world, DayFileState("missing"), DayFileState("valid", rows=24, size=1800), firings=withheld)
    assert verdicts(cached) == [
        "[cache] 2024-01-03: cached the rows of a Vision zip that could not be verified (its .CHECKSUM was missing)"
    ]
    returned_only = cache_obs(world, DayFileState("missing"), DayFileState("missing"), firings=withheld)
    assert verdicts(returned_only) == []  # may be returned, and is not expected to be cached
    later = request_record(7, "vision", DAY, 200, NOW)
    later = dataclasses.replace(later, target=dataclasses.replace(later.target, obj="checksum"))
    verified = cache_obs(
        world, DayFileState("missing"), DayFileState("valid", rows=24, size=1800), firings=withheld, requests=(later,)
    )
    assert verdicts(verified) == []  # the .CHECKSUM came on a retry: verified


def test_asking_for_another_interval_and_treating_the_end_as_inclusive_are_named_once(world):
    obs = observe(world, vision_day(world), START, END)
    other = request_record(1, "vision", DAY, 200, NOW)
    other = dataclasses.replace(other, target=dataclasses.replace(other.target, interval="1m"))
    end_day = request_record(2, "vision", dt.date(2024, 1, 4), 200, NOW)
    end_rest = request_record(3, "rest", dt.date(2024, 1, 4), 200, NOW)
    obs = dataclasses.replace(obs, requests=(other, end_day, end_rest), published=frozenset({DAY}))
    assert verdicts(obs, skip={"cache"}) == [
        "[needed_only] treated the request's end as inclusive: asked Vision and REST for 2024-01-04, the day that "
        "starts at the exclusive end",
        "[needed_only] asked Vision for another interval's files (1m) for a 1h BTCUSDT request: day(s) 2024-01-03",
    ]


def test_a_cache_file_written_for_a_day_outside_the_request_is_judged(world):
    outside = {
        dt.date(2024, 1, 4): (DayFileState("missing"), DayFileState("partial", rows=1, size=300, detail="1 of 24 bars"))
    }
    cached = DayFileState("valid", rows=24, size=1800)
    obs = cache_obs(world, DayFileState("missing"), cached, cache_outside=outside)
    assert verdicts(obs) == [
        "[cache] 2024-01-04 (outside the request): the cache holds a partial file afterwards (1 of 24 bars)"
    ]
    fine = {dt.date(2024, 1, 4): (DayFileState("missing"), cached)}
    assert verdicts(dataclasses.replace(obs, cache_outside=fine)) == []


def test_a_stale_but_valid_looking_cached_day_may_be_served_from_the_cache(world):
    from pytest_fcp.contract.causes import stale_values

    truth = world.expected(START, END)
    stale = stale_values(truth)
    table = vision_day(world)
    for name in ("open", "high", "low", "close", "volume"):
        table = table.set_column(table.schema.get_field_index(name), name, stale[name])
    spec = WorldSpec(NOW, seed=3, faults=(fault("cache.stale_day", days=[DAY]),))
    stale_state = DayFileState("stale", rows=24, size=1800, detail="24 bar(s) differ from the truth")
    served = table.set_column(6, "source", pa.array(["cache"] * 24))
    obs = cache_obs(world, stale_state, stale_state)
    obs = dataclasses.replace(obs, table=served, row_times=None, rows_per_day={DAY: {"cache": 24}})
    from pytest_fcp.world.observation import tally

    times, by_day = tally(served)
    obs = dataclasses.replace(obs, row_times=times, rows_per_day=by_day)
    assert verdicts(obs, spec) == []
    tagged_vision = dataclasses.replace(obs, table=table, rows_per_day={DAY: {"vision": 24}})
    assert "[rows] 24 bar(s) differ from the source data" in verdicts(tagged_vision, spec)[0]
