"""requests' door: a ``responses`` mock with one catch-all callback hands every request to the sealed network.

``responses`` patches ``requests.adapters.HTTPAdapter.send``, so a request never reaches urllib3 (the
urllib3 door does not see it again: each request is served and recorded once). Status retries configured
on an adapter (``Retry(status_forcelist=...)``) are replayed by ``responses`` as urllib3 would; each retry
is a request of its own. An adapter's connect and read retries are not: ``responses`` raises the first
connection error or timeout to the caller (one request, one record). Requests to this machine pass through
untouched. moto's own ``responses`` mock (started when a boto3 client first talks to the world) passes the
requests it does not know to this one (``moto.core.models.override_responses_real_send``), so requests
behaves the same before and after.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import requests
import responses
from urllib3.exceptions import ProtocolError

from pytest_fcp.core.hosts import LOCAL_URL
from pytest_fcp.world.answer import connection_reset

if TYPE_CHECKING:
    from pytest_fcp.world.answer import Answer, DoorPort

__all__ = ["UnservedRequestError", "route"]

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_NOT_LOCAL = re.compile(rf"(?!{LOCAL_URL.pattern})", LOCAL_URL.flags)


class UnservedRequestError(requests.exceptions.ConnectionError):
    """The engine asked for a URL the simulated world does not serve."""


def _deliver(answer: Answer, request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
    if answer.transport == "connect":
        raise requests.exceptions.ConnectionError("[Errno 111] Connection refused (simulated)", request=request)
    if answer.transport == "timeout":
        raise requests.exceptions.ReadTimeout("Read timed out. (simulated)", request=request)
    if answer.transport == "reset":  # urllib3's urlopen wraps the socket's error, requests' adapter wraps that
        aborted = ProtocolError("Connection aborted.", connection_reset())
        raise requests.exceptions.ConnectionError(aborted, request=request)
    body = b"" if request.method == "HEAD" else answer.body
    return answer.status, dict(answer.headers or {}), body


@contextlib.contextmanager
def route(network: DoorPort) -> Iterator[None]:
    """Route requests through ``responses`` to ``network``, until closed."""

    def callback(request: requests.PreparedRequest) -> Any:
        method, url = request.method or "GET", str(request.url)
        return network.serve(
            method,
            url,
            lambda answer: _deliver(answer, request),
            lambda message: UnservedRequestError(message, request=request),
        )

    mock = responses.RequestsMock(assert_all_requests_are_fired=False)
    for method in _METHODS:
        mock.add_callback(method, _NOT_LOCAL, callback=callback, content_type=None)
    mock.add_passthru(LOCAL_URL)
    from moto.core.models import override_responses_real_send

    mock.start()
    try:
        override_responses_real_send(mock)
        yield
    finally:
        override_responses_real_send(None)
        mock.stop(allow_assert=False)
        mock.reset()
