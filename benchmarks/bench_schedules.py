"""Which schedule strategy reaches the races: for planted racy engines and the concurrency theme's scenarios,
the share of schedules 1..N under which each strategy makes the engine fail.

    uv run python benchmarks/bench_schedules.py [N]

Deterministic given N (each schedule is chosen from the seed and its number); the time it takes is printed
for information only."""

from __future__ import annotations

import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_fcp.core.schedules import STRATEGIES  # noqa: E402
from pytest_fcp.scenarios.loader import load_file  # noqa: E402
from pytest_fcp.scenarios.runner import run_scenario  # noqa: E402

CASES = [
    ("tests.engines.env_engines:create_fixed_name", "same_range_twice_at_once"),
    ("tests.engines.env_engines:create_fixed_name", "overlapping_warmups"),
    ("tests.engines.env_engines:create_fixed_name", "batch_of_symbols"),
]


def main() -> None:
    """Print, per case and strategy, how many of N schedules fail the engine."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    theme = {s.name: s for s in load_file(ROOT / "scenarios" / "concurrency.toml")}
    print(f"{'engine':<46} {'scenario':<28} " + " ".join(f"{s:>10}" for s in STRATEGIES))
    for engine, name in CASES:
        cells = []
        for strategy in STRATEGIES:
            began, failing = time.perf_counter(), 0
            for number in range(1, count + 1):
                with tempfile.TemporaryDirectory(
                    dir=ROOT / ".bench-tmp" if (ROOT / ".bench-tmp").is_dir() else None
                ) as tmp:
                    run = run_scenario(
                        theme[name], engine, pathlib.Path(tmp) / "cache", schedule=number, strategy=strategy
                    )
                failing += not run.passed
            cells.append(f"{failing:>3}/{count} {time.perf_counter() - began:4.1f}s")
        print(f"{engine.split(':')[1]:<46} {name:<28} " + " ".join(f"{c:>10}" for c in cells))


if __name__ == "__main__":
    main()
