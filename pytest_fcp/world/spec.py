"""WorldSpec: everything that defines a simulated world, validated once. The marker, the scenarios, the
fuzzer and the ``fcp`` command all build their worlds through it."""

from __future__ import annotations

import datetime as dt
import pathlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pytest_fcp.core.freshness import DEFAULT_PUBLISH_DELAY
from pytest_fcp.core.logs import DEFAULT_LOG_LEVEL, LOG_LEVELS
from pytest_fcp.core.markets import LISTED_SINCE, interval_ms, market_spec
from pytest_fcp.faults import Fault

if TYPE_CHECKING:
    from pytest_fcp.world.truth import Truth

__all__ = [
    "LATEST_NOW",
    "LISTED_SINCE",
    "MAX_PUBLISH_DELAY",
    "TRUTHS",
    "WORLD_VARIABLES",
    "WorldError",
    "WorldSpec",
    "check_cache_from",
    "check_env",
    "check_local_tz",
]

TRUTHS = ("synthetic", "golden")
#: The latest "now" a world may have (the truth serves any day, but nothing sensible lies further ahead).
LATEST_NOW = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
#: The longest Vision publication delay a world may have (real Vision publishes a day within a day or two).
MAX_PUBLISH_DELAY = dt.timedelta(days=30)


def check_local_tz(name: object) -> str:
    """``name`` if it is an IANA time zone (``Asia/Tokyo``); else ``WorldError`` saying what is allowed."""
    import zoneinfo

    if not isinstance(name, str) or not name or name.startswith(("/", ".")) or ".." in name:
        raise WorldError(f"local_tz must be an IANA time zone name like 'Asia/Tokyo' or 'UTC', got {name!r}")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise WorldError(
            f"local_tz {name!r} is not a known time zone; write an IANA name like 'Asia/Tokyo', "
            "'America/New_York' or 'UTC'"
        ) from None
    return name


def check_cache_from(path: object) -> pathlib.Path:
    """``path`` as an absolute directory to carry a cache from; else ``WorldError`` saying what is allowed."""
    if not isinstance(path, str | pathlib.Path) or not str(path):
        raise WorldError(f"cache_from must be the path of a directory (a saved cache), got {path!r}")
    found = pathlib.Path(path).expanduser().resolve()
    if not found.is_dir():
        what = "is not a directory" if found.exists() else "does not exist"
        raise WorldError(
            f"cache_from {found} {what}: give a directory saved by --fcp-save-cache or a fixture cache directory"
        )
    return found


#: The variables the world itself sets for every engine (a scenario's ``env`` may not set them).
WORLD_VARIABLES = (
    "TMPDIR",
    "TEMP",
    "TMP",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "CKVD_CACHE_DIR",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "TZ",
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_env(env: object) -> tuple[tuple[str, str], ...]:
    """A scenario's ``env`` (names to string values) as sorted pairs; ``ValueError`` saying what is allowed."""
    if not isinstance(env, dict):
        raise ValueError('expected a table of variable names to string values, e.g. { CKVD_ENABLE_CACHE = "false" }')
    for name, value in env.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a variable name; allowed: letters, digits and _ (not first a digit)")
        if name in WORLD_VARIABLES:
            raise ValueError(f"{name} is set by the world itself (sandbox, clock, AWS identity); it cannot be set here")
        if not isinstance(value, str) or "\0" in value:
            raise ValueError(f"{name}: the value must be a string (write numbers and booleans in quotes)")
    return tuple(sorted(env.items()))


class WorldError(ValueError):
    """A world that cannot be built as asked; the message says what is wrong and what is allowed."""


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
    local_tz: str | None = None
    #: Environment variables the engine runs with (name, value), beyond the world's own.
    env: tuple[tuple[str, str], ...] = ()
    #: A saved cache directory copied into the sandbox before the engine is created (``world.cache_seed``).
    cache_from: pathlib.Path | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.now, dt.datetime) or self.now.tzinfo is None:
            raise WorldError(f"now={self.now!r} is naive: give a timezone-aware UTC datetime")
        listed = dt.datetime.combine(LISTED_SINCE, dt.time(), dt.UTC)
        if not listed < self.now <= LATEST_NOW:
            raise WorldError(
                f"now {self.now.isoformat()} is outside what the market truth serves: after the listing day "
                f"{LISTED_SINCE} and not after {LATEST_NOW.isoformat()}"
            )
        if not isinstance(self.publish_delay, dt.timedelta) or not (
            dt.timedelta(0) <= self.publish_delay <= MAX_PUBLISH_DELAY
        ):
            raise WorldError(
                f"publish delay {self.publish_delay!r} must be from 0 to {MAX_PUBLISH_DELAY.days * 24} hours"
            )
        if self.local_tz is not None:
            check_local_tz(self.local_tz)
        if self.cache_from is not None:
            object.__setattr__(self, "cache_from", check_cache_from(self.cache_from))
        try:
            object.__setattr__(self, "env", check_env(dict(self.env)))
        except (ValueError, TypeError) as exc:
            raise WorldError(f"env: {exc}") from None
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
        early = [d for d in self.cached if d < LISTED_SINCE]
        if early:
            raise WorldError(f"cached day {early[0]} is before the listing day {LISTED_SINCE}: no bar exists then")

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
