"""The sealed network: every request an engine makes reaches the simulated world or fails loudly.

* Each HTTP client library has a *door* (``world/clients/``): httpx through respx, requests through
  ``responses``, bare urllib3 through its connection pool, aiohttp through ``aioresponses``. Every door hands
  the request to :meth:`SealedNetwork.serve`: ``data.binance.vision`` goes to Vision's HTTPS door, the three
  REST klines endpoints to the REST API, and anything else is a *violation* naming the URL, raised in the
  client's own exception type (the test then fails with that URL, whatever the engine did with the error).
* botocore requests for the bucket ``data.binance.vision`` go to Vision's S3 door (a ``before-send``
  handler placed ahead of moto's); other AWS calls are moto's.
* Real sockets cannot connect: ``socket.connect`` / ``connect_ex`` / ``getaddrinfo`` for internet
  addresses raise :class:`SealedNetworkError` and record a violation.
* Starting is one ``ExitStack``: a door that fails to open undoes the doors opened before it.
"""

from __future__ import annotations

import contextlib
import socket
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from pytest_fcp.core.hosts import is_local
from pytest_fcp.core.markets import REST_HOSTS, VISION_HOST
from pytest_fcp.core.sources import is_rate_limited
from pytest_fcp.world.answer import Answer, connection_reset
from pytest_fcp.world.clients import open_doors
from pytest_fcp.world.vision import BUCKET

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_fcp.world.clock import VirtualClock
    from pytest_fcp.world.recorder import Recorder
    from pytest_fcp.world.rest import RestApi
    from pytest_fcp.world.vision import VisionBucket

__all__ = ["SealedNetwork", "SealedNetworkError", "active_network"]


class SealedNetworkError(OSError):
    """A real network connection was attempted while the simulated world was active."""


_ACTIVE: list[SealedNetwork] = []
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


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
    name = host.decode("ascii", "replace") if isinstance(host, bytes) else host
    if network is not None and not is_local(name):
        network.recorder.violation("dns", f"real DNS lookup of {host!r}")
        raise socket.gaierror(socket.EAI_NONAME, f"pytest-fcp: DNS lookup of {host!r} blocked (sealed network)")
    return _real_getaddrinfo(host, *args, **kwargs)


@contextlib.contextmanager
def _guarded(network: SealedNetwork) -> Any:
    """Make ``network`` the active one; the first one active guards sockets and DNS."""
    _ACTIVE.append(network)
    if len(_ACTIVE) == 1:
        socket.socket.connect = _guard_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = _guard_connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = _guard_getaddrinfo
    try:
        yield
    finally:
        if network in _ACTIVE:
            _ACTIVE.remove(network)
        if not _ACTIVE:
            socket.socket.connect = _real_connect  # type: ignore[method-assign]
            socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]
            socket.getaddrinfo = _real_getaddrinfo


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
        self._stack: contextlib.ExitStack | None = None

    def start(self) -> None:
        """Guard sockets and DNS, then open every installed client's door (undone in full if one fails)."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(_guarded(self))
            open_doors(self, stack)
            self._stack = stack.pop_all()

    def stop(self) -> None:
        """Undo :meth:`start`."""
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    # --- answering ----------------------------------------------------------------------------------
    def serve(
        self,
        method: str,
        url: str,
        deliver: Callable[[Answer], Any],
        refuse: Callable[[str], BaseException],
    ) -> Any:
        """Answer one request of any client: Vision, REST, or a recorded violation raised as ``refuse(message)``."""
        parts = urllib.parse.urlsplit(url)
        host, path = parts.hostname, parts.path
        if host == VISION_HOST and method in ("GET", "HEAD"):
            key = urllib.parse.unquote(path.lstrip("/"))
            return self.exchange("vision", "https", method, url, lambda: self.vision.answer("https", key, url), deliver)
        if host is not None and host in REST_HOSTS and method == "GET" and self.rest.serves(host, path):
            params = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
            return self.exchange("rest", "https", method, url, lambda: self.rest.answer(host, params, url), deliver)
        self.recorder.violation("unserved", f"{method} {url}")
        raise refuse(
            f"pytest-fcp: {method} {url} is not served by the simulated world "
            f"(it serves https://{VISION_HOST}/data/... and the klines paths of {', '.join(REST_HOSTS)})"
        )

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
        # the client's response says what it got (an S3 range read is a 206); a bare tuple defers to the answer
        status = getattr(result, "status_code", None) or getattr(result, "status", None) or answer.status
        headers = getattr(result, "headers", None) or answer.headers or {}
        retry_after = headers.get("Retry-After") if is_rate_limited(status) else None
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
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
    from moto.core.botocore_stubber import MockRawResponse
    from urllib3.exceptions import ProtocolError

    url = request.url.split("?", 1)[0]

    def deliver(answer: Answer) -> Any:
        if answer.transport == "connect":
            raise EndpointConnectionError(endpoint_url=url)
        if answer.transport == "timeout":
            raise ReadTimeoutError(endpoint_url=url)
        if answer.transport == "reset":  # botocore's URLLib3Session turns urllib3's ProtocolError into this
            aborted = ProtocolError("Connection aborted.", connection_reset())
            raise ConnectionClosedError(endpoint_url=url, error=aborted, request=request)
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
