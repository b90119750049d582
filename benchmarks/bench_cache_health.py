"""Benchmark of ``fcp cache-health``: build a cache of many day files in a temp dir and time the scan.

Not a test (no assertion on time): run it by hand, e.g. ::

    python benchmarks/bench_cache_health.py                 # 100,000 files, pool of all cores
    python benchmarks/bench_cache_health.py --files 20000 --workers 1 --keep /tmp/fcp-bench

The cache mixes both layouts the scan understands: 90 % reference engine files
(``{root}/{market}/{symbol}/{interval}/{day}.arrow``, CACHE_SCHEMA) and 10 % ckvd files
(``{root}/data/data/spot/daily/klines/{SYMBOL}/{interval}/{SYMBOL}-{interval}-{day}.arrow``, ns timestamps and
ckvd's extra columns), over the intervals 1h, 15m, 5m and 1m, with a few broken files sprinkled in.
The scan is timed twice: the ``scan_cache`` function, and the ``fcp cache-health --json`` command end to end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa

from pytest_fcp.core.markets import DAY_MS, INTERVALS
from pytest_fcp.engines import CACHE_SCHEMA
from pytest_fcp.health import scan_cache

#: Interval of each series, in rotation: 40 % 1h, 30 % 15m, 20 % 5m, 10 % 1m.
SLOTS = ("1h",) * 4 + ("15m",) * 3 + ("5m",) * 2 + ("1m",)
CKVD_SCHEMA = pa.schema(
    [("open_time", pa.timestamp("ns", tz="UTC"))]
    + [(n, pa.float64()) for n in ("open", "high", "low", "close", "volume")]
    + [
        ("close_time", pa.timestamp("ns", tz="UTC")),
        ("quote_asset_volume", pa.float64()),
        ("count", pa.int64()),
    ]
)


def _day_bytes(day: dt.date, interval: str, ckvd: bool) -> bytes:
    step = INTERVALS[interval]
    start = (day.toordinal() - dt.date(1970, 1, 1).toordinal()) * DAY_MS
    times = np.arange(start, start + DAY_MS, step, dtype=np.int64)
    price = 100.0 + (times - times[0]) / DAY_MS
    if ckvd:
        ns = times * 1_000_000
        columns = (
            [pa.array(ns).cast(CKVD_SCHEMA.field(0).type)]
            + [pa.array(price)] * 5
            + [
                pa.array(ns + step * 1_000_000 - 1).cast(CKVD_SCHEMA.field(6).type),
                pa.array(price),
                pa.array(np.ones(len(times), dtype=np.int64)),
            ]
        )
        table = pa.Table.from_arrays(columns, schema=CKVD_SCHEMA)
    else:
        columns = [pa.array(times).cast(CACHE_SCHEMA.field(0).type)] + [pa.array(price)] * 5
        table = pa.Table.from_arrays(columns, schema=CACHE_SCHEMA)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def build_cache(root: pathlib.Path, files: int, days_per_series: int = 1000) -> int:
    """Write ``files`` day files under ``root``; return the number written."""
    first = dt.date(2021, 1, 1)
    written = 0
    series = 0
    while written < files:
        interval = SLOTS[(series * 3) % len(SLOTS)]
        ckvd = series % 10 == 9
        symbol = f"SYM{series:03d}USDT"
        if ckvd:
            directory = root / "data" / "data" / "spot" / "daily" / "klines" / symbol / interval
        else:
            directory = root / "spot" / symbol / interval
        directory.mkdir(parents=True, exist_ok=True)
        for offset in range(min(days_per_series, files - written)):
            day = first + dt.timedelta(days=offset)
            name = f"{symbol}-{interval}-{day.isoformat()}.arrow" if ckvd else f"{day.isoformat()}.arrow"
            data = _day_bytes(day, interval, ckvd)
            if offset == 17:
                data = b""  # a zero-byte file
            elif offset == 42:
                data = data[: len(data) // 2]  # a truncated one
            (directory / name).write_bytes(data)
            written += 1
        series += 1
    return written


def _cpu_seconds() -> float:
    """CPU time of this process and its (finished) children: comparable across loaded and idle machines."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=None, help="scan processes (default: all cores)")
    parser.add_argument("--keep", type=pathlib.Path, help="build the cache here and keep it")
    args = parser.parse_args(argv)
    root = args.keep or pathlib.Path(tempfile.mkdtemp(prefix="fcp-bench-"))
    try:
        if not any(root.rglob("*.arrow")):
            t0 = time.perf_counter()
            n = build_cache(root, args.files)
            print(f"built {n:,} day files in {time.perf_counter() - t0:.1f} s under {root}")
        else:
            print(f"reusing the cache under {root}")
        subprocess.run(["sync"], check=False)
        now = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
        print(f"load average before the scan: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter()
        report = scan_cache(root, now=now, workers=args.workers)
        took = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0
        print(
            f"scan_cache: {report.files:,} files, {len(report.series)} series in {took:.2f} s wall "
            f"({report.files / took:,.0f} files/s; {os.cpu_count()} cores, "
            f"workers={args.workers or 'auto'}); "
            f"CPU {cpu:.1f} s = {cpu / report.files * 1e6:.0f} us/file"
        )
        print(f"  verdict: {report.verdict()}")
        t0 = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable, "-m", "pytest_fcp.cli", "cache-health", "--cache-dir", str(root), "--json",
                "--now", now.isoformat(),
            ],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        took = time.perf_counter() - t0
        summary = json.loads(done.stdout)["summary"]
        print(
            f"fcp cache-health --json: exit {done.returncode}, {summary['files']:,} files "
            f"in {took:.2f} s wall (process start included)"
        )
        print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
