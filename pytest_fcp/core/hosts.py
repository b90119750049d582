"""This machine's host (loopback), whose requests are never the simulated world's business."""

from __future__ import annotations

import ipaddress
import re
import urllib.parse

__all__ = ["LOCAL_NAMES", "LOCAL_URL", "LOOPBACK_V4", "is_local", "is_local_url"]

#: This machine's names besides the IPv4 loopback block: ``localhost`` and IPv6's ``::1`` (bare, as a socket
#: or DNS call names it, and bracketed, as a URL does).
LOCAL_NAMES = frozenset({"localhost", "::1", "[::1]"})
#: IPv4 loopback: every 127.x.y.z address.
LOOPBACK_V4 = ipaddress.IPv4Network("127.0.0.0/8")

#: A URL on this machine, for client mocks that match URLs by regular expression (``responses``,
#: ``aioresponses``): http(s), a host of :func:`is_local`, any port, then a path, query, fragment or nothing.
LOCAL_URL = re.compile(
    r"https?://(?:localhost|\[::1\]|127(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3})(?::\d+)?(?:[/?#]|$)",
    re.IGNORECASE,
)


def is_local(host: str | None) -> bool:
    """Whether ``host`` is this machine: ``None`` (no host), ``localhost``, 127.0.0.0/8, ``::1`` or ``[::1]``."""
    if host is None:
        return True
    name = host.lower()
    if name in LOCAL_NAMES:
        return True
    try:
        return ipaddress.IPv4Address(name) in LOOPBACK_V4
    except ValueError:
        return False


def is_local_url(url: str) -> bool:
    """Whether ``url`` has a host and it is this machine (see :func:`is_local`)."""
    host = urllib.parse.urlsplit(url).hostname
    return host is not None and is_local(host)
