"""Engine adapters: the stable API through which pytest-fcp drives an FCP engine.

An engine is plugged in by name: ``--fcp-engine NAME`` (ini ``fcp_engine``), where ``NAME`` is an entry point
in the group ``pytest_fcp.engines`` or a ``package.module:callable`` path. The callable is a factory::

    factory(cache_dir: pathlib.Path) -> Engine

and the returned object implements :class:`Engine` (``close()`` is optional). A factory may list the
modules it needs as ``factory.requires = ("pkg", ...)``: when one is missing the engine is reported as
unavailable (a bundled engine is then skipped) before any world is built. Guide: ``docs/engines.md``.

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
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Protocol, runtime_checkable

import pyarrow as pa

from pytest_fcp.core.logs import DEFAULT_LOG_LEVEL, LOG_LEVELS
from pytest_fcp.core.objects import ObjectSpecError, resolve_object
from pytest_fcp.core.schemas import CACHE_SCHEMA, FETCH_SCHEMA
from pytest_fcp.core.sources import SOURCES, error_kind

__all__ = [
    "CACHE_SCHEMA",
    "DEFAULT_LOG_LEVEL",
    "ENTRY_POINT_GROUP",
    "FETCH_SCHEMA",
    "LOG_LEVELS",
    "SOURCES",
    "CacheLayout",
    "Engine",
    "EngineFactory",
    "EngineLoadError",
    "available_engines",
    "engine_release",
    "env_prefixes",
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

    def fetch(self, symbol: str, market: str, interval: str, start: dt.datetime, end: dt.datetime) -> pa.Table:
        """The bars with ``start <= open_time < end``, or a raised error."""
        ...

    def cache_file(self, symbol: str, market: str, interval: str, day: dt.date) -> pathlib.Path:
        """Where the engine keeps ``day``'s bars."""
        ...

    def write_cache(self, symbol: str, market: str, interval: str, day: dt.date, table: pa.Table) -> None:
        """Store ``table`` as ``day``'s cache file, as the engine itself would."""
        ...


EngineFactory = Callable[[pathlib.Path], Engine]


@dataclass(frozen=True)
class CacheLayout:
    """Where and how an engine keeps its day files: what a cache scan needs to know, declared, not imported.

    ``series_dir`` and ``file_name`` are templates with the fields ``{market}`` (the entry of ``market_dirs``),
    ``{symbol}``, ``{interval}`` and ``{day}`` (``YYYY-MM-DD``). ``time_unit`` is the unit of the stored
    ``open_time``; ``schema`` the exact schema of a file, or ``None`` when the engine keeps extra columns.
    ``symbol_suffixes`` are appended per market to a symbol that lacks them (ckvd's ``_PERP``), and
    ``app_subdir`` is the directory an app root keeps the cache dir in (scanning the app root works too).
    """

    name: str
    market_dirs: Mapping[str, str]
    series_dir: str
    file_name: str
    time_unit: str
    schema: pa.Schema | None = None
    upper_symbols: bool = False
    symbol_suffixes: Mapping[str, str] = field(default_factory=dict)
    sorted_bars: bool = False
    app_subdir: str | None = None

    @functools.cached_property
    def _dir_pattern(self) -> re.Pattern[str]:
        markets = "|".join(re.escape(d) for d in self.market_dirs.values())
        pattern = re.escape(self.series_dir)
        for name, group in (("market", f"({markets})"), ("symbol", "([^/]+)"), ("interval", "([^/]+)")):
            pattern = pattern.replace(re.escape("{" + name + "}"), group)
        return re.compile(f"(?:^|/){pattern}$")

    @functools.cached_property
    def _market_of_dir(self) -> dict[str, str]:
        return {d: m for m, d in self.market_dirs.items()}

    def symbol_dir(self, market: str, symbol: str) -> str:
        """The directory name of ``symbol`` on ``market``, as the engine spells it."""
        if self.upper_symbols:
            symbol = symbol.upper()
        suffix = self.symbol_suffixes.get(market, "")
        return symbol if not suffix or symbol.endswith(suffix) else symbol + suffix

    def series_path(self, root: pathlib.Path, market: str, symbol: str, interval: str) -> pathlib.Path:
        """The directory of a series' day files under the cache dir ``root``."""
        rel = self.series_dir.format(
            market=self.market_dirs[market], symbol=self.symbol_dir(market, symbol), interval=interval
        )
        return root.joinpath(*rel.split("/"))

    def day_file_name(self, market: str, symbol: str, interval: str, day: dt.date) -> str:
        """The name of a day file in its series directory."""
        return self.file_name.format(symbol=self.symbol_dir(market, symbol), interval=interval, day=day.isoformat())

    def path(self, root: pathlib.Path, symbol: str, market: str, interval: str, day: dt.date) -> pathlib.Path:
        """The day file of ``day`` under the cache dir ``root`` (the arguments of an engine's ``cache_file``)."""
        return self.series_path(root, market, symbol, interval) / self.day_file_name(market, symbol, interval, day)

    def series_of(self, directory: str) -> tuple[str, str, str] | None:
        """``(market, symbol, interval)`` if the ``/``-separated ``directory`` ends like a series directory."""
        match = self._dir_pattern.search(directory)
        if match is None:
            return None
        return self._market_of_dir[match.group(1)], match.group(2), match.group(3)

    def day_of_file(self, name: str, symbol_dir: str, interval: str) -> dt.date | None:
        """The day a file named ``name`` in the directory of ``symbol_dir``/``interval`` holds, if it is one."""
        prefix, _, suffix = self.file_name.format(symbol=symbol_dir, interval=interval, day="\0").partition("\0")
        if not (name.startswith(prefix) and name.endswith(suffix)):
            return None
        text = name[len(prefix) : len(name) - len(suffix)]
        if not _ISO_DAY.fullmatch(text):
            return None
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            return None


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class EngineLoadError(LookupError):
    """An engine name that cannot be turned into a factory; the message says why and what exists."""


@functools.cache
def _registered() -> tuple[EntryPoint, ...]:
    return tuple(entry_points(group=ENTRY_POINT_GROUP))


def available_engines() -> dict[str, str]:
    """Engine names registered in the ``pytest_fcp.engines`` entry-point group -> their target."""
    return {ep.name: ep.value for ep in _registered()}


def env_prefixes(factory: object) -> tuple[str, ...]:
    """The prefixes of the environment variables an engine reads as its own settings (``CKVD_`` for ckvd): the
    factory's ``env_prefixes`` attribute, else its module's ``ENV_PREFIXES``; none when neither is declared."""
    declared = getattr(factory, "env_prefixes", None)
    if declared is None:
        module = sys.modules.get(getattr(factory, "__module__", "") or "")
        declared = getattr(module, "ENV_PREFIXES", ())
    if isinstance(declared, str):
        declared = (declared,)
    return tuple(str(p) for p in declared if p)


def engine_release(factory: object) -> tuple[str | None, str | None]:
    """``(distribution, version)`` of the installed package an engine comes from: the factory's ``distribution``
    attribute, else its module's ``DISTRIBUTION`` (an adapter names the package it wraps), else the distribution
    that installs the factory's top-level package; ``None`` for what is not known."""
    from importlib import metadata

    module_name = getattr(factory, "__module__", "") or ""
    declared = getattr(factory, "distribution", None) or getattr(sys.modules.get(module_name), "DISTRIBUTION", None)
    if not declared:
        found = _distributions().get(module_name.partition(".")[0], [])
        declared = found[0] if len(found) == 1 else _editable_distribution(module_name)
    if not declared:
        return None, None
    try:
        return str(declared), metadata.version(str(declared))
    except metadata.PackageNotFoundError:
        return str(declared), None


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    from importlib import metadata

    return metadata.packages_distributions()


def _editable_distribution(module_name: str) -> str | None:
    """The editable install named like ``module_name``'s top package whose tree holds it (Python < 3.12 maps no
    package to an editable install)."""
    import json
    from importlib import metadata
    from urllib.parse import unquote, urlparse

    module_file = getattr(sys.modules.get(module_name), "__file__", None)
    top = module_name.partition(".")[0]
    try:
        dist = metadata.distribution(top.replace("_", "-"))
        direct = json.loads(dist.read_text("direct_url.json") or "{}")
    except (metadata.PackageNotFoundError, ValueError):
        return None
    url = str(direct.get("url", ""))
    if not module_file or not direct.get("dir_info", {}).get("editable") or not url.startswith("file:"):
        return None
    root = pathlib.Path(unquote(urlparse(url).path)).resolve()
    return str(dist.metadata["Name"]) if pathlib.Path(module_file).resolve().is_relative_to(root) else None


def load_engine(name: str) -> EngineFactory:
    """Resolve ``name`` (entry point or ``package.module:callable``) to an engine factory."""
    if ":" in name:
        try:
            target: object = resolve_object(name)
        except ObjectSpecError as exc:
            raise EngineLoadError(f"engine {name!r}: {exc}") from exc.__cause__
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
