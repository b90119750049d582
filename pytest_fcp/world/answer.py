"""What a simulated service answers, whichever door or client asked: an :class:`Answer` (an HTTP status with
headers and body, or a transport failure) carrying the :class:`Target` the request asked for."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["Answer", "Target"]


@dataclass(frozen=True)
class Target:
    """What a request asked for, as the service that answered it understood it."""

    market: str | None = None
    symbol: str | None = None
    interval: str | None = None
    days: tuple[dt.date, ...] = ()  # the UTC days the request asked about
    obj: str | None = None  # Vision: "zip" or "checksum"
    weight: int = 0  # REST: the request weight Binance counts


@dataclass(frozen=True)
class Answer:
    """A door-neutral answer: an HTTP status with headers and body, or a transport failure."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] | None = None
    transport: str | None = None  # "connect" | "timeout"
    target: Target | None = None  # what the request asked for, as the service understood it
