"""Benchmark of behaviour baselines (a script, not a test): run ``python benchmarks/bench_baselines.py``.

Reports, in one run:

1. stability: the scenario catalog on ckvd with several seeds, each a fresh ``python -m pytest
   --fcp-scenarios`` subprocess, in one process and with ``-n 2``; every WORSE / BETTER / CHANGED / NEW FAILING
   line (or a failed run) is a difference from the baseline. Target: 0.
2. what baseline comparison adds to the catalog's time: in one process, for every catalog scenario on each
   engine, ``run_scenario(...)`` and then ``record_of(...)`` + ``compare(...)`` (as a scenario item does), timed
   separately, alternating; sum(compare) / sum(run) per repetition, with its spread. Target: <= 5 %.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_UNCHANGED = re.compile(r"^ckvd: .*?(\d+) known failures unchanged", re.M)
_CHANGED = re.compile(r"^\s+(WORSE|BETTER|CHANGED|NEW FAILING) \S+", re.M)


def catalog_command(seed: int, workers: str | None) -> list[str]:
    """The catalog run on ckvd with ``seed`` (``-n workers`` when given)."""
    cmd = [sys.executable, "-m", "pytest", "--fcp-scenarios", "--fcp-engine", "ckvd", "-q", "-p", "no:cacheprovider"]
    cmd.append(f"--fcp-seed={seed}")
    return [*cmd, "-n", workers or "0"]  # -n 0: one process (the project's addopts say -n 2)


def stability(seeds: list[int], workers: str | None) -> tuple[list[int], list[str], float]:
    """Per seed the known failures unchanged; every difference found; the wall time of all runs."""
    unchanged, differences = [], []
    start = time.perf_counter()
    for seed in seeds:
        done = subprocess.run(catalog_command(seed, workers), cwd=ROOT, capture_output=True, text=True, check=False)
        found = _UNCHANGED.search(done.stdout)
        unchanged.append(int(found.group(1)) if found else -1)
        differences += [f"seed {seed}: {m.group(0).strip()}" for m in _CHANGED.finditer(done.stdout)]
        if done.returncode != 0 and not _CHANGED.search(done.stdout):
            differences.append(f"seed {seed}: exit code {done.returncode}")
    return unchanged, differences, time.perf_counter() - start


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Send file descriptors 1 and 2 to /dev/null (the engines' log sinks write there)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (null, *saved):
            os.close(fd)


def comparison_cost(engine: str, repeats: int) -> tuple[list[float], float, float, int, int]:
    """Per repetition sum(record + compare) / sum(run) in %; the last repetition's sums; scenarios; unchanged."""
    from pytest_fcp.baseline import compare, load_baseline
    from pytest_fcp.engines import load_engine
    from pytest_fcp.scenarios import catalog_dir, load_dir
    from pytest_fcp.scenarios.decisions import record_of
    from pytest_fcp.scenarios.runner import run_scenario

    factory = load_engine(engine)
    baseline = load_baseline(catalog_dir() / "baselines" / f"{engine}.toml", engine)
    scenarios = load_dir(catalog_dir())
    ratios: list[float] = []
    run_sum = compare_sum = 0.0
    same = 0
    for repetition in range(repeats + 1):  # the first round warms imports and caches
        run_sum = compare_sum = 0.0
        same = 0
        for scenario in scenarios:
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                run = run_scenario(scenario, factory, pathlib.Path(tmp) / "cache", seed=1000 + repetition)
                t1 = time.perf_counter()
                record = record_of(run.results, run.verdicts, str(run.world.cache_dir))
                change = compare(baseline.records.get(scenario.id), record)
                t2 = time.perf_counter()
            run_sum += t1 - t0
            compare_sum += t2 - t1
            same += change.kind == "same"
        if repetition:
            ratios.append(100 * compare_sum / run_sum)
    return ratios, run_sum, compare_sum, len(scenarios), same


def main() -> None:
    """Run both parts and print the Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="catalog runs per mode for stability (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions of the timing (default 3)")
    parser.add_argument("--engines", nargs="+", default=["reference", "ckvd"], help="engines to time")
    args = parser.parse_args()

    name = pathlib.Path(__file__).name
    engines = " ".join(args.engines)
    print(f"command: python benchmarks/{name} --runs {args.runs} --repeats {args.repeats} --engines {engines}")
    print(f"catalog run: {' '.join(catalog_command(1, None)[1:])}  (seeds 1..{args.runs}; then with -n 2)\n")
    seeds = list(range(1, args.runs + 1))
    print("| ckvd catalog | runs | known failures unchanged per run | differences | wall |")
    print("|---|---|---|---|---|")
    all_differences = []
    for label, workers in (("one process (-n 0)", None), ("-n 2", "2")):
        unchanged, differences, wall = stability(seeds, workers)
        all_differences += differences
        print(f"| {label} | {len(seeds)} | {', '.join(map(str, unchanged))} | {len(differences)} | {wall:.0f} s |")
    for line in all_differences[:20]:
        print(f"- {line}")

    print("\n| engine | scenarios | unchanged | run (s) | record + compare (s) | compare / run | spread |")
    print("|---|---|---|---|---|---|---|")
    for engine in args.engines:
        with quiet():
            ratios, run_sum, compare_sum, count, same = comparison_cost(engine, args.repeats)
        spread = f"{min(ratios):.2f}-{max(ratios):.2f} %"
        print(
            f"| {engine} | {count} | {same} | {run_sum:.2f} | {compare_sum:.3f} | "
            f"{statistics.median(ratios):.2f} % | {spread} |"
        )
    print(f"\ntargets: 0 differences; compare / run <= 5 % (median of {args.repeats}, spread min-max)")


if __name__ == "__main__":
    main()
