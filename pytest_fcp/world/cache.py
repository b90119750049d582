"""The cache sandbox: a per-test cache directory, what happens to it, and how healthy each day file is.

* :class:`CacheSandbox` owns the directory the engine is pointed at; the user's real cache is never used
  (``XDG_CACHE_HOME`` and ``CKVD_CACHE_DIR`` point into the sandbox while the world runs).
* :class:`CacheObserver` reports reads, writes, replaces and deletes from *outside* the engine: with Linux
  inotify when available (it sees C++/Rust readers too), else by comparing snapshots.
* :func:`inspect_day_file` judges a day file against the truth, whatever Arrow layout the engine uses.
* :func:`apply_cache_fault` puts a day's file into a faulty state, starting from what the engine itself
  writes (``write_cache``), so the fault hits the engine's real format.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import hashlib
import os
import pathlib
import stat
import struct
import threading
import weakref
from collections import OrderedDict
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pytest_fcp.core.cache_states import DayFileState
from pytest_fcp.core.schemas import CACHE_SCHEMA, PRICE_COLUMNS

if TYPE_CHECKING:
    pass

__all__ = [
    "CacheObserver",
    "CacheSandbox",
    "DayFileState",
    "inspect_day_file",
    "open_time_ms",
    "read_arrow_any",
    "truth_to_cache_table",
]


def truth_to_cache_table(truth: pa.Table) -> pa.Table:
    """Truth rows (integer ms) as the table ``write_cache`` takes (CACHE_SCHEMA)."""
    ts = pa.timestamp("ms", tz="UTC")
    return pa.Table.from_arrays(
        [truth["open_time"].cast(pa.int64()).cast(ts)] + [truth[c] for c in PRICE_COLUMNS],
        schema=CACHE_SCHEMA,
    )


# --- judging a day file ---------------------------------------------------------------------------


def read_arrow_any(path: pathlib.Path) -> tuple[pa.Table, str]:
    """Read an Arrow IPC file (or, failing that, an IPC stream); return the table and which format."""
    with pa.OSFile(str(path), "rb") as handle:
        return _arrow_any(handle.read_buffer())


def _arrow_any(data: pa.Buffer) -> tuple[pa.Table, str]:
    try:
        return pa.ipc.open_file(data).read_all(), "file"
    except pa.ArrowInvalid:
        return pa.ipc.open_stream(data).read_all(), "stream"


def open_time_ms(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """An ``open_time`` column (timestamp, or integer in s/ms/us/ns by magnitude) as int64 milliseconds."""
    if pa.types.is_timestamp(column.type):
        factor = {"s": 1000, "ms": 1, "us": 1 / 1000, "ns": 1 / 1_000_000}[column.type.unit]
        raw = column.cast(pa.timestamp(column.type.unit)).cast(pa.int64())
    elif pa.types.is_integer(column.type):
        raw = column.cast(pa.int64())
        peak = pc.max(raw).as_py() or 0
        factor = 1 / 1_000_000 if peak > 10**17 else 1 / 1000 if peak > 10**14 else 1
    else:
        raise TypeError(f"open_time is {column.type}")
    if factor == 1:
        return raw
    if factor > 1:
        return pc.multiply(raw, int(factor))
    return pc.divide(raw, round(1 / factor))


_PER_MS = {"ms": 1, "us": 1000, "ns": 1_000_000}


def _open_time_numpy(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """``(null, ms)`` of an ``open_time`` column in any unit (see :func:`_open_time_ms`), 0 where null."""
    if pa.types.is_timestamp(column.type) and not column.null_count:
        raw = column.to_numpy().view(np.int64)
        unit = column.type.unit
        times = raw * 1000 if unit == "s" else raw // _PER_MS[unit]
        return np.zeros(len(column), dtype=bool), times
    times = open_time_ms(column).combine_chunks()
    null = times.is_null().to_numpy(zero_copy_only=False)
    return null, times.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def _float_numpy(column: pa.ChunkedArray) -> np.ndarray:
    if column.type != pa.float64():
        column = column.cast(pa.float64())
    return column.to_numpy()  # nulls become NaN


def inspect_day_file(path: pathlib.Path, truth: pa.Table) -> DayFileState:
    """Judge ``path`` against the day's truth rows (KLINE_SCHEMA: integer ms ``open_time`` ...)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return DayFileState("missing")
    except OSError as exc:
        return DayFileState("unreadable", detail=str(exc))
    if not path.is_file():
        return DayFileState("unreadable", size=size, detail="not a regular file")
    try:
        with pa.OSFile(str(path), "rb") as handle:
            data = handle.read_buffer()
    except (pa.ArrowException, OSError, ValueError) as exc:
        return DayFileState("unreadable", size=size, detail=f"{type(exc).__name__}: {exc}"[:200])
    # The same bytes judged against the same truth give the same state: engines write the same file for a
    # day in every world that fetches it, so most files are judged once per process.
    key = (id(truth), hashlib.blake2b(data, digest_size=16).digest())
    with _JUDGED_LOCK:
        known = _JUDGED.get(key)
        if known is not None and known[0]() is truth:  # a weak reference: an id alone can be reused
            _JUDGED.move_to_end(key)
            return known[1]
    state = _judge_bytes(data, truth)
    with _JUDGED_LOCK:
        _JUDGED[key] = (weakref.ref(truth), state)  # never keeps a truth table alive
        if len(_JUDGED) > _JUDGED_MAX:
            _JUDGED.popitem(last=False)
    return state


_JUDGED: OrderedDict[tuple[int, bytes], tuple[weakref.ref[pa.Table], DayFileState]] = OrderedDict()
_JUDGED_LOCK = threading.Lock()
_JUDGED_MAX = 2048


def _judge_bytes(data: pa.Buffer, truth: pa.Table) -> DayFileState:
    size = data.size
    try:
        table, fmt = _arrow_any(data)
    except (pa.ArrowException, OSError, ValueError) as exc:
        return DayFileState("unreadable", size=size, detail=f"{type(exc).__name__}: {exc}"[:200])
    names = table.schema.names
    missing = [c for c in ("open_time", *PRICE_COLUMNS) if c not in names]
    if missing:
        return DayFileState("schema", table.num_rows, size, f"missing column(s) {', '.join(missing)}", fmt)
    try:
        null, got_times = _open_time_numpy(table["open_time"])
        values = {c: _float_numpy(table[c]) for c in PRICE_COLUMNS}
    except (TypeError, pa.ArrowException, KeyError) as exc:
        return DayFileState("schema", table.num_rows, size, f"{type(exc).__name__}: {exc}"[:200], fmt)
    rows = len(got_times)
    # A day holds at most 86,400 bars (1s): numpy judges them faster than a chain of Arrow kernels.
    truth_times = truth["open_time"].to_numpy()
    if rows == len(truth_times) and not null.any() and np.array_equal(got_times, truth_times):
        at: slice | np.ndarray = slice(None)  # the usual file: every bar of the day, in order
    else:
        at = np.minimum(np.searchsorted(truth_times, got_times), max(len(truth_times) - 1, 0))
        foreign = null | (truth_times[at] != got_times) if len(truth_times) else np.ones(rows, dtype=bool)
        increasing = bool(np.all(got_times[1:] > got_times[:-1]))
        if foreign.any() or (not increasing and len(np.unique(got_times)) != rows):  # not the day's, or twice
            first = int(np.argmax(foreign)) if foreign.any() else _first_repeat(got_times)
            odd = None if null[first] else int(got_times[first])
            return DayFileState("extra", rows, size, f"bar at {odd} outside the day or duplicated", fmt)
    # A null value becomes NaN and NaN equals nothing, so both count as differing from the truth.
    differ = np.zeros(rows, dtype=bool)
    for name in PRICE_COLUMNS:
        differ |= values[name] != truth[name].to_numpy()[at]
    stale = int(np.count_nonzero(differ))
    if stale:
        return DayFileState("stale", rows, size, f"{stale} bar(s) differ from the truth", fmt)
    if rows < len(truth_times):
        return DayFileState("partial", rows, size, f"{rows} of {len(truth_times)} bars", fmt)
    return DayFileState("valid", rows, size, "", fmt)


def _first_repeat(values: np.ndarray) -> int:
    """The index of the first value that already came earlier."""
    _, first_seen = np.unique(values, return_index=True)
    repeat = np.ones(len(values), dtype=bool)
    repeat[first_seen] = False
    return int(np.argmax(repeat))


_FS_IOC_GETFLAGS = 0x80086601
_FS_IOC_SETFLAGS = 0x40086602
_FS_IMMUTABLE_FL = 0x00000010


def _set_immutable(path: pathlib.Path, on: bool) -> bool:
    """Set or clear the immutable attribute (what ``chattr +i`` does); say whether it worked."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        buf = fcntl.ioctl(fd, _FS_IOC_GETFLAGS, struct.pack("l", 0))
        flags = struct.unpack("l", buf)[0]
        flags = flags | _FS_IMMUTABLE_FL if on else flags & ~_FS_IMMUTABLE_FL
        fcntl.ioctl(fd, _FS_IOC_SETFLAGS, struct.pack("l", flags))
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _writable_despite_mode(directory: pathlib.Path) -> bool:
    probe = directory / ".fcp-probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return False
    probe.unlink()
    return True


# --- the sandbox and the observer ------------------------------------------------------------------
class CacheSandbox:
    """The cache directory the engine is pointed at, which can be made read-only and restored."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.root_prefix = str(root) + os.sep
        # XDG_CACHE_HOME and friends point here; like a fresh home, it exists once something writes there
        self.home = root.parent / (root.name + "-home")
        self.temp = self.home / "tmp"  # the engine's private TMPDIR (see world.environment)
        self._immutable: list[pathlib.Path] = []
        self._chmodded: list[tuple[pathlib.Path, int]] = []

    def relative(self, path: pathlib.Path | str) -> str:
        """``path`` relative to the root with ``/`` separators (unchanged if outside it)."""
        text, root = str(path), self.root_prefix
        if text.startswith(root):
            return text[len(root) :].replace(os.sep, "/")
        return text

    def files(self) -> dict[str, tuple[int, int, int]]:
        """Relative path -> (size, mtime_ns, inode) of every file under the root."""
        out: dict[str, tuple[int, int, int]] = {}
        for dirpath, _dirs, names in os.walk(self.root):
            for name in names:
                full = pathlib.Path(dirpath, name)
                with contextlib.suppress(OSError):
                    st = full.stat()
                    out[self.relative(full)] = (st.st_size, st.st_mtime_ns, st.st_ino)
        return out

    def make_read_only(self) -> None:
        """Make the root and its directories unwritable; raise ``OSError`` if that cannot be done."""
        dirs = [self.root, *(p for p in self.root.rglob("*") if p.is_dir())]
        for directory in dirs:
            self._chmodded.append((directory, directory.stat().st_mode))
            directory.chmod(0o555)
        if _writable_despite_mode(self.root):  # root ignores modes: use the immutable attribute
            for directory in dirs:
                if _set_immutable(directory, True):
                    self._immutable.append(directory)
            if _writable_despite_mode(self.root):
                self.restore()
                raise OSError(
                    errno.EPERM,
                    "pytest-fcp: cannot make the cache directory read-only here (running as root on a file "
                    "system without the immutable attribute)",
                )

    def restore(self) -> None:
        """Undo :meth:`make_read_only` and make unreadable files readable again."""
        for directory in self._immutable:
            _set_immutable(directory, False)
        self._immutable.clear()
        for directory, mode in reversed(self._chmodded):
            with contextlib.suppress(OSError):
                directory.chmod(mode)
        self._chmodded.clear()
        for dirpath, _dirs, names in os.walk(self.root):  # unreadable files back to readable, for clean-up
            for name in names:
                full = os.path.join(dirpath, name)
                with contextlib.suppress(OSError):
                    mode = os.lstat(full).st_mode
                    if stat.S_ISREG(mode) and not mode & stat.S_IRUSR:
                        os.chmod(full, 0o644)


_FREE_INOTIFY: list[Any] = []  # inotify instances of stopped worlds, reused (each costs a file descriptor)


@atexit.register
def _close_free_inotify() -> None:
    while _FREE_INOTIFY:
        with contextlib.suppress(OSError):
            _FREE_INOTIFY.pop().close()


_INOTIFY_FLAGS = ("OPEN", "CLOSE_WRITE", "CLOSE_NOWRITE", "MOVED_TO", "DELETE", "CREATE", "ISDIR")


class CacheObserver:
    """Cache operations seen from outside the engine (inotify on Linux, snapshots elsewhere)."""

    def __init__(self, sandbox: CacheSandbox) -> None:
        self.sandbox = sandbox
        self._before = sandbox.files()
        self._inotify: Any = None
        self._watches: dict[int, str] = {}  # watch descriptor -> directory, relative to the root ("" for it)
        self._carry: list[tuple[str, str]] = []
        try:
            from inotify_simple import INotify, flags

            # plain ints: IntFlag arithmetic costs microseconds per event
            self._m = SimpleNamespace(**{name: int(getattr(flags, name)) for name in _INOTIFY_FLAGS})
            self._inotify = _FREE_INOTIFY.pop() if _FREE_INOTIFY else INotify(nonblocking=True)
            for dirpath, _dirs, _names in os.walk(sandbox.root):
                self._watch(dirpath)
        except (ImportError, OSError):
            self._inotify = None

    def _watch(self, directory: str) -> None:
        m = self._m
        mask = m.OPEN | m.CLOSE_WRITE | m.CLOSE_NOWRITE | m.MOVED_TO | m.DELETE | m.CREATE
        with contextlib.suppress(OSError):
            self._watches[self._inotify.add_watch(directory, mask)] = self.sandbox.relative(directory + os.sep)

    def _adopt(self, directory: str) -> list[tuple[str, str]]:
        """Watch a new directory tree; files already in it (created before the watch) count as writes."""
        found: list[tuple[str, str]] = []
        for dirpath, _dirs, names in os.walk(directory):
            self._watch(dirpath)
            for name in sorted(names):
                rel = self.sandbox.relative(os.path.join(dirpath, name))
                if rel not in self._before:
                    found.append(("write", rel))
                    self._before[rel] = (0, 0, 0)
        return found

    def ignore_own_reads(self, rels: set[str]) -> None:
        """Drop the read events the harness itself just caused (one per path in ``rels``)."""
        if self._inotify is None or not rels:
            return
        pending = set(rels)
        for op, rel in self._read_events():
            if op == "read" and rel in pending:
                pending.discard(rel)
                continue
            self._carry.append((op, rel))

    def poll(self) -> list[tuple[str, str]]:
        """New (op, relative path) pairs since the last poll; op is read / write / replace / delete."""
        if self._inotify is None:
            return self._snapshot_diff()
        carried, self._carry = self._carry, []
        events = carried + self._read_events()
        # A temporary file written and renamed away before we looked is part of the write that follows.
        root = self.sandbox.root_prefix
        return [(op, rel) for op, rel in events if op != "write" or os.path.exists(root + rel)]

    def _read_events(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        try:
            events = self._inotify.read(timeout=0)
        except OSError:
            return out
        root, m = self.sandbox.root_prefix, self._m
        for event in events:
            directory = self._watches.get(event.wd)
            if directory is None or not event.name:
                continue
            rel = directory + event.name
            mask = event.mask
            if mask & m.ISDIR:
                if mask & (m.CREATE | m.MOVED_TO):
                    out.extend(self._adopt(root + rel))
                continue
            if mask & m.CLOSE_WRITE:
                if (("write", rel)) in out[-1:] and self._before.get(rel) == (0, 0, 0):
                    continue  # adopted a moment ago, now closed: one write
                out.append(("replace" if rel in self._before else "write", rel))
                self._before[rel] = (0, 0, 0)
            elif mask & m.MOVED_TO:
                out.append(("replace" if rel in self._before else "write", rel))
                self._before[rel] = (0, 0, 0)
            elif mask & m.DELETE:
                out.append(("delete", rel))
                self._before.pop(rel, None)
            elif mask & m.CLOSE_NOWRITE:
                out.append(("read", rel))
        return out

    def _snapshot_diff(self) -> list[tuple[str, str]]:
        now = self.sandbox.files()
        out: list[tuple[str, str]] = []
        for rel, meta in now.items():
            if rel not in self._before:
                out.append(("write", rel))
            elif self._before[rel] != meta:
                out.append(("replace", rel))
        out.extend(("delete", rel) for rel in self._before if rel not in now)
        self._before = now
        return out

    def close(self) -> None:
        """Stop watching. The inotify instance is kept for the next world (closing one costs milliseconds)."""
        if self._inotify is not None:
            for wd in self._watches:
                with contextlib.suppress(OSError):
                    self._inotify.rm_watch(wd)
            with contextlib.suppress(OSError):
                self._inotify.read(timeout=0)  # drop what is left, IN_IGNORED included
            _FREE_INOTIFY.append(self._inotify)
            self._inotify = None
            self._watches.clear()
