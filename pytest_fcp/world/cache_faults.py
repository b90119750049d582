"""Putting a day's cache file into a fault's state, starting from what the engine itself writes
(``write_cache``), so the fault hits the engine's real format. One function per cache effect kind.

Failing writes (``cache.write_fails``): a Python audit hook (:func:`sys.addaudithook`, installed once per
process, idle unless a world asks for it) refuses, with the fault's ``errno`` (ENOSPC, EIO), every ``open``
for writing, ``os.replace`` / ``os.rename`` onto, and ``os.mkdir`` under the sandbox while the world runs.
It sees every Python-level way in (``open``, ``os.open``, ``tempfile``, ``pathlib``, ``shutil``) in every
thread, needs neither root, FUSE nor a bind mount, and touches nothing outside the sandbox; it cannot see a
native library opening the final path itself (pyarrow's ``OSFile``, polars). For those, at each fetch's
first request (the engine has read its cache by then) the world puts an empty directory at every missing
day file of the request and the days either side (:func:`block_day_file`), and removes them when the fetch
returns: a native ``open`` for writing fails with ``EISDIR``, and so does a rename onto it, even as root,
while the cache watch reports the day missing. A native writer so sees ``EISDIR``, not the fault's ``error``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
import pathlib
import random
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from pytest_fcp.world.arrow_layout import message_spans
from pytest_fcp.world.cache import CacheSandbox, open_time_ms, read_arrow_any, truth_to_cache_table

if TYPE_CHECKING:
    from pytest_fcp.engines import Engine
    from pytest_fcp.faults import Fault

__all__ = [
    "allow_writes",
    "apply_cache_fault",
    "block_day_file",
    "fail_writes",
    "stale_table",
    "unblock_day_files",
    "unstopped_writes",
    "writes_fail",
    "writes_paused",
]

#: Sandbox roots (with a trailing separator) whose writes fail, and with which errno.
_FAILING: dict[str, int] = {}
_PAUSED = [0]
_HOOKED = [False]
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _audit(event: str, args: tuple[object, ...]) -> None:
    if not _FAILING or _PAUSED[0] or event not in ("open", "os.rename", "os.mkdir"):
        return
    if event == "open":
        mode, flags = args[1], args[2]
        writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(int(flags or 0) & _WRITE_FLAGS)
        target = args[0] if writing else None
    else:
        target = args[1] if event == "os.rename" else args[0]
    if not isinstance(target, (str, bytes, os.PathLike)):
        return  # a file descriptor: its file was opened (and judged) before
    path = os.path.abspath(os.fsdecode(target))
    for root, code in _FAILING.items():
        if path.startswith(root):
            raise OSError(code, os.strerror(code), path)


def fail_writes(root: pathlib.Path, code: int) -> None:
    """From now on every write under ``root`` fails with ``code`` (see the module docstring)."""
    if not _HOOKED[0]:
        sys.addaudithook(_audit)
        _HOOKED[0] = True
    _FAILING[os.path.join(os.path.abspath(root), "")] = code


def allow_writes(root: pathlib.Path) -> None:
    """Undo :func:`fail_writes` for ``root`` (a no-op when its writes never failed)."""
    _FAILING.pop(os.path.join(os.path.abspath(root), ""), None)


def writes_fail(root: pathlib.Path) -> bool:
    """Whether writes under ``root`` fail (``cache.write_fails`` is on)."""
    return os.path.join(os.path.abspath(root), "") in _FAILING


def unstopped_writes(root: pathlib.Path, events: Iterable[Any]) -> str | None:
    """Under ``cache.write_fails``, what says the fault could not reach the engine: a file it wrote all the same
    (a native writer overwriting an existing day file in place: the audit hook does not see it and only
    missing day files are blocked); ``None`` when writes do not fail or none got through."""
    if not writes_fail(root):
        return None
    written = [e.data["path"] for e in events if e.kind == "cache" and e.data.get("op") in ("write", "replace")]
    if not written:
        return None
    return (
        f"cache.write_fails cannot reach this engine: it wrote {written[0]} although every write into the cache "
        "fails (a native writer overwriting an existing file in place is seen by no audit hook, and only missing "
        "day files are blocked); leave cache.write_fails out for this engine, or use cache.read_only_dir"
    )


def block_day_file(path: pathlib.Path) -> list[pathlib.Path]:
    """Put an empty directory where a missing day file would go, so a native writer fails too.

    Opening a directory for writing fails (``EISDIR``) and so does renaming a file over it, for every
    writer, Python or native, and even as root; a reader sees no file (the cache watch reports the day
    missing). Returns the directories created, ``path`` last (none when something is there already)."""
    if os.path.lexists(path):
        return []
    created = [p for p in (*reversed(path.parents), path) if not os.path.lexists(p)]
    with writes_paused():
        path.mkdir(parents=True)
    return created


def unblock_day_files(created: list[pathlib.Path]) -> None:
    """Remove the directories :func:`block_day_file` created (those still empty), deepest first."""
    for path in reversed(created):
        with contextlib.suppress(OSError):
            path.rmdir()
    created.clear()


@contextlib.contextmanager
def writes_paused() -> Iterator[None]:
    """Let the harness itself write (seeding the cache) while writes fail for the engine."""
    _PAUSED[0] += 1
    try:
        yield
    finally:
        _PAUSED[0] -= 1


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
    if effect == "read_only" and "error" in item.kind.params:
        fail_writes(sandbox.root, getattr(errno, str(item.param("error"))))
        return True
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
    keep = min(max(1, int(full.num_rows * float(item.param("keep")))), full.num_rows - 1)
    holes = str(item.param("holes"))
    if holes == "start":
        return full.slice(full.num_rows - keep, keep)
    if holes == "middle":
        head = (keep + 1) // 2
        return pa.concat_tables([full.slice(0, head), full.slice(full.num_rows - (keep - head), keep - head)])
    return full.slice(0, keep)


def _alter_values(item: Fault, full: pa.Table) -> pa.Table:
    return stale_table(full)


def stale_table(full: pa.Table) -> pa.Table:
    """A day's cache table with its prices moved 3 % (rounded to cents): what ``cache.stale_day`` leaves."""
    stale = full
    for name in ("open", "high", "low", "close"):
        index = stale.schema.get_field_index(name)
        stale = stale.set_column(index, name, pc.round(pc.multiply(stale[name], 0.97), 2))
    return stale


def _repeat_first(item: Fault, full: pa.Table) -> pa.Table:
    return pa.concat_tables([full, full.slice(0, max(1, min(int(item.param("extra")), full.num_rows)))])


_WRITTEN: dict[str, Callable[[Fault, pa.Table], pa.Table]] = {
    "keep_first": _keep_first,
    "alter_values": _alter_values,
    "repeat_first": _repeat_first,
}


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


def _short_body(item: Fault, path: pathlib.Path, full: pa.Table, rng: random.Random) -> None:
    data = path.read_bytes()
    spans, _is_file = message_spans(data)
    batches = [(start, end) for start, end, kind in spans if kind == "record batch"]
    if batches:  # the last record batch loses the second half of its body; what follows it stays
        start, end = batches[-1]
        path.write_bytes(data[: start + (end - start) // 2] + data[end:])
    else:  # not Arrow IPC: the middle half goes, the head and the tail stay
        path.write_bytes(data[: len(data) // 4] + data[3 * len(data) // 4 :])


def _mixed(item: Fault, path: pathlib.Path, full: pa.Table, rng: random.Random) -> None:
    table = _engine_table(path, full)
    third = table.num_rows // 3
    if third:  # writer A's first two thirds, then writer B's last two thirds: the middle third twice
        _rewrite(path, pa.concat_tables([table.slice(0, table.num_rows - third), table.slice(third)]))
    else:  # a day of one or two bars: both writers' whole days
        _rewrite(path, pa.concat_tables([table, table]))


def _cut_on_read(item: Fault, path: pathlib.Path, full: pa.Table, rng: random.Random) -> None:
    """The file stays the engine's valid one: the cache watch cuts it once the engine has opened it."""


_SPOILED: dict[str, Callable[[Fault, pathlib.Path, pa.Table, random.Random], bool | None]] = {
    "zero_byte": _zero_byte,
    "truncate": _truncate,
    "random_bytes": _random_bytes,
    "stream": _stream,
    "drop_column": _drop_column,
    "strings": _strings,
    "ns_times": _ns_times,
    "unreadable": _unreadable,
    "short_body": _short_body,
    "mixed": _mixed,
    "truncate_on_read": _cut_on_read,
}
