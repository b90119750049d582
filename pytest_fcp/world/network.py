"""The sealed network: every request an engine makes reaches the simulated world or fails loudly.

* httpx requests are routed by respx: ``data.binance.vision`` to Vision's HTTPS door, the three REST hosts
  to the REST API, and everything else to a catch-all that records a *violation* naming the URL (the test
  then fails with that URL, whatever the engine did with the error it got).
* botocore requests for the bucket ``data.binance.vision`` go to Vision's S3 door (a ``before-send``
  handler placed ahead of moto's); other AWS calls are moto's.
* Real sockets cannot connect: ``socket.connect`` / ``connect_ex`` / ``getaddrinfo`` for internet
  addresses raise :class:`SealedNetworkError` and record a violation.
* No TLS handshake ever happens behind respx, so an httpx client's TLS context (loading the CA bundle costs
  tens of milliseconds) is built once per distinct ``verify`` / ``trust_env`` setting and shared by every
  client made while a world is active; a client with a certificate or its own ``SSLContext`` gets exactly
  what it asked for.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

import httpx
import httpx._transports.default as _transports  # where HTTPTransport looks up create_ssl_context
import respx

from pytest_fcp.core.markets import MARKETS
from pytest_fcp.world.answer import Answer
from pytest_fcp.world.vision import BUCKET

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_fcp.world.clock import VirtualClock
    from pytest_fcp.world.recorder import Recorder
    from pytest_fcp.world.rest import RestApi
    from pytest_fcp.world.vision import VisionBucket

__all__ = ["SealedNetwork", "SealedNetworkError", "UnservedRequestError", "active_network"]

VISION_HOST = BUCKET
REST_HOSTS = tuple(spec.rest_host for spec in MARKETS.values())


class SealedNetworkError(OSError):
    """A real network connection was attempted while the simulated world was active."""


class UnservedRequestError(httpx.ConnectError):
    """The engine asked for a URL the simulated world does not serve."""


_ACTIVE: list[SealedNetwork] = []
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


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


def active_network() -> SealedNetwork | None:
    """The sealed network of the world that is running, if one is."""
    return _ACTIVE[-1] if _ACTIVE else None


def _blocked(family: int) -> bool:
    return family in (socket.AF_INET, socket.AF_INET6)


def _guard_connect(sock: socket.socket, address: Any) -> None:
    network = active_network()
    if network is not None and _blocked(sock.family):
        network.recorder.violation("socket", f"real socket connect to {address!r}")
        raise SealedNetworkError(f"pytest-fcp: real network access to {address!r} is blocked while the world is active")
    _real_connect(sock, address)


def _guard_connect_ex(sock: socket.socket, address: Any) -> int:
    network = active_network()
    if network is not None and _blocked(sock.family):
        network.recorder.violation("socket", f"real socket connect to {address!r}")
        raise SealedNetworkError(f"pytest-fcp: real network access to {address!r} is blocked while the world is active")
    return _real_connect_ex(sock, address)


def _guard_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    network = active_network()
    if network is not None and host not in (None, "localhost", "127.0.0.1", "::1"):
        network.recorder.violation("dns", f"real DNS lookup of {host!r}")
        raise socket.gaierror(socket.EAI_NONAME, f"pytest-fcp: DNS lookup of {host!r} blocked (sealed network)")
    return _real_getaddrinfo(host, *args, **kwargs)


def _to_httpx(answer: Answer, request: httpx.Request, what: str) -> httpx.Response:
    if answer.transport == "connect":
        raise httpx.ConnectError(f"[Errno 111] Connection refused ({what}, simulated)", request=request)
    if answer.transport == "timeout":
        raise httpx.ReadTimeout(f"The read operation timed out ({what}, simulated)", request=request)
    body = b"" if request.method == "HEAD" else answer.body
    return httpx.Response(answer.status, headers=answer.headers or {}, content=body, request=request)


class SealedNetwork:
    """Routes every request to Vision or REST and records it. Ports: the two services, the ``recorder``, the
    ``clock``, ``before_request`` (called before each request is answered: the world polls the cache then,
    so cache operations and requests are recorded in the order they happened) and ``on_s3`` (called when a
    botocore client first talks to the world: moto's mock starts then)."""

    def __init__(
        self,
        vision: VisionBucket,
        rest: RestApi,
        recorder: Recorder,
        clock: VirtualClock,
        before_request: Callable[[], None],
        on_s3: Callable[[], None],
    ) -> None:
        self.vision, self.rest, self.recorder, self.clock = vision, rest, recorder, clock
        self.before_request, self.on_s3 = before_request, on_s3
        self.router: respx.MockRouter | None = None

    def start(self) -> None:
        """Route httpx through respx, guard sockets and DNS, share TLS contexts."""
        router = respx.MockRouter(assert_all_called=False, assert_all_mocked=True)
        router.route().mock(side_effect=self._dispatch)  # one route; the host picks the door (cheaper than patterns)
        router.start()
        self.router = router
        _ACTIVE.append(self)
        if len(_ACTIVE) == 1:
            socket.socket.connect = _guard_connect  # type: ignore[method-assign]
            socket.socket.connect_ex = _guard_connect_ex  # type: ignore[method-assign]
            socket.getaddrinfo = _guard_getaddrinfo
            if _real_create_ssl_context is not None:
                _transports.create_ssl_context = _shared_ssl_context

    def stop(self) -> None:
        """Undo :meth:`start`."""
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        if not _ACTIVE:
            socket.socket.connect = _real_connect  # type: ignore[method-assign]
            socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]
            socket.getaddrinfo = _real_getaddrinfo
            if _real_create_ssl_context is not None:
                _transports.create_ssl_context = _real_create_ssl_context
        if self.router is not None:
            self.router.stop(quiet=True)
            self.router = None

    # --- handlers ------------------------------------------------------------------------------------
    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host == VISION_HOST:
            return self._vision(request)
        if host in REST_HOSTS:
            return self._rest(request)
        return self._unserved(request)

    def exchange(
        self, source: str, door: str, method: str, url: str, ask: Callable[[], Answer], deliver: Callable[[Answer], Any]
    ) -> Any:
        """Answer one request (``ask`` the service, ``deliver`` in the client's terms) and record it."""
        self.before_request()
        v0, r0 = self.clock.now(), time.perf_counter()
        answer: Answer | None = None
        try:
            answer = ask()
            result = deliver(answer)
        except Exception as exc:
            target = answer.target if answer is not None else None
            self.recorder.http(
                source, door, method, url, target, error=type(exc).__name__, v0=v0, r0=r0, now=self.clock.now()
            )
            raise
        status = getattr(result, "status_code", None) or getattr(result, "status", None)
        retry_after = result.headers.get("Retry-After") if status in (418, 429) else None
        self.recorder.http(
            source,
            door,
            method,
            url,
            answer.target,
            status=status,
            v0=v0,
            r0=r0,
            now=self.clock.now(),
            retry_after=retry_after,
        )
        return result

    def _vision(self, request: httpx.Request) -> httpx.Response:
        key = urllib.parse.unquote(request.url.path.lstrip("/"))
        url = str(request.url)
        if request.method not in ("GET", "HEAD"):
            return self._unserved(request)

        return self.exchange(
            "vision",
            "https",
            request.method,
            url,
            lambda: self.vision.answer("https", key, url),
            lambda answer: _to_httpx(answer, request, "Vision"),
        )

    def _rest(self, request: httpx.Request) -> httpx.Response:
        host, path, url = request.url.host, request.url.path, str(request.url)
        if request.method != "GET" or not self.rest.serves(host, path):
            return self._unserved(request)
        params = dict(request.url.params.multi_items())
        return self.exchange(
            "rest",
            "https",
            request.method,
            url,
            lambda: self.rest.answer(host, params, url),
            lambda answer: _to_httpx(answer, request, "REST"),
        )

    def _unserved(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.recorder.violation("unserved", f"{request.method} {url}")
        raise UnservedRequestError(
            f"pytest-fcp: {request.method} {url} is not served by the simulated world "
            f"(it serves https://{VISION_HOST}/data/... and the klines paths of {', '.join(REST_HOSTS)})",
            request=request,
        )


# --- the S3 API door ------------------------------------------------------------------------------
def _bucket_and_key(url: str) -> tuple[str, str] | None:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    path = urllib.parse.unquote(parts.path)
    if host.startswith(BUCKET + ".s3"):  # virtual-hosted style
        return BUCKET, path.lstrip("/")
    if host.startswith("s3.") or host.startswith("s3-") or host == "s3.amazonaws.com":  # path style
        bucket, _, key = path.lstrip("/").partition("/")
        return bucket, key
    return None


def _s3_before_send(request: Any, **_: Any) -> Any:
    """botocore ``before-send`` handler: answers GetObject/HeadObject on the Vision bucket."""
    network = active_network()
    if network is None:
        return None
    network.on_s3()  # other AWS calls (ListObjects ...) are moto's
    located = _bucket_and_key(request.url)
    if located is None or located[0] != BUCKET or not located[1] or request.method not in ("GET", "HEAD"):
        return None
    key = located[1]
    from botocore.awsrequest import AWSResponse
    from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
    from moto.core.botocore_stubber import MockRawResponse

    url = request.url.split("?", 1)[0]

    def deliver(answer: Answer) -> Any:
        if answer.transport == "connect":
            raise EndpointConnectionError(endpoint_url=url)
        if answer.transport == "timeout":
            raise ReadTimeoutError(endpoint_url=url)
        body, status, headers = answer.body, answer.status, dict(answer.headers or {})
        wanted = request.headers.get("Range")
        if status == 200 and wanted:
            rng = wanted.decode() if isinstance(wanted, bytes) else str(wanted)
            first, _, last = rng.removeprefix("bytes=").partition("-")
            lo = int(first or 0)
            hi = min(int(last), len(body) - 1) if last else len(body) - 1
            headers["Content-Range"] = f"bytes {lo}-{hi}/{len(body)}"
            body, status = body[lo : hi + 1], 206
            headers["Content-Length"] = str(len(body))
        if request.method == "HEAD":
            body = b""
        return AWSResponse(url, status, headers, MockRawResponse(body))

    return network.exchange("vision", "s3", request.method, url, lambda: network.vision.answer("s3", key, url), deliver)


def _install_s3_door() -> None:
    """Place the S3 door ahead of moto's stubber in botocore's built-in handlers (once per process)."""
    import moto.core.models  # noqa: F401 - registers moto's stubber in BUILTIN_HANDLERS
    from botocore.handlers import BUILTIN_HANDLERS

    entry = ("before-send", _s3_before_send)
    if entry in BUILTIN_HANDLERS:
        return
    from moto.core.models import botocore_stubber

    moto_index = next(
        (i for i, item in enumerate(BUILTIN_HANDLERS) if item[0] == "before-send" and item[1] is botocore_stubber),
        len(BUILTIN_HANDLERS),
    )
    BUILTIN_HANDLERS.insert(moto_index, entry)


_install_s3_door()
