"""The oracle against the world: over thousands of generated schedules, the fault the oracle predicts for each
request is the fault the world's Vision and REST services answer it with."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_fcp.contract.oracle import predict
from pytest_fcp.core.markets import day_bounds_ms, vision_key
from pytest_fcp.faults import FAULTS, FaultSchedule, fault, faults_for_source
from pytest_fcp.world.clock import VirtualClock
from pytest_fcp.world.recorder import Recorder
from pytest_fcp.world.rest import RestApi
from pytest_fcp.world.truth import SyntheticTruth
from pytest_fcp.world.vision import VisionBucket

DAY = dt.date(2024, 1, 3)
SERIES = ("spot", "BTCUSDT", "1h")
TRUTH = SyntheticTruth.shared(5)
DELAY = dt.timedelta(hours=24)


@st.composite
def scheduled(draw: st.DrawFn, source: str) -> object:
    """One fault of ``source`` with a drawn attempt window, door and day scope."""
    fid = draw(st.sampled_from([f for f in faults_for_source(source) if f not in ("vision.slow",)]))
    attempts = draw(st.sampled_from(["always", "first:1", "first:2", "first:3", "nth:1", "nth:2", "nth:4"]))
    kwargs: dict[str, object] = {"attempts": attempts}
    if source == "vision" and draw(st.booleans()):
        kwargs["door"] = draw(st.sampled_from(["https", "s3"]))
    scope = draw(st.sampled_from([None, [DAY], [DAY + dt.timedelta(days=1)]]))
    if scope is not None:
        kwargs["days"] = scope
    return fault(fid, **kwargs)


def _answered(recorder: Recorder, before: int) -> str | None:
    fired = recorder.firings[before:]
    return fired[0].id if fired else None


@settings(max_examples=1500, deadline=None)
@given(
    faults=st.lists(scheduled("vision"), max_size=4),
    asks=st.lists(st.tuples(st.sampled_from(["https", "s3"]), st.sampled_from(["zip", "checksum"])), max_size=8),
)
def test_the_oracle_predicts_the_fault_vision_answers_each_request_with(faults, asks):
    recorder = Recorder()
    bucket = VisionBucket(
        TRUTH, VirtualClock(dt.datetime(2024, 1, 10, 12, tzinfo=dt.UTC)), FaultSchedule(faults), recorder, DELAY
    )
    bucket.start()
    try:
        served = []
        for door, obj in asks:
            key = vision_key(*SERIES[:1], SERIES[1], SERIES[2], DAY) + (".CHECKSUM" if obj == "checksum" else "")
            before = len(recorder.firings)
            bucket.answer(door, key, f"https://data.binance.vision/{key}")
            served.append(_answered(recorder, before))
    finally:
        bucket.stop()
    assert [f.id if f else None for f in predict(faults, "vision", SERIES, DAY, asks)] == served


@settings(max_examples=1000, deadline=None)
@given(faults=st.lists(scheduled("rest"), max_size=4), count=st.integers(1, 8))
def test_the_oracle_predicts_the_fault_rest_answers_each_request_with(faults, count):
    recorder = Recorder()
    api = RestApi(TRUTH, VirtualClock(dt.datetime(2024, 1, 10, 12, tzinfo=dt.UTC)), FaultSchedule(faults), recorder)
    start, end = day_bounds_ms(DAY)
    params = {"symbol": "BTCUSDT", "interval": "1h", "startTime": str(start), "endTime": str(end - 1), "limit": "1000"}
    served = []
    for _ in range(count):
        before = len(recorder.firings)
        api.answer("api.binance.com", dict(params), "https://api.binance.com/api/v3/klines")
        served.append(_answered(recorder, before))
    predicted = predict(faults, "rest", SERIES, DAY, [("https", "")] * count)
    assert [f.id if f else None for f in predicted] == served


def test_a_recovering_fault_earlier_in_the_schedule_shadows_a_later_one():
    slow, blocked = fault("vision.slow", attempts="first:2"), fault("vision.http403")
    answers = predict([slow, blocked], "vision", SERIES, DAY, [("https", "zip"), ("https", "checksum")] * 2)
    assert [a.id if a else None for a in answers] == ["vision.slow", "vision.slow", "vision.http403", "vision.http403"]
    assert FAULTS["vision.slow"].obtainable == "yes"


def _plan(faults, day: dt.date, now: dt.datetime):
    from pytest_fcp.contract import plan
    from pytest_fcp.core.cache_states import DayFileState
    from pytest_fcp.world.observation import FetchRequest, Observation
    from pytest_fcp.world.spec import WorldSpec

    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    request = FetchRequest("BTCUSDT", "spot", "1h", start, start + dt.timedelta(hours=12))
    empty = {day: DayFileState("missing")}
    obs = Observation(
        request,
        now,
        None,
        None,
        (),
        (),
        (),
        (),
        empty,
        empty,
        TRUTH.klines("spot", "BTCUSDT", "1h", 0, 0),
        frozenset({day}),
    )
    return plan(WorldSpec(now, faults=tuple(faults)), obs)[day]


def test_vision_that_answers_the_first_requests_late_may_serve_the_day():
    # Shrunk from a fuzz run that failed two correct engines: the 403 never fires on the first two requests.
    day_plan = _plan(
        [fault("vision.slow", attempts="first:2"), fault("vision.http403")],
        dt.date(2024, 1, 7),
        dt.datetime(2024, 1, 10, 12, tzinfo=dt.UTC),
    )
    assert day_plan.vision == "possible" and day_plan.allowed_sources == {"vision", "rest"}


def test_an_empty_first_page_may_read_as_no_data_although_a_429_follows():
    day_plan = _plan(
        [fault("rest.empty_page", attempts="first:1"), fault("rest.http429")],
        dt.date(2024, 1, 10),
        dt.datetime(2024, 1, 10, 12, tzinfo=dt.UTC),
    )
    assert (day_plan.rest, day_plan.obtainable, day_plan.rate_limited) == ("empty", "possible", True)
    assert (
        _plan([fault("rest.http429")], dt.date(2024, 1, 10), dt.datetime(2024, 1, 10, 12, tzinfo=dt.UTC)).obtainable
        == "impossible"
    )
