"""Where rows come from, the doors to Vision, the contract's two errors, and which answers mean "rate-limited"."""

from __future__ import annotations

__all__ = [
    "CONTRACT_ERRORS",
    "DOORS",
    "OUTCOMES",
    "RATE_LIMIT_STATUSES",
    "SOURCES",
    "error_kind",
    "error_names",
    "is_rate_limited",
]

#: Where a returned row came from, in FCP order.
SOURCES = ("cache", "vision", "rest")

#: The two ways into simulated Vision: HTTPS (httpx) and the S3 API (boto3).
DOORS = ("https", "s3")

#: The errors the contract documents, recognised by class name anywhere in an exception's MRO.
CONTRACT_ERRORS = ("DataSourceError", "RateLimitError")

#: What a fetch may end in: data, or one of the contract's errors.
OUTCOMES = ("data", *CONTRACT_ERRORS)

#: The HTTP statuses by which Binance REST says "rate-limited": 429 (too many request weight units per
#: minute) and 418 (an IP ban after ignoring 429s). Both carry ``Retry-After``; the contract allows
#: ``RateLimitError`` after either, and no REST request before ``Retry-After`` has passed.
RATE_LIMIT_STATUSES = (429, 418)


def is_rate_limited(status: int | None) -> bool:
    """Whether an HTTP ``status`` is one of :data:`RATE_LIMIT_STATUSES` (``None``, no answer, is not)."""
    return status in RATE_LIMIT_STATUSES


def error_names(exc: BaseException) -> set[str]:
    """The class names in ``exc``'s MRO."""
    return {cls.__name__ for cls in type(exc).__mro__}


def error_kind(exc: BaseException) -> str | None:
    """``"RateLimitError"``, ``"DataSourceError"`` or ``None``: the contract error ``exc`` is, by MRO name."""
    names = error_names(exc)
    if "RateLimitError" in names:
        return "RateLimitError"
    if "DataSourceError" in names:
        return "DataSourceError"
    return None
