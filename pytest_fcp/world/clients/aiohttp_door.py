"""aiohttp's door: an ``aioresponses`` mock with one catch-all callback per method hands every
``ClientSession`` request to the sealed network.

``aioresponses`` patches ``ClientSession._request``, so no connector, resolver or socket is used.
Connect failures become ``aiohttp.ClientConnectorError``, timeouts ``aiohttp.ServerTimeoutError`` (also an
``asyncio.TimeoutError``), a reset ``aiohttp.ClientOSError`` (errno 104), as aiohttp raises them. Requests
to this machine pass through untouched. The URL served and recorded is the one aioresponses normalises
(query parameters sorted).
"""

from __future__ import annotations

import contextlib
import inspect
import re
import types
import unittest.mock
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aioresponses import CallbackResult, aioresponses

from pytest_fcp.core.hosts import LOCAL_URL
from pytest_fcp.world.answer import connection_reset

if TYPE_CHECKING:
    from pytest_fcp.world.answer import Answer, DoorPort

__all__ = ["UnservedRequestError", "route"]

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
#: Every URL but this machine's (those match no route and pass through: ``passthrough_unmatched``).
_NOT_LOCAL = re.compile(rf"(?!{LOCAL_URL.pattern})", LOCAL_URL.flags)


class UnservedRequestError(aiohttp.ClientConnectionError):
    """The engine asked for a URL the simulated world does not serve."""


# aioresponses 0.7.9 predates aiohttp 3.14; the two shims below do what its open PRs #288 and #292 do.
_NO_WRITER = types.SimpleNamespace(output_size=0)  # the request "was sent": nothing left to write


class _Response(aiohttp.ClientResponse):
    """aiohttp's response as aioresponses builds it; aiohttp 3.14 also wants the (spent) stream writer."""

    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        if "stream_writer" in _INIT_PARAMETERS:
            kwargs.setdefault("stream_writer", _NO_WRITER)
        super().__init__(method, url, **kwargs)


_INIT_PARAMETERS = frozenset(inspect.signature(aiohttp.ClientResponse.__init__).parameters)


class _SpentParser:
    """Stands in for the HTTP parser of a response that arrived whole: nothing to pause, nothing left to parse."""

    def pause_reading(self) -> None:
        """Nothing to pause."""

    def feed_data(self, data: bytes) -> tuple[tuple[()], bool, bytes]:
        """Nothing left to parse."""
        return (), False, b""


def _stream_reader(loop: Any = None) -> aiohttp.StreamReader:
    """aioresponses' body stream; on aiohttp 3.14+ flow control (a body over 128 KiB) goes through the
    protocol's parser, which a mocked response lacks (aioresponses 0.7.9 fails there: its PR #292)."""
    protocol = ResponseHandler(loop=loop)
    if getattr(protocol, "_parser", False) is None:
        protocol._parser = _SpentParser()  # type: ignore[assignment]
    return aiohttp.StreamReader(protocol, limit=2**16, loop=loop)


def _deliver(answer: Answer, method: str, url: Any) -> CallbackResult:
    if answer.transport == "connect":
        key = types.SimpleNamespace(host=url.host, port=url.port, is_ssl=url.scheme == "https", ssl=True)
        raise aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused (simulated)"))  # type: ignore[arg-type]
    if answer.transport == "timeout":
        raise aiohttp.ServerTimeoutError(f"Timeout on reading data from socket (simulated): {url}")
    if answer.transport == "reset":  # the protocol's connection_lost turns the OSError into ClientOSError
        raise aiohttp.ClientOSError(*connection_reset().args)
    headers = dict(answer.headers or {})
    content_type = headers.get("Content-Type", "application/octet-stream")
    body = b"" if method == "HEAD" else answer.body
    return CallbackResult(
        method=method,
        status=answer.status,
        body=body,
        headers=headers,
        content_type=content_type,
        response_class=_Response,
    )


@contextlib.contextmanager
def route(network: DoorPort) -> Iterator[None]:
    """Route aiohttp's ``ClientSession`` through ``aioresponses`` to ``network``, until closed."""

    def callback(method: str) -> Any:
        def answer(url: Any, **_: Any) -> CallbackResult:
            return network.serve(method, str(url), lambda reply: _deliver(reply, method, url), UnservedRequestError)

        return answer

    mock = aioresponses(passthrough_unmatched=True)

    async def request(session: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> Any:
        return await mock._request_mock(session, *args, **kwargs)

    # aioresponses' own patcher builds an autospec on every start (~4 ms a world); a plain one does the same job
    mock.patcher = unittest.mock.patch("aiohttp.client.ClientSession._request", new=request)
    with contextlib.ExitStack() as stack:
        stack.enter_context(unittest.mock.patch("aioresponses.core.stream_reader_factory", new=_stream_reader))
        mock.start()  # before adding: starting clears the routes
        stack.callback(mock.stop)
        for method in _METHODS:
            mock.add(_NOT_LOCAL, method=method, callback=callback(method), repeat=True)
        yield
