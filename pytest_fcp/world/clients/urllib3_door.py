"""Bare urllib3's door: ``HTTPConnectionPool._make_request`` (where a pooled connection would touch the
wire) hands the request to the sealed network.

Patching there keeps urllib3's own behaviour around it: ``urlopen``'s retries (each one a request of its
own, connect and read errors counted as urllib3 counts them), redirects, ``MaxRetryError``, releasing the
connection. Requests to this machine go to the real method. ``requests`` is served by its own door before
it reaches urllib3, so a request is never served twice.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import urllib3
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import HTTPError, NewConnectionError, ReadTimeoutError

from pytest_fcp.core.hosts import is_local
from pytest_fcp.world.answer import connection_reset

if TYPE_CHECKING:
    from pytest_fcp.world.answer import Answer, DoorPort

__all__ = ["UnservedRequestError", "route"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


class UnservedRequestError(HTTPError):
    """The engine asked for a URL the simulated world does not serve (never retried by urllib3)."""


def _full_url(pool: HTTPConnectionPool, url: str) -> str:
    if "://" in url:
        return url
    host = f"[{pool.host}]" if ":" in pool.host else pool.host
    port = "" if pool.port in (None, _DEFAULT_PORTS.get(pool.scheme)) else f":{pool.port}"
    return f"{pool.scheme}://{host}{port}{url}"


@contextlib.contextmanager
def route(network: DoorPort) -> Iterator[None]:
    """Route urllib3's connection pools to ``network``, until closed."""
    real = HTTPConnectionPool._make_request

    def make_request(pool: HTTPConnectionPool, conn: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if is_local(pool.host):
            return real(pool, conn, method, url, *args, **kwargs)
        full = _full_url(pool, url)

        def deliver(answer: Answer) -> urllib3.HTTPResponse:
            if answer.transport == "connect":
                raise NewConnectionError(
                    conn, "Failed to establish a new connection: [Errno 111] Connection refused (simulated)"
                )
            if answer.transport == "timeout":
                raise ReadTimeoutError(pool, full, "Read timed out. (simulated)")
            if answer.transport == "reset":  # as conn.getresponse() raises it: urlopen wraps it, retries it
                raise connection_reset()
            body = b"" if method == "HEAD" else answer.body
            return urllib3.HTTPResponse(
                body=io.BytesIO(body),
                headers=answer.headers or {},
                status=answer.status,
                preload_content=kwargs.get("preload_content", True),
                decode_content=kwargs.get("decode_content", True),
                pool=pool,
                connection=kwargs.get("response_conn"),
                retries=kwargs.get("retries"),
                enforce_content_length=False,
                request_method=method,
                request_url=full,
            )

        return network.serve(method, full, deliver, UnservedRequestError)

    HTTPConnectionPool._make_request = make_request  # type: ignore[method-assign]
    try:
        yield
    finally:
        HTTPConnectionPool._make_request = real  # type: ignore[method-assign]
