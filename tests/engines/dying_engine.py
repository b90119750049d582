"""Planted deaths: the reference engine, dying in a chosen way at a chosen point of a fetch.

Factories are named ``die_<way>_at_<point>`` (``--fcp-engine tests.engines.dying_engine:die_sigbus_at_cache_read``):

- ways: ``panic`` (a ``BaseException`` subclass, as pyo3's ``PanicException``), ``sigbus``, ``sigsegv``,
  ``sigabrt``, ``sigkill`` (``os.kill(os.getpid(), sig)``), ``exit`` (``os._exit(3)``), ``deadlock`` (a lock
  taken twice), ``retry`` (an endless retry loop on the virtual clock: GET, sleep 1 s, again), ``spin`` (a
  loop on the CPU that never returns);
- points: ``request`` (before the fetch's first HTTP request), ``cache_read`` (reading a day file that exists),
  ``cache_write`` (writing a day file). Only a fetch arms them: the world's own seeding writes pass.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import pathlib
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from pytest_fcp.engines.reference import ReferenceEngine

WAYS = ("panic", "sigbus", "sigsegv", "sigabrt", "sigkill", "exit", "deadlock", "retry", "spin")
POINTS = ("request", "cache_read", "cache_write")
_SIGNALS = {"sigbus": signal.SIGBUS, "sigsegv": signal.SIGSEGV, "sigabrt": signal.SIGABRT, "sigkill": signal.SIGKILL}


class PanicException(BaseException):
    """Stands in for pyo3's ``PanicException``: a ``BaseException``, which ``except Exception`` lets through."""


class DyingEngine(ReferenceEngine):
    """The reference engine that dies in ``way`` when a fetch reaches ``point``."""

    def __init__(self, cache_dir: pathlib.Path, way: str, point: str) -> None:
        super().__init__(cache_dir)
        self.way, self.point = way, point
        self._armed = False

    def _die(self, point: str, url: str = "") -> None:
        if not self._armed or point != self.point:
            return
        if self.way == "panic":
            raise PanicException(f"called `Result::unwrap()` on an `Err` value at {point}")
        if self.way in _SIGNALS:
            os.kill(os.getpid(), _SIGNALS[self.way])
        if self.way == "exit":
            os._exit(3)
        if self.way == "deadlock":
            lock = threading.Lock()
            lock.acquire()
            lock.acquire()
        while self.way == "spin":
            pass
        if self.way == "retry":
            self._armed = False
            while True:
                with contextlib.suppress(Exception):
                    self._client.get(url)
                time.sleep(1)  # the virtual clock: the world patches time.sleep, so this loop costs no real time

    def fetch(self, symbol: str, market: str, interval: str, start: dt.datetime, end: dt.datetime) -> pa.Table:
        """The reference fetch, with the death armed."""
        self._armed = True
        try:
            return super().fetch(symbol, market, interval, start, end)
        finally:
            self._armed = False

    def read_cache(self, symbol: str, market: str, interval: str, day: dt.date) -> pa.Table | None:
        """Dies reading a day file that exists."""
        if self.cache_file(symbol, market, interval, day).exists():
            self._die("cache_read")
        return super().read_cache(symbol, market, interval, day)

    def write_cache(self, symbol: str, market: str, interval: str, day: dt.date, table: pa.Table) -> None:
        """Dies writing a day file."""
        self._die("cache_write")
        super().write_cache(symbol, market, interval, day, table)

    def _vision_get(self, url: str) -> bytes:
        self._die("request", url)
        return super()._vision_get(url)

    def _rest_get(self, spec: Any, params: dict[str, str | int]) -> Any:
        self._die("request", spec.rest_url)
        return super()._rest_get(spec, params)


def _factory(way: str, point: str) -> Callable[[pathlib.Path], DyingEngine]:
    def create(cache_dir: pathlib.Path) -> DyingEngine:
        return DyingEngine(cache_dir, way, point)

    create.__name__ = f"die_{way}_at_{point}"
    return create


for _way in WAYS:
    for _point in POINTS:
        globals()[f"die_{_way}_at_{_point}"] = _factory(_way, _point)
