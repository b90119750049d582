"""Putting a day's cache file into a fault's state, starting from what the engine itself writes
(``write_cache``), so the fault hits the engine's real format. One function per cache effect kind."""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import random
import stat
from collections.abc import Callable
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from pytest_fcp.world.cache import CacheSandbox, open_time_ms, read_arrow_any, truth_to_cache_table

if TYPE_CHECKING:
    from pytest_fcp.engines import Engine
    from pytest_fcp.faults import Fault

__all__ = ["apply_cache_fault", "stale_table"]


def _rewrite(path: pathlib.Path, table: pa.Table, fmt: str = "file") -> None:
    sink = pa.BufferOutputStream()
    writer = pa.ipc.new_file(sink, table.schema) if fmt == "file" else pa.ipc.new_stream(sink, table.schema)
    with writer:
        writer.write_table(table)
    path.write_bytes(sink.getvalue().to_pybytes())


def _engine_table(path: pathlib.Path, fallback: pa.Table) -> pa.Table:
    try:
        return read_arrow_any(path)[0]
    except (pa.ArrowException, OSError):
        return fallback


def apply_cache_fault(
    engine: Engine,
    item: Fault,
    symbol: str,
    market: str,
    interval: str,
    day: dt.date,
    truth_day: pa.Table,
    sandbox: CacheSandbox,
) -> bool:
    """Leave the engine's cache file for ``day`` in the state ``item`` names (its effect in the fault table).

    Returns ``False`` when the state is the engine's own format (a file the engine itself writes is not a fault
    for it: e.g. nanosecond times for ckvd), so the file stays the engine's own, valid one."""
    effect = item.kind.effect.kind
    if effect == "read_only":
        sandbox.make_read_only()
        return True
    full = truth_to_cache_table(truth_day)
    if effect in _WRITTEN:
        engine.write_cache(symbol, market, interval, day, _WRITTEN[effect](item, full))
        return True
    path = engine.cache_file(symbol, market, interval, day)
    engine.write_cache(symbol, market, interval, day, full)  # the engine's own, valid file first
    return _SPOILED[effect](item, path, full, random.Random(f"{symbol}/{interval}/{day}")) is not False


# --- effects written through the engine (one function per effect kind of the fault table) -------------
def _keep_first(item: Fault, full: pa.Table) -> pa.Table:
    keep = max(1, int(full.num_rows * float(item.param("keep"))))
    return full.slice(0, min(keep, full.num_rows - 1))


def _alter_values(item: Fault, full: pa.Table) -> pa.Table:
    return stale_table(full)


def stale_table(full: pa.Table) -> pa.Table:
    """A day's cache table with its prices moved 3 % (rounded to cents): what ``cache.stale_day`` leaves."""
    stale = full
    for name in ("open", "high", "low", "close"):
        index = stale.schema.get_field_index(name)
        stale = stale.set_column(index, name, pc.round(pc.multiply(stale[name], 0.97), 2))
    return stale


_WRITTEN: dict[str, Callable[[Fault, pa.Table], pa.Table]] = {"keep_first": _keep_first, "alter_values": _alter_values}


# --- effects on the engine's own file --------------------------------------------------------------
def _zero_byte(item: Fault, path: pathlib.Path, full: pa.Table, rng: random.Random) -> None:
    path.write_bytes(b"")


def _truncate(item: Fault, path: pathlib.Path, full: pa.Table, rng: random.Random) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * float(item.param("keep")))])


def _random_bytes(item: Fault, path: pathlib.Path, full: pa.Table, rng: random.Random) -> None:
    size = len(path.read_bytes())
    path.write_bytes(bytes(rng.getrandbits(8) for _ in range(max(64, size))))


def _stream(item: Fault, path: pathlib.Path, full: pa.Table, rng: random.Random) -> bool:
    try:
        _table, fmt = read_arrow_any(path)
    except (pa.ArrowException, OSError):
        fmt = "file"
    if fmt == "stream":
        return False  # the engine writes streams itself: this is its own format
    _rewrite(path, _engine_table(path, full), "stream")
    return True


def _drop_column(item: Fault, path: pathlib.Path, full: pa.Table, rng: random.Random) -> None:
    table = _engine_table(path, full)
    column = str(item.param("column"))
    if column in table.column_names:
        table = table.remove_column(table.schema.get_field_index(column))
    _rewrite(path, table)


def _strings(item: Fault, path: pathlib.Path, full: pa.Table, rng: random.Random) -> None:
    table = _engine_table(path, full)
    for name in ("open", "high", "low", "close"):
        if name in table.column_names:
            index = table.schema.get_field_index(name)
            table = table.set_column(index, name, table[name].cast(pa.string()))
    _rewrite(path, table)


def _ns_times(item: Fault, path: pathlib.Path, full: pa.Table, rng: random.Random) -> bool:
    table = _engine_table(path, full)
    kind = table.schema.field("open_time").type
    if pa.types.is_timestamp(kind) and kind.unit == "ns":
        return False  # the engine keeps nanoseconds itself (ckvd does): this is its own format
    index = table.schema.get_field_index("open_time")
    ms = open_time_ms(table["open_time"])
    table = table.set_column(index, "open_time", pc.multiply(ms, 1_000_000).cast(pa.timestamp("ns", tz="UTC")))
    _rewrite(path, table)
    return True


def _unreadable(item: Fault, path: pathlib.Path, full: pa.Table, rng: random.Random) -> None:
    path.chmod(0)
    if os.access(path, os.R_OK):  # running as root: permission bits do not bind; a directory does
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
        path.unlink()
        path.mkdir()


_SPOILED: dict[str, Callable[[Fault, pathlib.Path, pa.Table, random.Random], bool | None]] = {
    "zero_byte": _zero_byte,
    "truncate": _truncate,
    "random_bytes": _random_bytes,
    "stream": _stream,
    "drop_column": _drop_column,
    "strings": _strings,
    "ns_times": _ns_times,
    "unreadable": _unreadable,
}
