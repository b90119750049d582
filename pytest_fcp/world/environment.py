"""What the world sets around the engine: a sandboxed environment (no real cache, home, temporary directory or
AWS identity), the engine's own environment variables owned by the world, and the engine's warnings and log sink
routed into the recorder. Writes outside the sandbox are in :mod:`~pytest_fcp.world.sandbox_writes`."""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile
import threading
import warnings
import weakref
from collections.abc import Iterator
from typing import Any

from pytest_fcp.world.cache import CacheSandbox
from pytest_fcp.world.recorder import Recorder
from pytest_fcp.world.spec import WORLD_VARIABLES

__all__ = [
    "EngineThreads",
    "owned_environment",
    "recorded_warnings",
    "sandboxed_environment",
    "takes_level",
]


@contextlib.contextmanager
def sandboxed_environment(sandbox: CacheSandbox, env: tuple[tuple[str, str], ...] = ()) -> Iterator[None]:
    """Point the engine's cache, home directories, temporary directory and AWS identity into ``sandbox`` and set
    the scenario's ``env``; restore them after.

    The temporary directory is private to the world (``TMPDIR``, ``TEMP``, ``TMP`` and :data:`tempfile.tempdir`):
    an engine that downloads to a fixed name in "the" temporary directory meets no other world's file, and leaves
    nothing in the system's."""
    home = sandbox.home
    temp = sandbox.temp
    temp.mkdir(parents=True, exist_ok=True)
    values = {
        "TMPDIR": str(temp),
        "TEMP": str(temp),
        "TMP": str(temp),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "CKVD_CACHE_DIR": str(sandbox.root),
        "AWS_DEFAULT_REGION": "ap-northeast-1",
        # never the user's AWS identity: fake keys, no config or credentials files
        "AWS_ACCESS_KEY_ID": "FCPSIMULATEDKEY",
        "AWS_SECRET_ACCESS_KEY": "FCPSIMULATEDSECRET",
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        **dict(env),
    }
    saved = {name: os.environ.get(name) for name in values}
    saved_tempdir = tempfile.tempdir
    os.environ.update(values)
    tempfile.tempdir = str(temp)
    try:
        yield
    finally:
        tempfile.tempdir = saved_tempdir
        _restore(saved)


def _restore(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@contextlib.contextmanager
def owned_environment(
    prefixes: tuple[str, ...], env: tuple[tuple[str, str], ...] = (), recorder: Recorder | None = None
) -> Iterator[tuple[str, ...]]:
    """Clear the engine's own variables (names starting with one of ``prefixes``) except the world's and those
    the scenario sets (``env``), so the user's environment cannot change what the engine does; yields the names
    cleared (and logs them in ``recorder``). On exit every such variable is as it was before, whatever the engine
    set meanwhile."""
    if not prefixes:
        yield ()
        return
    keep = (*WORLD_VARIABLES, *(name for name, _ in env))
    owned = [name for name in os.environ if name.startswith(prefixes) and name not in keep]
    if owned and recorder is not None:
        recorder.event("log", level="INFO", message=f"the world cleared {', '.join(sorted(owned))}")
    saved: dict[str, str | None] = {name: os.environ[name] for name in owned}
    for name in owned:
        del os.environ[name]
    try:
        yield tuple(sorted(owned))
    finally:
        for name in [n for n in os.environ if n.startswith(prefixes) and n not in keep and n not in saved]:
            saved[name] = None  # set by the engine while it ran: gone again
        _restore(saved)


class EngineThreads:
    """Which threads are the engine's: the thread that calls it, the threads started while it runs (kept for the
    world's life, so a pool started by one call is the engine's in the next), nothing else. Its ``match`` makes it
    a warnings filter's module field that matches in those threads only."""

    def __init__(self) -> None:
        self.known: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
        self.caller: threading.Thread | None = None
        self.before: frozenset[threading.Thread] = frozenset()

    def enter(self) -> None:
        """An engine call begins in this thread."""
        self.caller, self.before = threading.current_thread(), frozenset(threading.enumerate())

    def leave(self) -> None:
        """The engine call returned: the threads it started stay the engine's."""
        self.known.update(t for t in threading.enumerate() if t not in self.before)
        self.caller, self.before = None, frozenset()

    def running(self) -> bool:
        """Whether an engine call is running and the current thread is the engine's."""
        return self.caller is not None and self.match("")

    def match(self, _module: str) -> bool:
        """Whether the current thread is the engine's (called by the warnings machinery)."""
        thread = threading.current_thread()
        return thread is self.caller or thread in self.known or thread not in self.before


@contextlib.contextmanager
def recorded_warnings(recorder: Recorder, threads: EngineThreads | None = None) -> Iterator[list[int]]:
    """Record the warnings the engine raises inside (its threads' too) as ``warning`` events, one per distinct
    warning with a count, instead of pytest's warnings summary; yields a one-item list that ends up holding how
    many were raised.

    Only the engine's threads (``threads``) are recorded, whatever the user's filters say (``-W error`` must not
    turn an engine's warning into an exception inside it): one filter, matching in those threads only, is put
    first, and ``showwarning`` sends the rest on. A warning of any other thread meets the user's filters, and
    outside the engine's calls nothing is changed; the filter list is left as found except for that one entry
    (other threads may change it meanwhile: the list is process-wide)."""
    threads = threads or EngineThreads()
    caught: list[tuple[str, str, str]] = []
    previous = warnings.showwarning

    def show(message: Any, category: type[Warning], filename: str, lineno: int, *rest: Any) -> None:
        if threads.match(""):
            caught.append((category.__name__, str(message)[:300], _module_of(filename)))
        else:
            previous(message, category, filename, lineno, *rest)

    entry = ("always", None, Warning, threads, 0)
    counted = [0]
    threads.enter()
    warnings.filters.insert(0, entry)  # type: ignore[attr-defined]
    _filters_changed()
    warnings.showwarning = show
    try:
        yield counted
    finally:
        with contextlib.suppress(ValueError):
            warnings.filters.remove(entry)  # type: ignore[attr-defined]
        _filters_changed()
        if warnings.showwarning is show:
            warnings.showwarning = previous
        threads.leave()
        counts: dict[tuple[str, str, str], int] = {}
        for key in caught:
            counts[key] = counts.get(key, 0) + 1
        for (category, message, module), count in counts.items():
            recorder.event("warning", category=category, message=message, module=module, count=count)
        counted[0] = sum(counts.values())


def _filters_changed() -> None:
    """Tell the warnings machinery its filter list changed (what ``filterwarnings`` does after editing it)."""
    changed = getattr(warnings, "_filters_mutated", None) or getattr(warnings, "_filters_mutated_lock_held", None)
    if callable(changed):
        changed()


def _module_of(filename: str) -> str:
    """The dotted module a warning came from, read from its file's path (``ckvd/core/x.py`` -> ``ckvd.core.x``)."""
    parts = pathlib.PurePath(filename).with_suffix("").parts
    for anchor in ("site-packages", "dist-packages", "lib"):
        if anchor in parts:
            parts = parts[len(parts) - parts[::-1].index(anchor) :]
            break
    else:
        parts = parts[-2:]
    return ".".join(p for p in parts if p != "__init__")


def takes_level(function: Any) -> bool:
    """Whether an engine's ``set_log_sink`` accepts ``level=`` (the older form takes only the callback)."""
    import inspect

    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "level" or p.kind is p.VAR_KEYWORD for p in parameters)
