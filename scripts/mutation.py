"""Run the mutation campaign (mutmut 3, configured in pyproject's ``[tool.mutmut]``) and print the score per package.

    uv run python scripts/mutation.py                 # run the campaign (2 workers), then print the scores
    uv run python scripts/mutation.py --children 1    # one worker (a busy machine)
    uv run python scripts/mutation.py --report        # only print the scores of the last run (mutants/)

mutmut is not a project dependency: it runs with ``uv run --with mutmut==3.8.1``. Its work lives in ``mutants/``
(git-ignored); a second run only tests the mutants whose code or tests changed. The score of a package is
killed / (killed + survived + no tests + timeouts), in percent; mutants listed in :data:`EQUIVALENT` (they behave
exactly like the original, see docs/mutation.md) are left out of both sides. The exit status is 1 when a package
named in :data:`TARGETS` scores below its target.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = ["uv", "run", "--quiet", "--with", "mutmut==3.8.1", "mutmut"]

#: The packages reported, by mutant-name prefix (a mutant is named ``module.x_function__mutmut_N``).
PACKAGES = {
    "contract/": "pytest_fcp.contract.",
    "baseline/": "pytest_fcp.baseline.",
    "faults/": "pytest_fcp.faults.",
    "plugin/replay.py": "pytest_fcp.plugin.replay.",
}
#: The lowest score each package must keep, in percent.
TARGETS = {"contract/": 90.0, "baseline/": 90.0}

#: Mutants that cannot change behaviour, each with why (docs/mutation.md lists them too).
EQUIVALENT: dict[str, str] = {}

_LINE = re.compile(r"^\s*(?P<name>[\w.ǁ]+__mutmut_\d+): (?P<status>.+)$")
_COUNTED = ("killed", "survived", "no tests", "timeout")


def results() -> dict[str, str]:
    """Each mutant's status from the last run (``mutmut results --all true``)."""
    out = subprocess.run([*MUTMUT, "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True, check=True)
    found = {}
    for line in out.stdout.splitlines():
        match = _LINE.match(line)
        if match:
            found[match["name"]] = match["status"].strip()
    return found


def scores(statuses: dict[str, str]) -> list[tuple[str, collections.Counter[str], int, float]]:
    """Per package: its status counts, the equivalent mutants left out, and the score in percent."""
    rows = []
    for package, prefix in PACKAGES.items():
        mine = {name: status for name, status in statuses.items() if name.startswith(prefix)}
        equivalent = sum(1 for name in mine if name in EQUIVALENT)
        counts = collections.Counter(status for name, status in mine.items() if name not in EQUIVALENT)
        total = sum(counts[s] for s in _COUNTED)
        rows.append((package, counts, equivalent, 100.0 * counts["killed"] / total if total else 0.0))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the campaign (unless ``--report``) and print the table; 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=2, help="mutmut worker processes (default 2)")
    parser.add_argument("--report", action="store_true", help="only report the last run's results")
    parser.add_argument("--survivors", action="store_true", help="also list each surviving mutant")
    args = parser.parse_args(argv)
    if not args.report:
        subprocess.run([*MUTMUT, "run", "--max-children", str(args.children)], cwd=ROOT, check=False)
    statuses = results()
    if not statuses:
        print("no mutation results: run without --report first", file=sys.stderr)
        return 2
    print(f"{'package':<18} {'score':>7} {'killed':>7} {'survived':>9} {'no tests':>9} {'timeout':>8} {'equiv.':>7}")
    missed = []
    for package, counts, equivalent, score in scores(statuses):
        print(
            f"{package:<18} {score:>6.1f}% {counts['killed']:>7} {counts['survived']:>9} {counts['no tests']:>9} "
            f"{counts['timeout']:>8} {equivalent:>7}"
        )
        if score < TARGETS.get(package, 0.0):
            missed.append(f"{package} {score:.1f}% < {TARGETS[package]:.0f}%")
    unchecked = sum(1 for status in statuses.values() if status == "not checked")
    if unchecked:
        print(f"({unchecked} mutants not checked yet: the run was interrupted)")
    if args.survivors:
        for name, status in sorted(statuses.items()):
            if status in ("survived", "no tests") and name not in EQUIVALENT:
                print(f"  {status}: {name}")
    if missed:
        print("below target: " + "; ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
