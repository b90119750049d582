"""The tables pytest-fcp speaks: market truth rows, the cache table handed to engines, a fetch's result."""

from __future__ import annotations

import pyarrow as pa

__all__ = ["CACHE_SCHEMA", "FETCH_SCHEMA", "KLINE_SCHEMA", "PRICE_COLUMNS"]

#: The value columns every check compares with the truth.
PRICE_COLUMNS = ("open", "high", "low", "close", "volume")

#: Market truth rows: Binance's kline fields with integer millisecond times (``close_time = open_time +
#: interval - 1``).
KLINE_SCHEMA = pa.schema(
    [
        ("open_time", pa.int64()),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.float64()),
        ("close_time", pa.int64()),
        ("quote_volume", pa.float64()),
        ("count", pa.int64()),
        ("taker_buy_volume", pa.float64()),
        ("taker_buy_quote_volume", pa.float64()),
    ]
)

#: Columns of a table handed to an engine's ``write_cache`` (the fetch columns without ``source``).
CACHE_SCHEMA = pa.schema(
    [pa.field("open_time", pa.timestamp("ms", tz="UTC"))] + [pa.field(name, pa.float64()) for name in PRICE_COLUMNS]
)

#: Columns of the table an engine's ``fetch`` returns.
FETCH_SCHEMA = CACHE_SCHEMA.append(pa.field("source", pa.string()))
