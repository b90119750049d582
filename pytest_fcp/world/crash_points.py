"""Crash points of the engine's cache writes, derived from its observed write sequence (as ALICE and
CrashMonkey do), and replayed: no process is killed.

:class:`WriteLog` watches the cache sandbox with its own inotify instance while one fetch runs (create, open,
modify, close, rename, delete) and snapshots every file before and after. :func:`crash_points` turns that into
the states a crash could have left, one write of a day file at a time, in the order the engine wrote them:

* a day file written **in place** (the final path opened, written, closed): the file absent (when the fetch
  created it), empty after the truncating open (the old file truncated, when it overwrote one), and each
  prefix the writer had written: the final file cut at its Arrow IPC message boundaries (the 8-byte magic, the
  schema message, each record batch), found with :mod:`pyarrow.ipc`; a file that is not Arrow IPC is cut at
  half its size, and the description says so;
* a day file written to a **temporary file and renamed**: the old file (or none) intact beside the temporary
  file left over (empty, each prefix, complete), then the state after the rename.

Crash point *k*: every earlier day-file write complete, the file being written in its crash state, every later
write not done (those files, and every file that is not a day file, as they were before the fetch).
:func:`put_cache_in` makes the sandbox hold exactly that. Same fetch, same points: the temporary file keeps the
name the engine gave it, and descriptions name it with its random part masked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import pathlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_fcp.world.arrow_layout import ipc_boundaries
from pytest_fcp.world.cache_faults import writes_paused
from pytest_fcp.world.cache_watch import stable_path

__all__ = ["CrashPoint", "FileWrite", "WriteLog", "crash_points", "put_cache_in", "snapshot"]

_FLAGS = ("CREATE", "OPEN", "MODIFY", "CLOSE_WRITE", "MOVED_FROM", "MOVED_TO", "DELETE", "ISDIR")


def snapshot(root: pathlib.Path) -> dict[str, bytes]:
    """Every regular file under ``root``: relative path (``/`` separators) -> its bytes."""
    out: dict[str, bytes] = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            full = pathlib.Path(dirpath, name)
            with contextlib.suppress(OSError):
                if full.is_file():
                    out[full.relative_to(root).as_posix()] = full.read_bytes()
    return out


@dataclass(frozen=True)
class FileWrite:
    """One day file the fetch wrote: its path, its day, how (``in_place`` or ``rename``), its temporary file
    (``rename``; ``None`` when the temporary file was outside the watched directories) and its contents before
    (``None``: absent) and after."""

    rel: str
    day: dt.date
    how: str
    temp: str | None
    old: bytes | None
    new: bytes


@dataclass(frozen=True)
class CrashPoint:
    """One crash state: the write it interrupts (the ``index``-th of ``writes``) and what it left: the day
    file's bytes (``None``: absent) and, for a rename writer, the temporary file's (``None``: none)."""

    number: int
    total: int
    write: FileWrite
    index: int
    label: str
    final: bytes | None
    temp: bytes | None

    def describe(self) -> str:
        """``crash point 3 of 7 (2024-01-03 day file: prefix 856 of 5424 bytes, written in place)``."""
        how = "written in place" if self.write.how == "in_place" else "written to a temporary file and renamed"
        return f"crash point {self.number} of {self.total} ({self.write.day} day file: {self.label}, {how})"


class WriteLog:
    """The cache operations of one fetch, seen by inotify, and the sandbox's files before and after it.

    ``day_paths``: each day file the fetch may write (its path) -> its day. Their directories are created
    first, so that inotify sees the first file written in them."""

    def __init__(self, root: pathlib.Path, day_paths: Mapping[pathlib.Path, dt.date]) -> None:
        self.root = root
        self.days = {p.relative_to(root).as_posix(): d for p, d in day_paths.items()}
        with writes_paused():
            for path in day_paths:
                with contextlib.suppress(OSError):  # a read-only cache: the engine cannot write there either
                    path.parent.mkdir(parents=True, exist_ok=True)
        self.before = snapshot(root)
        self.after: dict[str, bytes] = {}
        self.events: list[tuple[str, str, int]] = []  # (flag, relative path, rename cookie)
        self._inotify: Any = None
        self._watches: dict[int, str] = {}
        self.available = False  # whether the operations could be watched (inotify, Linux)
        try:
            from inotify_simple import INotify, flags
        except ImportError:
            return
        self._m = {name: int(getattr(flags, name)) for name in _FLAGS}
        self._inotify = INotify(nonblocking=True)
        self.available = True
        for dirpath, _dirs, _names in os.walk(root):
            self._watch(dirpath)

    def _watch(self, directory: str) -> None:
        mask = 0
        for name in _FLAGS[:-1]:
            mask |= self._m[name]
        rel = pathlib.Path(directory).relative_to(self.root).as_posix()
        with contextlib.suppress(OSError):
            self._watches[self._inotify.add_watch(directory, mask)] = "" if rel == "." else rel + "/"

    def _drain(self) -> None:
        for event in self._inotify.read(timeout=0):
            directory = self._watches.get(event.wd)
            if directory is None or not event.name:
                continue
            rel = directory + event.name
            if event.mask & self._m["ISDIR"]:
                if event.mask & (self._m["CREATE"] | self._m["MOVED_TO"]):
                    self._watch(str(self.root / rel))
                continue
            for name in _FLAGS[:-1]:
                if event.mask & self._m[name]:
                    self.events.append((name, rel, event.cookie))

    def poll(self) -> None:
        """Read the operations so far (called as the fetch goes, so no new directory is missed for long)."""
        if self._inotify is not None:
            with contextlib.suppress(OSError):
                self._drain()

    def close(self) -> None:
        """Stop watching; snapshot the files after the fetch."""
        self.poll()
        if self._inotify is not None:
            with contextlib.suppress(OSError):
                self._inotify.close()
            self._inotify = None
        self.after = snapshot(self.root)

    def writes(self) -> list[FileWrite]:
        """The day files the fetch wrote, in the order it began writing them."""
        start: dict[str, int] = {}
        how: dict[str, tuple[str, str | None]] = {}
        moved_from: dict[int, str] = {}
        began: dict[str, int] = {}  # any file: its first create or modify
        for position, (flag, rel, cookie) in enumerate(self.events):
            if flag in ("CREATE", "MODIFY"):
                began.setdefault(rel, position)
            if flag == "MOVED_FROM":
                moved_from[cookie] = rel
            if rel not in self.days:
                continue
            if flag == "MOVED_TO":
                temp = moved_from.get(cookie)
                how[rel] = ("rename", temp)
                start.setdefault(rel, began.get(temp, position) if temp else position)
            elif flag in ("MODIFY", "CLOSE_WRITE", "CREATE") and how.get(rel, ("", None))[0] != "rename":
                how[rel] = ("in_place", None)
                start.setdefault(rel, position)
        out = []
        for rel in sorted(start, key=lambda r: (start[r], r)):
            new = self.after.get(rel)
            if new is None or new == self.before.get(rel):
                continue  # written and gone again, or rewritten as it was: no state between
            kind, temp = how[rel]
            out.append(FileWrite(rel, self.days[rel], kind, temp, self.before.get(rel), new))
        return out


def _states(write: FileWrite) -> list[tuple[str, bytes | None, bytes | None]]:
    """``(label, day file bytes, temporary file bytes)`` of each state a crash during ``write`` leaves."""
    new, old = write.new, write.old
    cuts, arrow = ipc_boundaries(new)
    how_cut = "" if arrow else " (not an Arrow IPC file: cut at half)"
    out: list[tuple[str, bytes | None, bytes | None]] = []
    if write.how == "in_place":
        if old is None:
            out.append(("absent (not created yet)", None, None))
            out.append(("empty (after the truncating open)", b"", None))
        else:
            out.append((f"the old file ({len(old)} bytes) truncated to 0 bytes", b"", None))
        out.extend((f"prefix {n} of {len(new)} bytes{how_cut}", new[:n], None) for n in cuts)
        return out
    beside = "no day file yet" if old is None else f"the old day file ({len(old)} bytes) intact"
    if write.temp is None:
        out.append((f"{beside}, its temporary file outside the watched directories", old, None))
    else:
        name = stable_path(write.temp).rpartition("/")[2]
        out.append((f"{beside}, temporary file {name} left empty", old, b""))
        out.extend(
            (f"{beside}, temporary file {name} left with a prefix of {n} of {len(new)} bytes{how_cut}", old, new[:n])
            for n in cuts
        )
        out.append((f"{beside}, temporary file {name} complete, not renamed yet", old, new))
    out.append(("after the rename", new, None))
    return out


def crash_points(writes: Iterable[FileWrite]) -> list[CrashPoint]:
    """Every crash state of ``writes``, in order, numbered from 1."""
    listed = list(writes)
    found = [(i, w, s) for i, w in enumerate(listed) for s in _states(w)]
    return [
        CrashPoint(n, len(found), write, index, label, final, temp)
        for n, (index, write, (label, final, temp)) in enumerate(found, 1)
    ]


def put_cache_in(root: pathlib.Path, log: WriteLog, point: CrashPoint, writes: list[FileWrite]) -> None:
    """Make the sandbox hold exactly crash point ``point``'s state (see the module docstring)."""
    wanted: dict[str, bytes | None] = dict(log.before)
    for earlier in writes[: point.index]:
        wanted[earlier.rel] = earlier.new
    wanted[point.write.rel] = point.final
    if point.write.temp is not None:
        wanted[point.write.temp] = point.temp
    with writes_paused():
        for rel in snapshot(root).keys() - {r for r, data in wanted.items() if data is not None}:
            (root / rel).unlink()
        for rel, data in wanted.items():
            path = root / rel
            if data is None:
                continue
            with contextlib.suppress(OSError):
                if path.is_file() and path.read_bytes() == data:
                    continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
