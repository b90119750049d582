"""Situations beyond one fetch of one series: other series through one engine, empty requests, clock steps, a
local time zone, Retry-After as an HTTP date, cache writes that fail, partial days with holes anywhere."""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import pathlib
import time

import httpx
import pyarrow as pa
import pytest

from pytest_fcp.contract import judge
from pytest_fcp.engines import load_engine
from pytest_fcp.faults import fault
from pytest_fcp.world import World, WorldError
from pytest_fcp.world.cache_faults import _keep_first
from pytest_fcp.world.recorder import retry_after_seconds
from tests.conftest import ALT, utc

NOW = utc(2024, 1, 10, 12)
ENGINES = [pytest.param("reference", id="reference"), pytest.param(ALT, id="alt")]


@pytest.mark.parametrize("engine", ENGINES)
def test_other_series_through_one_engine_are_each_the_truth(engine: str, tmp_path: pathlib.Path) -> None:
    with World(tmp_path / "cache", NOW) as world:
        world.create_engine(load_engine(engine))
        for symbol, market, interval in [("ETHUSDT", "spot", "1h"), ("BTCUSDT", "futures_usdt", "4h")]:
            start, end = utc(2024, 1, 2), utc(2024, 1, 4)
            obs = world.fetch(start, end, symbol=symbol, market=market, interval=interval)
            assert obs.ok, obs.error
            expected = world.expected(start, end, symbol, market, interval)
            assert obs.table["open_time"].cast(pa.int64()).to_pylist() == expected["open_time"].to_pylist()
            assert obs.table["close"].to_pylist() == expected["close"].to_pylist()
            assert not judge(world.spec, obs)
            assert world.cache_state(utc(2024, 1, 2).date(), symbol, market, interval).valid


@pytest.mark.parametrize("engine", ENGINES)
def test_empty_request_and_requests_inside_one_bar(engine: str, tmp_path: pathlib.Path) -> None:
    with World(tmp_path / "cache", NOW) as world:
        world.create_engine(load_engine(engine))
        for start, end, rows in [
            (utc(2024, 1, 3, 5), utc(2024, 1, 3, 5), 0),  # start == end: no bars
            (utc(2024, 1, 3, 5, 15), utc(2024, 1, 3, 5, 45), 0),  # inside one bar: none opens in it
            (utc(2024, 1, 3, 5), utc(2024, 1, 3, 5, 30), 1),  # the bar that opened at start
        ]:
            obs = world.fetch(start, end)
            assert obs.ok, obs.error
            assert obs.table.num_rows == rows == world.expected(start, end).num_rows
            assert not judge(world.spec, obs)


def test_clock_steps_forward_only(tmp_path: pathlib.Path) -> None:
    with World(tmp_path / "cache", NOW) as world:
        world.advance_to(utc(2024, 1, 12, 12))
        assert world.now == utc(2024, 1, 12, 12)
        with pytest.raises(WorldError, match="cannot move now back"):
            world.advance_to(NOW)


def test_local_time_zone_is_set_after_the_clock_and_restored(tmp_path: pathlib.Path) -> None:
    before = (os.environ.get("TZ"), time.tzname)
    with World(tmp_path / "cache", NOW, local_tz="Asia/Tokyo"):
        assert os.environ["TZ"] == "Asia/Tokyo"
        assert time.localtime().tm_hour == 21  # 12:00 UTC is 21:00 in Tokyo
        assert dt.datetime.now().hour == 21 and dt.datetime.now(dt.UTC).hour == 12
    assert (os.environ.get("TZ"), time.tzname) == before
    with pytest.raises(WorldError, match="not a known time zone"):
        World(tmp_path / "other", NOW, local_tz="Mars/Olympus")


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    now = utc(2024, 1, 10, 12)
    assert retry_after_seconds("30", now) == 30.0
    assert retry_after_seconds("Wed, 10 Jan 2024 12:00:45 GMT", now) == 45.0
    assert retry_after_seconds("Wed, 10 Jan 2024 11:00:00 GMT", now) == 0.0  # in the past: no wait
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None, now) is None


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_rest_429_carries_retry_after_in_either_form(form: str, tmp_path: pathlib.Path) -> None:
    item = fault("rest.http429", retry_after=30, retry_after_format=form)
    with World(tmp_path / "cache", NOW + dt.timedelta(milliseconds=400), faults=[item]) as world:
        url = "https://api.binance.com/api/v3/klines"
        response = httpx.get(url, params={"symbol": "BTCUSDT", "interval": "1h", "limit": 5})
        assert response.status_code == 429
        header = response.headers["Retry-After"]
        if form == "seconds":
            assert header == "30"
        else:
            when = email.utils.parsedate_to_datetime(header)
            assert header.endswith(" GMT") and when == utc(2024, 1, 10, 12, 0, 31)  # rounded up: never early
        (record,) = world.recorder.requests
        assert record.retry_after == pytest.approx(30.0 if form == "seconds" else 30.6, abs=0.01)


def _files(root: pathlib.Path) -> list[pathlib.Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize("error", ["ENOSPC", "EIO"])
@pytest.mark.parametrize("engine", ENGINES)
def test_cache_writes_fail_after_a_good_download(engine: str, error: str, tmp_path: pathlib.Path) -> None:
    item = fault("cache.write_fails", error=error)
    with World(tmp_path / "cache", NOW, faults=[item]) as world:
        world.create_engine(load_engine(engine))
        world.seed_cache([utc(2024, 1, 2).date()])  # the harness's own write still works
        seeded = _files(world.cache_dir)
        obs = world.fetch(utc(2024, 1, 2), utc(2024, 1, 5))
        assert obs.ok, obs.error
        assert obs.rows_by_source() == {"cache": 24, "vision": 48}
        assert _files(world.cache_dir) == seeded, "nothing new may be written while writes fail"
        assert not judge(world.spec, obs)
        with pytest.raises(OSError, match="No space left" if error == "ENOSPC" else "Input/output error"):
            (world.cache_dir / "probe").write_bytes(b"x")
    (tmp_path / "cache" / "probe").write_bytes(b"x")  # writes work again once the world stopped


@pytest.mark.parametrize(
    ("holes", "kept"),
    [("end", list(range(12))), ("start", list(range(12, 24))), ("middle", [*range(6), *range(18, 24)])],
)
def test_partial_day_holes(holes: str, kept: list[int]) -> None:
    full = pa.table({"i": list(range(24))})
    assert _keep_first(fault("cache.partial_day", days=["2024-01-03"], holes=holes), full)["i"].to_pylist() == kept


@pytest.mark.parametrize("holes", ["start", "middle"])
def test_a_partial_day_with_holes_is_not_valid(holes: str, tmp_path: pathlib.Path) -> None:
    day = utc(2024, 1, 3).date()
    item = fault("cache.partial_day", days=[day], holes=holes, keep=0.75)
    with World(tmp_path / "cache", NOW, faults=[item]) as world:
        world.create_engine(load_engine("reference"))
        state = world.cache_state(day)
        assert not state.valid and state.rows == 18
