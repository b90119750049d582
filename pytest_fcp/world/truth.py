"""Market truth: the one set of klines that both simulated Vision and simulated REST serve.

Two truths exist. :class:`SyntheticTruth` computes plausible OHLCV for any (market, symbol, interval,
open_time) from a seed, statelessly and vectorised, so a month of 1m bars costs milliseconds and the same
seed always gives the same bars. :class:`GoldenTruth` serves the recorded week of real Binance klines in
``fixtures/binance-golden`` (BTC, 1h, 2024-01-01 .. 2024-01-07) and has no data elsewhere.

Tables use the Binance kline fields with integer millisecond times::

    open_time, open, high, low, close, volume, close_time, quote_volume, count,
    taker_buy_volume, taker_buy_quote_volume

and ``close_time = open_time + interval - 1``.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import pathlib
import typing
from typing import Protocol

import numpy as np
import pyarrow as pa

from pytest_fcp.core.markets import DAY_MS, LISTED_SINCE, day_bounds_ms, interval_ms, market_spec
from pytest_fcp.core.schemas import KLINE_SCHEMA

__all__ = ["KLINE_SCHEMA", "GoldenTruth", "SyntheticTruth", "Truth", "golden_dir"]


class Truth(Protocol):
    """What the world needs from a market truth."""

    name: str

    def klines(self, market: str, symbol: str, interval: str, start_ms: int, end_ms: int) -> pa.Table:
        """Bars with ``start_ms <= open_time < end_ms`` (KLINE_SCHEMA), sorted by open_time."""
        ...

    def has_symbol(self, market: str, symbol: str) -> bool:
        """Whether ``symbol`` trades on ``market``."""
        ...


def _empty() -> pa.Table:
    return KLINE_SCHEMA.empty_table()


def _stable_hash(*parts: object) -> int:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _from_numpy(values: np.ndarray, type_: pa.DataType) -> pa.Array:
    """A numpy column as an Arrow array without ``pa.array`` (which imports pandas: seconds)."""
    dtype = np.int64 if pa.types.is_integer(type_) else np.float64
    values = np.ascontiguousarray(values, dtype=dtype)
    return pa.Array.from_buffers(type_, len(values), [None, pa.py_buffer(values)])


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _uniform(keys: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64 of ``keys ^ salt`` mapped to floats in [0, 1)."""
    with np.errstate(over="ignore"):
        z = keys ^ np.uint64(salt & 0xFFFFFFFFFFFFFFFF)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


class SyntheticTruth:
    """Deterministic, plausible klines for any symbol: a seeded, stateless price path.

    The price at time ``t`` is a smooth function of ``t`` plus hashed noise, so a bar's open equals the
    previous bar's close, high >= max(open, close), low <= min(open, close) and volume >= 0, in every
    interval. Bars exist from ``listed_since`` on (before it the symbol did not trade).
    """

    name = "synthetic"

    def __init__(self, seed: int = 0, listed_since: dt.date = LISTED_SINCE) -> None:
        self.seed = seed
        self.listed_since = listed_since
        self._listed_ms = day_bounds_ms(listed_since)[0]

    @classmethod
    @functools.cache
    def shared(cls, seed: int = 0) -> SyntheticTruth:
        """One truth per seed for the whole process: its bars are computed once and reused by every world."""
        return cls(seed=seed)

    def has_symbol(self, market: str, symbol: str) -> bool:
        """Whether ``symbol`` looks valid for ``market`` (alphanumeric; ``_`` in it on futures_coin)."""
        return bool(symbol) and symbol.isalnum() if market != "futures_coin" else "_" in symbol

    def _price(self, key: int, base: float, t: np.ndarray) -> np.ndarray:
        days = t.astype(np.float64) / DAY_MS
        phase = (key % 997) / 997 * 2 * np.pi
        smooth = 0.06 * np.sin(2 * np.pi * days / 9.0 + phase) + 0.015 * np.sin(2 * np.pi * days + phase)
        noise = (_uniform(t.astype(np.uint64), key) - 0.5) * 0.004
        return base * np.exp(smooth + noise)

    @functools.lru_cache(maxsize=1024)  # noqa: B019 - shared truths live as long as the process
    def klines(self, market: str, symbol: str, interval: str, start_ms: int, end_ms: int) -> pa.Table:
        """Generated bars with ``start_ms <= open_time < end_ms`` from listing on, sorted (memoised)."""
        spec = market_spec(market)
        step = interval_ms(interval)
        first = max(start_ms, self._listed_ms)
        first = -(-first // step) * step  # first grid point >= first
        if first >= end_ms:
            return _empty()
        open_time = np.arange(first, end_ms, step, dtype=np.int64)
        key = _stable_hash(self.seed, market, symbol)
        base = 20.0 + (key % 60_000)
        decimals = spec.price_decimals
        scale = 10.0**decimals
        o = np.round(self._price(key, base, open_time), decimals)
        c = np.round(self._price(key, base, open_time + step), decimals)
        wiggle = 0.0005 + 0.002 * np.sqrt(step / 3_600_000)
        ukeys = open_time.astype(np.uint64) ^ np.uint64(step)
        hi = np.ceil(np.maximum(o, c) * (1 + wiggle * _uniform(ukeys, key + 1)) * scale) / scale
        lo = np.floor(np.minimum(o, c) * (1 - wiggle * _uniform(ukeys, key + 2)) * scale) / scale
        vol_decimals = 0 if market == "futures_coin" else 5 if market == "spot" else 3
        volume = np.round((step / 60_000) * (5 + 50 * _uniform(ukeys, key + 3)), vol_decimals)
        taker = np.round(volume * _uniform(ukeys, key + 4), vol_decimals)
        vwap = (o + c + hi + lo) / 4
        if market == "futures_coin":  # COIN-M volume is in contracts of 100 USD; quote volume in coin
            quote, taker_quote = volume * 100 / vwap, taker * 100 / vwap
        else:
            quote, taker_quote = volume * vwap, taker * vwap
        count = (1 + volume * 7 + 100 * _uniform(ukeys, key + 5)).astype(np.int64)
        columns = [
            open_time,
            o,
            hi,
            lo,
            c,
            volume,
            open_time + step - 1,
            np.round(quote, 8),
            count,
            taker,
            np.round(taker_quote, 8),
        ]
        return pa.Table.from_arrays(
            [_from_numpy(col, f.type) for col, f in zip(columns, KLINE_SCHEMA, strict=True)],
            schema=KLINE_SCHEMA,
        )


def golden_dir() -> pathlib.Path:
    """Where the recorded Binance week lives: inside the wheel, or the repository's ``fixtures/``."""
    packaged = pathlib.Path(__file__).resolve().parent.parent / "_golden"
    if packaged.is_dir():
        return packaged
    return pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "binance-golden"


class GoldenTruth:
    """Real Binance klines recorded for BTC 1h, 2024-01-01 .. 2024-01-07, for all three markets.

    Origin: the golden datasets of the crypto-kline-vision-data project, MIT licence,
    Copyright (c) 2025 Eon Labs Ltd (see ``fixtures/binance-golden/README.md``).
    """

    name = "golden"
    FILES: typing.ClassVar[dict[tuple[str, str, str], str]] = {
        ("spot", "BTCUSDT", "1h"): "btcusdt_spot_1h_2024w01.parquet",
        ("futures_usdt", "BTCUSDT", "1h"): "btcusdt_futures_usdt_1h_2024w01.parquet",
        ("futures_coin", "BTCUSD_PERP", "1h"): "btcusd_perp_coin_1h_2024w01.parquet",
    }
    FIRST_DAY = dt.date(2024, 1, 1)
    LAST_DAY = dt.date(2024, 1, 7)

    def __init__(self, directory: pathlib.Path | None = None) -> None:
        self.directory = directory or golden_dir()
        self._tables: dict[tuple[str, str, str], pa.Table] = {}

    @classmethod
    @functools.cache
    def shared(cls) -> GoldenTruth:
        """One golden truth for the process (the recorded files are read once)."""
        return cls()

    def has_symbol(self, market: str, symbol: str) -> bool:
        """Whether a recorded file exists for ``symbol`` on ``market``."""
        return any(m == market and s == symbol for m, s, _ in self.FILES)

    def covers(self, market: str, symbol: str, interval: str) -> bool:
        """Whether a recorded file exists for this market, symbol and interval."""
        return (market, symbol, interval) in self.FILES

    def _load(self, market: str, symbol: str, interval: str) -> pa.Table:
        key = (market, symbol, interval)
        if key not in self._tables:
            import pyarrow.compute as pc
            import pyarrow.parquet as pq

            raw = pq.read_table(self.directory / self.FILES[key])
            ms = pa.timestamp("ms", tz="UTC")
            self._tables[key] = pa.table(
                [
                    pc.cast(raw["open_time"], ms).cast(pa.int64()),
                    raw["open"].cast(pa.float64()),
                    raw["high"].cast(pa.float64()),
                    raw["low"].cast(pa.float64()),
                    raw["close"].cast(pa.float64()),
                    raw["volume"].cast(pa.float64()),
                    pc.cast(raw["close_time"], ms).cast(pa.int64()),
                    raw["quote_asset_volume"].cast(pa.float64()),
                    raw["count"].cast(pa.int64()),
                    raw["taker_buy_volume"].cast(pa.float64()),
                    raw["taker_buy_quote_volume"].cast(pa.float64()),
                ],
                schema=KLINE_SCHEMA,
            )
        return self._tables[key]

    def klines(self, market: str, symbol: str, interval: str, start_ms: int, end_ms: int) -> pa.Table:
        """Recorded bars with ``start_ms <= open_time < end_ms`` (empty when not covered)."""
        if not self.covers(market, symbol, interval):
            return _empty()
        import pyarrow.compute as pc

        table = self._load(market, symbol, interval)
        times = table["open_time"]
        mask = pc.and_(pc.greater_equal(times, start_ms), pc.less(times, end_ms))
        return table.filter(mask)
