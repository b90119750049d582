"""Engines for the crash-point scenarios: how a day file is written, and whether what is found is trusted.

``create_in_place``: a planted defect, as ckvd 4.6.1 does it: the final path is opened with ``O_TRUNC`` and
written in place, and a day file that is there is trusted: read it, and raise if it cannot be read.
``create_renaming``: the same trusting reader over temporary-file-and-rename writes, which never leave a
partial day file: correct. ``create_in_place_careful``: in place, but an unreadable file is a miss: correct.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import pathlib

import pyarrow as pa

from pytest_fcp.core.schemas import CACHE_SCHEMA
from pytest_fcp.engines.reference import ReferenceEngine, _is_full_day


def _arrow_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, CACHE_SCHEMA) as writer:
        writer.write_table(table.select(CACHE_SCHEMA.names).cast(CACHE_SCHEMA))
    return sink.getvalue().to_pybytes()


class InPlaceEngine(ReferenceEngine):
    """The reference engine writing each day file in place, straight to its final path."""

    def write_cache(self, symbol: str, market: str, interval: str, day: dt.date, table: pa.Table) -> None:
        """Open the final path truncating, write, close."""
        path = self.cache_file(symbol, market, interval, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as sink:
            sink.write(_arrow_bytes(table))


class TrustingInPlaceEngine(InPlaceEngine):
    """Planted defect: in-place writes, and a day file that is there is trusted to be readable (if it is not, the
    fetch raises); one that is readable but not the whole day is a miss."""

    def read_cache(self, symbol: str, market: str, interval: str, day: dt.date) -> pa.Table | None:
        """The day's file if there is one and it holds the whole day; raise if it cannot be read (as ckvd's
        polars scan does)."""
        path = self.cache_file(symbol, market, interval, day)
        if not path.exists():
            return None
        table = pa.ipc.open_file(pa.BufferReader(path.read_bytes())).read_all()  # raises on a torn file
        table = pa.Table.from_arrays(table.columns, schema=CACHE_SCHEMA)
        return table if _is_full_day(table, day, interval) else None


class TrustingRenamingEngine(TrustingInPlaceEngine):
    """The same trusting reader over temporary file + rename writes: a crash never leaves a torn day file."""

    def write_cache(self, symbol: str, market: str, interval: str, day: dt.date, table: pa.Table) -> None:
        """Write a temporary file beside the day file, then rename it over the day file."""
        path = self.cache_file(symbol, market, interval, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.partial")
        try:
            tmp.write_bytes(_arrow_bytes(table))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise


def create_in_place(cache_dir: pathlib.Path) -> TrustingInPlaceEngine:
    """The planted defect on ``cache_dir``."""
    return TrustingInPlaceEngine(cache_dir)


def create_renaming(cache_dir: pathlib.Path) -> TrustingRenamingEngine:
    """The trusting reader with atomic writes on ``cache_dir``."""
    return TrustingRenamingEngine(cache_dir)


def create_in_place_careful(cache_dir: pathlib.Path) -> InPlaceEngine:
    """In-place writes, unreadable files read as misses, on ``cache_dir``."""
    return InPlaceEngine(cache_dir)


class LenientReaderEngine(ReferenceEngine):
    """Planted defect: any readable day file with the cache schema is served as it is (no check of its bars)."""

    def read_cache(self, symbol: str, market: str, interval: str, day: dt.date) -> pa.Table | None:
        """The day's file as it is, if it can be read."""
        path = self.cache_file(symbol, market, interval, day)
        try:
            table = pa.ipc.open_file(pa.BufferReader(path.read_bytes())).read_all()
        except (OSError, pa.ArrowException):
            return None
        return pa.Table.from_arrays(table.columns, schema=CACHE_SCHEMA) if table.num_rows else None


class RereadingEngine(ReferenceEngine):
    """Planted defect: it reads its cache hits again after the other sources, and trusts that second read."""

    def __init__(self, cache_dir: pathlib.Path) -> None:
        super().__init__(cache_dir)
        self.hits: list[pathlib.Path] = []

    def read_cache(self, symbol: str, market: str, interval: str, day: dt.date) -> pa.Table | None:
        """The reference read; a hit is remembered."""
        table = super().read_cache(symbol, market, interval, day)
        if table is not None:
            self.hits.append(self.cache_file(symbol, market, interval, day))
        return table

    def fetch(self, symbol: str, market: str, interval: str, start: dt.datetime, end: dt.datetime) -> pa.Table:
        """The reference fetch, then every hit read again (raising if it cannot be read now)."""
        self.hits.clear()
        table = super().fetch(symbol, market, interval, start, end)
        for path in self.hits:
            pa.ipc.open_file(pa.BufferReader(path.read_bytes())).read_all()
        return table


def create_lenient(cache_dir: pathlib.Path) -> LenientReaderEngine:
    """Serves any readable day file as it is, on ``cache_dir``."""
    return LenientReaderEngine(cache_dir)


def create_rereading(cache_dir: pathlib.Path) -> RereadingEngine:
    """Reads its cache hits twice, on ``cache_dir``."""
    return RereadingEngine(cache_dir)
