"""Engines on other HTTP clients: requests, bare urllib3 and aiohttp reach the same simulated Vision and REST
as httpx, with the same faults, attempts, trace events and violations, each in the client's own terms."""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import json
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import requests
import urllib3
from urllib3.util.retry import Retry

from pytest_fcp.faults import fault
from pytest_fcp.world import World
from pytest_fcp.world import network as network_module
from tests.conftest import utc

NOW = utc(2024, 1, 10, 12)
DAY = dt.date(2024, 1, 3)
ZIP = "https://data.binance.vision/data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-03.zip"
KLINES = "https://api.binance.com/api/v3/klines?symbol=BTCUSDT&interval=1h&startTime=1704240000000&limit=24"
UNSERVED = "https://api.example.com/v1/ticker"


@dataclass(frozen=True)
class Reply:
    """What a client got, in neutral terms."""

    status: int
    headers: dict[str, str]
    body: bytes


def _requests(url: str) -> Reply:
    response = requests.get(url, timeout=10)
    return Reply(response.status_code, dict(response.headers), response.content)


def _urllib3(url: str) -> Reply:
    response = urllib3.PoolManager(retries=False).request("GET", url)
    return Reply(response.status, dict(response.headers), response.data)


def _aiohttp(url: str) -> Reply:
    async def get() -> Reply:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return Reply(response.status, dict(response.headers), await response.read())

    return asyncio.run(get())


@dataclass(frozen=True)
class Client:
    """One client library: how to GET, and the exceptions it raises for each transport failure."""

    name: str
    get: Callable[[str], Reply]
    connect_error: type[BaseException]
    timeout: type[BaseException]
    unserved: type[BaseException]
    reset: type[BaseException]  # a peer's reset mid-response: ECONNRESET as the client wraps it


CLIENTS = [
    Client(
        "requests",
        _requests,
        requests.exceptions.ConnectionError,
        requests.exceptions.ReadTimeout,
        requests.exceptions.ConnectionError,
        requests.exceptions.ConnectionError,
    ),
    Client(
        "urllib3",
        _urllib3,
        urllib3.exceptions.NewConnectionError,
        urllib3.exceptions.ReadTimeoutError,
        urllib3.exceptions.HTTPError,
        urllib3.exceptions.ProtocolError,
    ),
    Client(
        "aiohttp",
        _aiohttp,
        aiohttp.ClientConnectorError,
        aiohttp.ServerTimeoutError,
        aiohttp.ClientConnectionError,
        aiohttp.ClientOSError,
    ),
]


@pytest.fixture(params=CLIENTS, ids=[c.name for c in CLIENTS])
def client(request: pytest.FixtureRequest) -> Client:
    return request.param


def _world(tmp_path, *faults) -> World:
    return World(tmp_path / "cache", NOW, faults=list(faults))


def test_each_client_gets_vision_and_rest(tmp_path, client):
    with _world(tmp_path) as world:
        zipped = client.get(ZIP)
        checksum = client.get(ZIP + ".CHECKSUM")
        page = client.get(KLINES)
        assert zipped.status == 200 and zipped.body == world.vision.genuine_zip("spot", "BTCUSDT", "1h", DAY)
        assert checksum.status == 200 and checksum.body.split()[-1] == b"BTCUSDT-1h-2024-01-03.zip"
        assert page.status == 200 and len(json.loads(page.body)) == 24
        assert page.headers["X-MBX-USED-WEIGHT-1M"] == "2"
    records = world.recorder.requests
    assert [(r.source, r.door, r.status, r.target.obj) for r in records] == [
        ("vision", "https", 200, "zip"),
        ("vision", "https", 200, "checksum"),
        ("rest", "https", 200, None),
    ]
    assert records[2].target.days == (DAY,) and records[2].target.weight == 2
    events = world.trace.of_kind("http")
    assert [(e.data["source"], e.data["door"], e.data["status"]) for e in events] == [
        ("vision", "https", 200),
        ("vision", "https", 200),
        ("rest", "https", 200),
    ]
    assert world.violations == []


def test_vision_403_reaches_each_client(tmp_path, client):
    with _world(tmp_path, fault("vision.http403", days=[DAY])) as world:
        assert client.get(ZIP).status == 403
    (record,) = world.recorder.requests
    assert (record.source, record.status, record.fault, record.attempt) == ("vision", 403, "vision.http403", 1)


def test_rest_429_carries_retry_after_then_recovers(tmp_path, client):
    with _world(tmp_path, fault("rest.http429", attempts="first:1", retry_after=7)) as world:
        limited = client.get(KLINES)
        assert limited.status == 429 and limited.headers["Retry-After"] == "7"
        assert json.loads(limited.body)["code"] == -1003
        assert client.get(KLINES).status == 200
    first, second = world.recorder.requests
    assert (first.status, first.retry_after, first.fault, first.attempt) == (429, 7.0, "rest.http429", 1)
    assert (second.status, second.fault, second.attempt) == (200, None, 2)


def test_a_connect_error_is_the_clients_own(tmp_path, client):
    with _world(tmp_path, fault("vision.connect_error", days=[DAY])) as world, pytest.raises(client.connect_error):
        client.get(ZIP)
    (record,) = world.recorder.requests
    assert record.status is None and record.error == client.connect_error.__name__
    assert world.violations == []


def test_a_timeout_is_the_clients_own_and_costs_virtual_time(tmp_path, client):
    with _world(tmp_path, fault("rest.read_timeout", timeout=12)) as world:
        with pytest.raises(client.timeout) as raised:
            client.get(KLINES)
        assert world.now == NOW + dt.timedelta(seconds=12)
    assert isinstance(raised.value, TimeoutError) or client.name != "aiohttp"  # aiohttp's is also asyncio's
    (record,) = world.recorder.requests
    assert record.error == client.timeout.__name__ and record.duration_s == 12.0


def _reset_cause(error: BaseException) -> BaseException:
    """The ConnectionResetError at the bottom of a client's wrapped reset (requests: ConnectionError of a
    ProtocolError of it; urllib3: ProtocolError of it; aiohttp: ClientOSError is the OSError itself)."""
    while not isinstance(error, OSError) or isinstance(error, requests.exceptions.ConnectionError):
        error = next(a for a in error.args if isinstance(a, BaseException))
    return error


@pytest.mark.parametrize("fid", ["vision.connection_reset", "vision.checksum_reset"])
def test_a_connection_reset_is_the_clients_own(tmp_path, client, fid):
    url = ZIP + ".CHECKSUM" if fid == "vision.checksum_reset" else ZIP
    with _world(tmp_path, fault(fid, days=[DAY])) as world:
        with pytest.raises(client.reset) as raised:
            client.get(url)
        assert client.get(ZIP if url != ZIP else ZIP + ".CHECKSUM").status == 200
        assert world.now == NOW  # a reset costs no virtual time
    cause = _reset_cause(raised.value)
    assert (cause.errno, cause.strerror) == (errno.ECONNRESET, "Connection reset by peer")
    if client.name == "requests":
        assert "Connection aborted." in str(raised.value)  # urllib3's ProtocolError, wrapped by the adapter
    # urllib3's door raises the socket's error where urllib3 reads the response; urlopen wraps it after the record
    recorded = "ConnectionResetError" if client.name == "urllib3" else type(raised.value).__name__
    first, second = world.recorder.requests
    assert (first.status, first.fault, first.error) == (None, fid, recorded)
    assert (second.status, second.fault) == (200, None)  # the other object of the day answers normally
    assert world.violations == []


def test_a_rest_connection_reset_is_the_clients_own(tmp_path, client):
    with _world(tmp_path, fault("rest.connection_reset", attempts="first:1")) as world:
        with pytest.raises(client.reset):
            client.get(KLINES)
        assert client.get(KLINES).status == 200
    assert [(r.attempt, r.status, r.fault) for r in world.recorder.requests] == [
        (1, None, "rest.connection_reset"),
        (2, 200, None),
    ]


def test_urllib3_retries_a_reset_as_a_read_error(tmp_path):
    with _world(tmp_path, fault("rest.connection_reset", attempts="first:1")) as world:
        assert urllib3.PoolManager(retries=Retry(total=2, read=1)).request("GET", KLINES).status == 200
    assert [(r.attempt, r.status, r.error) for r in world.recorder.requests] == [
        (1, None, "ConnectionResetError"),
        (2, 200, None),
    ]
    always = fault("rest.connection_reset")
    with _world(tmp_path / "always", always) as world, pytest.raises(urllib3.exceptions.MaxRetryError) as raised:
        urllib3.PoolManager(retries=Retry(total=2, read=0)).request("GET", KLINES)
    assert isinstance(raised.value.reason, urllib3.exceptions.ProtocolError)
    assert len(world.recorder.requests) == 1


def test_httpx_gets_a_reset_as_its_read_error(tmp_path):
    import httpx

    with _world(tmp_path, fault("vision.checksum_reset", days=[DAY])) as world:
        with pytest.raises(httpx.ReadError, match=r"\[Errno 104\] Connection reset by peer") as raised:
            httpx.get(ZIP + ".CHECKSUM")
        assert httpx.get(ZIP).status_code == 200
    assert isinstance(raised.value, httpx.TransportError)  # what an engine catching httpx.RequestError sees
    assert [(r.door, r.status, r.error, r.target.obj) for r in world.recorder.requests] == [
        ("https", None, "ReadError", "checksum"),
        ("https", 200, None, "zip"),
    ]


def test_boto3_gets_a_reset_as_connection_closed_and_retries_it(tmp_path):
    import boto3
    import botocore.exceptions
    from botocore import UNSIGNED
    from botocore.config import Config

    key = ZIP.removeprefix("https://data.binance.vision/")

    def s3(attempts: int) -> Any:
        config = Config(signature_version=UNSIGNED, retries={"total_max_attempts": attempts, "mode": "standard"})
        return boto3.client("s3", region_name="ap-northeast-1", config=config)

    with _world(tmp_path, fault("vision.connection_reset", days=[DAY], attempts="first:1")) as world:
        assert s3(2).get_object(Bucket="data.binance.vision", Key=key)["Body"].read()[:2] == b"PK"
    assert [(r.door, r.attempt, r.status, r.error) for r in world.recorder.requests] == [
        ("s3", 1, None, "ConnectionClosedError"),
        ("s3", 2, 200, None),
    ]
    always = fault("vision.connection_reset", days=[DAY])
    with _world(tmp_path / "always", always), pytest.raises(botocore.exceptions.ConnectionClosedError) as raised:
        s3(1).get_object(Bucket="data.binance.vision", Key=key)
    aborted = raised.value.kwargs["error"]
    assert isinstance(aborted, urllib3.exceptions.ProtocolError)
    assert _reset_cause(aborted).errno == errno.ECONNRESET


def test_an_unserved_host_is_a_violation_in_the_clients_own_error(tmp_path, client):
    with _world(tmp_path) as world, pytest.raises(client.unserved, match="not served by the simulated world"):
        client.get(UNSERVED)
    assert world.violations == [f"GET {UNSERVED}"]
    assert world.recorder.requests == []
    (event,) = world.trace.of_kind("violation")
    assert event.data["what"] == "unserved"


def test_an_unserved_path_on_a_served_host_is_a_violation(tmp_path, client):
    with _world(tmp_path) as world, pytest.raises(client.unserved):
        client.get("https://api.binance.com/api/v3/ticker/price?symbol=BTCUSDT")
    assert world.violations == ["GET https://api.binance.com/api/v3/ticker/price?symbol=BTCUSDT"]


def test_no_client_opens_a_real_socket_or_resolves_a_name(tmp_path, client, monkeypatch):
    touched: list[Any] = []

    def refuse(*args: Any) -> Any:
        touched.append(args)
        raise AssertionError(f"a real socket call: {args!r}")

    for name in ("_real_connect", "_real_connect_ex", "_real_getaddrinfo"):
        monkeypatch.setattr(network_module, name, refuse)
    with _world(tmp_path, fault("vision.connect_error", days=[DAY])) as world:
        assert client.get(KLINES).status == 200
        with pytest.raises(client.connect_error):
            client.get(ZIP)
        with pytest.raises(client.unserved):
            client.get(UNSERVED)
    assert touched == []
    assert [v for v in world.trace.of_kind("violation") if v.data["what"] in ("socket", "dns")] == []


def test_requests_is_served_once_not_again_by_the_urllib3_door(tmp_path):
    with _world(tmp_path) as world, requests.Session() as session:
        assert session.get(KLINES).status_code == 200
        assert session.head(ZIP).status_code == 200
    assert [(r.method, r.source) for r in world.recorder.requests] == [("GET", "rest"), ("HEAD", "vision")]


def test_requests_keeps_its_door_once_a_boto3_client_started_motos_mock(tmp_path):
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    with _world(tmp_path) as world:
        s3 = boto3.client("s3", region_name="ap-northeast-1", config=Config(signature_version=UNSIGNED))
        key = ZIP.removeprefix("https://data.binance.vision/")
        assert s3.get_object(Bucket="data.binance.vision", Key=key)["Body"].read()[:2] == b"PK"
        assert requests.get(KLINES, timeout=5).status_code == 200
        with pytest.raises(requests.exceptions.ConnectionError, match="not served"):
            requests.get(UNSERVED, timeout=5)
    assert [(r.source, r.door, r.status) for r in world.recorder.requests] == [
        ("vision", "s3", 200),
        ("rest", "https", 200),
    ]
    assert world.violations == [f"GET {UNSERVED}"]


def test_urllib3_retries_are_attempts_of_their_own(tmp_path):
    with _world(tmp_path, fault("vision.connect_error", days=[DAY], attempts="first:2")) as world:
        pool = urllib3.PoolManager(retries=Retry(total=3, connect=3, backoff_factor=0.5))
        response = pool.request("GET", ZIP)
        assert response.status == 200
        with pytest.raises(urllib3.exceptions.HTTPError, match="not served"):  # a violation is never retried
            urllib3.PoolManager(retries=Retry(total=3)).request("GET", UNSERVED)
    assert [(r.attempt, r.status, r.error) for r in world.recorder.requests] == [
        (1, None, "NewConnectionError"),
        (2, None, "NewConnectionError"),
        (3, 200, None),
    ]
    assert world.trace.of_kind("sleep")  # urllib3's backoff slept in virtual time
    assert world.violations == [f"GET {UNSERVED}"]


def test_requests_adapter_status_retries_are_attempts(tmp_path):
    retry = Retry(total=2, status_forcelist=[503], backoff_factor=0, allowed_methods=["GET"])
    with _world(tmp_path, fault("rest.http503", attempts="first:1")) as world, requests.Session() as session:
        session.mount("https://", requests.adapters.HTTPAdapter(max_retries=retry))
        assert session.get(KLINES).status_code == 200
    assert [(r.attempt, r.status) for r in world.recorder.requests] == [(1, 503), (2, 200)]


def test_asyncio_sleep_moves_the_virtual_clock(tmp_path):
    async def wait() -> str:
        return await asyncio.sleep(90, "done")

    with _world(tmp_path) as world:
        assert asyncio.run(wait()) == "done"
        assert world.now == NOW + dt.timedelta(seconds=90)
    assert [e.data["seconds"] for e in world.trace.of_kind("sleep")] == [90.0]


def test_stopping_the_world_closes_every_door(tmp_path):
    from aiohttp.client import ClientSession
    from requests.adapters import HTTPAdapter
    from urllib3.connectionpool import HTTPConnectionPool

    before = (HTTPAdapter.send, HTTPConnectionPool._make_request, ClientSession._request, asyncio.sleep)
    with _world(tmp_path):
        assert HTTPAdapter.send is not before[0] and HTTPConnectionPool._make_request is not before[1]
        assert ClientSession._request is not before[2] and asyncio.sleep is not before[3]
    assert (HTTPAdapter.send, HTTPConnectionPool._make_request, ClientSession._request, asyncio.sleep) == before


def test_a_door_failing_to_open_closes_the_ones_already_open(tmp_path, monkeypatch):
    from requests.adapters import HTTPAdapter
    from urllib3.connectionpool import HTTPConnectionPool

    from pytest_fcp.world.clients import aiohttp_door

    def broken(network: Any) -> Any:
        raise RuntimeError("aiohttp door failed")

    monkeypatch.setattr(aiohttp_door, "route", broken)
    send, make_request = HTTPAdapter.send, HTTPConnectionPool._make_request
    world = _world(tmp_path)
    with pytest.raises(RuntimeError, match="aiohttp door failed"):
        world.start()
    assert HTTPAdapter.send is send and HTTPConnectionPool._make_request is make_request
    assert network_module.active_network() is None
    world.stop()


def test_importing_the_world_does_not_import_the_optional_clients():
    code = (
        "import sys, pytest_fcp.world.world, pytest_fcp.world.network; "
        "print(sorted(m for m in ('aiohttp', 'aioresponses') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("engine", ["requests_engine", "aiohttp_engine"])
def test_the_client_engines_fall_back_from_a_blocked_vision_to_rest(tmp_path, engine):
    import importlib

    factory = importlib.import_module(f"tests.engines.{engine}").create
    with _world(tmp_path, fault("vision.http403", days=[DAY])) as world:
        world.create_engine(factory)
        result = world.fetch(utc(2024, 1, 2), utc(2024, 1, 5))
    assert result.ok and result.rows_by_source() == {"vision": 48, "rest": 24}
    assert result.violations == ()


@pytest.mark.parametrize("url", ["http://localhost:9/x", "http://127.0.0.2:9/x", "http://[::1]:9/x"])
def test_a_request_to_this_machine_passes_every_door_to_the_sealed_sockets(tmp_path, client, monkeypatch, url):
    # this machine is not the world's business: no door serves it, so the request reaches the real socket
    # layer, which the seal stops (a socket violation), never the world's "unserved" refusal
    loopback = {"localhost": (socket.AF_INET, ("127.0.0.1", 9)), "127.0.0.2": (socket.AF_INET, ("127.0.0.2", 9))}
    loopback["::1"] = (socket.AF_INET6, ("::1", 9, 0, 0))

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:  # no name service asked, not even for localhost
        family, address = loopback[host]
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address)]

    monkeypatch.setattr(network_module, "_real_getaddrinfo", resolve)
    with _world(tmp_path) as world, pytest.raises(Exception):  # noqa: B017 - each client wraps it its own way
        client.get(url)
    kinds = {e.data["what"] for e in world.trace.of_kind("violation")}
    assert kinds == {"socket"}
    assert world.recorder.requests == []


@pytest.mark.parametrize("url", ["http://localhost.example.com/x", "http://127.0.0.2.example.com/x"])
def test_a_host_that_only_looks_like_this_machine_is_unserved(tmp_path, client, url):
    with _world(tmp_path) as world, pytest.raises(client.unserved, match="not served by the simulated world"):
        client.get(url)
    assert world.violations == [f"GET {url}"]
