"""The fuzzer never fails a correct engine (a script, not a test): ``python benchmarks/fuzz_seeds.py``.

Fuzzes the reference engine and the test engines (``tests/engines/``: alt, requests, aiohttp) under ``--seeds``
different seeds (default 100, seeds 1..100), ``--examples`` generated scenarios each, in this process, prints
every seed that broke the contract with its shrunk scenario (a false alarm: these engines are correct), and
the false alarms per engine. Exit status 1 if any. Target: none.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

ENGINES = (
    "reference",
    "tests.engines.alt_engine:create",
    "tests.engines.requests_engine:create",
    "tests.engines.aiohttp_engine:create",
)


def main() -> int:
    """Fuzz both correct engines under many seeds; report any contract break."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--verbose", action="store_true", help="a line per seed as it ends")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the engines' own warnings (unwritable caches ...) are expected here

    from pytest_fcp.engines import load_engine
    from pytest_fcp.fuzz.search import fuzz_engine

    failures, runs, started = 0, 0, time.monotonic()
    alarms: dict[str, list[int]] = {}
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    print(f"fuzzing {args.engines} · seeds {seeds.start}..{seeds.stop - 1} · {args.examples} examples each")
    for name in args.engines.split(","):
        factory, examples, alarms[name] = load_engine(name), 0, []
        for seed in seeds:
            result = fuzz_engine(factory, examples=args.examples, seed_value=seed, name=name, shrink_budget=120.0)
            runs, examples = runs + 1, examples + result.examples
            if not result.passed:
                failures += 1
                alarms[name].append(seed)
                print(result.report(), flush=True)
            if args.verbose:
                print(
                    f"{name} seed {seed}: {'passed' if result.passed else 'FALSE ALARM'}, {result.examples} run",
                    flush=True,
                )
        found = f" (seeds {', '.join(map(str, alarms[name]))})" if alarms[name] else ""
        print(f"{name}: {len(seeds)} seeds, {examples} scenarios run, {len(alarms[name])} false alarm(s){found}")
    print("false alarms per engine: " + ", ".join(f"{name} {len(seen)}" for name, seen in alarms.items()))
    print(f"{runs} fuzz runs, {failures} false alarm(s), {time.monotonic() - started:.0f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
