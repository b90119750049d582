"""Record or compare every scenario verdict of the catalog on given engines (a refactoring check).

    python scripts/verdicts.py record OUT.json --engine reference --engine ckvd --runs 3
    python scripts/verdicts.py compare BEFORE.json --engine reference --engine ckvd --runs 3

``record`` runs the whole bundled catalog ``--runs`` times per engine (fixed seed) and keeps, per scenario,
the set of verdict lists seen (a threaded engine may give a few different ones from run to run).
``compare`` runs again and fails when a scenario's verdicts are not among those recorded.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def collect(engines: list[str], runs: int, seed: int) -> dict[str, dict[str, list[list[str]]]]:
    """Engine -> scenario id -> the distinct verdict lists seen over ``runs`` catalog runs."""
    from pytest_fcp.scenarios import catalog_dir, load_dir
    from pytest_fcp.scenarios.runner import run_scenario

    scenarios = load_dir(catalog_dir())
    out: dict[str, dict[str, list[list[str]]]] = {}
    for engine in engines:
        seen: dict[str, list[list[str]]] = {}
        for _ in range(runs):
            for scenario in scenarios:
                with tempfile.TemporaryDirectory(prefix="fcp-verdicts-") as tmp:
                    run = run_scenario(scenario, engine, pathlib.Path(tmp) / "cache", seed=seed)
                verdicts = [str(v) for v in run.verdicts]
                options = seen.setdefault(scenario.id, [])
                if verdicts not in options:
                    options.append(verdicts)
        out[engine] = seen
    return out


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("record", "compare"))
    parser.add_argument("file", type=pathlib.Path)
    parser.add_argument("--engine", action="append", required=True)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    got = collect(args.engine, args.runs, args.seed)
    if args.action == "record":
        old = json.loads(args.file.read_text()) if args.file.exists() else {}
        for engine, per in got.items():
            merged = old.setdefault(engine, {})
            for sid, options in per.items():
                for verdicts in options:
                    if verdicts not in merged.setdefault(sid, []):
                        merged[sid].append(verdicts)
        args.file.write_text(json.dumps(old, indent=1, sort_keys=True))
        print(f"recorded {sum(len(v) for v in got.values())} scenario results into {args.file}")
        return 0
    before = json.loads(args.file.read_text())
    differ = 0
    for engine, per in got.items():
        for sid, options in sorted(per.items()):
            known = before.get(engine, {}).get(sid)
            for verdicts in options:
                if known is None or verdicts not in known:
                    differ += 1
                    print(f"{engine} {sid}: {verdicts} not among {known}")
    print(f"{differ} difference(s) over {sum(len(v) for v in got.values())} scenario results")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
