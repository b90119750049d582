"""The cache-state vocabulary, defined once: how the harness judges a day file against the truth, the
decision-path word for each state, and the issue names of a truth-less health scan."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BROKEN_STATES",
    "DAY_STATES",
    "HEALTH_ISSUES",
    "PATH_ORDER",
    "PATH_WORDS",
    "DayFileState",
    "health_path_word",
    "path_word",
]

#: A day file judged against the truth: ``missing``, ``unreadable`` (not an Arrow file or stream, or cannot
#: be opened), ``schema`` (a needed column is missing or not numeric), ``partial`` (right values, bars
#: missing), ``stale`` (values differ from the truth), ``extra`` (bars outside the day or duplicated),
#: ``corrupt`` (as a format fault left it) or ``valid``.
DAY_STATES = ("valid", "missing", "partial", "stale", "unreadable", "schema", "extra", "corrupt")
#: The states of a file that is there but not the day's true bars.
BROKEN_STATES = tuple(s for s in DAY_STATES if s not in ("valid", "missing"))

#: The word each state takes in a decision path (``cache miss 3d -> ...``), in the order paths list them.
PATH_WORDS = {
    "valid": "hit",
    "missing": "miss",
    "unreadable": "corrupt",
    "schema": "corrupt",
    "extra": "corrupt",
    "corrupt": "corrupt",
    "partial": "partial",
    "stale": "stale",
}
#: The distinct decision-path words, in the order a path lists its cache counts (``cache hit 2d cache miss 1d``).
PATH_ORDER = tuple(dict.fromkeys(PATH_WORDS.values()))


@dataclass(frozen=True)
class DayFileState:
    """What a day's cache file holds, compared with the truth (``status`` is one of :data:`DAY_STATES`)."""

    status: str
    rows: int = 0
    size: int = 0
    detail: str = ""
    fmt: str = ""
    #: The file is as the world carried it in from a saved cache (``cache_from``): another run, perhaps another
    #: engine or release, wrote it, so the engine may read it or fetch its day anew.
    carried: bool = False

    @property
    def valid(self) -> bool:
        """Whether the file holds exactly the day's true bars."""
        return self.status == "valid"


def path_word(status: str) -> str:
    """The decision-path word of a day state."""
    return PATH_WORDS[status]


#: Issues a health scan (no truth to compare with) can name, in order of precedence, with the cache fault
#: each corresponds to (``None``: none does) and the decision-path word a file with it reads as.
HEALTH_ISSUES: dict[str, tuple[str | None, str]] = {
    "zero_byte": ("cache.zero_byte", "corrupt"),
    "unreadable": ("cache.unreadable", "corrupt"),
    "truncated": ("cache.truncated", "corrupt"),
    "not_arrow": ("cache.random_bytes", "corrupt"),
    "arrow_stream": ("cache.arrow_stream", "corrupt"),
    "missing_column": ("cache.missing_column", "corrupt"),
    "wrong_types": ("cache.wrong_types", "corrupt"),
    "ns_timestamps": ("cache.ns_timestamps", "corrupt"),
    "wrong_schema": (None, "corrupt"),
    "null_times": (None, "corrupt"),
    "out_of_day": (None, "corrupt"),
    "off_grid": (None, "corrupt"),
    "duplicate": ("cache.duplicate_rows", "corrupt"),  # or cache.mixed_writers (two writers' rows)
    "unsorted": (None, "corrupt"),
    "partial_day": ("cache.partial_day", "partial"),
    "stale_day": ("cache.stale_day", "stale"),
    "too_recent": (None, "recent"),
}


def health_path_word(issue: str) -> str:
    """The decision-path word of a health issue (``ok`` reads as a hit, ``missing`` as a miss)."""
    if issue == "ok":
        return "hit"
    if issue == "missing":
        return "miss"
    return HEALTH_ISSUES.get(issue, (None, "corrupt"))[1]
