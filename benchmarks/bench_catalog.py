"""Benchmark of the scenario catalog (a script, not a test): run ``python benchmarks/bench_catalog.py``.

Reports, side by side in one run:

1. the catalog's wall time on each engine, in one process and with ``-n 2`` (and the speed-up);
2. the harness's overhead per scenario: the same scenario run through pytest-fcp (world, trace, verdicts)
   and as a hand-written respx + tmp_path test (precomputed payloads, one assertion on the rows), in
   alternation, median of N runs each, and their ratio. The sealed network builds an httpx client's TLS
   context once and shares it (no handshake happens behind respx); a hand-written test pays the CA-bundle
   load for every client ckvd makes. So the hand-written test runs twice: as written ("plain") and with
   the same shared TLS context ("same TLS"). The overhead ratio is against "same TLS", so it counts only
   what the harness adds; "plain" shows what a user saves.

Targets: catalog on ckvd <= 15 s wall on 2 cores; overhead <= 1.25x.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def catalog_wall(engine: str, workers: str) -> float:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "--fcp-scenarios",
        f"--fcp-engine={engine}",
        "-q",
        "-p",
        "no:cacheprovider",
        "-n",
        workers,
        "--fcp-seed=1",
    ]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if done.returncode not in (0,):
        raise SystemExit(f"catalog run failed ({engine}, -n {workers}):\n{done.stdout[-2000:]}")
    return took


# --- the hand-written comparison --------------------------------------------------------------------
def _payloads(scenario):  # what a hand-written test would keep as fixture files
    from pytest_fcp.markets import day_bounds_ms, days_between, vision_file_name, vision_key
    from pytest_fcp.world.rest import kline_rows
    from pytest_fcp.world.truth import SyntheticTruth
    from pytest_fcp.world.vision import csv_bytes, zip_bytes

    truth = SyntheticTruth(seed=1)
    request = scenario.requests[0]
    files, rest_rows = {}, []
    for day in days_between(request.start, request.end):
        table = truth.klines(scenario.market, scenario.symbol, scenario.interval, *day_bounds_ms(day))
        name = vision_file_name(scenario.symbol, scenario.interval, day)
        payload = zip_bytes(name[:-4] + ".csv", csv_bytes(table, scenario.market, scenario.interval, day))
        key = vision_key(scenario.market, scenario.symbol, scenario.interval, day)
        files[key] = payload
        files[key + ".CHECKSUM"] = f"{hashlib.sha256(payload).hexdigest()}  {name}\n".encode()
        rest_rows += kline_rows(table, scenario.market)
    now_ms = int(scenario.now.timestamp() * 1000)
    rest_rows = [r for r in rest_rows if r[0] <= now_ms]
    return files, rest_rows


@contextlib.contextmanager
def same_tls(enabled: bool):
    """The sealed network's shared TLS context, for a hand-written test (see the module docstring)."""
    import httpx._transports.default as transports

    from pytest_fcp.world import network

    real = transports.create_ssl_context
    if enabled:
        transports.create_ssl_context = network._shared_ssl_context
    try:
        yield
    finally:
        transports.create_ssl_context = real


def hand_written(scenario, engine_factory, payloads, blocked_vision: bool, tmp: pathlib.Path) -> None:
    import httpx
    import respx
    import time_machine

    files, rest_rows = payloads
    spec_host = {"spot": "api.binance.com", "futures_usdt": "fapi.binance.com", "futures_coin": "dapi.binance.com"}

    def vision(request: httpx.Request) -> httpx.Response:
        key = request.url.path.lstrip("/")
        if blocked_vision:
            return httpx.Response(403, text="<Error><Code>AccessDenied</Code></Error>")
        published = key in files and not key.endswith(("09.zip", "10.zip", "09.zip.CHECKSUM", "10.zip.CHECKSUM"))
        return httpx.Response(200, content=files[key]) if published else httpx.Response(404)

    def rest(request: httpx.Request) -> httpx.Response:
        q = request.url.params
        lo, hi = int(q["startTime"]), int(q.get("endTime", 2**62))
        rows = [r for r in rest_rows if lo <= r[0] <= hi][: int(q.get("limit", 500))]
        return httpx.Response(200, content=json.dumps(rows).encode())

    with time_machine.travel(scenario.now, tick=False), respx.mock(assert_all_called=False) as router:
        router.route(host="data.binance.vision").mock(side_effect=vision)
        router.route(host=spec_host[scenario.market]).mock(side_effect=rest)
        engine = engine_factory(tmp)
        try:
            request = scenario.requests[0]
            table = engine.fetch(scenario.symbol, scenario.market, scenario.interval, request.start, request.end)
            times = table["open_time"].cast("int64").to_pylist()
            want = [
                r[0] for r in rest_rows if request.start.timestamp() * 1000 <= r[0] < request.end.timestamp() * 1000
            ]
            _ = times == want  # the hand-written test's one assertion (its verdict is not the point here)
        finally:
            engine.close()


def overhead(engine: str, repeats: int) -> list[tuple[str, float, float, float]]:
    from pytest_fcp.engines import load_engine
    from pytest_fcp.scenarios import catalog_dir, load_dir
    from pytest_fcp.scenarios.runner import run_scenario

    factory = load_engine(engine)
    wanted = {
        "basics/cold_fetch_from_vision": False,
        "vision_errors/http403_falls_back_to_rest": True,
        "basics/recent_days_from_rest": False,
    }
    out = []
    for scenario in (s for s in load_dir(catalog_dir()) if s.id in wanted):
        payloads = _payloads(scenario)
        harness, plain, same = [], [], []
        for i in range(repeats + 1):
            with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
                t0 = time.perf_counter()
                run = run_scenario(scenario, factory, pathlib.Path(a) / "c", seed=1)
                t1 = time.perf_counter()
                hand_written(scenario, factory, payloads, wanted[scenario.id], pathlib.Path(b) / "plain")
                t2 = time.perf_counter()
                with same_tls(True):
                    hand_written(scenario, factory, payloads, wanted[scenario.id], pathlib.Path(b) / "same")
                t3 = time.perf_counter()
            del run  # judged like any scenario; pass or fail costs the same
            if i:  # the first round warms imports and caches
                harness.append(t1 - t0)
                plain.append(t2 - t1)
                same.append(t3 - t2)
        out.append((scenario.id, *(statistics.median(x) for x in (harness, plain, same))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="reference,ckvd")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--skip-catalog", action="store_true")
    args = parser.parse_args()
    engines = args.engines.split(",")
    print(f"pytest-fcp catalog benchmark · {os.cpu_count()} cores · Python {sys.version.split()[0]}")
    if not args.skip_catalog:
        print("\n| engine | catalog, 1 process | catalog, -n 2 | speed-up |\n|---|---|---|---|")
        for engine in engines:
            one, two = catalog_wall(engine, "0"), catalog_wall(engine, "2")
            print(f"| {engine} | {one:.1f} s | {two:.1f} s | {one / two:.2f}x |")
    print(
        "\n| engine | scenario | pytest-fcp | hand-written, plain | hand-written, same TLS | overhead |"
        "\n|---|---|---|---|---|---|"
    )
    for engine in engines:
        for sid, harness, plain, same in overhead(engine, args.repeats):
            print(
                f"| {engine} | {sid} | {harness * 1000:.1f} ms | {plain * 1000:.1f} ms | {same * 1000:.1f} ms "
                f"| {harness / same:.2f}x |"
            )


if __name__ == "__main__":
    main()
