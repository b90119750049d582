"""What a simulated service answers, whichever door or client asked: an :class:`Answer` (an HTTP status with
headers and body, or a transport failure) carrying the :class:`Target` the request asked for; and
:class:`DoorPort`, what a client door hands each request to (the sealed network is one, below which the
doors stay: they never import it)."""

from __future__ import annotations

import datetime as dt
import errno
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Answer", "DoorPort", "Target", "connection_reset"]


def connection_reset() -> ConnectionResetError:
    """The OS error a peer's reset raises in a reading socket (``[Errno 104] Connection reset by peer``)."""
    return ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")


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
    transport: str | None = None  # "connect" | "timeout" | "reset" (the peer resets the connection mid-response)
    target: Target | None = None  # what the request asked for, as the service understood it


class DoorPort(Protocol):
    """Where a client door sends each request: :meth:`serve` answers it or raises ``refuse(message)``."""

    def serve(
        self, method: str, url: str, deliver: Callable[[Answer], Any], refuse: Callable[[str], BaseException]
    ) -> Any:
        """Answer one request: ``deliver`` turns the :class:`Answer` into the client's response (or raises its
        connect / timeout / reset exception); ``refuse`` builds the client's error for a URL the world does not
        serve."""
