"""Two releases of one engine, for "upgrade the engine, keep the cache": the reference engine's layout, with
the day files of release 1 carrying an extra ``__index_level_0__`` column (what ckvd up to 4.6.0 writes: a
pandas index saved with the frame).

- ``create_v1``: writes its day files with the extra column, and reads them (and files without it) back;
- ``create_v2``: the defective upgrade: reads its cache expecting the exact schema and raises ``SchemaError`` on a
  file of release 1 (as ckvd 4.6.1's one-call scan of mixed files does);
- ``create_v2_fixed``: the correct upgrade: a file it cannot read as its own is a miss, fetched anew and
  rewritten in its own layout.
"""

from __future__ import annotations

import datetime as dt
import pathlib

import pyarrow as pa

from pytest_fcp.core.schemas import CACHE_SCHEMA
from pytest_fcp.engines.reference import ReferenceEngine
from tests.engines.fcp_parts import full_day

INDEX = "__index_level_0__"


class SchemaError(Exception):
    """A cache file whose columns are not the ones this release reads."""


def _read(path: pathlib.Path) -> pa.Table | None:
    """The Arrow file at ``path``, or ``None`` when there is none or it cannot be read."""
    try:
        return pa.ipc.open_file(pa.BufferReader(path.read_bytes())).read_all()
    except (OSError, pa.ArrowException):
        return None


class ReleaseOne(ReferenceEngine):
    """Release 1: day files carry the frame's index as an extra column."""

    def write_cache(self, symbol: str, market: str, interval: str, day: dt.date, table: pa.Table) -> None:
        """The reference file plus ``__index_level_0__`` (0, 1, 2 ...)."""
        path = self.cache_file(symbol, market, interval, day)
        table = table.select(CACHE_SCHEMA.names).cast(CACHE_SCHEMA)
        table = table.append_column(INDEX, pa.array(range(table.num_rows), pa.int64()))
        path.parent.mkdir(parents=True, exist_ok=True)
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)

    def read_cache(self, symbol: str, market: str, interval: str, day: dt.date) -> pa.Table | None:
        """Its own files (the index dropped) and the reference's, when they hold the whole day."""
        table = _read(self.cache_file(symbol, market, interval, day))
        if table is None or not set(CACHE_SCHEMA.names) <= set(table.schema.names):
            return None
        table = pa.Table.from_arrays([table[f.name].cast(f.type) for f in CACHE_SCHEMA], schema=CACHE_SCHEMA)
        return table if full_day(table, day, interval) else None


class ReleaseTwo(ReferenceEngine):
    """Release 2, defective: any cache file whose schema is not exactly its own raises ``SchemaError``."""

    def read_cache(self, symbol: str, market: str, interval: str, day: dt.date) -> pa.Table | None:
        """The reference's read, after refusing a foreign schema with an exception."""
        table = _read(self.cache_file(symbol, market, interval, day))
        if table is not None and table.schema.names != CACHE_SCHEMA.names:
            extra = sorted(set(table.schema.names) - set(CACHE_SCHEMA.names))
            raise SchemaError(f"cache file for {day}: unexpected column(s) {', '.join(extra)}")
        return super().read_cache(symbol, market, interval, day)


class ReleaseTwoFixed(ReferenceEngine):
    """Release 2, correct: a file it cannot read as its own is a miss (the reference engine's rule)."""


def create_v1(cache_dir: pathlib.Path) -> ReleaseOne:
    """Release 1."""
    return ReleaseOne(cache_dir)


def create_v2(cache_dir: pathlib.Path) -> ReleaseTwo:
    """Release 2, failing on release 1's cache."""
    return ReleaseTwo(cache_dir)


def create_v2_fixed(cache_dir: pathlib.Path) -> ReleaseTwoFixed:
    """Release 2, treating release 1's files as misses."""
    return ReleaseTwoFixed(cache_dir)
