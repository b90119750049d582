"""The fault table: every fault's id, what it does (its effect, as data) and what the oracle must know.

Each fault kind is one :class:`FaultKind` entry of :data:`FAULTS`. Its :class:`Effect` names an effect kind
that its source implements once (:mod:`pytest_fcp.world.vision`, :mod:`~pytest_fcp.world.rest`,
:mod:`~pytest_fcp.world.cache_faults`); the oracle reads ``obtainable``, ``rate_limit``, ``reads_as_no_data``,
``unverifiable`` and ``objects``; the cache watch reads ``format_fault``. Adding a fault is one entry here
(and, for a new kind of effect, one function in its source) and a test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_fcp.core.markets import MAX_PAGE_LIMIT

__all__ = [
    "FAULTS",
    "NO_EFFECT",
    "PARAM_RULES",
    "SCOPE_KEYS",
    "Effect",
    "FaultKind",
    "FaultSpecError",
    "faults_for_source",
]


class FaultSpecError(ValueError):
    """A fault that cannot be built; the message says what is wrong and what is allowed."""


@dataclass(frozen=True)
class Effect:
    """What a fault does, as data: an effect ``kind`` the source implements once, plus its constants.

    Vision kinds: ``s3_error`` (status, S3 error code, message), ``connect``, ``timeout`` (param ``timeout``),
    ``reset`` (the peer resets the connection mid-response: ECONNRESET, raised as each client raises it),
    ``delay`` (param ``delay``, then the normal answer), ``truncate`` (param ``keep``), ``html_page``,
    ``alter_values``, ``other_file`` (``swap`` = ``symbol`` or ``interval``, param ``other``).
    REST kinds: ``binance_error`` (status, Binance code, message; param ``retry_after`` where it has one),
    ``html_error`` (status, title), ``connect``, ``timeout``, ``reset``, ``malformed_json``, ``rows_empty``,
    ``rows_keep`` (param ``keep``), ``rows_twice``, ``rows_out_of_range`` (param ``extra``), ``rows_fields``
    (param ``fields``).
    Cache kinds: ``zero_byte``, ``truncate``, ``random_bytes``, ``stream``, ``drop_column``, ``strings``,
    ``ns_times``, ``keep_first``, ``alter_values``, ``repeat_first`` (param ``extra``), ``unreadable``,
    ``read_only``, ``short_body`` (the footer intact over a record batch cut short), ``mixed`` (two writers'
    rows in one file: the middle third twice), ``truncate_on_read`` (param ``keep``: the valid file is cut once
    the engine has opened it).
    """

    kind: str
    status: int = 0
    code: str = ""
    message: str = ""
    swap: str = ""


@dataclass(frozen=True)
class FaultKind:
    """One entry of the fault library: what the fault is, what it does, and what the oracle must know."""

    id: str
    description: str
    effect: Effect
    params: Mapping[str, Any] = field(default_factory=dict)
    #: For Vision faults: which objects it hits (``zip``, ``checksum``).
    objects: tuple[str, ...] = ("zip", "checksum")
    #: Whether the day can still be had from this source when the fault fires on every attempt:
    #: ``yes`` (the answer is late or spoiled in a way a correct engine repairs), ``maybe`` (it depends on
    #: the engine's legitimate choices) or ``no``.
    obtainable: str = "no"
    #: A 429 / 418: the contract allows RateLimitError, and waiting >= Retry-After.
    rate_limit: bool = False
    #: An answer a correct engine may read as "no data" (an empty REST page).
    reads_as_no_data: bool = False
    #: The payload cannot be verified (no CHECKSUM): it may be returned, never cached.
    unverifiable: bool = False
    #: A cache file a generous Arrow reader can still read: judged by the fault while the file is as it was left.
    format_fault: bool = False
    #: The world cuts the valid day file short once the engine has opened it: the engine may serve the rows it
    #: read, or find the file torn and fetch the day; the file the world cut may stay as it was cut.
    cut_while_read: bool = False

    @property
    def source(self) -> str:
        """``vision``, ``rest`` or ``cache``."""
        return self.id.split(".", 1)[0]

    @property
    def needs_days(self) -> bool:
        """Whether a scheduled fault of this kind must name its days (cache files are per day)."""
        return self.source == "cache" and self.effect.kind != "read_only"

    @property
    def takes_attempts(self) -> bool:
        """Whether ``attempts`` applies (cache faults are a file's state before the fetch, not attempts)."""
        return self.source != "cache"

    @property
    def fatal(self) -> bool:
        """Whether the day is lost to this source when the fault fires on every attempt."""
        return self.obtainable == "no"


def _kinds(*kinds: FaultKind) -> dict[str, FaultKind]:
    return {k.id: k for k in kinds}


_S3_ERROR = "s3_error"
_BINANCE = "binance_error"
_RATE_429 = (
    "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute. Please use the "
    "websocket for live updates to avoid polling the API."
)
_BAN_418 = (
    "Way too many requests; IP(127.0.0.1) banned until further notice. Please use the websocket "
    "for live updates to avoid bans."
)
_NO_SUCH_KEY = Effect(_S3_ERROR, 404, "NoSuchKey", "The specified key does not exist.")

FAULTS: dict[str, FaultKind] = _kinds(
    # --- Vision (both doors: HTTPS and the S3 API) ---
    FaultKind(
        "vision.http403",
        "403 AccessDenied with S3's XML body (what Binance's regional blocks look like)",
        Effect(_S3_ERROR, 403, "AccessDenied", "Access Denied"),
    ),
    FaultKind("vision.http404", "404 NoSuchKey although the file is published", _NO_SUCH_KEY),
    FaultKind(
        "vision.http500",
        "500 InternalError with S3's XML body",
        Effect(_S3_ERROR, 500, "InternalError", "We encountered an internal error. Please try again."),
    ),
    FaultKind(
        "vision.http503",
        "503 SlowDown with S3's XML body",
        Effect(_S3_ERROR, 503, "SlowDown", "Please reduce your request rate."),
    ),
    FaultKind("vision.connect_error", "the connection is refused before any byte is sent", Effect("connect")),
    FaultKind(
        "vision.read_timeout", "the server stops answering; the read times out", Effect("timeout"), {"timeout": 30.0}
    ),
    FaultKind(
        "vision.connection_reset",
        "the zip's connection is reset by the peer mid-response (ECONNRESET)",
        Effect("reset"),
        {},
        ("zip",),
    ),
    FaultKind(
        "vision.slow",
        "the answer is right but arrives after `delay` virtual seconds",
        Effect("delay"),
        {"delay": 20.0},
        obtainable="yes",
    ),
    FaultKind(
        "vision.truncated_zip",
        "the zip is cut short (its tail is missing)",
        Effect("truncate"),
        {"keep": 0.5},
        ("zip",),
    ),
    FaultKind(
        "vision.not_a_zip",
        "the zip object holds an HTML error page instead of a zip",
        Effect("html_page"),
        {},
        ("zip",),
    ),
    FaultKind(
        "vision.checksum_mismatch",
        "the zip's values are altered, so its sha256 differs from the published .CHECKSUM",
        Effect("alter_values"),
        {},
        ("zip",),
    ),
    FaultKind(
        "vision.missing_checksum",
        "the .CHECKSUM object is missing (404 NoSuchKey)",
        _NO_SUCH_KEY,
        {},
        ("checksum",),
        obtainable="maybe",  # the genuine zip, unverifiable
        unverifiable=True,
    ),
    FaultKind(
        "vision.checksum_timeout",
        "the .CHECKSUM request times out (the zip answers normally)",
        Effect("timeout"),
        {"timeout": 30.0},
        ("checksum",),
        obtainable="maybe",  # the genuine zip, unverifiable while the .CHECKSUM fails
        unverifiable=True,
    ),
    FaultKind(
        "vision.checksum_connect_error",
        "the .CHECKSUM request's connection is refused (the zip answers normally)",
        Effect("connect"),
        {},
        ("checksum",),
        obtainable="maybe",
        unverifiable=True,
    ),
    FaultKind(
        "vision.checksum_reset",
        "the .CHECKSUM request's connection is reset mid-response (the zip answers normally)",
        Effect("reset"),
        {},
        ("checksum",),
        obtainable="maybe",
        unverifiable=True,
    ),
    FaultKind(
        "vision.wrong_symbol",
        "the published zip (with a matching .CHECKSUM) holds another symbol's file",
        Effect("other_file", swap="symbol"),
        {"other": "ETHUSDT"},
    ),
    FaultKind(
        "vision.wrong_interval",
        "the published zip (with a matching .CHECKSUM) holds another interval's file",
        Effect("other_file", swap="interval"),
        {"other": "1m"},
    ),
    # --- REST ---
    FaultKind(
        "rest.http429",
        "429 with Retry-After and Binance's -1003 body",
        Effect(_BINANCE, 429, "-1003", _RATE_429),
        {"retry_after": 30, "retry_after_format": "seconds"},
        rate_limit=True,
    ),
    FaultKind(
        "rest.http418",
        "418 (IP banned) with Retry-After and Binance's -1003 body",
        Effect(_BINANCE, 418, "-1003", _BAN_418),
        {"retry_after": 120, "retry_after_format": "seconds"},
        rate_limit=True,
    ),
    FaultKind(
        "rest.http500",
        "500 with Binance's -1000 body",
        Effect(_BINANCE, 500, "-1000", "An unknown error occurred while processing the request."),
    ),
    FaultKind("rest.http502", "502 Bad Gateway (HTML body)", Effect("html_error", 502, message="Bad Gateway")),
    FaultKind("rest.http503", "503 with Binance's -1008 body", Effect(_BINANCE, 503, "-1008", "Service Unavailable.")),
    FaultKind("rest.http504", "504 Gateway Timeout (HTML body)", Effect("html_error", 504, message="Gateway Timeout")),
    FaultKind("rest.connect_error", "the connection is refused before any byte is sent", Effect("connect")),
    FaultKind(
        "rest.read_timeout", "the server stops answering; the read times out", Effect("timeout"), {"timeout": 30.0}
    ),
    FaultKind("rest.connection_reset", "the peer resets the connection mid-response (ECONNRESET)", Effect("reset")),
    FaultKind("rest.malformed_json", "200 whose body is cut-off JSON", Effect("malformed_json")),
    FaultKind(
        "rest.empty_page", "200 with an empty list although bars exist", Effect("rows_empty"), reads_as_no_data=True
    ),
    FaultKind(
        "rest.short_page",
        "200 with only the first `keep` rows of the page",
        Effect("rows_keep"),
        {"keep": 3},
        obtainable="maybe",
    ),
    FaultKind(
        "rest.out_of_range",
        "200 whose page also holds `extra` bars before startTime and after endTime",
        Effect("rows_out_of_range"),
        {"extra": 2},
        obtainable="yes",
    ),
    FaultKind("rest.duplicate_rows", "200 whose page repeats every row twice", Effect("rows_twice"), obtainable="yes"),
    FaultKind(
        "rest.row_fields",
        "200 whose rows hold `fields` fields instead of Binance's 12 (cut short, or padded with extra ones)",
        Effect("rows_fields"),
        {"fields": 13},
        obtainable="maybe",  # extra fields may be ignored; missing ones may make the page unreadable
    ),
    # --- Cache (the state of a day's file before the fetch) ---
    FaultKind("cache.zero_byte", "the day's cache file exists with zero bytes", Effect("zero_byte")),
    FaultKind("cache.truncated", "the day's Arrow file is cut short", Effect("truncate"), {"keep": 0.5}),
    FaultKind("cache.random_bytes", "the day's cache file holds random bytes", Effect("random_bytes")),
    FaultKind(
        "cache.arrow_stream",
        "the day's file is Arrow IPC *stream* format instead of file format",
        Effect("stream"),
        format_fault=True,
    ),
    FaultKind("cache.missing_column", "the day's file lacks a column", Effect("drop_column"), {"column": "close"}),
    FaultKind("cache.wrong_types", "the day's file stores prices as strings", Effect("strings"), format_fault=True),
    FaultKind(
        "cache.ns_timestamps",
        "the day's file stores open_time in nanoseconds instead of milliseconds",
        Effect("ns_times"),
        format_fault=True,
    ),
    FaultKind(
        "cache.partial_day",
        "the day's file holds only `keep` of its bars; the missing ones at its `holes` (end, start or middle)",
        Effect("keep_first"),
        {"keep": 0.5, "holes": "end"},
    ),
    FaultKind(
        "cache.stale_day", "the day's file is complete but its values differ from the truth", Effect("alter_values")
    ),
    FaultKind(
        "cache.duplicate_rows",
        "the day's file repeats its first `extra` bars (as two writers appending to one day file leave it)",
        Effect("repeat_first"),
        {"extra": 12},
    ),
    FaultKind("cache.unreadable", "the day's cache file cannot be opened for reading", Effect("unreadable")),
    FaultKind(
        "cache.short_body",
        "the day's Arrow file keeps its footer, but its record batch is cut short (what a torn native write leaves; "
        "polars panics on it)",
        Effect("short_body"),
    ),
    FaultKind(
        "cache.truncated_on_read",
        "the day's valid file is cut to `keep` of its bytes once the engine has opened it (seen by the cache watch)",
        Effect("truncate_on_read"),
        {"keep": 0.5},
        cut_while_read=True,
    ),
    FaultKind(
        "cache.mixed_writers",
        "the day's file mixes two writers' rows: the first two thirds of the day, then the last two thirds "
        "(open times duplicated), a valid Arrow file",
        Effect("mixed"),
    ),
    FaultKind("cache.read_only_dir", "the cache directory cannot be written to", Effect("read_only")),
    # The same effect kind as read_only_dir (nothing can be written; the oracle knows it as such), but made by
    # failing the engine's writes with `error` (ENOSPC: disk full, EIO: I/O error) instead of permissions.
    FaultKind(
        "cache.write_fails",
        "every write into the cache directory fails with `error` (ENOSPC or EIO) after a good download",
        Effect("read_only"),
        {"error": "ENOSPC"},
    ),
)

#: The scope keys every fault takes (beside its parameters).
SCOPE_KEYS = ("days", "attempts", "market", "symbol", "interval", "door")

#: The values each parameter may take: ``(low, high)`` for numbers (inclusive), a tuple of words for words.
#: A ``(fault id, name)`` entry overrides the entry for the name alone.
PARAM_RULES: dict[str | tuple[str, str], tuple[Any, ...]] = {
    "timeout": (0, 3600),
    "delay": (0, 3600),
    "retry_after": (0, 86_400),
    "extra": (0, 1000),
    "keep": (0, 1),
    ("rest.short_page", "keep"): (0, MAX_PAGE_LIMIT),
    "fields": (1, 40),
    "retry_after_format": ("seconds", "http-date"),
    "holes": ("end", "start", "middle"),
    "error": ("ENOSPC", "EIO"),
    "column": ("open", "high", "low", "close", "volume", "open_time", "close_time"),
}


#: Parameter values with which a fault's effect changes nothing: ``(effect kind, name) -> (value, why)``.
NO_EFFECT: dict[tuple[str, str], tuple[float, str]] = {
    ("truncate", "keep"): (1, "keeps the whole file"),
    ("truncate_on_read", "keep"): (1, "keeps the whole file"),
    ("rows_out_of_range", "extra"): (0, "adds no bar"),
    ("repeat_first", "extra"): (0, "repeats no bar"),
    ("delay", "delay"): (0, "delays nothing"),
    ("rows_fields", "fields"): (12, "is Binance's own field count"),
}


def faults_for_source(source: str) -> list[str]:
    """Ids of the library faults that act on ``source``."""
    return [k for k, v in FAULTS.items() if v.source == source]
