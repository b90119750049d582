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
