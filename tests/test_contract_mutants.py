"""Each check's decisions, one branch at a time, on hand-built observations: every test shows a check silent on
a correct fetch and naming a planted defect, so deleting or bending a condition turns one of them red (the
mutation campaign, docs/mutation.md, measures this)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pyarrow as pa
import pytest

from pytest_fcp.contract import judge
from pytest_fcp.core.cache_states import DayFileState
from pytest_fcp.world.recorder import FaultFiring
from pytest_fcp.world.spec import WorldSpec
from tests.test_contract import NOW, observe, request_record, result_table
from tests.test_contract import world as world  # the fixture

DAY = dt.date(2024, 1, 3)
START, END = dt.datetime(2024, 1, 3, tzinfo=dt.UTC), dt.datetime(2024, 1, 4, tzinfo=dt.UTC)
T0 = NOW


class RateLimitError(Exception):
    """Named like the contract's error (the contract recognises errors by class name)."""


class DataSourceError(Exception):
    """Named like the contract's error."""


def only(check: str, obs, spec: WorldSpec | None = None) -> list[str]:
    """The reasons of one check's verdicts on ``obs``."""
    from pytest_fcp.contract import CHECKS

    found = judge(spec or WorldSpec(NOW, seed=3), obs, skip=set(CHECKS) - {check})
    assert all(v.check == check for v in found)
    return [v.reason for v in found]


def rest_fetch(world, *records, error: BaseException | None = None):
    """A fetch of one old, published day that REST answered with ``records`` (the rows tagged rest)."""
    table = result_table(world, START, END)
    table = table.set_column(6, "source", pa.array(["rest"] * table.num_rows))
    obs = observe(world, table if error is None else None, START, END)
    return dataclasses.replace(obs, requests=tuple(records), error=error, published=frozenset({DAY}))


# --- rate limits: 429 and 418 alike --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 418])
def test_a_rest_request_before_retry_after_is_hammering_after_429_and_418(world, status):
    answered = request_record(1, "rest", DAY, status, T0, retry_after=30.0)
    early = request_record(2, "rest", DAY, 200, T0 + dt.timedelta(seconds=10))
    assert only("rate_limit", rest_fetch(world, answered, early)) == [
        f"sent a REST request 10s after a {status} with Retry-After 30s (hammering)"
    ]
    waited = request_record(2, "rest", DAY, 200, T0 + dt.timedelta(seconds=30))
    assert only("rate_limit", rest_fetch(world, answered, waited)) == []


def test_the_wait_is_counted_from_the_answer_to_when_the_next_request_was_sent(world):
    answered = request_record(1, "rest", DAY, 418, T0, retry_after=30.0)
    # answered 31 s later, but sent after 29 s (it took 2 s): too early
    slow = request_record(2, "rest", DAY, 200, T0 + dt.timedelta(seconds=31), duration_s=2.0)
    assert only("rate_limit", rest_fetch(world, answered, slow)) == [
        "sent a REST request 29s after a 418 with Retry-After 30s (hammering)"
    ]


def test_other_statuses_and_vision_requests_do_not_ask_for_a_wait(world):
    for status in (403, 500, 503):
        answered = request_record(1, "rest", DAY, status, T0, retry_after=30.0)
        again = request_record(2, "rest", DAY, 200, T0)
        assert only("rate_limit", rest_fetch(world, answered, again)) == []
    vision_429 = request_record(1, "vision", DAY, 429, T0, retry_after=30.0)
    rest_a, rest_b = (request_record(i, "rest", DAY, 200, T0) for i in (2, 3))
    assert only("rate_limit", rest_fetch(world, vision_429, rest_a, rest_b)) == []


def test_a_429_without_retry_after_asks_for_no_wait_and_only_the_first_hammering_is_named(world):
    bare = request_record(1, "rest", DAY, 429, T0)
    assert only("rate_limit", rest_fetch(world, bare, request_record(2, "rest", DAY, 200, T0))) == []
    first = request_record(1, "rest", DAY, 429, T0, retry_after=5.0)
    second = request_record(2, "rest", DAY, 429, T0 + dt.timedelta(seconds=1), retry_after=5.0)
    third = request_record(3, "rest", DAY, 200, T0 + dt.timedelta(seconds=2))
    assert only("rate_limit", rest_fetch(world, first, second, third)) == [
        "sent a REST request 1s after a 429 with Retry-After 5s (hammering)"
    ]


@pytest.mark.parametrize("status", [429, 418])
def test_rate_limit_error_is_allowed_after_a_429_or_418_and_only_then(world, status):
    limited = request_record(1, "rest", DAY, status, T0, retry_after=30.0)
    error = RateLimitError("REST answered with a rate limit, retry later")
    plain = request_record(1, "rest", DAY, 500, T0)
    wrong = ["raised RateLimitError although no 429/418 was served"]
    from pytest_fcp.faults import fault

    # Vision has not published the day and REST answers with a rate limit: the day cannot be had
    spec = WorldSpec(NOW, seed=3, faults=(fault(f"rest.http{status}", days=[DAY]),))
    unpublished = {"published": frozenset()}
    assert only("outcome", dataclasses.replace(rest_fetch(world, limited, error=error), **unpublished), spec) == []
    assert only("outcome", dataclasses.replace(rest_fetch(world, plain, error=error), **unpublished), spec) == wrong


def test_returning_data_for_an_unobtainable_day_names_the_allowed_errors(world):
    from pytest_fcp.faults import fault

    blocked = WorldSpec(NOW, seed=3, faults=(fault("vision.http403", days=[DAY]), fault("rest.http500", days=[DAY])))
    obs = rest_fetch(world, request_record(1, "rest", DAY, 500, T0))
    assert only("outcome", obs, blocked) == [
        "returned data although day(s) 2024-01-03 could not be obtained from any source (expected DataSourceError)"
    ]
    banned = WorldSpec(NOW, seed=3, faults=(fault("vision.http403", days=[DAY]), fault("rest.http418", days=[DAY])))
    obs = rest_fetch(world, request_record(1, "rest", DAY, 418, T0, retry_after=60.0))
    assert only("outcome", obs, banned) == [
        "returned data although day(s) 2024-01-03 could not be obtained from any source "
        "(expected DataSourceError or RateLimitError)"
    ]
    assert only("outcome", rest_fetch(world, request_record(1, "rest", DAY, 200, T0))) == []


def test_errors_when_every_day_was_obtainable_or_not_the_documented_ones(world):
    from pytest_fcp.faults import fault

    obs = rest_fetch(world, error=DataSourceError("no data for 2024-01-03 from any source"))
    assert only("outcome", obs) == [
        "raised DataSourceError (no data for 2024-01-03 from any source) although every day was obtainable"
    ]
    blocked = WorldSpec(NOW, seed=3, faults=(fault("vision.http403", days=[DAY]), fault("rest.http500", days=[DAY])))
    assert only("outcome", obs, blocked) == []
    odd = rest_fetch(world, error=KeyError("open_time"))
    assert only("outcome", odd, blocked) == [
        "raised KeyError ('open_time'), not the documented DataSourceError / RateLimitError"
    ]
    terse = rest_fetch(world, error=DataSourceError("failed"))
    assert only("outcome", terse, blocked) == ["DataSourceError has no clear message ('failed')"]
    eight = rest_fetch(world, error=DataSourceError("no data!"))
    assert only("outcome", eight, blocked) == []
    long = rest_fetch(world, error=DataSourceError("x" * 200))
    assert only("outcome", long) == [f"raised DataSourceError ({'x' * 120}) although every day was obtainable"]


# --- the cache ------------------------------------------------------------------------------------------------


def cached(world, before: DayFileState | None, after: DayFileState, spec: WorldSpec | None = None, **changes):
    """The cache check's reasons on a fetch of the old day served by Vision, with the day's cache states."""
    obs = observe(world, result_table(world, START, END), START, END)
    before_map = {} if before is None else {DAY: before}
    obs = dataclasses.replace(obs, cache_before=before_map, cache_after={DAY: after}, **changes)
    return only("cache", obs, spec)


VALID = DayFileState("valid", rows=24, size=1800)
MISSING = DayFileState("missing")


def test_a_valid_cached_day_must_stay_valid(world):
    assert cached(world, VALID, DayFileState("corrupt", size=10)) == [
        "2024-01-03: a valid cached day was lost (corrupt afterwards)"
    ]
    assert cached(world, VALID, VALID) == []


def test_a_complete_old_day_vision_served_must_be_cached_unless_it_could_not_be(world):
    assert cached(world, MISSING, MISSING) == ["2024-01-03: a complete old day served by Vision was not cached"]
    from pytest_fcp.faults import fault

    read_only = WorldSpec(NOW, seed=3, faults=(fault("cache.read_only_dir"),))
    assert cached(world, MISSING, MISSING, read_only) == []


def test_a_young_day_must_not_be_cached(world):
    young_now = dt.datetime(2024, 1, 4, 12, tzinfo=dt.UTC)  # 2024-01-03 ended 12 h ago
    assert cached(world, MISSING, VALID, now=young_now) == ["2024-01-03: cached a day younger than 48 h (valid)"]
    assert cached(world, None, VALID, now=young_now) == ["2024-01-03: cached a day younger than 48 h (valid)"]
    assert cached(world, MISSING, MISSING, now=young_now) == []


def test_a_broken_file_afterwards_is_named_with_its_article_and_detail(world):
    found = cached(world, MISSING, DayFileState("partial", rows=3, size=200, detail="3 of 24 bars"))
    assert found == ["2024-01-03: the cache holds a partial file afterwards (3 of 24 bars)"]
    assert cached(world, MISSING, DayFileState("invalid", size=5)) == [
        "2024-01-03: the cache holds an invalid file afterwards"
    ]


def test_an_untouched_broken_file_is_left_alone_only_where_the_engine_may_leave_it(world):
    partial = DayFileState("partial", rows=3, size=200)
    rest_only = rest_fetch(world, request_record(1, "rest", DAY, 200, T0))
    kept = dataclasses.replace(rest_only, cache_before={DAY: partial}, cache_after={DAY: partial})
    assert only("cache", kept) == []  # the engine may not cache REST days
    shrunk = DayFileState("partial", rows=3, size=150)
    changed = dataclasses.replace(kept, cache_after={DAY: shrunk})
    assert only("cache", changed) == ["2024-01-03: the cache holds a partial file afterwards"]
    assert cached(world, partial, partial) == ["2024-01-03: the cache holds a partial file afterwards"]


def test_a_file_written_outside_the_request_must_be_valid_and_old(world):
    after = dt.date(2024, 1, 4)
    young_now = dt.datetime(2024, 1, 6, 12, tzinfo=dt.UTC)  # 2024-01-03 is old, 2024-01-04 is not
    outside = {after: (MISSING, VALID)}
    assert cached(world, MISSING, VALID, now=young_now, cache_outside=outside) == [
        "2024-01-04 (outside the request): cached a day younger than 48 h"
    ]
    assert cached(world, MISSING, VALID, cache_outside=outside) == []  # old: may be cached
    untouched = {after: (DayFileState("corrupt", size=3), DayFileState("corrupt", size=3))}
    assert cached(world, MISSING, VALID, cache_outside=untouched) == []  # was broken before: not this fetch
    removed = {after: (VALID, MISSING)}
    assert cached(world, MISSING, VALID, cache_outside=removed) == []


# --- sources, order, needed requests, the network -------------------------------------------------------------


def vision_fetch(world, *records, **changes):
    """A fetch of the old, published day served by Vision, having sent ``records``."""
    obs = observe(world, result_table(world, START, END), START, END)
    return dataclasses.replace(obs, requests=tuple(records), **{"published": frozenset({DAY}), **changes})


def test_rows_must_carry_a_source_the_day_may_come_from(world):
    assert only("sources", vision_fetch(world)) == []
    assert only("sources", rest_fetch(world)) == ["2024-01-03: rows tagged rest; expected vision"]
    cached_day = dataclasses.replace(rest_fetch(world), cache_before={DAY: VALID})
    assert only("sources", cached_day) == ["2024-01-03: rows tagged rest; expected cache"]
    unpublished = dataclasses.replace(rest_fetch(world), published=frozenset())
    assert only("sources", unpublished) == []
    failed = dataclasses.replace(rest_fetch(world), table=None, error=DataSourceError("no data anywhere"))
    assert only("sources", failed) == []


def test_a_day_outside_the_plan_is_not_judged_by_the_sources_check(world):
    obs = vision_fetch(world)
    extra = {**obs.rows_per_day, dt.date(2024, 1, 9): {"rest": 3}}
    assert only("sources", dataclasses.replace(obs, rows_per_day=extra)) == []


def test_vision_must_come_before_rest_and_only_for_old_days(world):
    vision = request_record(1, "vision", DAY, 200, T0)
    rest = request_record(2, "rest", DAY, 200, T0)
    assert only("order", vision_fetch(world, vision, rest)) == []
    later_vision = request_record(3, "vision", DAY, 200, T0)
    assert only("order", vision_fetch(world, vision, rest, later_vision)) == [
        "2024-01-03: asked Vision after REST (FCP order is cache -> Vision -> REST)"
    ]
    young_now = dt.datetime(2024, 1, 4, 12, tzinfo=dt.UTC)
    assert only("order", vision_fetch(world, vision, now=young_now)) == [
        "2024-01-03: asked Vision for a day younger than 48 h (Vision is for older days)"
    ]
    young_cached = vision_fetch(world, vision, now=young_now, cache_before={DAY: VALID})
    assert only("order", young_cached) == []
    assert only("order", vision_fetch(world, rest, now=young_now)) == []


def test_requests_for_cached_days_or_days_vision_served_are_not_needed(world):
    vision = request_record(1, "vision", DAY, 200, T0)
    rest = request_record(2, "rest", DAY, 200, T0)
    cached_day = {"cache_before": {DAY: VALID}}
    assert only("needed_only", vision_fetch(world, vision, **cached_day)) == [
        "asked Vision for day(s) already valid in the cache: 2024-01-03"
    ]
    assert only("needed_only", vision_fetch(world, rest, **cached_day)) == [
        "asked REST for day(s) already valid in the cache: 2024-01-03"
    ]
    assert only("needed_only", vision_fetch(world, vision, rest)) == [
        "asked REST for day(s) Vision had served: 2024-01-03"
    ]
    unpublished = vision_fetch(world, rest, published=frozenset())
    assert only("needed_only", unpublished) == []
    before = request_record(3, "rest", dt.date(2024, 1, 2), 200, T0)
    assert only("needed_only", vision_fetch(world, vision, before)) == [
        "asked REST for day(s) outside the request: 2024-01-02"
    ]


def test_an_end_that_is_not_a_midnight_has_no_inclusive_end_day(world):
    end = dt.datetime(2024, 1, 3, 12, tzinfo=dt.UTC)
    obs = observe(world, result_table(world, START, end), START, end)
    asked = request_record(1, "vision", DAY, 200, T0)
    obs = dataclasses.replace(obs, requests=(asked,), published=frozenset({DAY}))
    assert only("needed_only", obs) == []


@pytest.mark.parametrize(
    ("field", "value", "what"),
    [
        ("symbol", "ETHUSDT", "another symbol's files (ETHUSDT)"),
        ("market", "futures_um", "another market's files (futures_um)"),
        ("interval", "1d", "another interval's files (1d)"),
    ],
)
def test_requests_for_another_series_are_named_per_source(world, field, value, what):
    for source, label in (("vision", "Vision"), ("rest", "REST")):
        record = request_record(1, source, DAY, 200, T0)
        record = dataclasses.replace(record, target=dataclasses.replace(record.target, **{field: value}))
        again = dataclasses.replace(record, index=2, target=dataclasses.replace(record.target, days=(START.date(),)))
        assert only("needed_only", vision_fetch(world, record, again)) == [
            f"asked {label} for {what} for a 1h BTCUSDT request: day(s) 2024-01-03"
        ]
        # the other series' requests count neither as out-of-order nor as asking for the fetched days
        assert only("order", vision_fetch(world, record, again)) == []
    unset = request_record(1, "rest", DAY, 200, T0)
    unset = dataclasses.replace(unset, target=dataclasses.replace(unset.target, **{field: None}))
    assert only("needed_only", vision_fetch(world, unset)) == ["asked REST for day(s) Vision had served: 2024-01-03"]


def test_leaving_the_simulated_world_is_named_with_the_first_three_violations(world):
    assert only("network", vision_fetch(world)) == []
    found = vision_fetch(world, violations=("dns example.org", "connect 10.0.0.1:443", "GET a", "GET b"))
    assert only("network", found) == ["left the simulated world: dns example.org; connect 10.0.0.1:443; GET a"]


# --- the cache, continued: every day is judged, causes are named -----------------------------------------------

NEXT = dt.date(2024, 1, 4)
BROKEN = DayFileState("partial", rows=3, size=200)


def two_days(world, first: tuple[DayFileState, DayFileState], spec: WorldSpec | None = None, **changes):
    """The cache check's reasons on a fetch of two old days from Vision; the second is left broken."""
    end = dt.datetime(2024, 1, 5, tzinfo=dt.UTC)
    obs = observe(world, result_table(world, START, end), START, end)
    before, after = first
    obs = dataclasses.replace(
        obs, cache_before={DAY: before, NEXT: MISSING}, cache_after={DAY: after, NEXT: BROKEN}, **changes
    )
    return only("cache", obs, spec)


def test_every_day_is_judged_whichever_branch_the_one_before_took(world):
    from pytest_fcp.faults import fault

    second = "2024-01-04: the cache holds a partial file afterwards"
    unreadable = DayFileState("unreadable", size=10)
    stale = DayFileState("stale", rows=24, size=1800)
    firing = (FaultFiring("vision.checksum_mismatch", "vision", DAY, 1, "u"),)
    cases = [
        ((VALID, MISSING), None, {}, "2024-01-03: a valid cached day was lost (missing afterwards)"),
        ((DayFileState("partial", rows=12, size=900), BROKEN), None, {}, "2024-01-03: the cache lost 9 of the 12"),
        ((MISSING, MISSING), None, {}, "2024-01-03: a complete old day served by Vision was not cached"),
        ((MISSING, VALID), None, {}, None),
        ((BROKEN, BROKEN), WorldSpec(NOW, seed=3, faults=(fault("cache.read_only_dir"),)), {}, None),
        ((unreadable, unreadable), WorldSpec(NOW, seed=3, faults=(fault("cache.unreadable", days=[DAY]),)), {}, None),
        ((MISSING, stale), None, {"firings": firing}, "2024-01-03: cached the rows of a Vision zip that failed"),
    ]
    for first, spec, changes, reason in cases:
        found = two_days(world, first, spec, **changes)
        assert found[-1] == second, (first, found)
        assert len(found) == (2 if reason else 1), (first, found)
        if reason:
            assert found[0].startswith(reason), (first, found)
    young = two_days(world, (MISSING, VALID), now=dt.datetime(2024, 1, 6, 12, tzinfo=dt.UTC))
    assert young == ["2024-01-04: cached a day younger than 48 h (partial)"]  # 2024-01-03 is old; 01-04 is not


def test_cached_rows_of_a_spoiled_vision_payload_name_the_fault(world):
    for status in ("stale", "extra"):
        after = DayFileState(status, rows=24, size=1800)
        firing = FaultFiring("vision.checksum_mismatch", "vision", DAY, 1, "u")
        assert cached(world, MISSING, after, firings=(firing,)) == [
            "2024-01-03: cached the rows of a Vision zip that failed its checksum (vision.checksum_mismatch)"
        ]
        other_day = dataclasses.replace(firing, day=NEXT)
        unrelated = FaultFiring("vision.http503", "vision", DAY, 1, "u")
        for firings in ((other_day,), (unrelated,)):
            assert cached(world, MISSING, after, firings=firings) == [
                f"2024-01-03: the cache holds {'an' if status == 'extra' else 'a'} {status} file afterwards"
            ]
        # a fault that spoiled nothing answered first: the payload fault after it is still the cause
        assert cached(world, MISSING, after, firings=(other_day, unrelated, firing)) == [
            "2024-01-03: cached the rows of a Vision zip that failed its checksum (vision.checksum_mismatch)"
        ]
    partial = DayFileState("partial", rows=3, size=200)
    firing = FaultFiring("vision.truncated_zip", "vision", DAY, 1, "u")
    assert cached(world, MISSING, partial, firings=(firing,)) == [
        "2024-01-03: the cache holds a partial file afterwards"  # only stale or extra values have a cause
    ]


def test_an_unreadable_file_is_left_alone_only_under_the_unreadable_fault(world):
    from pytest_fcp.faults import fault

    unreadable = DayFileState("unreadable", size=10)
    spec = WorldSpec(NOW, seed=3, faults=(fault("cache.unreadable", days=[DAY]),))
    assert cached(world, unreadable, unreadable, spec) == []
    assert cached(world, unreadable, unreadable) == ["2024-01-03: the cache holds an unreadable file afterwards"]
    partial = DayFileState("partial", rows=3, size=200)
    assert cached(world, partial, partial, spec) == ["2024-01-03: the cache holds a partial file afterwards"]


def test_an_untouched_file_of_a_day_not_certainly_obtainable_is_left_alone(world):
    from pytest_fcp.faults import fault

    partial = DayFileState("partial", rows=3, size=200)
    maybe = WorldSpec(NOW, seed=3, faults=(fault("vision.http503", days=[DAY], attempts="first:1"),))
    published = frozenset({DAY})
    assert cached(world, partial, partial, maybe, published=published) == []
    assert cached(world, partial, partial, published=published) == [
        "2024-01-03: the cache holds a partial file afterwards"
    ]


def test_days_without_rows_are_judged_too(world):
    failed = dataclasses.replace(rest_fetch(world, error=DataSourceError("no data anywhere")), rows_per_day={})
    partial = DayFileState("partial", rows=3, size=200)
    assert only("cache", dataclasses.replace(failed, cache_before={DAY: MISSING}, cache_after={DAY: VALID})) == []
    assert only("cache", dataclasses.replace(failed, cache_before={DAY: partial}, cache_after={DAY: partial})) == []


def test_an_unverified_zip_is_named_whatever_else_was_asked(world):
    from pytest_fcp.faults import fault

    withheld = (FaultFiring("vision.missing_checksum", "vision", DAY, 1, "u"),)
    unverified = ["2024-01-03: cached the rows of a Vision zip that could not be verified (its .CHECKSUM was missing)"]
    assert cached(world, None, VALID, firings=withheld) == unverified
    zip_ok = request_record(3, "vision", DAY, 200, T0)  # the zip again: still no .CHECKSUM
    checksum = dataclasses.replace(zip_ok, target=dataclasses.replace(zip_ok.target, obj="checksum"))
    checksum_404 = dataclasses.replace(checksum, status=404)
    checksum_other_day = dataclasses.replace(checksum, target=dataclasses.replace(checksum.target, days=(NEXT,)))
    checksum_faulted = dataclasses.replace(checksum, fault="vision.slow")
    checksum_rest = dataclasses.replace(checksum, source="rest")
    for request in (zip_ok, checksum_404, checksum_other_day, checksum_faulted, checksum_rest):
        assert cached(world, MISSING, VALID, firings=withheld, requests=(request,)) == unverified, request
    assert cached(world, MISSING, VALID, firings=withheld, requests=(checksum,)) == []
    # withheld for another day, or a fault that leaves the zip verifiable: nothing to name
    elsewhere = (dataclasses.replace(withheld[0], day=NEXT),)
    assert cached(world, MISSING, VALID, firings=elsewhere) == []
    busy = (FaultFiring("vision.http503", "vision", DAY, 1, "u"),)
    spec = WorldSpec(NOW, seed=3, faults=(fault("vision.http503", days=[DAY], attempts="first:1"),))
    assert cached(world, MISSING, VALID, spec, firings=busy) == []
    assert cached(world, VALID, VALID, firings=withheld) == []  # was valid before: not this fetch's doing


# --- the oracle: what each fault means for a day ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "vision", "rest", "obtainable"),
    [
        ((), "certain", "certain", "certain"),
        ((("vision.slow", "always"),), "certain", "certain", "certain"),
        ((("vision.missing_checksum", "always"),), "possible", "certain", "possible"),
        ((("vision.http403", "always"),), "impossible", "certain", "certain"),
        ((("vision.http403", "always"), ("rest.short_page", "always")), "impossible", "possible", "possible"),
        ((("vision.http403", "always"), ("rest.http500", "always")), "impossible", "impossible", "impossible"),
        ((("vision.http403", "always"), ("rest.http500", "first:2")), "impossible", "possible", "possible"),
        ((("vision.http403", "always"), ("rest.empty_page", "always")), "impossible", "empty", "possible"),
        ((("vision.http403", "always"), ("rest.out_of_range", "always")), "impossible", "certain", "certain"),
    ],
)
def test_the_plan_reads_each_fault_by_what_it_means(world, faults, vision, rest, obtainable):
    from pytest_fcp.contract import plan
    from pytest_fcp.faults import fault

    spec = WorldSpec(NOW, seed=3, faults=tuple(fault(fid, days=[DAY], attempts=when) for fid, when in faults))
    day = plan(spec, vision_fetch(world))[DAY]
    assert (day.vision, day.rest, day.obtainable) == (vision, rest, obtainable)


# --- rows: stale cached days, placeholders ------------------------------------------------------------------------


def stale_fetch(world, stale_days, served):
    """A fetch of 2024-01-03 and 01-04 whose ``stale_days`` were stale in the cache (cache.stale_day), returning
    per day ``served[day]``: ``"stale"`` (the stale values, tagged cache) or ``"truth"`` (tagged vision)."""
    from pytest_fcp.contract.causes import stale_values
    from pytest_fcp.faults import fault
    from pytest_fcp.world.observation import tally

    end = dt.datetime(2024, 1, 5, tzinfo=dt.UTC)
    parts = []
    for day in (DAY, NEXT):
        lo = dt.datetime.combine(day, dt.time(), dt.UTC)
        part = result_table(world, lo, lo + dt.timedelta(days=1))
        if served[day] == "stale":
            stale = stale_values(world.expected(lo, lo + dt.timedelta(days=1)))
            for name in ("open", "high", "low", "close", "volume"):
                part = part.set_column(part.schema.get_field_index(name), name, stale[name])
            part = part.set_column(6, "source", pa.array(["cache"] * part.num_rows))
        parts.append(part)
    table = pa.concat_tables(parts)
    state = DayFileState("stale", rows=24, size=1800)
    obs = observe(world, table, START, end)
    times, by_day = tally(table)
    obs = dataclasses.replace(obs, cache_before={d: state for d in stale_days}, row_times=times, rows_per_day=by_day)
    spec = WorldSpec(NOW, seed=3, faults=(fault("cache.stale_day", days=list(stale_days)),))
    return obs, spec


def test_stale_cached_days_may_be_served_each_one_judged(world):
    both, spec = stale_fetch(world, [DAY, NEXT], {DAY: "stale", NEXT: "stale"})
    assert only("rows", both, spec) == []
    second, spec = stale_fetch(world, [DAY, NEXT], {DAY: "truth", NEXT: "stale"})
    assert only("rows", second, spec) == []
    first, spec = stale_fetch(world, [DAY], {DAY: "stale", NEXT: "truth"})
    assert only("rows", first, spec) == []
    not_stale, spec = stale_fetch(world, [NEXT], {DAY: "stale", NEXT: "truth"})
    assert only("rows", not_stale, spec) == [
        "24 bar(s) differ from the source data, first at 2024-01-03T00:00:00+00:00"
    ]


def test_stale_values_count_only_tagged_cache_and_only_whole(world):
    obs, spec = stale_fetch(world, [DAY], {DAY: "stale", NEXT: "truth"})
    tagged = pa.array(["vision"] * 24 + ["vision"] * 24)
    as_vision = dataclasses.replace(obs, table=obs.table.set_column(6, "source", tagged))
    assert only("rows", as_vision, spec) == [
        "24 bar(s) differ from the source data, first at 2024-01-03T00:00:00+00:00"
    ]
    from tests.test_contract import with_value

    half = dataclasses.replace(obs, table=with_value(obs.table, "open", 5, 1.0))
    assert only("rows", half, spec) == ["1 bar(s) differ from the source data, first at 2024-01-03T05:00:00+00:00"]


def test_placeholders_are_named_from_the_first_blank_bar(world):
    from tests.test_contract import with_value

    table = result_table(world, START, END)
    for name in ("open", "high", "low", "close", "volume"):
        table = with_value(table, name, 5, float("nan"))
    obs = dataclasses.replace(vision_fetch(world), table=with_value(table, "close", 7, 1.0))
    assert only("rows", obs) == [
        "1 bar(s) are placeholders without values (NaN or null), first at 2024-01-03T05:00:00+00:00",
        "1 bar(s) differ from the source data, first at 2024-01-03T07:00:00+00:00",
    ]


# --- messages with several items, branches after a skipped item -----------------------------------------------


def test_several_days_and_sources_are_listed(world):
    outside = [request_record(i, "rest", dt.date(2024, 1, i), 200, T0) for i in (1, 2)]
    assert only("needed_only", vision_fetch(world, *outside)) == [
        "asked REST for day(s) outside the request: 2024-01-01, 2024-01-02"
    ]
    mixed = rest_fetch(world)
    mixed = dataclasses.replace(mixed, rows_per_day={DAY: {"rest": 12, "cache": 12}}, cache_before={DAY: VALID})
    assert only("sources", mixed) == ["2024-01-03: rows tagged rest; expected cache"]
    stale = dataclasses.replace(mixed, cache_before={DAY: DayFileState("stale", rows=24, size=1800)})
    assert only("sources", dataclasses.replace(stale, rows_per_day={DAY: {"rest": 24}})) == [
        "2024-01-03: rows tagged rest; expected cache or vision"
    ]
    from pytest_fcp.faults import fault

    nowhere = WorldSpec(NOW, seed=3, faults=(fault("vision.http403", days=[DAY]), fault("rest.http500", days=[DAY])))
    two = dataclasses.replace(rest_fetch(world), rows_per_day={DAY: {"rest": 12, "vision": 12}})
    assert only("sources", two, nowhere) == ["2024-01-03: rows tagged rest, vision; expected nothing"]


def test_a_row_day_outside_the_plan_does_not_stop_the_sources_check(world):
    obs = rest_fetch(world)
    early = {dt.date(2024, 1, 2): {"rest": 1}, **obs.rows_per_day}
    assert only("sources", dataclasses.replace(obs, rows_per_day=early)) == [
        "2024-01-03: rows tagged rest; expected vision"
    ]


def test_a_fetched_series_request_before_another_series_does_not_hide_it(world):
    same = request_record(1, "vision", DAY, 200, T0)
    other = request_record(2, "vision", DAY, 200, T0)
    other = dataclasses.replace(other, target=dataclasses.replace(other.target, symbol="ETHUSDT"))
    assert only("needed_only", vision_fetch(world, same, other)) == [
        "asked Vision for another symbol's files (ETHUSDT) for a 1h BTCUSDT request: day(s) 2024-01-03"
    ]


def test_hammering_is_found_after_other_rest_answers(world):
    fine = request_record(1, "rest", DAY, 200, T0)
    limited = request_record(2, "rest", DAY, 429, T0, retry_after=30.0)
    early = request_record(3, "rest", DAY, 200, T0 + dt.timedelta(seconds=1))
    assert only("rate_limit", rest_fetch(world, fine, limited, early)) == [
        "sent a REST request 1s after a 429 with Retry-After 30s (hammering)"
    ]


def test_long_messages_are_cut_and_an_error_of_both_kinds_is_documented(world):
    from pytest_fcp.faults import fault

    blocked = WorldSpec(NOW, seed=3, faults=(fault("vision.http403", days=[DAY]), fault("rest.http500", days=[DAY])))
    odd = rest_fetch(world, error=RuntimeError("y" * 200))
    assert only("outcome", odd, blocked) == [
        f"raised RuntimeError ({'y' * 120}), not the documented DataSourceError / RateLimitError"
    ]

    class BothError(RateLimitError, DataSourceError):
        """A rate-limit error that is also a data-source error."""

    both = rest_fetch(world, request_record(1, "rest", DAY, 500, T0), error=BothError("no data from any source"))
    assert only("outcome", both, blocked) == []


def test_the_inclusive_end_is_judged_in_utc_whatever_the_local_time_zone(world, monkeypatch):
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        end_day = request_record(1, "rest", NEXT, 200, T0)
        assert only("needed_only", vision_fetch(world, end_day)) == [
            "treated the request's end as inclusive: asked REST for 2024-01-04, the day that starts at the "
            "exclusive end"
        ]
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    ("fid", "door", "vision"),
    [
        ("vision.http403", "s3", "possible"),  # the https door still serves
        ("vision.http403", "https", "possible"),
        ("vision.http403", None, "impossible"),
        ("vision.checksum_mismatch", None, "impossible"),  # the zip is spoiled whichever object comes first
        ("vision.missing_checksum", None, "possible"),
    ],
)
def test_the_plan_follows_each_door_and_object_a_vision_fault_hits(world, fid, door, vision):
    from pytest_fcp.contract import plan
    from pytest_fcp.faults import fault

    spec = WorldSpec(NOW, seed=3, faults=(fault(fid, days=[DAY], door=door),))
    assert plan(spec, vision_fetch(world))[DAY].vision == vision


def test_every_young_day_cached_is_named(world):
    end = dt.datetime(2024, 1, 5, tzinfo=dt.UTC)
    obs = observe(world, result_table(world, START, end), START, end)
    obs = dataclasses.replace(
        obs,
        now=dt.datetime(2024, 1, 5, 12, tzinfo=dt.UTC),
        cache_before={DAY: MISSING, NEXT: MISSING},
        cache_after={DAY: VALID, NEXT: BROKEN},
    )
    assert only("cache", obs) == [
        "2024-01-03: cached a day younger than 48 h (valid)",
        "2024-01-04: cached a day younger than 48 h (partial)",
    ]


def test_each_day_outside_the_request_is_judged(world):
    before, after = dt.date(2024, 1, 2), NEXT
    outside = {before: (MISSING, MISSING), after: (MISSING, DayFileState("corrupt", size=3))}
    assert cached(world, MISSING, VALID, cache_outside=outside) == [
        "2024-01-04 (outside the request): the cache holds a corrupt file afterwards"
    ]


# --- rows: every kind of verdict is the rows check's, exactly ------------------------------------------------


def rows_of(world, table: pa.Table, start=START, end=END, spec: WorldSpec | None = None) -> list[str]:
    """The rows check's reasons on a fetch of the old, published [start, end) that returned ``table``."""
    obs = dataclasses.replace(observe(world, table, start, end), published=frozenset({DAY}))
    return only("rows", obs, spec)


def test_each_kind_of_rows_verdict_is_named_by_the_rows_check(world):
    from tests.test_contract import with_value

    table = result_table(world, START, END)
    assert rows_of(world, table) == []
    assert rows_of(world, table.drop_columns(["volume", "open"])) == ["result lacks column(s) open, volume"]
    naive = table.set_column(0, "open_time", table["open_time"].cast(pa.timestamp("ms")))
    assert rows_of(world, naive) == ["open_time is timestamp[ms], not a UTC timestamp"]
    for zone in ("UTC", "+00:00", "Etc/UTC"):
        zoned = table.set_column(0, "open_time", table["open_time"].cast(pa.timestamp("ms", tz=zone)))
        assert rows_of(world, zoned) == [], zone
    import pyarrow.compute as pc

    text = table.set_column(0, "open_time", table["open_time"].cast(pa.string()))
    assert rows_of(world, text) == ["open_time is string, not a UTC timestamp"]
    sub_ms = pc.add(table["open_time"].cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()), 1)
    found = rows_of(world, table.set_column(0, "open_time", sub_ms.cast(pa.timestamp("ns", tz="UTC"))))
    assert len(found) == 1 and found[0].startswith("open_time cannot be read as a time:")
    late = result_table(world, START, END + dt.timedelta(hours=2))
    assert rows_of(world, late) == ["2 row(s) outside [start, end), first at 2024-01-04T00:00:00+00:00"]
    doubled = pa.concat_tables([table.slice(0, 3), table.slice(2)])
    assert rows_of(world, doubled) == ["1 duplicated bar(s), first at 2024-01-03T02:00:00+00:00"]
    gap = pa.concat_tables([table.slice(0, 5), table.slice(7)])
    assert rows_of(world, gap) == ["2 bar(s) missing (gaps), first at 2024-01-03T05:00:00+00:00"]
    untimed = with_value(table, "open_time", 3, None)
    assert rows_of(world, untimed) == [
        "1 row(s) outside [start, end), first at null",
        "1 bar(s) missing (gaps), first at 2024-01-03T03:00:00+00:00",
    ]
    assert rows_of(world, table.slice(0, 0)) == ["24 bar(s) missing (gaps), first at 2024-01-03T00:00:00+00:00"]


def test_numbers_of_any_numeric_type_compare_by_value(world):
    table = result_table(world, START, END)
    whole = pa.array([round(v) for v in table["volume"].to_pylist()], pa.int64())
    rounded = table.set_column(5, "volume", whole)
    assert rows_of(world, rounded) == ["24 bar(s) differ from the source data, first at 2024-01-03T00:00:00+00:00"]
    as_float32 = table.set_column(1, "open", table["open"].cast(pa.float32()))
    assert rows_of(world, as_float32)[0].endswith("first at 2024-01-03T00:00:00+00:00")
    flags = table.set_column(1, "open", pa.array([True] * 24))
    assert rows_of(world, flags) == ["24 bar(s) differ from the source data, first at 2024-01-03T00:00:00+00:00"]


@pytest.mark.parametrize("scope", [{"market": "spot"}, {"symbol": "BTCUSDT"}, {"interval": "1h"}])
def test_a_fault_scoped_to_the_fetched_series_is_planned_for(world, scope):
    from pytest_fcp.contract import plan
    from pytest_fcp.faults import fault

    spec = WorldSpec(NOW, seed=3, faults=(fault("rest.http500", days=[DAY], **scope),))
    day = plan(spec, vision_fetch(world))[DAY]
    assert (day.day, day.rest) == (DAY, "impossible")


def test_a_rate_limit_stands_in_the_way_only_while_it_lasts(world):
    from pytest_fcp.contract import plan
    from pytest_fcp.faults import fault

    def limited(*faults):
        return plan(WorldSpec(NOW, seed=3, faults=faults), vision_fetch(world))[DAY].rate_limited

    assert limited() is False
    assert limited(fault("rest.http429", days=[DAY])) is True
    assert limited(fault("rest.http418", days=[DAY], attempts="first:2")) is False
    assert limited(fault("rest.http500", days=[DAY])) is False


def test_values_are_checked_when_bars_are_also_missing_or_outside(world):
    from tests.test_contract import with_value

    table = result_table(world, START, END)
    gap_and_wrong = with_value(pa.concat_tables([table.slice(0, 5), table.slice(7)]), "close", 21, 1.0)
    assert rows_of(world, gap_and_wrong) == [
        "2 bar(s) missing (gaps), first at 2024-01-03T05:00:00+00:00",
        "1 bar(s) differ from the source data, first at 2024-01-03T23:00:00+00:00",
    ]
    early = result_table(world, START - dt.timedelta(hours=2), END)
    assert rows_of(world, early) == ["2 row(s) outside [start, end), first at 2024-01-02T22:00:00+00:00"]


def test_only_a_day_rest_may_read_as_empty_may_be_absent_and_only_whole(world):
    from pytest_fcp.faults import fault

    table = result_table(world, START, END)
    empty_rest = WorldSpec(NOW, seed=3, faults=(fault("rest.empty_page", days=[DAY]),))

    def gaps(result: pa.Table, spec: WorldSpec | None, published: frozenset) -> list[str]:
        obs = dataclasses.replace(observe(world, result, START, END), published=published)
        return only("rows", obs, spec)

    absent = table.slice(0, 0)
    whole_day = "24 bar(s) missing (gaps), first at 2024-01-03T00:00:00+00:00"
    assert gaps(absent, empty_rest, frozenset()) == []  # Vision has not published it, REST reads as empty
    assert gaps(absent, None, frozenset()) == [whole_day]  # REST serves it
    assert gaps(absent, empty_rest, frozenset({DAY})) == [whole_day]  # Vision serves it
    half = gaps(table.slice(0, 12), empty_rest, frozenset())
    assert half == ["12 bar(s) missing (gaps), first at 2024-01-03T12:00:00+00:00"]
