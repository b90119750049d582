"""Benchmark of the scenario catalog (a script, not a test): run ``python benchmarks/bench_catalog.py``.

Reports, side by side in one run:

1. **The catalog against its floor.** Each engine's whole catalog, as ``python -m pytest --fcp-scenarios
   --fcp-engine E --fcp-lean`` (a fresh process each time; ``--fcp-lean``, the opt-in speed measures of
   docs/speed.md, where the checkout has it), in one process and with ``-n 2``, alternating, ``--repeats``
   times. The floor is the engine's own time: the seconds inside its ``fetch`` summed over the catalog (the
   world measures each call; ``benchmarks/fcp_timing.py``, loaded with ``-p fcp_timing``, adds them up), in
   the one-process run. Printed: the wall time (process start to exit), the floor, their ratio, the ``-n 2``
   speed-up and the time to the first scenario (process start to the first test's setup), each as the
   median and the range over the repeats, and the machine's load average before and after.
2. **The harness's overhead per scenario:** the same scenario run through pytest-fcp (world, trace, every
   default contract check, the scenario's own expectations) and as a hand-written respx + tmp_path test
   (precomputed zip, CHECKSUM and REST payloads for the days around the request, and assertions on what
   the scenario states: the rows, their sources, the request counts, the cache files afterwards), in
   alternation, median of N runs each, and their ratio. The sealed network builds an httpx client's TLS
   context once and shares it (no handshake happens behind respx); a hand-written test pays the CA-bundle
   load for every client ckvd makes. So the hand-written test runs twice: as written ("plain") and with
   the same shared TLS context ("same TLS"). The overhead ratio is against "same TLS", so it counts only
   what the harness adds; "plain" shows what a user saves.

``--bytecode cached`` runs every process with a warmed bytecode cache of its own (``PYTHONPYCACHEPREFIX`` in a
temporary directory, one untimed run first), as Python does by default; without it the processes run as
this shell does (``PYTHONDONTWRITEBYTECODE=1`` here: every process compiles pytest-fcp's modules and pytest
rewrites its plugins' modules again). The engines' log lines go to the world's trace or nowhere: the script
prints only its tables.

Targets: wall <= 1.3x the floor in one process; ``-n 2`` speed-up >= 1.6x on ckvd and >= 1.2x on
the reference engine; first scenario <= 1.5 s.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
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

TARGETS = {"ratio": 1.3, "first": 1.5, "speedup": {"ckvd": 1.6, "reference": 1.2}}


def _lean_option(checkout: pathlib.Path) -> list[str]:
    """``--fcp-lean`` (the opt-in speed measures, docs/speed.md), where the checkout has it: an older one ran them
    by default."""
    options = checkout / "pytest_fcp" / "plugin" / "options.py"
    return ["--fcp-lean"] if options.exists() and "--fcp-lean" in options.read_text() else []


def catalog_run(engine: str, workers: str, env: dict[str, str], cwd: pathlib.Path = ROOT) -> dict[str, float]:
    """One catalog run in a fresh process: wall time, time to the first scenario, the engine's fetch time
    (``cwd``: the checkout whose pytest-fcp runs; ``python -m pytest`` puts it first on ``sys.path``)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "timing.json"
        cmd = [sys.executable, "-m", "pytest", "-p", "fcp_timing", "--fcp-scenarios", f"--fcp-engine={engine}"]
        cmd += ["-q", "-p", "no:cacheprovider", "-n", workers, "--fcp-seed=1", *_lean_option(cwd)]
        run_env = {**env, "FCP_TIMING_OUT": str(out), "PYTHONPATH": str(ROOT / "benchmarks")}
        began = time.time()
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, env=run_env)
        wall = time.time() - began
        if done.returncode != 0 or not out.exists():
            tail = done.stdout[-2000:] + done.stderr[-2000:]
            raise SystemExit(f"catalog run failed ({engine}, -n {workers}):\n{tail}")
        timing = json.loads(out.read_text())
    return {"wall": wall, "first": timing["first_start"] - began, "engine": timing["engine_s"]}


def _spread(values: list[float], unit: str = " s", digits: int = 1) -> str:
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:.{digits}f}{unit} ({low:.{digits}f} to {high:.{digits}f})"


def catalog(engines: list[str], repeats: int, env: dict[str, str], other: pathlib.Path | None) -> None:
    """Print the catalog table: medians and ranges over ``repeats`` alternating runs (and ``other``'s)."""
    runs: dict[str, dict[str, list[dict[str, float]]]] = {e: {"0": [], "2": []} for e in engines}
    others: dict[str, dict[str, list[dict[str, float]]]] = {e: {"0": [], "2": []} for e in engines}
    for _ in range(repeats):
        for engine in engines:
            for workers in ("0", "2"):
                runs[engine][workers].append(catalog_run(engine, workers, env))
                if other is not None:
                    others[engine][workers].append(catalog_run(engine, workers, env, other))
    if other is not None:
        _compare(engines, runs, others, other)
    print(
        "\n| engine | 1 process | floor: inside fetch | wall / floor | -n 2 | -n 2 wall / floor | speed-up "
        "| first scenario (1 process) | first scenario (-n 2) |\n|---|---|---|---|---|---|---|---|---|"
    )
    verdicts = []
    for engine in engines:
        one, two = runs[engine]["0"], runs[engine]["2"]
        ratio = [r["wall"] / r["engine"] for r in one]
        speedup = [a["wall"] / b["wall"] for a, b in zip(one, two, strict=True)]
        ratio2 = [b["wall"] / a["engine"] for a, b in zip(one, two, strict=True)]  # the floor: one process's
        first = [r["first"] for r in one]
        print(
            f"| {engine} | {_spread([r['wall'] for r in one])} | {_spread([r['engine'] for r in one])} "
            f"| {_spread(ratio, 'x', 2)} | {_spread([r['wall'] for r in two])} | {_spread(ratio2, 'x', 2)} "
            f"| {_spread(speedup, 'x', 2)} "
            f"| {_spread(first, ' s', 2)} | {_spread([r['first'] for r in two], ' s', 2)} |"
        )
        want = TARGETS["speedup"].get(engine)
        verdicts.append(f"{engine}: wall / floor {statistics.median(ratio):.2f}x (target <= {TARGETS['ratio']}x)")
        if want:
            verdicts.append(f"{engine}: -n 2 speed-up {statistics.median(speedup):.2f}x (target >= {want}x)")
        verdicts.append(f"{engine}: first scenario {statistics.median(first):.2f} s (target <= {TARGETS['first']} s)")
    print("\nmedians against the targets:\n  " + "\n  ".join(verdicts))


# --- the hand-written comparison --------------------------------------------------------------------
def _payloads(scenario):  # what a hand-written test would keep as fixture files
    from pytest_fcp.core.markets import day_bounds_ms, vision_file_name, vision_key
    from pytest_fcp.world.rest import kline_rows
    from pytest_fcp.world.truth import SyntheticTruth
    from pytest_fcp.world.vision import csv_bytes, zip_bytes

    truth = SyntheticTruth(seed=1)
    request = scenario.requests[0]
    files, rest_rows = {}, []
    # the days around the request, so the engine finds what real Vision would have (a day Vision has
    # published closed publish_delay_hours before "now")
    first, last = request.start.date() - dt.timedelta(days=2), request.end.date() + dt.timedelta(days=2)
    publish = dt.timedelta(hours=scenario.publish_delay_hours)
    for day in (first + dt.timedelta(days=n) for n in range((last - first).days + 1)):
        table = truth.klines(scenario.market, scenario.symbol, scenario.interval, *day_bounds_ms(day))
        rest_rows += kline_rows(table, scenario.market)
        if dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(days=1) + publish > scenario.now:
            continue
        name = vision_file_name(scenario.symbol, scenario.interval, day)
        payload = zip_bytes(name[:-4] + ".csv", csv_bytes(table, scenario.market, scenario.interval, day))
        key = vision_key(scenario.market, scenario.symbol, scenario.interval, day)
        files[key] = payload
        files[key + ".CHECKSUM"] = f"{hashlib.sha256(payload).hexdigest()}  {name}\n".encode()
    now_ms = int(scenario.now.timestamp() * 1000)
    rest_rows = [r for r in rest_rows if r[0] <= now_ms]
    return files, rest_rows


@contextlib.contextmanager
def same_tls(enabled: bool):
    """The sealed network's shared TLS context, for a hand-written test (see the module docstring)."""
    import httpx._transports.default as transports

    from pytest_fcp.world.clients import httpx_door as network

    real = transports.create_ssl_context
    if enabled:
        transports.create_ssl_context = network._shared_ssl_context
    try:
        yield
    finally:
        transports.create_ssl_context = real


def hand_written(scenario, engine_factory, payloads, blocked_vision: bool, tmp: pathlib.Path) -> None:
    """The scenario as a user would test it by hand: respx routes, a tmp_path cache, and assertions on what
    the scenario states (the rows, their sources, the request counts, the cache files afterwards)."""
    import httpx
    import pyarrow as pa
    import respx
    import time_machine

    from pytest_fcp.core.markets import days_between

    files, rest_rows = payloads
    spec_host = {"spot": "api.binance.com", "futures_usdt": "fapi.binance.com", "futures_coin": "dapi.binance.com"}
    prices = ("open", "high", "low", "close", "volume")

    def vision(request: httpx.Request) -> httpx.Response:
        key = request.url.path.lstrip("/")
        if blocked_vision:
            return httpx.Response(403, text="<Error><Code>AccessDenied</Code></Error>")
        return httpx.Response(200, content=files[key]) if key in files else httpx.Response(404)

    def rest(request: httpx.Request) -> httpx.Response:
        q = request.url.params
        lo, hi = int(q["startTime"]), int(q.get("endTime", 2**62))
        rows = [r for r in rest_rows if lo <= r[0] <= hi][: int(q.get("limit", 500))]
        return httpx.Response(200, content=json.dumps(rows).encode())

    def rows_of(table, lo: int, hi: int) -> list[tuple]:
        times = table["open_time"].cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_pylist()
        values = zip(times, *(table[c].to_pylist() for c in prices), strict=True)
        return [row for row in values if lo <= row[0] < hi]

    with time_machine.travel(scenario.now, tick=False), respx.mock(assert_all_called=False) as router:
        vision_route = router.route(host="data.binance.vision").mock(side_effect=vision)
        rest_route = router.route(host=spec_host[scenario.market]).mock(side_effect=rest)
        engine = engine_factory(tmp)
        set_sink = getattr(engine, "set_log_sink", None)
        if callable(set_sink):  # the engine's log lines go nowhere (a hand-written test would capture them)
            set_sink(lambda record: None)
        try:
            request = scenario.requests[0]
            lo, hi = int(request.start.timestamp() * 1000), int(request.end.timestamp() * 1000)
            table = engine.fetch(scenario.symbol, scenario.market, scenario.interval, request.start, request.end)
            want = [(r[0], *map(float, r[1:6])) for r in rest_rows if lo <= r[0] < hi]
            checks = [rows_of(table, lo, hi) == want]  # the rows are the source data
            expect = scenario.expect
            checks.append(set(table["source"].to_pylist()) <= set(expect.sources.get("default", {"vision", "rest"})))
            calls = {"vision": vision_route.call_count, "rest": rest_route.call_count}
            for source, count in expect.requests.items():
                checks.append(calls[source] >= 1 if count == ">=1" else calls[source] == int(count))
            for day in days_between(request.start, request.end):
                path = engine.cache_file(scenario.symbol, scenario.market, scenario.interval, day)
                if expect.cache_after.get("default") == {"missing"}:
                    checks.append(not path.exists())
                elif expect.cache_after:
                    day_lo = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp() * 1000)
                    cached = pa.ipc.open_file(pa.memory_map(str(path))).read_all() if path.exists() else None
                    day_want = [row for row in want if day_lo <= row[0] < day_lo + 86_400_000]
                    checks.append(cached is not None and rows_of(cached, day_lo, day_lo + 86_400_000) == day_want)
            _ = all(checks)  # what the assertions cost is the point here, not whether this engine passes
        finally:
            engine.close()


@contextlib.contextmanager
def engine_logs_silenced():
    """Send what the engines log to the console (ckvd adds a stderr sink in its constructors) nowhere."""
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


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


def _compare(engines: list[str], runs: dict, others: dict, other: pathlib.Path) -> None:
    print(f"\nthe same runs, alternating with the checkout {other}:\n")
    print("| engine | 1 process: this / other | -n 2: this / other | first scenario: this / other |\n|---|---|---|---|")
    for engine in engines:
        cells = []
        for workers in ("0", "2"):
            mine, theirs = runs[engine][workers], others[engine][workers]
            cells.append(f"{_spread([r['wall'] for r in mine])} / {_spread([r['wall'] for r in theirs])}")
        firsts = [r["first"] for r in runs[engine]["0"]], [r["first"] for r in others[engine]["0"]]
        print(f"| {engine} | {cells[0]} | {cells[1]} | {_spread(firsts[0], ' s', 2)} / {_spread(firsts[1], ' s', 2)} |")


def _environment(bytecode: str, engines: list[str], keep: contextlib.ExitStack) -> dict[str, str]:
    env = dict(os.environ)
    if bytecode == "cached":
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = keep.enter_context(tempfile.TemporaryDirectory(prefix="fcp-bench-pyc-"))
        for engine in engines:  # untimed: fills the cache (pytest's rewritten modules included)
            catalog_run(engine, "0", env)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="reference,ckvd")
    parser.add_argument("--repeats", type=int, default=5, help="catalog runs per engine and mode (default 5)")
    parser.add_argument("--overhead-repeats", type=int, default=31, help="runs per scenario for the overhead")
    parser.add_argument("--bytecode", choices=("as-is", "cached"), default="as-is")
    parser.add_argument("--skip-catalog", action="store_true")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument(
        "--compare-with",
        type=pathlib.Path,
        help="another checkout of pytest-fcp (e.g. a git worktree of an older commit): its catalog runs alternate "
        "with this one's, wall times side by side",
    )
    args = parser.parse_args()
    engines = args.engines.split(",")
    regime = os.environ.get("PYTHONDONTWRITEBYTECODE") and args.bytecode == "as-is"
    print(
        f"pytest-fcp catalog benchmark · {os.cpu_count()} cores · Python {sys.version.split()[0]} · "
        f"bytecode {'not written (PYTHONDONTWRITEBYTECODE)' if regime else 'cached'} · "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    if not args.skip_catalog:
        with contextlib.ExitStack() as keep:
            catalog(engines, args.repeats, _environment(args.bytecode, engines, keep), args.compare_with)
    if not args.skip_overhead:
        print(
            "\n| engine | scenario | pytest-fcp | hand-written, plain | hand-written, same TLS | overhead |"
            "\n|---|---|---|---|---|---|"
        )
        for engine in engines:
            with engine_logs_silenced():
                rows = overhead(engine, args.overhead_repeats)
            for sid, harness, plain, same in rows:
                print(
                    f"| {engine} | {sid} | {harness * 1000:.1f} ms | {plain * 1000:.1f} ms | {same * 1000:.1f} ms "
                    f"| {harness / same:.2f}x |"
                )
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
