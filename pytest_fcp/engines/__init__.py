"""Engine adapters: the stable API through which pytest-fcp drives an FCP engine.

An engine is plugged in by name: ``--fcp-engine NAME`` (ini ``fcp_engine``), where ``NAME`` is an entry point
in the group ``pytest_fcp.engines`` or a ``package.module:callable`` path. The callable is a factory::

    factory(cache_dir: pathlib.Path) -> Engine

and the returned object implements :class:`Engine` (``close()`` is optional). A factory may list the
modules it needs as ``factory.requires = ("pkg", ...)``: when one is missing the engine is reported as
unavailable (a bundled engine is then skipped) before any world is built. See ``README.md``.

An engine that logs may also offer ``set_log_sink(callback, level="INFO")``: the world hands it a callback
for the engine's log records (``{"level", "message", "module", "time"}``), which land in the trace, and the
lowest level to send (one of :data:`LOG_LEVELS`; ``--fcp-log-level``). Records below it should not be made
at all: formatting hundreds of debug lines a fetch costs an engine like ckvd a tenth of its time. A
``set_log_sink(callback)`` without ``level`` is called without it.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import importlib.util
import pathlib
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Protocol, runtime_checkable

import pyarrow as pa

from pytest_fcp.core.logs import DEFAULT_LOG_LEVEL, LOG_LEVELS
from pytest_fcp.core.schemas import CACHE_SCHEMA, FETCH_SCHEMA
from pytest_fcp.core.sources import SOURCES, error_kind

__all__ = [
    "CACHE_SCHEMA",
    "DEFAULT_LOG_LEVEL",
    "ENTRY_POINT_GROUP",
    "FETCH_SCHEMA",
    "LOG_LEVELS",
    "SOURCES",
    "Engine",
    "EngineFactory",
    "EngineLoadError",
    "available_engines",
    "error_kind",
    "load_engine",
]

ENTRY_POINT_GROUP = "pytest_fcp.engines"


@runtime_checkable
class Engine(Protocol):
    """What pytest-fcp needs from an FCP engine.

    ``fetch`` returns the bars with ``start <= open_time < end`` as a table with :data:`FETCH_SCHEMA`
    columns; failure is an exception, and the contract's two errors are recognised by class name anywhere
    in the exception's MRO: ``DataSourceError`` (every source failed) and ``RateLimitError``.
    ``cache_file`` and ``write_cache`` let the harness reach the engine's real cache files.
    """

    def fetch(self, symbol: str, market: str, interval: str, start: dt.datetime, end: dt.datetime) -> pa.Table: ...

    def cache_file(self, symbol: str, market: str, interval: str, day: dt.date) -> pathlib.Path: ...

    def write_cache(self, symbol: str, market: str, interval: str, day: dt.date, table: pa.Table) -> None: ...


EngineFactory = Callable[[pathlib.Path], Engine]


class EngineLoadError(LookupError):
    """An engine name that cannot be turned into a factory; the message says why and what exists."""


@functools.cache
def _registered() -> tuple[EntryPoint, ...]:
    return tuple(entry_points(group=ENTRY_POINT_GROUP))


def available_engines() -> dict[str, str]:
    """Engine names registered in the ``pytest_fcp.engines`` entry-point group -> their target."""
    return {ep.name: ep.value for ep in _registered()}


def load_engine(name: str) -> EngineFactory:
    """Resolve ``name`` (entry point or ``package.module:callable``) to an engine factory."""
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise EngineLoadError(f"engine {name!r}: cannot import module {module_name!r}: {exc}") from exc
        target: object = module
        for part in attr.split("."):
            try:
                target = getattr(target, part)
            except AttributeError:
                raise EngineLoadError(f"engine {name!r}: module {module_name!r} has no attribute {attr!r}") from None
    else:
        matches = [ep for ep in _registered() if ep.name == name]
        if not matches:
            known = ", ".join(sorted(available_engines())) or "none"
            raise EngineLoadError(
                f"unknown engine {name!r}: registered engines are {known}; or give a 'package.module:callable' path"
            )
        try:
            target = matches[0].load()
        except ImportError as exc:
            raise EngineLoadError(
                f"engine {name!r} ({matches[0].value}) cannot be loaded: {exc}. "
                f"Is the engine's package installed (for ckvd: pip install 'pytest-fcp[ckvd]')?"
            ) from exc
    if not callable(target):
        raise EngineLoadError(f"engine {name!r} resolves to {target!r}, which is not callable")
    missing = [m for m in getattr(target, "requires", ()) if importlib.util.find_spec(m) is None]
    if missing:
        raise EngineLoadError(
            f"engine {name!r} cannot be loaded: it needs {', '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed (for ckvd: pip install 'pytest-fcp[ckvd]')"
        )
    return target  # type: ignore[return-value]
