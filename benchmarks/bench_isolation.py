"""Benchmark of isolation's cost (a script, not a test): run ``python benchmarks/bench_isolation.py``.

The whole catalog on each engine, as ``python -m pytest --fcp-scenarios --fcp-engine E -n 0 -p no:randomly -q``
with ``--fcp-isolation fork`` and with ``--fcp-isolation off``, a fresh process each, alternating (fork first in
odd rounds, off first in even ones), ``--rounds`` times. Printed per engine: the wall time of each mode (median
and range), the ratio fork / off as the median and the range of the per-round ratios, and the same for the CPU
seconds of the whole process tree (user + system, the forked children included: on a loaded machine the CPU
ratio is the steadier one), with the load average before and after. Target: <= 1.10 on ckvd.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGET = 1.10


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(engine: str, mode: str) -> tuple[float, float]:
    """Wall and CPU seconds of one catalog run of ``engine`` with ``--fcp-isolation mode``; a red run stops."""
    args = [sys.executable, "-m", "pytest", "--fcp-scenarios", f"--fcp-engine={engine}", f"--fcp-isolation={mode}"]
    args += ["-n", "0", "-p", "no:randomly", "-q", "-p", "no:cacheprovider"]
    began, cpu = time.perf_counter(), _cpu()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds, cpu = time.perf_counter() - began, _cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{engine} with --fcp-isolation {mode} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds, cpu


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} [{min(values):.2f}-{max(values):.2f}]"


def main() -> None:
    """Run the rounds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--engine", action="append", help="engines (default: ckvd and reference)")
    options = parser.parse_args()
    engines = options.engine or ["ckvd", "reference"]
    load = os.getloadavg()[0]
    print(f"python benchmarks/bench_isolation.py --rounds {options.rounds} ({', '.join(engines)}); load {load:.2f}")
    print(f"{'engine':<10} {'':<4} {'fork s':>22} {'off s':>22} {'fork/off':>22}")
    for engine in engines:
        times: dict[tuple[str, int], list[float]] = {(m, k): [] for m in ("fork", "off") for k in (0, 1)}
        ratios: tuple[list[float], list[float]] = ([], [])
        for round_ in range(options.rounds):
            order = ("fork", "off") if round_ % 2 == 0 else ("off", "fork")
            got = {mode: run_once(engine, mode) for mode in order}
            for mode, measured in got.items():
                for k in (0, 1):
                    times[mode, k].append(measured[k])
            for k in (0, 1):
                ratios[k].append(got["fork"][k] / got["off"][k])
        for k, what in ((0, "wall"), (1, "cpu")):
            verdict = "ok" if statistics.median(ratios[k]) <= TARGET else f"over the {TARGET:.2f} target"
            fork, off = _spread(times["fork", k]), _spread(times["off", k])
            print(f"{engine:<10} {what:<4} {fork:>22} {off:>22} {_spread(ratios[k]):>22}  {verdict}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
