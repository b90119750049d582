"""Scheduled faults without a world: validation names what is wrong and what is allowed, a fault describes and
rebuilds itself, and the schedule counts attempts per fault and day and lets the first firing fault answer."""

from __future__ import annotations

import datetime as dt

import pytest

from pytest_fcp.faults import Attempts, FaultSchedule, FaultSpecError, fault
from pytest_fcp.faults.schedule import MAX_ATTEMPTS, MAX_DAYS

DAY, NEXT = dt.date(2024, 1, 3), dt.date(2024, 1, 4)


def refused(fid: str, **kwargs: object) -> str:
    """The message of the FaultSpecError ``fault(fid, **kwargs)`` raises."""
    with pytest.raises(FaultSpecError) as caught:
        fault(fid, **kwargs)  # type: ignore[arg-type]
    return str(caught.value)


# --- attempts ------------------------------------------------------------------------------------------------


def test_attempts_parse_print_and_hit() -> None:
    assert Attempts.parse("always") == Attempts() and str(Attempts()) == "always"
    first, nth = Attempts.parse("first:2"), Attempts.parse("nth:3")
    assert (str(first), str(nth)) == ("first:2", "nth:3")
    assert [first.hits(i) for i in (1, 2, 3)] == [True, True, False]
    assert [nth.hits(i) for i in (2, 3, 4)] == [False, True, False]
    assert all(Attempts().hits(i) for i in (1, 50))
    assert (Attempts().recovers, first.recovers, nth.recovers) == (False, True, True)
    assert Attempts.parse(first) is first
    for bad in ("always:1", "first", "first:0", "nth:x", "sometimes", "first:-1"):
        with pytest.raises(FaultSpecError, match=r"bad attempts .*expected 'always', 'first:N'"):
            Attempts.parse(bad)


# --- validation -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fid", "kwargs", "message"),
    [
        ("vision.htp403", {}, "unknown fault id 'vision.htp403'. Did you mean 'vision.http403'"),
        ("nothing.at_all", {}, "unknown fault id 'nothing.at_all'. Known faults: vision.http403, "),
        ("rest.nope", {}, "Known faults: rest.http429, rest.http418,"),
        ("rest.http429", {"retry_afte": 3}, "takes no parameter 'retry_afte'; its parameters: retry_after, "),
        ("rest.http429", {"retry_afte": 3}, "did you mean 'retry_after'?"),
        ("rest.http500", {"keep": 3}, "takes no parameter 'keep'; its parameters: none; scope keys: days, attempts"),
        ("rest.http429", {"retry_after": True}, "retry_after must be a number, got True"),
        ("rest.http429", {"retry_after": float("nan")}, "retry_after must be a number, got nan"),
        ("rest.http429", {"retry_after": -1}, "retry_after must be a number from 0 to 86400, got -1"),
        ("rest.http429", {"retry_after": 86_401}, "must be a number from 0 to 86400"),
        ("rest.short_page", {"keep": 1501}, "keep must be a number from 0 to 1500, got 1501"),
        ("vision.truncated_zip", {"keep": 1.5}, "keep must be a number from 0 to 1, got 1.5"),
        ("rest.http429", {"retry_after_format": 3}, "retry_after_format must be a str, got 3"),
        ("rest.http429", {"retry_after_format": "minutes"}, "'minutes' is not allowed; allowed: seconds, http-date"),
        ("vision.wrong_interval", {"other": "2x"}, "other '2x' is not an interval; allowed: 1s, 1m"),
        ("vision.wrong_symbol", {"other": "ETH-USDT"}, "other must be a symbol like 'ETHUSDT', got 'ETH-USDT'"),
        ("vision.http403", {"door": "ftp"}, "door 'ftp' is not allowed; only Vision faults take a door"),
        ("vision.http403", {"attempts": 2}, "attempts must be a word like 'always', 'first:2' or 'nth:3', got 2"),
        ("vision.http403", {"attempts": f"nth:{MAX_ATTEMPTS + 1}"}, f"is too many; at most {MAX_ATTEMPTS}"),
        ("cache.zero_byte", {"days": [DAY], "attempts": "nth:1"}, "take no attempts"),
        ("cache.read_only_dir", {"days": [DAY]}, "acts on the whole cache directory and takes no days"),
        ("vision.http403", {"days": 3}, "days must be a list of days, e.g. ['2024-01-02'], got 3"),
        ("vision.http403", {"days": []}, "days is empty; leave it out to hit every day"),
        ("vision.http403", {"days": ["2024-02-30"]}, "bad day '2024-02-30' in vision.http403"),
        ("vision.http403", {"market": "margin"}, "unknown market 'margin'; expected one of spot, "),
        ("vision.http403", {"symbol": "BTC/USDT"}, "symbol must be a symbol like 'BTCUSDT', got 'BTC/USDT'"),
        ("vision.http403", {"symbol": 3}, "symbol must be a symbol like 'BTCUSDT', got 3"),
        ("vision.http403", {"interval": "2x"}, "interval '2x' is not an interval; allowed: 1s, 1m"),
    ],
)
def test_fault_misuse_names_what_is_wrong_and_allowed(fid: str, kwargs: dict, message: str) -> None:
    assert message in refused(fid, **kwargs)


def test_too_many_days_are_refused_and_the_limit_is_allowed() -> None:
    days = [DAY + dt.timedelta(days=i) for i in range(MAX_DAYS + 1)]
    assert f"{MAX_DAYS + 1} days; at most {MAX_DAYS}" in refused("vision.http403", days=days)
    assert len(fault("vision.http403", days=days[:MAX_DAYS]).days or ()) == MAX_DAYS
    assert fault("vision.http403", attempts=f"first:{MAX_ATTEMPTS}").attempts == Attempts("first", MAX_ATTEMPTS)


def test_valid_faults_keep_their_scope_and_parameters() -> None:
    item = fault(
        "vision.http403",
        days=["2024-01-04", dt.datetime(2024, 1, 3, 5, tzinfo=dt.UTC), "2024-01-04"],
        attempts="first:2",
        market="spot",
        symbol="BTC_USDT",
        interval="1h",
        door="s3",
    )
    assert item.days == (DAY, NEXT) and item.attempts == Attempts("first", 2)
    assert (item.market, item.symbol, item.interval, item.door) == ("spot", "BTC_USDT", "1h", "s3")
    assert fault("vision.http403", days="2024-01-03").days == (DAY,)
    assert fault("vision.http403", days=DAY).days == (DAY,)
    assert fault("vision.http403").days is None
    rate = fault("rest.http429", retry_after=0, retry_after_format="http-date")
    assert (rate.param("retry_after"), rate.param("retry_after_format")) == (0, "http-date")
    assert fault("rest.http429").param("retry_after") == 30
    assert fault("vision.wrong_interval", other="1m").param("other") == "1m"
    assert fault("cache.zero_byte", days=[DAY]).source == "cache"


def test_a_fault_describes_itself_and_rebuilds_from_its_dict() -> None:
    plain = fault("vision.http403")
    assert plain.describe() == "vision.http403" and plain.to_dict() == {"id": "vision.http403"}
    scoped = fault("rest.http429", days=[NEXT, DAY], attempts="nth:2", market="spot", symbol="BTCUSDT", retry_after=5)
    assert scoped.describe() == (
        "rest.http429 [days 2024-01-03,2024-01-04; attempts nth:2; market spot; symbol BTCUSDT; retry_after=5]"
    )
    assert scoped.to_dict() == {
        "id": "rest.http429",
        "days": ["2024-01-03", "2024-01-04"],
        "attempts": "nth:2",
        "market": "spot",
        "symbol": "BTCUSDT",
        "retry_after": 5,
    }
    door = fault("vision.http403", interval="1m", door="https")
    assert door.describe() == "vision.http403 [interval 1m; door https]"
    for item in (plain, scoped, door):
        data = dict(item.to_dict())
        assert fault(data.pop("id"), **data) == item


def test_scope_matches_each_of_market_symbol_interval_and_day() -> None:
    item = fault("vision.http403", days=[DAY], market="spot", symbol="BTCUSDT", interval="1h")
    assert item.in_scope("spot", "BTCUSDT", "1h", DAY)
    assert not item.in_scope("futures_um", "BTCUSDT", "1h", DAY)
    assert not item.in_scope("spot", "ETHUSDT", "1h", DAY)
    assert not item.in_scope("spot", "BTCUSDT", "1m", DAY)
    assert not item.in_scope("spot", "BTCUSDT", "1h", NEXT)
    assert fault("vision.http403").in_scope("futures_cm", "X", "1d", NEXT)


# --- the schedule -----------------------------------------------------------------------------------------------


def ask(schedule: FaultSchedule, source: str = "rest", days=(DAY,), **kwargs: object):
    """The id of the fault that answers one request (``None``: none)."""
    found = schedule.answering_fault(source, "spot", "BTCUSDT", "1h", list(days), **kwargs)  # type: ignore[arg-type]
    return found.id if found else None


def test_the_first_firing_fault_answers_and_every_fault_in_scope_counts_the_attempt() -> None:
    schedule = FaultSchedule([fault("rest.http500", attempts="first:1"), fault("rest.http503", attempts="nth:2")])
    assert [ask(schedule) for _ in range(3)] == ["rest.http500", "rest.http503", None]
    assert schedule.last_attempt == 2 and schedule.last_day == DAY  # what answered last, in this thread


def test_attempts_are_counted_per_day_and_a_request_for_several_days_counts_each() -> None:
    schedule = FaultSchedule([fault("rest.http500", attempts="nth:2")])
    assert ask(schedule, days=(DAY, NEXT)) is None  # attempt 1 at each day
    assert ask(schedule, days=(NEXT,)) == "rest.http500"  # attempt 2 at NEXT
    assert (schedule.last_day, schedule.last_attempt) == (NEXT, 2)
    assert ask(schedule, days=(DAY, NEXT)) == "rest.http500"  # attempt 2 at DAY (3 at NEXT)
    assert schedule.last_day == DAY


def test_faults_answer_only_their_source_door_object_and_scope() -> None:
    schedule = FaultSchedule(
        [
            fault("vision.http403", door="s3"),
            fault("vision.missing_checksum"),
            fault("rest.http500", days=[NEXT]),
        ]
    )
    assert ask(schedule, "vision", door="https", obj="zip") is None
    assert ask(schedule, "vision", door="s3", obj="zip") == "vision.http403"
    assert ask(schedule, "vision", door="https", obj="checksum") == "vision.missing_checksum"
    assert ask(schedule, "vision", door="https") == "vision.missing_checksum"  # no object named: any
    assert ask(schedule, "rest") is None
    assert ask(schedule, "rest", days=(DAY, NEXT)) == "rest.http500"
    assert [f.id for f in schedule.of_source("vision")] == ["vision.http403", "vision.missing_checksum"]
    schedule.add(fault("rest.http503"))
    assert ask(schedule, "rest") == "rest.http503"
    assert FaultSchedule().last_attempt == 0 and FaultSchedule().last_day is None


def test_parameter_bounds_are_inclusive_and_symbols_may_hold_underscores() -> None:
    assert fault("rest.http429", retry_after=86_400).param("retry_after") == 86_400
    assert fault("rest.http429", retry_after=0).param("retry_after") == 0
    assert fault("vision.wrong_symbol", other="ETH_USDT").param("other") == "ETH_USDT"
    two = fault("rest.http429", retry_after=5, retry_after_format="http-date")
    assert two.describe() == "rest.http429 [retry_after=5, retry_after_format=http-date]"
