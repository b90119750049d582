"""Fuzzing speed (a script, not a test): ``python benchmarks/bench_fuzz.py [--repeats 3] [--seed 7]``.

For each engine, runs the same fuzz campaign through the plugin (``pytest --fcp-fuzz --fcp-fuzz-shards 2``)
in one process (``-n 0``: the two shards one after the other) and with ``-n 2`` (the shards in parallel
on two xdist workers), ``--repeats`` times each, alternating, and prints side by side the examples per second
(distinct scenarios run / the wall time from the first fuzz item's start to the last one's end), the end-to-end
wall time of the pytest command, the speed-up (median and range), the CPU seconds the command and its workers
used (what the speed-up would be bounded by on an idle machine), and the load average before each run.

The examples are the same in both modes (same seed, same shards). Contract breaks do not stop a campaign here
(``judge=False``: every example runs), so ckvd, which breaks the contract on its first example, is measured
too. Targets: ``-n 2`` >= 1.7x the examples per second of one process; 1,000 examples on the reference engine
in under a minute.

This file is also the pytest plugin the benchmark loads into the runs it starts (``-p bench_fuzz``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
_OUT = "FCP_BENCH_FUZZ_OUT"


# --- the plugin side (inside the pytest runs) --------------------------------------------------------------
def pytest_configure(config: Any) -> None:
    """Fuzz items run every example (no stop at a contract break) and their properties are collected."""
    if not os.environ.get(_OUT):
        return
    from pytest_fcp.fuzz import search

    search.fuzz_engine = functools.partial(search.fuzz_engine, judge=False)  # type: ignore[assignment]
    config.pluginmanager.register(_Collect(), "fcp-bench-collect")


class _Collect:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        """Keep each fuzz item's examples and wall-clock span (on the controller too: xdist ships them)."""
        props = dict(report.user_properties)
        if report.when == "call" and "fcp_fuzz_examples" in props:
            self.items.append({k: props[k] for k in ("fcp_fuzz_examples", "fcp_fuzz_started", "fcp_fuzz_ended")})

    def pytest_sessionfinish(self, session: Any) -> None:
        """Write the items to the file the benchmark named (the controller's, not the workers')."""
        if not hasattr(session.config, "workerinput"):
            pathlib.Path(os.environ[_OUT]).write_text(json.dumps(self.items))


# --- the benchmark side -------------------------------------------------------------------------------------
def _run(engine: str, examples: int, seed: int, workers: int, shards: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fcp-bench-") as tmp:
        out = pathlib.Path(tmp) / "items.json"
        env = {**os.environ, _OUT: str(out), "PYTHONPATH": str(ROOT / "benchmarks")}
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "bench_fuzz",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            f"-n{workers}",
            "--fcp-fuzz",
            f"--fcp-engine={engine}",
            f"--fcp-fuzz-examples={examples}",
            f"--fcp-fuzz-shards={shards}",
            "--fcp-fuzz-db=none",
            f"--fcp-seed={seed}",
            f"--basetemp={tmp}/basetemp",
        ]
        started, before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        wall, after = time.monotonic() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)  # xdist workers included
        if not out.exists():
            raise SystemExit(f"pytest failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        items = json.loads(out.read_text())
    ran = sum(i["fcp_fuzz_examples"] for i in items)
    first = min(i["fcp_fuzz_started"] for i in items)
    span = max(i["fcp_fuzz_ended"] for i in items) - first
    # each shard's own time and examples, and how late it started after the first: where a -n 2 span goes
    shards = [
        (i["fcp_fuzz_started"] - first, i["fcp_fuzz_ended"] - i["fcp_fuzz_started"], i["fcp_fuzz_examples"])
        for i in sorted(items, key=lambda i: i["fcp_fuzz_started"])
    ]
    return {"examples": ran, "span": span, "rate": ran / span, "wall": wall, "cpu": cpu, "shards": shards}


def _spread(values: list[float], fmt: str = ".1f") -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def main() -> None:
    """Measure both modes on each engine and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="reference,ckvd")
    parser.add_argument("--examples", default="1000,400", help="examples per engine (comma list, or one for all)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    engines = args.engines.split(",")
    counts = [int(n) for n in args.examples.split(",")]
    counts += [counts[-1]] * (len(engines) - len(counts))

    print(
        f"pytest-fcp fuzz benchmark · {os.cpu_count()} cores · seed {args.seed} · {args.repeats} repeats · "
        f"{args.workers} shards per engine in both modes\n"
    )
    rows = []
    for engine, examples in zip(engines, counts, strict=True):
        one: list[dict[str, Any]] = []
        par: list[dict[str, Any]] = []
        loads: list[float] = []
        for _ in range(args.repeats):
            for runs, workers in ((one, 0), (par, args.workers)):
                loads.append(os.getloadavg()[0])
                runs.append(_run(engine, examples, args.seed, workers, args.workers))
                print(
                    f"  {engine} -n {workers}: {runs[-1]['examples']:.0f} examples, {runs[-1]['rate']:.1f} ex/s, "
                    f"fuzzing {runs[-1]['span']:.1f} s, pytest {runs[-1]['wall']:.1f} s, CPU {runs[-1]['cpu']:.1f} s "
                    f"(load {loads[-1]:.1f}); shards (start +s, s, examples): "
                    + ", ".join(f"+{a:.1f} {d:.1f} {n}" for a, d, n in runs[-1]["shards"]),
                    flush=True,
                )
        speedup = [p["rate"] / o["rate"] for o, p in zip(one, par, strict=True)]
        e2e = [o["wall"] / p["wall"] for o, p in zip(one, par, strict=True)]
        rows.append((engine, one, par, speedup, e2e, loads))
    print(
        "\n| engine | examples | ex/s, one process | ex/s, -n 2 | speed-up (ex/s) | pytest wall, one process | "
        "pytest wall, -n 2 | speed-up (wall) | CPU s, one process | CPU s, -n 2 | load avg (1 min) |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    for engine, one, par, speedup, e2e, loads in rows:
        print(
            f"| {engine} | {one[0]['examples']:.0f} | {_spread([r['rate'] for r in one])} | "
            f"{_spread([r['rate'] for r in par])} | {_spread(speedup, '.2f')}x | "
            f"{_spread([r['wall'] for r in one])} s | {_spread([r['wall'] for r in par])} s | "
            f"{_spread(e2e, '.2f')}x | {_spread([r['cpu'] for r in one])} | {_spread([r['cpu'] for r in par])} | "
            f"{_spread(loads)} |"
        )
    print(
        "\nmedian (min-max) over the repeats; ex/s = distinct scenarios run / first fuzz item start to last end; "
        "CPU s = user + system seconds of the pytest command and its workers"
    )


if __name__ == "__main__":
    main()
