"""Judging a day's cache file against the truth, whatever Arrow layout the engine chose."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pytest_fcp.world.cache import inspect_day_file, truth_to_cache_table
from pytest_fcp.world.truth import SyntheticTruth

DAY = dt.date(2024, 1, 3)


@pytest.fixture
def truth() -> pa.Table:
    start = (DAY - dt.date(1970, 1, 1)).days * 86_400_000
    return SyntheticTruth(seed=4).klines("spot", "BTCUSDT", "1h", start, start + 86_400_000)


def write(path, table: pa.Table, stream: bool = False) -> None:
    sink = pa.BufferOutputStream()
    writer = pa.ipc.new_stream(sink, table.schema) if stream else pa.ipc.new_file(sink, table.schema)
    with writer:
        writer.write_table(table)
    path.write_bytes(sink.getvalue().to_pybytes())


@pytest.mark.parametrize(
    ("edit", "status"),
    [
        (lambda t: t, "valid"),
        (lambda t: t.slice(0, 0), "partial"),  # a file with the schema and no bars
        (lambda t: t.slice(0, 10), "partial"),
        (lambda t: pa.concat_tables([t, t.slice(0, 1)]), "extra"),
        (lambda t: t.set_column(4, "close", pc.multiply(t["close"], 1.01)), "stale"),
        (lambda t: t.set_column(4, "close", pa.array([None] * t.num_rows, pa.float64())), "stale"),
        (lambda t: t.remove_column(4), "schema"),
        (lambda t: t.take(pa.array(range(t.num_rows - 1, -1, -1))), "valid"),  # any row order
        (lambda t: pa.concat_tables([t.slice(5, 1), t]).take(pa.array(range(t.num_rows, -1, -1))), "extra"),
        (
            lambda t: t.set_column(0, "open_time", pc.add(t["open_time"], pa.scalar(86_400_000, pa.duration("ms")))),
            "extra",
        ),
        (
            lambda t: t.set_column(
                0, "open_time", pa.array([None, *t["open_time"].to_pylist()[1:]], t["open_time"].type)
            ),
            "extra",
        ),
        (lambda t: t.set_column(5, "volume", t["volume"].cast(pa.float32())), "stale"),
    ],
    ids=[
        "valid",
        "empty",
        "partial",
        "repeat",
        "stale",
        "null_close",
        "no_close",
        "reversed",
        "repeat_unsorted",
        "next_day",
        "null_time",
        "float32",
    ],
)
def test_day_file_states(tmp_path, truth, edit, status):
    path = tmp_path / "day.arrow"
    write(path, edit(truth_to_cache_table(truth)))
    assert inspect_day_file(path, truth).status == status


def test_layouts_and_units_are_read_alike(tmp_path, truth):
    table = truth_to_cache_table(truth)
    as_int = table.set_column(0, "open_time", table["open_time"].cast(pa.int64()))
    as_ns = table.set_column(0, "open_time", table["open_time"].cast(pa.timestamp("ns", tz="UTC")))
    as_s = table.set_column(0, "open_time", table["open_time"].cast(pa.timestamp("s", tz="UTC")))
    as_us = table.set_column(0, "open_time", table["open_time"].cast(pa.timestamp("us")))
    int_us = table.set_column(0, "open_time", pc.multiply(table["open_time"].cast(pa.int64()), 1000))
    int_ns = table.set_column(0, "open_time", pc.multiply(table["open_time"].cast(pa.int64()), 1_000_000))
    for i, variant in enumerate((as_int, as_ns, as_s, as_us, int_us, int_ns)):
        write(tmp_path / f"{i}.arrow", variant, stream=bool(i))
        assert inspect_day_file(tmp_path / f"{i}.arrow", truth).valid
    (tmp_path / "z.arrow").write_bytes(b"")
    assert inspect_day_file(tmp_path / "z.arrow", truth).status == "unreadable"
    assert inspect_day_file(tmp_path / "none.arrow", truth).status == "missing"


def test_the_same_bytes_against_the_same_truth_are_judged_once(tmp_path, truth, monkeypatch):
    from pytest_fcp.world import cache

    judged: list[int] = []
    real = cache._judge_bytes
    monkeypatch.setattr(cache, "_judge_bytes", lambda data, against: judged.append(data.size) or real(data, against))
    table = truth_to_cache_table(truth)
    write(tmp_path / "a.arrow", table)
    write(tmp_path / "b.arrow", table)  # another day file with the very same bytes
    assert inspect_day_file(tmp_path / "a.arrow", truth).valid
    assert inspect_day_file(tmp_path / "b.arrow", truth).valid
    assert len(judged) == 1
    assert inspect_day_file(tmp_path / "a.arrow", truth.slice(0)).valid  # an equal truth, another table
    assert len(judged) == 2
    write(tmp_path / "a.arrow", table.slice(0, 5))  # new content: judged afresh
    assert inspect_day_file(tmp_path / "a.arrow", truth).status == "partial"
    assert len(judged) == 3


def test_judged_files_do_not_keep_truth_tables_alive(tmp_path, truth):
    import gc
    import weakref

    table = truth_to_cache_table(truth)
    write(tmp_path / "a.arrow", table)
    copy = truth.slice(0)
    assert inspect_day_file(tmp_path / "a.arrow", copy).valid
    gone = weakref.ref(copy)
    del copy
    gc.collect()
    assert gone() is None
    assert inspect_day_file(tmp_path / "a.arrow", truth.slice(0, 3)).status == "extra"  # a new truth, judged anew
