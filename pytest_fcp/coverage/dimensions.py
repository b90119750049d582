"""The FCP space's dimensions and the projections of it that matter, each derived from an existing definition.

A *cell* is ``(projection, a, b)``: one pair of values of two dimensions (``fault x target``:
``rest.http429`` x ``REST later page``). The full cross product of every dimension is far too large to
cover; the projections below are the pairs that decide how an engine behaves. Which cells are *reachable*
comes from the same definitions: a Vision fault hits only the objects its table entry names, a cache fault
whose effect stops writes hits cache writes, a market serves only its intervals, a 1d request has no bars
within one day.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pytest_fcp.core.cache_states import DAY_STATES
from pytest_fcp.core.limits import SCENARIO_LIMITS
from pytest_fcp.core.markets import INTERVALS, MARKETS, MAX_PAGE_LIMIT, bars_per_day
from pytest_fcp.faults.table import FAULTS, FaultKind

__all__ = [
    "AGES",
    "CALENDAR",
    "CLOCK",
    "LIFETIME",
    "ORIGINS",
    "PROJECTIONS",
    "SHAPES",
    "TARGETS",
    "Cell",
    "Projection",
    "beyond_scenario_limits",
    "fault_targets",
    "reachable_cells",
]

#: A cell: ``(projection name, value of its first dimension, value of its second)``.
Cell = tuple[str, str, str]

VISION_ZIP, VISION_CHECKSUM = "Vision zip", "Vision .CHECKSUM"
REST_FIRST, REST_LATER, REST_RANGES = "REST first page", "REST later page", "REST one of several ranges"
CACHE_READ, CACHE_WRITE = "cache read", "cache write"
#: What a fault hit: the Vision object, the REST page (a continuation page, one of several separate ranges
#: of one fetch) or the cache (a day file read, or writes into the cache directory).
TARGETS = (VISION_ZIP, VISION_CHECKSUM, REST_FIRST, REST_LATER, REST_RANGES, CACHE_READ, CACHE_WRITE)
_VISION_OBJECTS = {"zip": VISION_ZIP, "checksum": VISION_CHECKSUM}
#: Cache effects that act on writes (nothing can be written), not on a day file's content.
_WRITE_EFFECTS = frozenset({"read_only"})

#: Calendar edges a requested day can sit on (a day on none counts as ``none``).
CALENDAR = ("month end", "year end", "29 Feb", "none")
#: The clock at a fetch: ``now`` on or off the interval's grid, the range's last bar still forming, the
#: virtual clock moving during the fetch (an engine that waited), early (before the 48 h rule's day turns
#: over into publishing) or late in the UTC day, and the engine's local zone (east or west of UTC, or UTC).
CLOCK = (
    "on grid",
    "off grid",
    "forming bar",
    "clock step",
    "early UTC day",
    "late UTC day",
    "zone east of UTC",
    "zone west of UTC",
    "zone UTC",
)
#: A request's shape: where its ends sit, and its length (``longer than any page``: more bars than the
#: largest page any market serves, :data:`~pytest_fcp.core.markets.MAX_PAGE_LIMIT`).
SHAPES = (
    "aligned to days",
    "mid-day on grid",
    "off grid by seconds",
    "one bar",
    "bars within a day",
    "several days",
    "a month or more",
    "longer than any page",
)
#: A fetch in an engine's lifetime: its first, or the same engine asked again minutes, hours or days later,
#: and whether Vision had published more days since the previous fetch.
LIFETIME = ("first fetch", "again minutes later", "again hours later", "again days later", "after Vision published")
#: How old a requested day is at ``now``: young (inside the 48 h rule), old, or a month and more.
AGES = ("young", "old", "a month and more")
#: Where a day cached before a fetch came from: seeded by the world, or written after Vision, REST or both
#: served it in an earlier fetch of the same engine.
ORIGINS = ("seeded", "vision", "rest", "vision and rest")

#: A request spanning this many days (or more) is "a month or more"; a day this many days before ``now`` is
#: "a month and more" old.
MONTH_DAYS = 30
#: The fewest bars a request of each length shape holds (``None``: one bar will do).
_SHAPE_BARS = {"a month or more": None, "longer than any page": MAX_PAGE_LIMIT + 1}

_FAULT_IDS = tuple(FAULTS)
_STATES = DAY_STATES
_INTERVALS = tuple(INTERVALS)
_MARKETS = tuple(MARKETS)


def fault_targets(kind: FaultKind) -> tuple[str, ...]:
    """The targets a fault can hit, from its table entry: its source, its Vision objects, its cache effect."""
    if kind.source == "vision":
        return tuple(_VISION_OBJECTS[o] for o in kind.objects)
    if kind.source == "rest":
        return (REST_FIRST, REST_LATER, REST_RANGES)
    return (CACHE_WRITE,) if kind.effect.kind in _WRITE_EFFECTS else (CACHE_READ,)


def _shape_reachable(shape: str, interval: str) -> bool:
    if shape in ("bars within a day", "mid-day on grid"):
        return bars_per_day(interval) > 1
    return True


def beyond_scenario_limits(cell: Cell) -> bool:
    """Whether ``cell`` needs a request longer than a scenario may make (:data:`SCENARIO_LIMITS`): a month of 1s
    bars is 2.6 million bars, more daily bars than a REST page holds is more than 1,500 days. A real engine
    reaches such cells (the map keeps them); the catalog cannot, so the map names them apart."""
    projection, shape, interval = cell
    if projection != "shape x interval" or shape not in _SHAPE_BARS or interval not in INTERVALS:
        return False
    per_day = bars_per_day(interval)
    bars = _SHAPE_BARS[shape] or MONTH_DAYS * per_day
    days = max(-(-bars // per_day), MONTH_DAYS if shape == "a month or more" else 1)
    return bars > SCENARIO_LIMITS["bars"] or days > SCENARIO_LIMITS["request_days"]


@dataclass(frozen=True)
class Projection:
    """Two dimensions crossed: their names, their values, and which pairs a real engine can reach."""

    name: str
    first: tuple[str, ...]
    second: tuple[str, ...]
    reachable: Callable[[str, str], bool] = lambda a, b: True

    def cells(self) -> list[Cell]:
        """The reachable cells of this projection, in the dimensions' order."""
        return [(self.name, a, b) for a in self.first for b in self.second if self.reachable(a, b)]


#: The projections that matter (see the module docstring), in the order reports list them.
PROJECTIONS: tuple[Projection, ...] = (
    Projection("fault x target", _FAULT_IDS, TARGETS, lambda f, t: t in fault_targets(FAULTS[f])),
    Projection("fault x interval", _FAULT_IDS, _INTERVALS),
    Projection("market x interval", _MARKETS, _INTERVALS, lambda m, i: i in MARKETS[m].intervals),
    Projection("cache state x interval", _STATES, _INTERVALS),
    Projection("calendar x interval", CALENDAR, _INTERVALS),
    Projection("clock x market", CLOCK, _MARKETS),
    Projection("shape x interval", SHAPES, _INTERVALS, _shape_reachable),
    Projection("lifetime x cache state", LIFETIME, _STATES),
    Projection("lifetime x origin", LIFETIME[1:], ORIGINS),
    Projection("age x cache state", AGES, _STATES),
)
_BY_NAME = {p.name: p for p in PROJECTIONS}


def reachable_cells(projections: Iterable[Projection] = PROJECTIONS) -> list[Cell]:
    """Every reachable cell of ``projections``, in report order."""
    return [cell for p in projections for cell in p.cells()]


def is_reachable(cell: Cell) -> bool:
    """Whether ``cell`` is a reachable cell of a known projection."""
    projection = _BY_NAME.get(cell[0])
    return (
        projection is not None
        and cell[1] in projection.first
        and cell[2] in projection.second
        and (projection.reachable(cell[1], cell[2]))
    )
