"""Live ``fcp diagnose``: the network check, the traced httpx transport and the live cache state."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import pathlib
import socket
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from pytest_fcp.cli.diagnose import NO_SOURCE, Diagnosis, fetch_range, fill_outcome, warm_up_imports
from pytest_fcp.core.cache_states import health_path_word
from pytest_fcp.core.markets import REST_HOSTS, VISION_HOST, days_between, market_spec, to_ms

if TYPE_CHECKING:
    from pytest_fcp.engines import Engine, EngineFactory
    from pytest_fcp.trace import Trace

__all__ = ["NoNetwork", "check_network", "diagnose_live"]


class NoNetwork(Exception):
    """Binance cannot be reached from here (the message says what was tried)."""


def check_network(hosts: Sequence[str], timeout: float) -> dict[str, str | None]:
    """host -> None if a TCP connection to host:443 opens within ``timeout`` s, else why not (in parallel)."""

    def probe(host: str) -> str | None:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                return None
        except socket.gaierror as exc:
            return f"DNS lookup failed ({exc.strerror or exc})"
        except TimeoutError:
            return f"no answer within {timeout:g} s"
        except OSError as exc:
            return f"{type(exc).__name__}: {exc.strerror or exc}"

    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        return dict(zip(hosts, pool.map(probe, hosts), strict=True))


def _source_of(host: str) -> str:
    """The source a request to ``host`` belongs to: vision, rest, or net."""
    if host == VISION_HOST:
        return "vision"
    if host in REST_HOSTS:
        return "rest"
    return "net"


@contextlib.contextmanager
def _traced_httpx(trace: Trace) -> Iterator[None]:
    """Record every httpx request (sync and async transports) as an ``http`` event of ``trace``."""
    import httpx

    sync_send = httpx.HTTPTransport.handle_request
    async_send = httpx.AsyncHTTPTransport.handle_async_request

    def record(request: httpx.Request, t0: float, status: int | None, error: str | None) -> None:
        took = (time.perf_counter() - t0) * 1000
        trace.record(
            "http",
            source=_source_of(request.url.host),
            door="https",
            method=request.method,
            url=str(request.url),
            status=status,
            error=error,
            duration_s=round(took / 1000, 3),
            took_ms=round(took, 3),
        )

    def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        t0 = time.perf_counter()
        try:
            response = sync_send(self, request)
        except Exception as exc:
            record(request, t0, None, type(exc).__name__)
            raise
        record(request, t0, response.status_code, None)
        return response

    async def handle_async_request(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        t0 = time.perf_counter()
        try:
            response = await async_send(self, request)
        except Exception as exc:
            record(request, t0, None, type(exc).__name__)
            raise
        record(request, t0, response.status_code, None)
        return response

    httpx.HTTPTransport.handle_request = handle_request  # type: ignore[method-assign]
    httpx.AsyncHTTPTransport.handle_async_request = handle_async_request  # type: ignore[method-assign]
    try:
        yield
    finally:
        httpx.HTTPTransport.handle_request = sync_send  # type: ignore[method-assign]
        httpx.AsyncHTTPTransport.handle_async_request = async_send  # type: ignore[method-assign]


def _default_live_cache_dir(engine: str) -> pathlib.Path:
    """Where an engine caches when the user gives no --cache-dir (ckvd: its own default)."""
    if engine == "ckvd":
        from pytest_fcp.engines.ckvd import default_cache_dir

        return default_cache_dir()[0]
    import platformdirs

    return pathlib.Path(platformdirs.user_cache_path("pytest-fcp")) / engine.replace(":", "_").replace("/", "_")


def _live_cache_state(engine: Engine, diagnosis: Diagnosis, day: dt.date, layout: str) -> str:
    """hit / miss / partial / stale / corrupt / recent for a day's file, judged by the health checks."""
    from pytest_fcp.health import check_day_file

    path = engine.cache_file(diagnosis.symbol, diagnosis.market, diagnosis.interval, day)
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return health_path_word("missing")
    except OSError:
        return health_path_word("unreadable")
    report = check_day_file(str(path), size, day, diagnosis.interval, layout, to_ms(diagnosis.now))
    issues = [i for i in report.issues if i != "too_recent"]
    return health_path_word(issues[0] if issues else "ok")


def diagnose_live(args: argparse.Namespace, factory: EngineFactory) -> Diagnosis:
    """Run the fetch against live Binance (after a quick network check), traced."""
    from pytest_fcp.trace import Trace

    spec = market_spec(args.market)
    hosts = [VISION_HOST, spec.rest_host]
    reach = check_network(hosts, args.timeout)
    if all(reach.values()):
        detail = "; ".join(f"{h}:443: {why}" for h, why in reach.items())
        raise NoNetwork(
            f"cannot reach Binance ({detail}). A live diagnose needs the internet; "
            f"run it offline against the "
            f"simulated world instead, e.g. fcp diagnose {args.symbol} {args.market} {args.interval} "
            f"--simulate vision.http403"
        )
    cache_dir = (args.cache_dir or _default_live_cache_dir(args.engine)).expanduser()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start, end = fetch_range(now, args.days)
    diagnosis = Diagnosis("live", args.engine, args.symbol, args.market, args.interval, start, end, now, str(cache_dir))
    layout = _layout_of(args.engine)
    engine = factory(cache_dir)
    trace = Trace()
    days = days_between(start, end)
    try:
        diagnosis.cache_before = {d.isoformat(): _live_cache_state(engine, diagnosis, d, layout) for d in days}
        trace.record(
            "request",
            symbol=args.symbol,
            market=args.market,
            interval=args.interval,
            start=start.isoformat(),
            end=end.isoformat(),
            cache_days=dict(diagnosis.cache_before),
        )
        for host, why in reach.items():
            if why:
                trace.record("log", level="WARNING", message=f"network check: {host}:443 {why}")
        warm_up_imports()
        t0 = time.perf_counter()
        table, error = None, None
        with _traced_httpx(trace):
            try:
                table = engine.fetch(args.symbol, args.market, args.interval, start, end)
            except Exception as exc:
                error = exc
        diagnosis.wall_ms = (time.perf_counter() - t0) * 1000
        if error is None and table is not None:
            by_day: dict[str, dict[str, int]] = {}
            counts: dict[str, int] = {}
            times = table["open_time"].cast("int64").to_pylist()
            for t, source in zip(times, table["source"].to_pylist(), strict=True):
                day = "null" if t is None else dt.datetime.fromtimestamp(t / 1000, dt.UTC).date().isoformat()
                per = by_day.setdefault(day, {})
                key = NO_SOURCE if source is None else str(source)
                per[key] = per.get(key, 0) + 1
                counts[key] = counts.get(key, 0) + 1
            trace.record("outcome", rows=table.num_rows, rows_by_source=counts, rows_by_day=by_day)
        else:
            trace.record("outcome", error=type(error).__name__, message=str(error)[:500])
        diagnosis.cache_after = {d.isoformat(): _live_cache_state(engine, diagnosis, d, layout) for d in days}
    finally:
        close = getattr(engine, "close", None)
        if callable(close):
            close()
    diagnosis.events = list(trace.events)
    fill_outcome(diagnosis, table, error)
    return diagnosis


def _layout_of(engine: str) -> str:
    """The health layout an engine's cache files are judged by."""
    from pytest_fcp.engines.ckvd import CACHE_LAYOUT as CKVD_LAYOUT
    from pytest_fcp.engines.reference import CACHE_LAYOUT as REFERENCE_LAYOUT

    return CKVD_LAYOUT.name if engine == CKVD_LAYOUT.name else REFERENCE_LAYOUT.name
