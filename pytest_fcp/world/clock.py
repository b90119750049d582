"""The virtual clock: the world's "now", frozen, moved only by sleeps and simulated delays.

Built on time-machine (``datetime.now``, ``time.time`` ... report virtual time). ``time.sleep`` and
``asyncio.sleep`` are replaced while the clock runs: a sleep advances virtual time at once and is recorded, so
an engine's backoff costs no real time (an ``asyncio.sleep`` still yields to the event loop once).
``time.perf_counter`` stays real (the trace's real durations use it; time-machine before 3.0 moves ``time.monotonic``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import time_machine

__all__ = ["VirtualClock", "local_zone"]

_real_sleep = time.sleep
_real_async_sleep = asyncio.sleep
# Modules that imported ``sleep`` by name; sys.modules is scanned only past the point already seen.
_sleepers: set[str] = set()
_scanned: set[str] = set()
# (how many modules, the newest) at the last scan: imports add at the end of sys.modules, so an unchanged
# marker means there is nothing new to scan (scanning costs ~0.1 ms per world)
_scan_marker: list[tuple[int, str | None]] = [(0, None)]


class VirtualClock:
    """The world's frozen UTC clock, advanced only by sleeps and simulated delays."""

    def __init__(self, now: dt.datetime, on_sleep: Callable[[float], None] | None = None) -> None:
        if now.tzinfo is None:
            raise ValueError(f"the world's now must be timezone-aware (UTC), got {now!r}")
        self.start_time = now.astimezone(dt.UTC)
        self._on_sleep = on_sleep
        self._traveller: Any = None
        self._patched: list[tuple[object, str, Any]] = []
        self._shifting = threading.Lock()
        self.slept: list[float] = []

    @property
    def active(self) -> bool:
        """Whether the clock is running (between :meth:`start` and :meth:`stop`)."""
        return self._traveller is not None

    def now(self) -> dt.datetime:
        """The current (virtual while active) time in UTC."""
        return dt.datetime.now(dt.UTC)

    def advance(self, seconds: float) -> None:
        """Move virtual time forward (a simulated delay, not a sleep)."""
        if seconds > 0 and self._traveller is not None:
            with self._shifting:  # sleeps in several engine threads: no shift is lost
                self._traveller.shift(dt.timedelta(seconds=seconds))

    def sleep(self, seconds: float) -> None:
        """Record a sleep and advance virtual time by it instead of waiting."""
        seconds = float(seconds)
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        self.slept.append(seconds)
        if self._on_sleep is not None:
            self._on_sleep(seconds)
        self.advance(seconds)

    def start(self) -> None:
        """Freeze time at the start time and patch ``time.sleep`` and its by-name imports."""
        self._travel = time_machine.travel(self.start_time, tick=False)
        self._traveller = self._travel.start()
        # ``time.sleep`` itself, plus any module that imported it by name (``from time import sleep``).
        self._patch(time, "sleep")
        self._patch(asyncio, "sleep", self.async_sleep)
        self._patch(asyncio.tasks, "sleep", self.async_sleep)
        marker = (len(sys.modules), next(reversed(sys.modules), None))
        if marker != _scan_marker[0]:
            for name in set(sys.modules) - _scanned:
                _scanned.add(name)
                module = sys.modules.get(name)
                try:
                    if getattr(module, "sleep", None) is _real_sleep and module is not time:
                        _sleepers.add(name)
                except Exception:  # pragma: no cover - exotic lazy modules
                    continue
            _scan_marker[0] = marker
        for name in _sleepers:
            module = sys.modules.get(name)
            if module is not None and getattr(module, "sleep", None) is _real_sleep:
                self._patch(module, "sleep")

    async def async_sleep(self, delay: float, result: Any = None) -> Any:
        """``asyncio.sleep``: a positive delay is a recorded sleep in virtual time; the loop runs once."""
        if delay > 0:
            self.sleep(delay)
        return await _real_async_sleep(0, result)

    def _patch(self, owner: object, name: str, new: Any = None) -> None:
        self._patched.append((owner, name, getattr(owner, name)))
        setattr(owner, name, new or self.sleep)

    def stop(self) -> None:
        """Restore the real ``sleep`` everywhere and stop time travel."""
        for owner, name, real in reversed(self._patched):
            setattr(owner, name, real)
        self._patched.clear()
        if self._traveller is not None:
            self._travel.stop()
            self._traveller = None


@contextlib.contextmanager
def local_zone(name: str) -> Iterator[None]:
    """Run in local time zone ``name`` (``TZ`` + ``time.tzset()``); enter after the clock starts, which sets
    ``TZ=UTC``, and leave before it stops, which restores the original ``TZ``."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()
