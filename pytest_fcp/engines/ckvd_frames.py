"""Converting what ckvd returns into the table pytest-fcp judges: exactly ``FETCH_SCHEMA``, nothing repaired
(NaN stays NaN, extra or misplaced rows stay, unknown source labels are kept as they are)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pytest_fcp.core.schemas import FETCH_SCHEMA, PRICE_COLUMNS
from pytest_fcp.core.sources import SOURCES

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SOURCE_NAMES", "CkvdConversionError", "frame_to_table"]

#: ckvd ``_data_source`` values -> FETCH_SCHEMA ``source`` values.
SOURCE_NAMES = {"CACHE": "cache", "VISION": "vision", "REST": "rest"}

_TIME_TYPE = FETCH_SCHEMA.field("open_time").type
_NS_PER_MS = 1_000_000


class CkvdConversionError(ValueError):
    """ckvd returned something that FETCH_SCHEMA cannot hold unchanged (the message says what)."""


def _source_name(value: Any) -> str | None:
    import pandas as pd

    if value is None:
        return None
    with contextlib.suppress(TypeError, ValueError):
        if pd.isna(value):  # NaN / pd.NA of a row ckvd padded in
            return None
    text = str(value)
    if text in SOURCE_NAMES:
        return SOURCE_NAMES[text]
    lowered = text.lower()
    return text if lowered in SOURCES else lowered


def _open_time_ms(values: pd.Series) -> pa.Array:
    import numpy as np
    import pandas as pd

    if not pd.api.types.is_datetime64_any_dtype(values.dtype):
        try:
            values = pd.to_datetime(values, utc=True)
        except (TypeError, ValueError) as exc:
            raise CkvdConversionError(f"open_time of dtype {values.dtype} is not a time: {exc}") from exc
    if getattr(values.dt, "tz", None) is None:
        values = values.dt.tz_localize("UTC")  # ckvd's times are UTC; a naive one is read as such
    values = values.dt.tz_convert("UTC").dt.as_unit("ns")
    missing = values.isna().to_numpy()
    ns = values.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    bad = ~missing & (ns % _NS_PER_MS != 0)
    if bad.any():
        shown = ", ".join(str(v) for v in values[bad].head(3))
        raise CkvdConversionError(
            f"{int(bad.sum())} open_time value(s) with a sub-millisecond part ({shown}); "
            f"timestamp[ms] cannot hold them unchanged"
        )
    return pa.array(ns // _NS_PER_MS, type=pa.int64(), mask=missing).cast(_TIME_TYPE)


def frame_to_table(frame: Any) -> pa.Table:
    """Convert what ``get_data`` returned into a FETCH_SCHEMA table, row for row, in ckvd's order."""
    import numpy as np
    import pandas as pd

    if frame is None:
        raise CkvdConversionError("ckvd returned None instead of a DataFrame")
    if not isinstance(frame, pd.DataFrame):
        to_pandas = getattr(frame, "to_pandas", None)
        if to_pandas is None:
            raise CkvdConversionError(f"ckvd returned a {type(frame).__name__}, not a DataFrame")
        frame = to_pandas()
    if "open_time" not in frame.columns and frame.index.name == "open_time":
        frame = frame.reset_index()
    missing = [name for name in ("open_time", *PRICE_COLUMNS) if name not in frame.columns]
    if missing:
        if frame.empty:
            return FETCH_SCHEMA.empty_table()
        raise CkvdConversionError(f"ckvd's DataFrame lacks {missing}; it has {list(frame.columns)}")
    columns: list[pa.Array] = [_open_time_ms(frame["open_time"])]
    for name in PRICE_COLUMNS:
        try:
            values = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise CkvdConversionError(f"column {name!r} ({frame[name].dtype}) is not numeric: {exc}") from exc
        columns.append(pa.array(values, type=pa.float64()))  # from numpy: NaN stays NaN, never null
    if "_data_source" in frame.columns:
        sources = [_source_name(value) for value in frame["_data_source"].tolist()]
    else:
        sources = [None] * len(frame)
    columns.append(pa.array(sources, type=pa.string()))
    return pa.Table.from_arrays(columns, schema=FETCH_SCHEMA)


# --- the engine --------------------------------------------------------------------------------------------
