"""httpx's door: one respx route hands every request to the sealed network.

No TLS handshake ever happens behind respx, so an httpx client's TLS context (loading the CA bundle costs
tens of milliseconds) is built once per distinct ``verify`` / ``trust_env`` setting and shared by every
client made while a world is active; a client with a certificate or its own ``SSLContext`` gets exactly
what it asked for.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import httpx._transports.default as _transports  # where HTTPTransport looks up create_ssl_context
import respx

from pytest_fcp.world.answer import connection_reset

if TYPE_CHECKING:
    from pytest_fcp.world.answer import Answer, DoorPort

__all__ = ["UnservedRequestError", "route"]


class UnservedRequestError(httpx.ConnectError):
    """The engine asked for a URL the simulated world does not serve."""


_real_create_ssl_context = getattr(_transports, "create_ssl_context", None)
_ssl_contexts: dict[tuple[Any, ...], Any] = {}
_ssl_lock = threading.Lock()


def _shared_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True, **options: Any) -> Any:
    """httpx's ``create_ssl_context``, built once per distinct settings (see the module docstring)."""
    assert _real_create_ssl_context is not None
    if cert is not None or not isinstance(verify, bool | str):
        return _real_create_ssl_context(verify=verify, cert=cert, trust_env=trust_env, **options)
    env = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")) if trust_env else None
    key = (verify, trust_env, env, tuple(sorted(options.items())))
    with _ssl_lock:
        context = _ssl_contexts.get(key)
        if context is None:
            context = _ssl_contexts[key] = _real_create_ssl_context(
                verify=verify, cert=cert, trust_env=trust_env, **options
            )
    return context


def _to_httpx(answer: Answer, request: httpx.Request) -> httpx.Response:
    if answer.transport == "connect":
        raise httpx.ConnectError("[Errno 111] Connection refused (simulated)", request=request)
    if answer.transport == "timeout":
        raise httpx.ReadTimeout("The read operation timed out (simulated)", request=request)
    if answer.transport == "reset":  # httpcore maps the socket's OSError to ReadError, httpx to its own
        raise httpx.ReadError(f"{connection_reset()} (simulated)", request=request)
    body = b"" if request.method == "HEAD" else answer.body
    return httpx.Response(answer.status, headers=answer.headers or {}, content=body, request=request)


@contextlib.contextmanager
def route(network: DoorPort) -> Iterator[None]:
    """Route httpx through respx to ``network`` and share TLS contexts, until closed."""

    def dispatch(request: httpx.Request) -> httpx.Response:
        return network.serve(
            request.method,
            str(request.url),
            lambda answer: _to_httpx(answer, request),
            lambda message: UnservedRequestError(message, request=request),
        )

    router = respx.MockRouter(assert_all_called=False, assert_all_mocked=True)
    router.route().mock(side_effect=dispatch)  # one route; the host picks the door (cheaper than patterns)
    router.start()
    if _real_create_ssl_context is not None:
        _transports.create_ssl_context = _shared_ssl_context
    try:
        yield
    finally:
        if _real_create_ssl_context is not None:
            _transports.create_ssl_context = _real_create_ssl_context
        router.stop(quiet=True)
