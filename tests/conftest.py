"""Shared helpers for pytest-fcp's own tests."""

from __future__ import annotations

import datetime as dt
import ipaddress
import pathlib
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests.engines.alt_engine is importable by name (as engines plug in)
    sys.path.insert(0, str(ROOT))

ALT = "tests.engines.alt_engine:create"


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def run_in_threads(*targets: Callable[[], object]) -> None:
    """Run each target in its own thread at once, switching threads as often as CPython allows."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=target) for target in targets]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(old)


# --- the suite seals itself: no real DNS lookup, no connection beyond loopback -------------------------------
# Installed when this conftest is imported, before any test module imports pytest_fcp.world.network (which
# keeps what it finds as "the real" functions and puts them back when a world stops).
_REAL_CONNECT, _REAL_CONNECT_EX, _REAL_GETADDRINFO = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
_LOCAL_NAMES = {None, "", "localhost", "localhost.localdomain", "ip6-localhost"}
NETWORK_OFFENCES: list[str] = []


def _loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _offence(what: str) -> OSError:
    NETWORK_OFFENCES.append(what)
    return ConnectionRefusedError(f"pytest-fcp's own tests never use the real network: {what} was blocked")


def _sealed_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _loopback(host):
        raise _offence(f"DNS lookup of {host!r}")
    return _REAL_GETADDRINFO(host, *args, **kwargs)


def _check_address(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
        raise _offence(f"connection to {address[0]}:{address[1]}")


def _sealed_connect(sock: socket.socket, address: Any) -> None:
    _check_address(sock, address)
    return _REAL_CONNECT(sock, address)


def _sealed_connect_ex(sock: socket.socket, address: Any) -> int:
    _check_address(sock, address)
    return _REAL_CONNECT_EX(sock, address)


def seal_network() -> None:
    """Block real DNS lookups and connections beyond loopback in this process (the suite's own guard)."""
    socket.socket.connect = _sealed_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _sealed_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _sealed_getaddrinfo


seal_network()


@pytest.fixture(autouse=True)
def _no_real_network() -> Iterator[None]:
    """Fail the test that tried to reach the real network, even if the code under test swallowed the error."""
    if socket.getaddrinfo is _REAL_GETADDRINFO:  # something put the real one back: seal again
        seal_network()
    NETWORK_OFFENCES.clear()
    yield
    if NETWORK_OFFENCES:
        found = ", ".join(dict.fromkeys(NETWORK_OFFENCES))
        NETWORK_OFFENCES.clear()
        pytest.fail(f"this test tried to use the real network ({found}); tests must stay offline", pytrace=False)
