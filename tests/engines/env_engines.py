"""Engines whose behaviour depends on their environment: planted defects for the world's ownership of it.

- ``create_settings``: reads ``FCPTEST_DISABLE_CACHE`` (its declared prefix ``FCPTEST_``): set, the engine
  neither reads nor writes its cache; it also sets ``FCPTEST_SEEN`` while it runs.
- ``create_fixed_temp``: downloads nothing, but writes a marker to a fixed name in the temporary directory
  (``tempfile.gettempdir()``) on every fetch, as ckvd up to 4.6.0 does with its zips.
- ``create_outside``: also writes to a fixed absolute path outside any sandbox (``OUTSIDE``, set by the test).
"""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import tempfile
from typing import Any

import pyarrow as pa

from pytest_fcp.engines.reference import ReferenceEngine

ENV_PREFIXES = ("FCPTEST_",)
#: Where ``create_outside``'s engine writes (a test points it at a directory of its own).
OUTSIDE: list[pathlib.Path] = []


class SettingsEngine(ReferenceEngine):
    """The reference engine, with its cache switched off by ``FCPTEST_DISABLE_CACHE``."""

    def _cache_off(self) -> bool:
        return os.environ.get("FCPTEST_DISABLE_CACHE", "") not in ("", "0")

    def read_cache(self, symbol: str, market: str, interval: str, day: dt.date) -> pa.Table | None:
        """No cache when switched off."""
        return None if self._cache_off() else super().read_cache(symbol, market, interval, day)

    def fetch(self, symbol: str, market: str, interval: str, start: dt.datetime, end: dt.datetime) -> pa.Table:
        """The reference fetch; leaves ``FCPTEST_SEEN`` set."""
        os.environ["FCPTEST_SEEN"] = "1"
        return super().fetch(symbol, market, interval, start, end)


class FixedTempEngine(ReferenceEngine):
    """The reference engine, leaving ``fcp-fixed-name.zip`` in the temporary directory on every fetch."""

    def fetch(self, symbol: str, market: str, interval: str, start: dt.datetime, end: dt.datetime) -> pa.Table:
        """Write the fixed-name file, then the reference fetch."""
        pathlib.Path(tempfile.gettempdir(), "fcp-fixed-name.zip").write_bytes(b"PK")
        return super().fetch(symbol, market, interval, start, end)


class OutsideEngine(ReferenceEngine):
    """The reference engine, also writing to ``OUTSIDE[0]`` (outside its sandbox) on every fetch."""

    def fetch(self, symbol: str, market: str, interval: str, start: dt.datetime, end: dt.datetime) -> pa.Table:
        """Write outside, then the reference fetch."""
        OUTSIDE[0].write_text("urls\n")
        return super().fetch(symbol, market, interval, start, end)


def create_settings(cache_dir: pathlib.Path) -> SettingsEngine:
    """An engine reading ``FCPTEST_*`` settings."""
    return SettingsEngine(cache_dir)


def create_fixed_temp(cache_dir: pathlib.Path) -> FixedTempEngine:
    """An engine writing a fixed name in the temporary directory."""
    return FixedTempEngine(cache_dir)


def create_outside(cache_dir: pathlib.Path) -> OutsideEngine:
    """An engine writing outside its sandbox."""
    return OutsideEngine(cache_dir)


class FixedNameDownloader(ReferenceEngine):
    """A planted defect (ckvd up to 4.6.0): each Vision zip is downloaded to a fixed name in the temporary
    directory, its ``.CHECKSUM`` asked for, then the file read back and removed. Alone it works; two instances
    fetching the same day at once meet in that file, and one of them finds it gone."""

    def _vision_day(self, spec: Any, symbol: str, interval: str, day: dt.date) -> pa.Table:
        from pytest_fcp.core.markets import VISION_URL, checksum_key, vision_key
        from pytest_fcp.engines.reference import _parse_vision_zip, _verify_checksum, vision_file_name

        url = f"{VISION_URL}/{vision_key(spec.name, symbol, interval, day)}"
        target = pathlib.Path(tempfile.gettempdir(), f"{symbol}-{interval}-{day}.zip")
        target.write_bytes(self._vision_get(url))
        checksum = self._vision_get(checksum_key(url))
        payload = target.read_bytes()
        target.unlink()
        _verify_checksum(payload, checksum, vision_file_name(symbol, interval, day))
        return _parse_vision_zip(payload, spec, symbol, interval, day)


def create_fixed_name(cache_dir: pathlib.Path) -> FixedNameDownloader:
    """The planted fixed-name downloader."""
    return FixedNameDownloader(cache_dir)
