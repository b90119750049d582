"""WorldSpec: everything that defines a simulated world, validated once. The marker, the scenarios, the
fuzzer and the ``fcp`` command all build their worlds through it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pytest_fcp.core.freshness import DEFAULT_PUBLISH_DELAY
from pytest_fcp.core.logs import DEFAULT_LOG_LEVEL, LOG_LEVELS
from pytest_fcp.core.markets import interval_ms, market_spec
from pytest_fcp.faults import Fault

if TYPE_CHECKING:
    from pytest_fcp.world.truth import Truth

__all__ = ["TRUTHS", "WorldError", "WorldSpec", "default_symbol"]

TRUTHS = ("synthetic", "golden")


class WorldError(ValueError):
    """A world that cannot be built as asked; the message says what is wrong and what is allowed."""


def default_symbol(market: str) -> str:
    """The symbol a world trades when none is named (COIN-M futures trade ``BTCUSD_PERP``)."""
    return "BTCUSD_PERP" if market == "futures_coin" else "BTCUSDT"


@dataclass(frozen=True)
class WorldSpec:
    """What a world is: its "now", the series it serves, its truth, its faults and its publication delay."""

    now: dt.datetime
    market: str = "spot"
    symbol: str = "BTCUSDT"
    interval: str = "1h"
    truth: str | Truth = "synthetic"
    seed: int = 0
    faults: tuple[Fault, ...] = ()
    publish_delay: dt.timedelta = DEFAULT_PUBLISH_DELAY
    log_level: str = DEFAULT_LOG_LEVEL
    cached: tuple[dt.date, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise WorldError(f"now={self.now!r} is naive: give a timezone-aware UTC datetime")
        try:
            spec = market_spec(self.market)
            interval_ms(self.interval)
        except ValueError as exc:
            raise WorldError(str(exc)) from None
        if self.interval not in spec.intervals:
            raise WorldError(
                f"interval {self.interval!r} does not exist on {self.market}; allowed: {', '.join(spec.intervals)}"
            )
        if isinstance(self.truth, str) and self.truth not in TRUTHS:
            raise WorldError(f"unknown truth {self.truth!r}; expected 'synthetic' or 'golden'")
        if str(self.log_level).upper() not in LOG_LEVELS:
            raise WorldError(f"unknown log level {self.log_level!r}; allowed: {', '.join(LOG_LEVELS)}")
        object.__setattr__(self, "log_level", str(self.log_level).upper())
        object.__setattr__(self, "faults", tuple(self.faults))
        object.__setattr__(self, "cached", tuple(self.cached))

    def make_truth(self) -> Truth:
        """The market truth this world serves (shared per seed: truths are deterministic)."""
        from pytest_fcp.world.truth import GoldenTruth, SyntheticTruth

        truth = self.truth
        if truth == "synthetic":
            truth = SyntheticTruth.shared(self.seed)
        elif truth == "golden":
            truth = GoldenTruth.shared()
        assert not isinstance(truth, str)
        if isinstance(truth, GoldenTruth) and not truth.covers(self.market, self.symbol, self.interval):
            covered = ", ".join(f"{m} {s} {i}" for m, s, i in GoldenTruth.FILES)
            raise WorldError(
                f"the golden truth has no {self.market} {self.symbol} {self.interval}; it covers {covered}"
            )
        if not truth.has_symbol(self.market, self.symbol):
            raise WorldError(f"symbol {self.symbol!r} does not trade on {self.market} in this world")
        return truth
