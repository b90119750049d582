"""The rows verdict and the per-day row accounting, on observations built by hand: no engine, no world
started (the contract is pure)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pytest_fcp.contract import CHECKS, judge
from pytest_fcp.core.cache_states import DayFileState
from pytest_fcp.core.markets import to_ms
from pytest_fcp.faults import fault
from pytest_fcp.world.observation import FetchRequest, Observation, tally
from pytest_fcp.world.spec import WorldSpec
from pytest_fcp.world.truth import SyntheticTruth
from tests.conftest import utc

NOW = utc(2024, 1, 10, 12)
START, END = utc(2024, 1, 2), utc(2024, 1, 5)  # three old days of 1h bars: 72 rows
PRICES = ("open", "high", "low", "close", "volume")


class Truth:
    """The synthetic truth a world with seed 3 serves, as far as these checks need it."""

    now = NOW
    spec = WorldSpec(NOW, seed=3)

    def expected(self, start: dt.datetime, end: dt.datetime) -> pa.Table:
        upper = min(to_ms(end), to_ms(NOW) + 1)
        return SyntheticTruth.shared(3).klines("spot", "BTCUSDT", "1h", to_ms(start), upper)


@pytest.fixture
def world() -> Truth:
    return Truth()


def observe(world: Truth, table: pa.Table, start: dt.datetime, end: dt.datetime, interval: str = "1h") -> Observation:
    """The observation of a fetch of [start, end) that returned ``table`` from an empty cache."""
    request = FetchRequest("BTCUSDT", "spot", interval, start, end)
    empty = {day: DayFileState("missing") for day in request.days}
    times, by_day = tally(table)
    return Observation(
        request, NOW, table, None, (), (), (), (), empty, empty, world.expected(start, end), frozenset(), times, by_day
    )


def result_table(world: Truth, start: dt.datetime = START, end: dt.datetime = END) -> pa.Table:
    """The truth for [start, end) as an engine returns it: UTC open_time, prices, one source per row."""
    truth = world.expected(start, end)
    return pa.table(
        {
            "open_time": truth["open_time"].cast(pa.timestamp("ms", tz="UTC")),
            **{name: truth[name] for name in PRICES},
            "source": pa.array(["vision"] * truth.num_rows),
        }
    )


def row_verdicts(world: Truth, table: pa.Table, start: dt.datetime = START, end: dt.datetime = END) -> list[str]:
    return [v.reason for v in judge(world.spec, observe(world, table, start, end), skip=set(CHECKS) - {"rows"})]


def with_value(table: pa.Table, column: str, row: int, value: object) -> pa.Table:
    values = table[column].to_pylist()
    values[row] = value
    return table.set_column(table.schema.get_field_index(column), column, pa.array(values, table[column].type))


def test_the_truth_passes_and_only_in_time_order(world):
    table = result_table(world)
    assert row_verdicts(world, table) == []
    reversed_rows = table.take(pa.array(list(range(71, -1, -1))))  # the contract asks for time order
    assert row_verdicts(world, reversed_rows) == [
        "rows are not in time order: 2024-01-04T22:00:00+00:00 comes after 2024-01-04T23:00:00+00:00"
    ]


def test_gaps_duplicates_and_rows_outside_the_range(world):
    table = result_table(world)
    assert row_verdicts(world, pa.concat_tables([table.slice(0, 30), table.slice(31)])) == [
        "1 bar(s) missing (gaps), first at 2024-01-03T06:00:00+00:00"
    ]
    doubled = pa.concat_tables([table.slice(40, 2), table])  # repeats ahead of their first sorted place
    assert row_verdicts(world, doubled) == [
        "rows are not in time order: 2024-01-02T00:00:00+00:00 comes after 2024-01-03T17:00:00+00:00",
        "2 duplicated bar(s), first at 2024-01-03T16:00:00+00:00",
    ]
    next_day = result_table(world, START, END + dt.timedelta(hours=2))
    assert row_verdicts(world, next_day) == ["2 row(s) outside [start, end), first at 2024-01-05T00:00:00+00:00"]


def test_a_row_without_a_time_is_outside_the_range_and_leaves_a_gap(world):
    table = with_value(result_table(world), "open_time", 5, None)
    assert row_verdicts(world, table) == [
        "1 row(s) outside [start, end), first at null",
        "1 bar(s) missing (gaps), first at 2024-01-02T05:00:00+00:00",
    ]


@pytest.mark.parametrize(
    ("column", "value"),
    [("close", 1.0), ("volume", float("nan")), ("open", None)],
    ids=["changed", "nan", "null"],
)
def test_a_value_that_is_not_the_source_data(world, column, value):
    table = with_value(result_table(world), column, 50, value)
    assert row_verdicts(world, table) == ["1 bar(s) differ from the source data, first at 2024-01-04T02:00:00+00:00"]


def test_columns_of_the_wrong_kind(world):
    table = result_table(world)
    as_text = table.set_column(4, "close", table["close"].cast(pa.string()))
    assert row_verdicts(world, as_text) == ["72 bar(s) differ from the source data, first at 2024-01-02T00:00:00+00:00"]
    as_float32 = table.set_column(5, "volume", table["volume"].cast(pa.float32()))
    assert "bar(s) differ from the source data" in row_verdicts(world, as_float32)[0]
    naive = table.set_column(0, "open_time", table["open_time"].cast(pa.timestamp("ms")))
    assert row_verdicts(world, naive) == ["open_time is timestamp[ms], not a UTC timestamp"]
    sub_ms = pc.add(table["open_time"].cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()), 1)
    fine = table.set_column(0, "open_time", sub_ms.cast(pa.timestamp("ns", tz="UTC")))
    assert row_verdicts(world, fine)[0].startswith("open_time cannot be read as a time:")
    assert row_verdicts(world, table.drop_columns(["volume"])) == ["result lacks column(s) volume"]


def test_a_day_rest_may_read_as_empty_is_absent_whole_or_not_at_all():
    start, end = utc(2024, 1, 9), utc(2024, 1, 10, 12)  # younger than 48 h: REST only, and REST is empty
    world = Truth()
    world.spec = WorldSpec(NOW, seed=3, faults=(fault("rest.empty_page"),))
    table = result_table(world, start, end)
    second_day = pc.greater_equal(table["open_time"], pa.scalar(utc(2024, 1, 10), pa.timestamp("ms", tz="UTC")))
    assert row_verdicts(world, table.filter(second_day), start, end) == []  # the 9th is absent as a whole
    assert row_verdicts(world, table.slice(0, 30), start, end) == [  # the 10th only in part
        "6 bar(s) missing (gaps), first at 2024-01-10T06:00:00+00:00"
    ]


def test_rows_by_day_and_source(world):
    table = result_table(world)
    sources = ["cache"] * 24 + ["vision"] * 20 + ["rest"] * 4 + ["vision"] * 24
    table = table.set_column(6, "source", pa.array(sources).dictionary_encode())
    table = with_value(table, "open_time", 0, None)
    result = observe(world, table, START, END)
    assert result.rows_by_day() == {
        None: {"cache": 1},
        dt.date(2024, 1, 2): {"cache": 23},
        dt.date(2024, 1, 3): {"vision": 20, "rest": 4},
        dt.date(2024, 1, 4): {"vision": 24},
    }
    assert result.rows_by_source() == {"cache": 24, "vision": 44, "rest": 4}
    assert result.sources_by_day()[dt.date(2024, 1, 3)] == {"vision", "rest"}


def test_rows_by_day_before_1970_untagged_and_timeless(world):
    old = pa.array([-86_400_001, -1, 0], pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
    result = observe(world, pa.table({"open_time": old}), START, END)
    days = [dt.date(1969, 12, 30), dt.date(1969, 12, 31), dt.date(1970, 1, 1)]
    assert result.rows_by_day() == {day: {"None": 1} for day in days}
    text = pa.table({"open_time": ["soon", "later"], "source": ["rest", "rest"]})
    assert observe(world, text, START, END).rows_by_day() == {None: {"rest": 2}}


@pytest.mark.parametrize("small", [10**9, 0], ids=["python", "numpy"])
def test_rows_by_day_counts_alike_for_small_and_large_results(world, monkeypatch, small):
    from pytest_fcp.world import observation as world_module

    monkeypatch.setattr(world_module, "_SMALL", small)  # the same answer on either path
    start, end = utc(2023, 12, 31, 23), utc(2024, 1, 3)
    times = pa.array(range(int(start.timestamp() * 1000), int(end.timestamp() * 1000), 60_000), pa.int64())
    sources = ["rest" if i % 7 == 0 else "vision" for i in range(len(times))]
    sources[3] = None
    table = pa.table({"open_time": times.cast(pa.timestamp("ms", tz="UTC")), "source": sources})
    table = with_value(table, "open_time", 10, None)
    counts = observe(world, table, start, end, "1m").rows_by_day()
    assert counts == {
        None: {"vision": 1},  # row 10
        dt.date(2023, 12, 31): {"None": 1, "rest": 9, "vision": 49},  # rows 0-59 but 10; row 3 is untagged
        dt.date(2024, 1, 1): {"rest": 206, "vision": 1234},  # rows 60-1499: every 7th is REST
        dt.date(2024, 1, 2): {"rest": 205, "vision": 1235},
    }


def request_record(index: int, source: str, day: dt.date, status: int, at: dt.datetime, **extra: object):
    """A hand-made record of one request (what the world's recorder would hold)."""
    from pytest_fcp.world.answer import Target
    from pytest_fcp.world.recorder import RequestRecord

    target = Target("spot", "BTCUSDT", "1h", (day,), "zip" if source == "vision" else None, 2)
    fields = {"attempt": 1, "error": None, "retry_after": None, "duration_s": 0.0, "fault": None, **extra}
    return RequestRecord(
        index, source, "https", "GET", f"https://{source}/{index}", target, status=status, virtual=at, **fields
    )  # type: ignore[arg-type]


def test_order_needed_only_and_rate_limit_checks_read_request_records(world):
    import dataclasses

    table = result_table(world, utc(2024, 1, 3), utc(2024, 1, 4))
    obs = observe(world, table.set_column(6, "source", pa.array(["rest"] * 24)), utc(2024, 1, 3), utc(2024, 1, 4))
    day, t0 = dt.date(2024, 1, 3), utc(2024, 1, 10, 12)
    records = (
        request_record(1, "rest", day, 429, t0, retry_after=30.0),
        request_record(2, "rest", day, 200, t0 + dt.timedelta(seconds=10)),  # 10 s after a 429 asking 30 s
        request_record(3, "vision", day, 200, t0 + dt.timedelta(seconds=11)),  # Vision after REST
        request_record(4, "vision", dt.date(2024, 1, 5), 404, t0 + dt.timedelta(seconds=12)),  # outside
    )
    obs = dataclasses.replace(obs, requests=records, published=frozenset({day}))
    reasons = [str(v) for v in judge(world.spec, obs, skip={"rows", "cache", "outcome"})]
    assert reasons == [
        "[sources] 2024-01-03: rows tagged rest; expected vision",
        "[order] 2024-01-03: asked Vision after REST (FCP order is cache -> Vision -> REST)",
        "[needed_only] asked Vision for day(s) outside the request: 2024-01-05",
        "[needed_only] asked REST for day(s) Vision had served: 2024-01-03",
        "[rate_limit] sent a REST request 10s after a 429 with Retry-After 30s (hammering)",
    ]
    waited = dataclasses.replace(records[1], virtual=t0 + dt.timedelta(seconds=30))
    obs = dataclasses.replace(obs, requests=(records[0], waited))
    assert [v.check for v in judge(world.spec, obs, skip={"rows", "cache", "outcome"})] == ["sources", "needed_only"]
