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
    for i, variant in enumerate((as_int, as_ns)):
        write(tmp_path / f"{i}.arrow", variant, stream=bool(i))
        assert inspect_day_file(tmp_path / f"{i}.arrow", truth).valid
    (tmp_path / "z.arrow").write_bytes(b"")
    assert inspect_day_file(tmp_path / "z.arrow", truth).status == "unreadable"
    assert inspect_day_file(tmp_path / "none.arrow", truth).status == "missing"
