"""Fuzzing speed (a script, not a test): ``python benchmarks/bench_fuzz.py [--examples 500] [--seed 7]``.

Runs the property search on each engine, one after the other in this process, and prints the examples per
second and whether the engine kept the contract. Target: 500 examples on the reference engine in <= 60 s on
2 cores.
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="reference,tests.engines.alt_engine:create,ckvd")
    parser.add_argument("--examples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the engines' own warnings (unwritable caches ...) are expected here

    from pytest_fcp.engines import load_engine
    from pytest_fcp.fuzz.search import fuzz_engine

    print(f"pytest-fcp fuzz benchmark · {os.cpu_count()} cores · {args.examples} examples · seed {args.seed}\n")
    print("| engine | result | distinct scenarios run | search time | examples/s |\n|---|---|---|---|---|")
    for name in args.engines.split(","):
        result = fuzz_engine(load_engine(name), examples=args.examples, seed_value=args.seed, name=name)
        verdict = "kept the contract" if result.passed else f"broke it after {result.generated} examples"
        print(f"| {name} | {verdict} | {result.examples} | {result.search_seconds:.1f} s | {result.rate:.1f} |")


if __name__ == "__main__":
    main()
