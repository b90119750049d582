"""The reference engine with a cache written by pyarrow's C++ code alone, as polars-based engines (ckvd) do.

No Python file call touches the cache when it writes (``pyarrow.fs`` creates the directories, ``pa.OSFile``
opens the file), so a Python audit hook never sees the write. ``create_loud`` is a planted defect: an
engine whose fetch fails when its cache cannot be written.
"""

from __future__ import annotations

import datetime as dt
import pathlib

import pyarrow as pa
import pyarrow.fs as pafs

from pytest_fcp.core.schemas import CACHE_SCHEMA
from pytest_fcp.engines.reference import ReferenceEngine


class NativeEngine(ReferenceEngine):
    """The reference engine, writing its day files natively (straight to the final path)."""

    def write_cache(self, symbol: str, market: str, interval: str, day: dt.date, table: pa.Table) -> None:
        """Write the day's file with pyarrow's own file system and file calls."""
        path = self.cache_file(symbol, market, interval, day)
        table = table.select(CACHE_SCHEMA.names).cast(CACHE_SCHEMA)
        pafs.LocalFileSystem().create_dir(str(path.parent), recursive=True)
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, CACHE_SCHEMA) as writer:
            writer.write_table(table)


class LoudNativeEngine(NativeEngine):
    """A planted defect: a cache write that fails makes the whole fetch fail."""

    def __init__(self, cache_dir: pathlib.Path) -> None:
        super().__init__(cache_dir)
        self.write_errors: list[OSError] = []

    def write_cache(self, symbol: str, market: str, interval: str, day: dt.date, table: pa.Table) -> None:
        """Write natively; remember a failure."""
        try:
            super().write_cache(symbol, market, interval, day, table)
        except OSError as exc:
            self.write_errors.append(exc)
            raise

    def fetch(self, symbol: str, market: str, interval: str, start: dt.datetime, end: dt.datetime) -> pa.Table:
        """The reference fetch, failing afterwards if any cache write failed."""
        table = super().fetch(symbol, market, interval, start, end)
        if self.write_errors:
            raise OSError(f"cache write failed: {self.write_errors[0]}")
        return table


def create(cache_dir: pathlib.Path) -> NativeEngine:
    """A native-writing engine on ``cache_dir``."""
    return NativeEngine(cache_dir)


def create_loud(cache_dir: pathlib.Path) -> LoudNativeEngine:
    """The planted defect on ``cache_dir``."""
    return LoudNativeEngine(cache_dir)
