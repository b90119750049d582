"""What the world's market truth says about its series: a day's true bars, and what a fetch should return (the
bars of a range that have opened by the world's "now"). A part of :class:`~pytest_fcp.world.world.World`."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pyarrow as pa

from pytest_fcp.core.markets import day_bounds_ms, to_ms

if TYPE_CHECKING:
    from pytest_fcp.world.truth import Truth

__all__ = ["TruthViews"]


class TruthViews:
    """The world's truth, per day and per request (the world sets ``truth``, the series and ``now``)."""

    truth: Truth
    market: str
    symbol: str
    interval: str

    @property
    def now(self) -> dt.datetime:  # pragma: no cover - the world's clock answers
        """The world's virtual now."""
        raise NotImplementedError

    def truth_day(
        self, day: dt.date, symbol: str | None = None, market: str | None = None, interval: str | None = None
    ) -> pa.Table:
        """The true bars of UTC ``day``."""
        start, end = day_bounds_ms(day)
        return self.truth.klines(market or self.market, symbol or self.symbol, interval or self.interval, start, end)

    def _truth_of(self, day: dt.date, series: tuple[str, str, str]) -> pa.Table:
        symbol, market, interval = series
        return self.truth_day(day, symbol, market, interval)

    def expected(
        self,
        start: dt.datetime,
        end: dt.datetime,
        symbol: str | None = None,
        market: str | None = None,
        interval: str | None = None,
    ) -> pa.Table:
        """The truth for ``[start, end)``, limited to bars that have opened by "now"."""
        upper = min(to_ms(end), to_ms(self.now) + 1)
        return self.truth.klines(
            market or self.market, symbol or self.symbol, interval or self.interval, to_ms(start), upper
        )
