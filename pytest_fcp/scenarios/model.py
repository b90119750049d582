"""The scenario model, shared by TOML files and scenarios written in Python.

A scenario reads like the FCP decision flow: the world (now, market, symbol, interval, pre-cached days),
the faults, the request(s), and what the contract expects. Everything not stated is judged by the default
contract checks (:mod:`pytest_fcp.contract`).
"""

from __future__ import annotations

import datetime as dt
import pathlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pytest_fcp.core.logs import DEFAULT_LOG_LEVEL
from pytest_fcp.faults import Fault

if TYPE_CHECKING:
    from pytest_fcp.world.spec import WorldSpec

__all__ = ["Expect", "Request", "Scenario", "ScenarioError"]

_COUNT_RE = re.compile(r"^(==|>=|<=|>|<)?\s*(\d+)$")


class ScenarioError(ValueError):
    """A scenario that cannot be used: names the file, the scenario and the field."""

    def __init__(self, message: str, *, file: str = "", scenario: str = "", field: str = "") -> None:
        self.file, self.scenario, self.field, self.message = file, scenario, field, message
        where = file
        if scenario:
            where += f"::{scenario}"
        if field:
            where += f" [{field}]"
        super().__init__(f"{where}: {message}" if where else message)


@dataclass(frozen=True)
class Request:
    """One fetch a scenario makes: bars from ``start`` up to ``end``.

    ``symbol`` / ``market`` / ``interval``: another series than the scenario's (``None``: the scenario's);
    ``at``: the world's virtual now is moved forward to it before the fetch (``None``: no clock step);
    ``engine``: which engine instance asks (0-based; 0 unless the scenario runs several on one cache)."""

    start: dt.datetime
    end: dt.datetime
    symbol: str | None = None
    market: str | None = None
    interval: str | None = None
    at: dt.datetime | None = None
    engine: int = 0

    def series(self, scenario: Scenario) -> tuple[str, str, str]:
        """``(symbol, market, interval)`` this request asks for, within ``scenario``."""
        return (
            self.symbol or scenario.symbol,
            self.market or scenario.market,
            self.interval or scenario.interval,
        )


def count_ok(constraint: str | int, value: int) -> bool:
    """Whether ``value`` satisfies a count constraint like ``3``, ``>=1`` or ``<=3`` (``ValueError`` if malformed)."""
    match = _COUNT_RE.match(str(constraint).strip())
    if not match:
        raise ValueError(f"bad count {constraint!r}")
    op, number = match.group(1) or "==", int(match.group(2))
    return {
        "==": value == number,
        ">=": value >= number,
        "<=": value <= number,
        ">": value > number,
        "<": value < number,
    }[op]


@dataclass(frozen=True)
class Expect:
    """What a scenario states beyond the default checks (all optional).

    * ``outcome``: alternatives among ``data``, ``DataSourceError``, ``RateLimitError``;
    * ``sources``: per-day allowed row sources (``default`` for the other days);
    * ``requests``: request counts per source over the whole scenario (``0``, ``>=1``, ``<=3`` ...): every HTTP
      request the engine sent to that source counts, a ``.CHECKSUM`` file and a retry of the same URL too (a
      Vision day fetched with its checksum is 2 requests), as does each REST page;
    * ``cache_after``: per-day allowed cache states afterwards (``default`` for the other days);
    * ``skip_checks``: default checks that do not apply.
    """

    outcome: tuple[str, ...] = ()
    sources: dict[str, frozenset[str]] = field(default_factory=dict)
    requests: dict[str, str] = field(default_factory=dict)
    cache_after: dict[str, frozenset[str]] = field(default_factory=dict)
    skip_checks: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Scenario:
    """One scenario: the world, its faults, the request(s) and what the contract expects."""

    name: str
    description: str
    now: dt.datetime
    requests: tuple[Request, ...]
    market: str = "spot"
    symbol: str = "BTCUSDT"
    interval: str = "1h"
    truth: str = "synthetic"
    faults: tuple[Fault, ...] = ()
    cached: tuple[dt.date, ...] = ()
    publish_delay_hours: float = 24.0
    local_tz: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    #: Engine instances on the one cache (each request names its own with ``engine``); ``together``: each
    #: instance runs its requests in its own thread, all at once, as ckvd's guide runs its managers.
    engines: int = 1
    together: bool = False
    #: Crash points of the first fetch's cache writes to replay: ``"every"``, or their numbers (from 1); ``None``:
    #: no crash (see ``docs/crashes.md``).
    crash: str | tuple[int, ...] | None = None
    expect: Expect = Expect()
    theme: str = "python"
    file: str = ""
    #: A saved cache directory the world starts from (copied into the sandbox before the engine is created).
    cache_from: pathlib.Path | None = None

    @property
    def id(self) -> str:
        """The ``theme/name`` that identifies the scenario."""
        return f"{self.theme}/{self.name}"

    def world_spec(self, seed: int = 0, log_level: str = DEFAULT_LOG_LEVEL) -> WorldSpec:
        """The world this scenario runs in."""
        from pytest_fcp.world.spec import WorldSpec

        return WorldSpec(
            now=self.now,
            market=self.market,
            symbol=self.symbol,
            interval=self.interval,
            truth=self.truth,
            seed=seed,
            faults=self.faults,
            publish_delay=dt.timedelta(hours=self.publish_delay_hours),
            log_level=log_level,
            cached=self.cached,
            local_tz=self.local_tz,
            env=self.env,
            cache_from=self.cache_from,
        )
