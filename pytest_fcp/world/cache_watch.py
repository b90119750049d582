"""The cache watch: each day file's state and every cache operation, seen from outside the engine.

It judges a day's file against the truth (once per content; a file the harness itself just read is not
reported as the engine's read), reports the engine's reads, writes, replaces and deletes to the recorder as
they happen, and remembers which files a cache fault left, so that a file still as a format fault left it
is judged by the fault, not by its content; and which files the world carried in from a saved cache, so that a
day file still as it came in is marked ``carried``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import pathlib
import re
import stat
import threading
from collections.abc import Callable

import pyarrow as pa

from pytest_fcp.core.cache_states import DayFileState
from pytest_fcp.faults import FAULTS
from pytest_fcp.world.cache import CacheObserver, CacheSandbox, inspect_day_file
from pytest_fcp.world.recorder import Recorder

__all__ = ["CacheWatch", "Series", "stable_path"]

#: (symbol, market, interval)
Series = tuple[str, str, str]

_ABSENT = (-1, -1, -1, -1)
_MISSING = DayFileState("missing")


_TEMP_SUFFIX = re.compile(r"(?<=\.)[a-z0-9_]{8}(?=\.tmp$)|(?<=^tmp)[a-z0-9_]{8}(?=(\.[^/]*)?$)")


def stable_path(rel: str) -> str:
    """``rel`` with a temporary file's random part replaced by ``*`` (``.2024-01-03.arrow.wqud7bfm.tmp`` ->
    ``.2024-01-03.arrow.*.tmp``, ``tmpab12cd34`` -> ``tmp*``), so that traces of one seed do not differ."""
    head, _, name = rel.rpartition("/")
    name = _TEMP_SUFFIX.sub("*", name)
    return f"{head}/{name}" if head else name


def _signature(path: pathlib.Path) -> tuple[int, int, int, int]:
    """``(size, mtime_ns, inode, mode)`` of a file: all -1 when it does not exist, -2 when it cannot be seen."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return _ABSENT
    except OSError:
        return (-2, -2, -2, -2)
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode)


class CacheWatch:
    """Ports: the ``sandbox``, the ``recorder``, ``truth_day(day, series)`` and ``path_of(series, day)``
    (where the engine keeps a day)."""

    def __init__(
        self,
        sandbox: CacheSandbox,
        recorder: Recorder,
        truth_day: Callable[[dt.date, Series], pa.Table],
        path_of: Callable[[Series, dt.date], pathlib.Path],
    ) -> None:
        self.sandbox, self.recorder, self.truth_day, self.path_of = sandbox, recorder, truth_day, path_of
        self.observer: CacheObserver | None = None
        self._day_paths: dict[str, tuple[Series, dt.date]] = {}
        self._faulted: dict[str, tuple[tuple[int, int, int, int], str]] = {}
        self._inspected: dict[str, tuple[tuple[int, int, int, int], DayFileState]] = {}
        self._cut_on_read: dict[str, tuple[str, float]] = {}  # day file -> (fault id, keep), cut at its first read
        self._carried: dict[str, tuple[int, int, int, int]] = {}  # files carried in from a saved cache, as they came
        #: Day files the world stands an empty directory in for while writes fail: missing to a reader.
        self.blocked: set[str] = set()
        self._lock = threading.RLock()  # engine threads poll too (before each request and sleep)

    def open(self) -> None:
        """Start watching the sandbox."""
        self.observer = CacheObserver(self.sandbox)

    def close(self) -> None:
        """Stop watching."""
        if self.observer is not None:
            self.observer.close()

    def remember_fault(self, fault_id: str, path: pathlib.Path, keep: float = 0.5) -> None:
        """A cache fault just left ``path`` as it is now (one cut once the engine has opened it: to ``keep``)."""
        rel = self.sandbox.relative(path)
        self._faulted[rel] = (_signature(path), fault_id)
        if FAULTS[fault_id].cut_while_read:
            self._cut_on_read[rel] = (fault_id, keep)

    def _cut(self, rel: str) -> None:
        """Cut a day file the engine has just opened (``cache.truncated_on_read``); ``os.truncate`` opens
        nothing, so the cut makes no cache event of its own."""
        fault_id, keep = self._cut_on_read.pop(rel)
        path = self.sandbox.root / rel
        size = _signature(path)[0]
        if size > 0:
            os.truncate(path, int(size * keep))
            message = (
                f"{fault_id}: {stable_path(rel)} cut to {int(size * keep)} of {size} bytes after the engine opened it"
            )
            self.recorder.event("log", level="WARNING", message=message, module="pytest_fcp.world")

    def carry(self, rels: list[str]) -> None:
        """The files at ``rels`` (relative to the sandbox) were just carried in from a saved cache."""
        for rel in rels:
            self._carried[rel] = _signature(self.sandbox.root / rel)

    def state(self, series: Series, day: dt.date) -> DayFileState:
        """The state of the engine's file for ``day`` of ``series``, judged against the truth."""
        path = self.path_of(series, day)
        rel = self.sandbox.relative(path)
        self._day_paths[rel] = (series, day)
        with self._lock:  # no other thread's poll between the harness's own read and its dismissal
            if self.observer is not None:
                self.poll()  # what the engine did before the harness looks
            signature = _signature(path)
            known = self._inspected.get(rel)
            if known is not None and known[0] == signature and signature[0] >= 0:
                state = known[1]  # the file has not changed since the harness last read it
            elif signature == _ABSENT or (rel in self.blocked and stat.S_ISDIR(signature[3])):
                state = _MISSING
            else:
                state = inspect_day_file(path, self.truth_day(day, series))
                if self.observer is not None and state.status != "missing":
                    self.observer.ignore_own_reads({rel})
                self._inspected[rel] = (signature, state)
        faulted = self._faulted.get(rel)
        if faulted is not None and FAULTS[faulted[1]].format_fault and faulted[0] == _signature(path):
            return DayFileState("corrupt", state.rows, state.size, f"as {faulted[1]} left it", state.fmt)
        carried = self._carried.get(rel)
        if carried is not None and state.status != "missing" and carried == _signature(path):
            return dataclasses.replace(state, carried=True)
        return state

    def poll(self, quiet: bool = False) -> None:
        """Record the cache operations since the last poll (``quiet``: drop them, they are the harness's)."""
        if self.observer is None:
            return
        with self._lock:
            inspected: set[str] = set()
            for op, rel in self.observer.poll():
                if quiet:
                    continue
                if op == "read" and rel in self._cut_on_read:
                    self._cut(rel)
                path = self.sandbox.root / rel
                signature = _signature(path)
                size = signature[0] if signature[0] >= 0 and stat.S_ISREG(signature[3]) else None
                valid = None
                key = self._day_paths.get(rel)
                if key is not None and op != "delete" and size is not None:
                    series, day = key
                    state = inspect_day_file(path, self.truth_day(day, series))
                    self._inspected[rel] = (signature, state)
                    valid = state.valid
                    inspected.add(rel)
                self.recorder.event("cache", op=op, path=stable_path(rel), size=size, valid=valid)
            self.observer.ignore_own_reads(inspected)
