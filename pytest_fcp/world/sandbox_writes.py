"""Writes outside the sandbox: a Python audit hook (installed once per process) that sees each file the engine's
threads open for writing, create, rename or remove while one of its calls runs, and reports every path outside
the world's sandbox (the cache, its home and private temporary directory) as a violation naming it.

Audit hooks see Python's own file operations (``open``, ``os.open``, ``os.rename``, ``os.replace``, ``os.remove``,
``os.mkdir``, ``shutil``): a native library writing through its own system calls is not seen here; the world's
private ``TMPDIR`` and home keep those writes inside the sandbox too (docs/engines.md). Bytecode the import system
writes (``__pycache__``) and the null device are not the engine's writes.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["watch_writes"]

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_EVENTS = ("open", "os.rename", "os.remove", "os.mkdir", "os.rmdir", "shutil.rmtree", "shutil.move")
#: (allowed roots with a trailing separator, is-engine-thread, report) of the active watch, if any.
_ACTIVE: list[tuple[tuple[str, ...], Callable[[], bool], Callable[[str, str], None]]] = []
_HOOKED = [False]
_LOCAL = threading.local()
_ALWAYS = (os.devnull, "/dev/stdout", "/dev/stderr", "/dev/tty")


def _target(event: str, args: tuple[object, ...]) -> object:
    if event == "open":
        mode, flags = args[1], args[2]
        writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(int(flags or 0) & _WRITE_FLAGS)
        return args[0] if writing else None
    if event in ("os.rename", "shutil.move"):
        return args[1]
    return args[0]


def _audit(event: str, args: tuple[object, ...]) -> None:
    if not _ACTIVE or event not in _EVENTS or getattr(_LOCAL, "busy", False):
        return
    roots, is_engine, report = _ACTIVE[-1]
    target = _target(event, args)
    if not isinstance(target, (str, bytes, os.PathLike)):
        return  # a file descriptor, or a read
    _LOCAL.busy = True
    try:
        path = os.path.abspath(os.fsdecode(target))
        inside = (path + os.sep).startswith(roots) or "__pycache__" in path.split(os.sep)
        if path in _ALWAYS or inside or not is_engine():
            return
        report(event, path)
    finally:
        _LOCAL.busy = False


@contextmanager
def watch_writes(
    roots: tuple[str, ...], is_engine: Callable[[], bool], report: Callable[[str, str], None]
) -> Iterator[None]:
    """While inside, call ``report(event, path)`` for each write outside ``roots`` by a thread ``is_engine()``."""
    if not _HOOKED[0]:
        sys.addaudithook(_audit)
        _HOOKED[0] = True
    entry = (tuple(os.path.join(os.path.abspath(r), "") for r in roots), is_engine, report)
    _ACTIVE.append(entry)
    try:
        yield
    finally:
        _ACTIVE.remove(entry)
