"""Engine adapter for ``crypto-kline-vision-data`` (import name ``ckvd``): drives ckvd through pytest-fcp.

It converts and never repairs: what ckvd returns or raises reaches the harness as it is. ckvd is imported
lazily, so this module imports without it. The manual: ``docs/engines.md``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import pathlib
import sys
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pytest_fcp.core.markets import day_bounds_ms, market_spec
from pytest_fcp.core.schemas import CACHE_SCHEMA, PRICE_COLUMNS
from pytest_fcp.engines import CacheLayout
from pytest_fcp.engines.ckvd_frames import _TIME_TYPE, CkvdConversionError, frame_to_table

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CACHE_LAYOUT",
    "INSTALL_HINT",
    "MARKET_TYPES",
    "CkvdConversionError",
    "CkvdEngine",
    "LogSink",
    "create",
    "default_cache_dir",
    "frame_to_table",
    "real_cache_root",
]

INSTALL_HINT = "pip install 'pytest-fcp[ckvd]'"
#: ckvd reads its settings from ``CKVD_*`` variables (``CKVD_ENABLE_CACHE``, ``CKVD_LOG_LEVEL`` ...): the world owns
#: them (cleared unless a scenario's ``env`` sets one), so the user's environment never changes a verdict.
ENV_PREFIXES = ("CKVD_",)
#: The distribution this adapter drives (its version goes into a saved cache's manifest).
DISTRIBUTION = "crypto-kline-vision-data"

#: ckvd 4.x's day files (read from its ``vision_path_mapper`` and ``ckvd_cache_utils``): the Vision URL mirrored
#: below the cache dir, Arrow IPC files written by polars, ``open_time`` in nanoseconds plus ckvd's extra columns.
CACHE_LAYOUT = CacheLayout(
    name="ckvd",
    market_dirs={"spot": "spot", "futures_usdt": "futures/um", "futures_coin": "futures/cm"},
    series_dir="data/{market}/daily/klines/{symbol}/{interval}",
    file_name="{symbol}-{interval}-{day}.arrow",
    time_unit="ns",
    schema=None,
    upper_symbols=True,
    symbol_suffixes={"futures_coin": "_PERP"},
    app_subdir="data",
)

#: ckvd's platformdirs application name and author (``ckvd.utils.app_paths``).
APP_NAME = "crypto-kline-vision-data"
APP_AUTHOR = "eon-labs"

#: pytest-fcp market name -> name of the ckvd ``MarketType`` member.
MARKET_TYPES = {"spot": "SPOT", "futures_usdt": "FUTURES_USDT", "futures_coin": "FUTURES_COIN"}


#: A log sink: receives ``{"level", "message", "module", "time"}`` for each ckvd log record.
LogSink = Callable[[dict[str, Any]], None]


def _ckvd() -> SimpleNamespace:
    """The ckvd objects the adapter uses, imported on demand (a clear ImportError if ckvd is missing)."""
    try:
        import polars
        from ckvd import ChartType, CryptoKlineVisionData, DataProvider, Interval, MarketType
        from ckvd.core.providers.binance.vision_path_mapper import FSSpecVisionHandler
        from ckvd.utils.app_paths import get_cache_dir
        from ckvd.utils.config import KLINE_COLUMNS
        from ckvd.utils.for_core.ckvd_cache_utils import save_to_cache
        from loguru import logger
    except ImportError as exc:
        raise ImportError(
            f"the 'ckvd' engine needs crypto-kline-vision-data (Python >= 3.13): {INSTALL_HINT} ({exc})"
        ) from exc
    if "CKVD_DISABLE_COLORS" not in os.environ and not sys.stderr.isatty():  # no ANSI codes in logs and CI
        with contextlib.suppress(ImportError, AttributeError):
            from ckvd.utils import loguru_setup

            if not loguru_setup.logger._disable_colors:
                loguru_setup.disable_colors(True)
    return SimpleNamespace(
        ChartType=ChartType,
        CryptoKlineVisionData=CryptoKlineVisionData,
        DataProvider=DataProvider,
        FSSpecVisionHandler=FSSpecVisionHandler,
        Interval=Interval,
        KLINE_COLUMNS=list(KLINE_COLUMNS),
        MarketType=MarketType,
        get_cache_dir=get_cache_dir,
        loguru=logger,
        polars=polars,
        save_to_cache=save_to_cache,
    )


def create(cache_dir: pathlib.Path) -> CkvdEngine:
    """Engine factory (entry point ``ckvd``)."""
    return CkvdEngine(cache_dir)


#: Modules the engine needs: ``load_engine`` names the missing ones before any world is built.
create.requires = ("ckvd", "orjson")  # type: ignore[attr-defined]


def real_cache_root() -> pathlib.Path:
    """The cache root a default ``CryptoKlineVisionData`` uses (``get_cache_dir() / "data"``), not created."""
    return pathlib.Path(_ckvd().get_cache_dir()) / "data"


def default_cache_dir() -> tuple[pathlib.Path, str]:
    """ckvd's default cache directory, as ckvd itself resolves it, and a sentence saying how.

    The same as :func:`real_cache_root` but importing only ``ckvd.utils.app_paths`` (all of ckvd takes
    seconds); without ckvd installed, its rule (``$CKVD_CACHE_DIR``, else platformdirs) is applied here.
    """
    env = os.environ.get("CKVD_CACHE_DIR")
    how = f"$CKVD_CACHE_DIR={env}" if env else "platformdirs user cache dir"
    try:
        from ckvd.utils.app_paths import get_cache_dir
    except Exception:  # ckvd not installed (or broken): apply its rule ourselves
        import platformdirs

        base = pathlib.Path(env) if env else pathlib.Path(platformdirs.user_cache_path(APP_NAME, APP_AUTHOR))
        return base / "data", f"ckvd's default cache dir ({how}; ckvd itself is not installed)"
    return (
        pathlib.Path(get_cache_dir()) / "data",
        f"ckvd's default cache dir: ckvd.utils.app_paths.get_cache_dir() / 'data' ({how})",
    )


# --- DataFrame -> FETCH_SCHEMA -----------------------------------------------------------------------------


class CkvdEngine:
    """pytest-fcp engine backed by ckvd's ``CryptoKlineVisionData`` (see the module docstring)."""

    def __init__(self, cache_dir: pathlib.Path, *, auto_reindex: bool = True, **ckvd_options: Any) -> None:
        self._ck = _ckvd()
        self.cache_dir = pathlib.Path(cache_dir)
        self.auto_reindex = auto_reindex
        self.ckvd_options = {key: value for key, value in ckvd_options.items() if key != "cache_dir"}
        self.last_attrs: dict[str, Any] = {}
        self._managers: dict[str, Any] = {}
        self._log_callback: LogSink | None = None
        self._log_level: str = "INFO"
        self._sink_id: int | None = None
        self._sink_level: str | None = None

    # -- mapping -------------------------------------------------------------------------------------------

    def market_type(self, market: str) -> Any:
        """The ckvd ``MarketType`` of a pytest-fcp market name (``ValueError`` for an unknown one)."""
        market_spec(market)  # the harness' own "unknown market" message
        try:
            return self._ck.MarketType[MARKET_TYPES[market]]
        except KeyError:
            raise ValueError(
                f"market {market!r} is not supported by the ckvd adapter; it maps {', '.join(MARKET_TYPES)}"
            ) from None

    def interval(self, interval: str) -> Any:
        """The ckvd ``Interval`` of an interval string (``ValueError`` for an unknown one)."""
        try:
            return self._ck.Interval(interval)
        except ValueError:
            known = ", ".join(member.value for member in self._ck.Interval)
            raise ValueError(f"unknown interval {interval!r}; ckvd knows {known}") from None

    # -- ckvd instances and logging ------------------------------------------------------------------------

    def manager(self, market: str) -> Any:
        """The ``CryptoKlineVisionData`` of ``market``, created on first use with ``cache_dir``."""
        market_type = self.market_type(market)
        if market not in self._managers:
            with _lib_dirs_once():
                self._managers[market] = self._ck.CryptoKlineVisionData.create(
                    self._ck.DataProvider.BINANCE, market_type, cache_dir=self.cache_dir, **self.ckvd_options
                )
                self._install_sink()  # the constructor has just removed every loguru sink
        return self._managers[market]

    def set_log_sink(self, callback: LogSink | None, level: str = "INFO") -> None:
        """Send ckvd's log records of ``level`` and above to ``callback`` (``None``: stop); see the module
        docstring. ``ValueError`` for a level loguru does not know."""
        try:
            self._ck.loguru.level(str(level).upper())
        except ValueError:
            raise ValueError(
                f"unknown log level {level!r}; loguru knows TRACE, DEBUG, INFO, SUCCESS, WARNING, ERROR, CRITICAL"
            ) from None
        self._log_callback, self._log_level = callback, str(level).upper()
        if self._managers or callback is None:  # else: added when the first ckvd instance exists
            self._install_sink()

    def _install_sink(self) -> None:
        logger = self._ck.loguru
        handlers = getattr(getattr(logger, "_core", None), "handlers", None)  # loguru has no public lookup
        installed = handlers is not None and self._sink_id is not None and self._sink_id in handlers
        if self._log_callback is not None and installed and self._sink_level == self._log_level:
            return  # still there (adding a loguru sink costs milliseconds)
        if self._sink_id is not None:
            with contextlib.suppress(ValueError):  # already removed by a ckvd constructor
                logger.remove(self._sink_id)
            self._sink_id = self._sink_level = None
        if self._log_callback is not None:
            with _lib_dirs_once():
                self._sink_id = logger.add(
                    self._emit, level=self._log_level, format="{message}", filter=_is_ckvd_record, catch=True
                )
            self._sink_level = self._log_level

    def _emit(self, message: Any) -> None:
        record = message.record
        callback = self._log_callback
        if callback is not None:
            callback(
                {
                    "level": record["level"].name,
                    "message": record["message"],
                    "module": record["name"],
                    "time": record["time"].astimezone(dt.UTC),
                }
            )

    # -- Engine protocol -----------------------------------------------------------------------------------

    def fetch(self, symbol: str, market: str, interval: str, start: dt.datetime, end: dt.datetime) -> pa.Table:
        """Fetch the bars with ``start <= open_time < end`` through ckvd's manager, keeping its frame attrs."""
        manager = self.manager(market)
        ckvd_interval = self.interval(interval)
        self._install_sink()
        self.last_attrs = {}
        frame = manager.get_data(
            symbol, start, end, ckvd_interval, include_source_info=True, auto_reindex=self.auto_reindex
        )
        self.last_attrs = dict(getattr(frame, "attrs", None) or {})
        return frame_to_table(frame)

    def cache_file(self, symbol: str, market: str, interval: str, day: dt.date) -> pathlib.Path:
        """The path ckvd's Vision handler uses for ``day``'s cache file."""
        import pendulum

        handler = self._ck.FSSpecVisionHandler(base_cache_dir=self.cache_dir)
        path = handler.get_local_path_for_data(
            symbol=symbol.upper(),
            interval=self.interval(interval),
            date=pendulum.datetime(day.year, day.month, day.day, tz="UTC"),
            market_type=self.market_type(market),
            chart_type=self._ck.ChartType.KLINES,
        )
        return pathlib.Path(path)

    def write_cache(self, symbol: str, market: str, interval: str, day: dt.date, table: pa.Table) -> None:
        """Store ``table`` as ``day``'s cache file via ckvd's ``save_to_cache`` (raw IPC if off-day rows)."""
        path = self.cache_file(symbol, market, interval, day)
        frame = self._cache_frame(table, interval)
        self._install_sink()
        day_start, day_end = day_bounds_ms(day)
        open_ms = table["open_time"].cast(_TIME_TYPE).cast(pa.int64())
        within_day = (
            table.num_rows > 0
            and open_ms.null_count == 0
            and all(day_start <= ms < day_end for ms in open_ms.to_pylist())
        )
        if within_day:
            saved = self._ck.save_to_cache(
                df=frame,
                symbol=symbol.upper(),
                interval=self.interval(interval),
                market_type=self.market_type(market),
                cache_dir=self.cache_dir,
                chart_type=self._ck.ChartType.KLINES,
                provider=self._ck.DataProvider.BINANCE,
            )
            if not saved or not path.is_file():
                raise OSError(f"ckvd's save_to_cache did not write {path} (see ckvd's log)")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._ck.polars.from_pandas(frame).write_ipc(str(path))

    def _cache_frame(self, table: pa.Table, interval: str) -> pd.DataFrame:
        """``table`` (CACHE_SCHEMA) as the frame ckvd caches after a Vision download (module docstring)."""
        import numpy as np
        import pandas as pd

        missing = [name for name in CACHE_SCHEMA.names if name not in table.column_names]
        if missing:
            raise ValueError(f"write_cache needs the CACHE_SCHEMA columns; {missing} missing")
        table = table.select(CACHE_SCHEMA.names).cast(CACHE_SCHEMA)
        close_offset = np.timedelta64(self._interval_ms(interval) - 1, "ms")
        open_time = pd.Series(table["open_time"].to_pandas()).dt.tz_convert("UTC").dt.as_unit("ns")
        prices = {name: table[name].to_numpy(zero_copy_only=False).astype(np.float64) for name in PRICE_COLUMNS}
        rows = table.num_rows
        data: dict[str, Any] = {
            "open_time": open_time,
            **prices,
            "close_time": open_time + close_offset,
            "quote_asset_volume": prices["volume"] * prices["close"],
            "count": np.zeros(rows, dtype=np.int64),
            "taker_buy_volume": np.zeros(rows, dtype=np.float64),
            "taker_buy_quote_volume": np.zeros(rows, dtype=np.float64),
            "ignore": np.zeros(rows, dtype=np.int64),
        }
        frame = pd.DataFrame({name: data[name] for name in self._ck.KLINE_COLUMNS})
        frame["original_timestamp"] = frame["open_time"]
        frame["_data_source"] = "VISION"
        return frame

    def _interval_ms(self, interval: str) -> int:
        return int(self.interval(interval).to_seconds()) * 1000

    def close(self) -> None:
        """Close every ckvd manager and detach the log sink."""
        managers, self._managers = list(self._managers.values()), {}
        try:
            for manager in managers:
                manager.close()
        finally:
            self._log_callback = None
            self._install_sink()

    def __enter__(self) -> CkvdEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_lib_dirs: dict[tuple[str, ...], list[str]] = {}


@contextlib.contextmanager
def _lib_dirs_once() -> Iterator[None]:
    """While inside: loguru works out its library directories once per ``sys.path``, not once per sink.

    Every ``logger.add`` builds an ``ExceptionFormatter``, which asks ``sysconfig`` for every install scheme's
    library paths (about 8 ms on Python 3.13); ckvd adds a sink in each constructor and the adapter re-adds
    its own after it, once per engine. The answer depends only on ``sysconfig`` and ``sys.path``, so it is
    the same list either way. Outside the block loguru is as it was.
    """
    try:
        from loguru._better_exceptions import ExceptionFormatter
    except ImportError:  # another loguru layout: nothing to save
        yield
        return
    real = ExceptionFormatter.__dict__.get("_get_lib_dirs")
    if not isinstance(real, staticmethod):
        yield
        return

    def lib_dirs() -> list[str]:
        key = tuple(sys.path)
        if key not in _lib_dirs:
            _lib_dirs[key] = real.__func__()
        return list(_lib_dirs[key])

    ExceptionFormatter._get_lib_dirs = staticmethod(lib_dirs)  # type: ignore[method-assign]
    try:
        yield
    finally:
        ExceptionFormatter._get_lib_dirs = real  # type: ignore[method-assign]


def _is_ckvd_record(record: dict[str, Any]) -> bool:
    name = record.get("name") or ""
    return name == "ckvd" or name.startswith("ckvd.")
