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

#: Mutants that cannot change behaviour, each with why (docs/mutation.md lists them too). The numbers are mutmut's
#: for the code as it is; a change to one of these functions renumbers its mutants, so review this table then.
_O, _R, _C = "pytest_fcp.contract.oracle.", "pytest_fcp.contract.rows.", "pytest_fcp.contract.checks."
_S, _D, _F = "pytest_fcp.baseline.store.", "pytest_fcp.baseline.diff.", "pytest_fcp.faults.schedule."
_REASONS = {
    "default unused": "max()'s default is never used: both callers return earlier when there are no faults",
    "more rounds": "one more round repeats the last round's answers; all() and `in` over the rounds keep their value",
    "door unscoped": "without a door-scoped fault no door word is compared (a fault without a door hits both alike)",
    "even pairs": "the asked list always holds two objects a round, so zip's strict flag never matters",
    "rest doors": "REST faults take no door, so the door word of a REST request is never compared",
    "last rounds": "the last two rounds lie past every attempt window and answer alike",
    "unique index": "request indexes are unique, so < and <= agree",
    "equal waits": "waits and Retry-After values are whole milliseconds and seconds: never within 1 µs of equal",
    "status words": "a cache status is never empty and never starts with X",
    "fast path": "only skips the fast path; the full comparison gives the same verdicts",
    "unreachable": "the branch cannot run: the columns were checked before, and a numeric column always casts",
    "identity mask": "indexing with an all-true mask (no null times) leaves the array as it is",
    "isin": "np.isin instead of the binary search answers the same",
    "float flags": "a float 1/0 array instead of a bool one gives the same sum and argmax",
    "float64": "casting a float64 column to float64 gives the same values; astype(None) is float64",
    "copy flags": "zero_copy_only and copy only decide whether data is copied (a failure is caught alike)",
    "tags dtype": "an object or a string array compares with 'cache' alike",
    "row-wise stale": "stale values are computed row by row: more truth rows in the filter change no looked-up value",
    "whole days": "adding a fractional day count to a date keeps only the whole days",
    "utf-8": "'UTF-8' names the same codec as 'utf-8'",
    "str overridden": "BaselineError overrides __str__; its args are read nowhere",
    "ascii flag": "ensure_ascii=None is false like False",
    "allowed text": "every RecordError raised while reading carries an allowed text ending in neither ';' nor ' '",
    "no floats": "no float reaches it: baseline totals are integers",
    "tmp exists": "the temporary file always exists when it is removed",
    "falsy": "None is false like False",
    "outcome line": "a change in the number of fetches always adds an outcome line, which sets `other` too",
    "all ruled": "every numeric fault parameter has a rule in PARAM_RULES, so the default range is never used",
    "getattr": "getattr's default None is false like False",
    "underscore": "an underscore replaced by letters or by nothing leaves a symbol alphanumeric alike",
}
_EQUIVALENT_BY_REASON = {
    "default unused": [f"{_O}x__rounds__mutmut_{n}" for n in (3, 5, 6)],
    "more rounds": [f"{_O}x__rounds__mutmut_7"],
    "door unscoped": [f"{_O}x__vision_state__mutmut_{n}" for n in (6, 12, 13)],
    "even pairs": [f"{_O}x__vision_state__mutmut_{n}" for n in (50, 53, 57)],
    "rest doors": [f"{_O}x__rest_state__mutmut_{n}" for n in (19, 20)],
    "last rounds": [f"{_O}x__rest_state__mutmut_25"],
    "unique index": [f"{_C}x_check_order__mutmut_20"],
    "equal waits": [f"{_C}x_check_rate_limit__mutmut_17"],
    "status words": [f"{_C}x__a__mutmut_8"],
    "fast path": [f"{_R}x_check_rows__mutmut_{n}" for n in (53, 54, 55)] + [f"{_R}x__same_prices__mutmut_1"],
    "unreachable": [f"{_R}x__same_prices__mutmut_4"] + [f"{_R}x__equal_values__mutmut_{n}" for n in (18, 19, 20, 21)],
    "identity mask": [f"{_R}x__check_bars__mutmut_30"],
    "isin": [f"{_R}x__check_bars__mutmut_{n}" for n in (32, 33, 34, 103)],
    "float flags": [f"{_R}x__check_bars__mutmut_{n}" for n in (71, 73, 74)],
    "float64": [f"{_R}x__equal_values__mutmut_2"] + [f"{_R}x__wrong_values__mutmut_{n}" for n in (14, 17)],
    "copy flags": [f"{_R}x__equal_values__mutmut_{n}" for n in (15, 17)]
    + [f"{_R}x__wrong_values__mutmut_{n}" for n in (15, 18, 20)],
    "tags dtype": [f"{_R}x__stale_served__mutmut_{n}" for n in (10, 12)],
    "row-wise stale": [f"{_R}x__stale_served__mutmut_{n}" for n in (33, 39)],
    "whole days": [f"{_R}x__wrong_values__mutmut_39"],
    "utf-8": [
        "pytest_fcp.baseline.record.x__text__mutmut_11",
        f"{_S}x__read_toml__mutmut_12",
        f"{_S}x_write_baseline__mutmut_10",
    ],
    "str overridden": [f"{_S}xǁBaselineErrorǁ__init____mutmut_{n}" for n in (6, 7)],
    "ascii flag": [f"{_S}xǁBaselineErrorǁ__str____mutmut_5"],
    "allowed text": [f"{_S}x_load_baseline__mutmut_{n}" for n in (125, 126, 127)],
    "no floats": [f"{_S}x__value__mutmut_2"],
    "tmp exists": [f"{_S}x_write_baseline__mutmut_{n}" for n in (38, 40)],
    "falsy": [f"{_D}x_compare__mutmut_27"],
    "outcome line": [f"{_D}x_compare__mutmut_{n}" for n in (39, 40)],
    "all ruled": [f"{_F}x__check_param__mutmut_{n}" for n in (17, 18)],
    "getattr": ["pytest_fcp.plugin.replay.x_replay_command__mutmut_23"],
    "underscore": [f"{_F}x__check_param__mutmut_43"],
}
EQUIVALENT: dict[str, str] = {
    name: _REASONS[reason] for reason, names in _EQUIVALENT_BY_REASON.items() for name in names
}

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


def scores(statuses: dict[str, str]) -> list[tuple[str, collections.Counter[str], int, float, float]]:
    """Per package: its status counts, the equivalent mutants left out, the score and the raw score (equivalent
    mutants counted as survivors), in percent."""
    rows = []
    for package, prefix in PACKAGES.items():
        mine = {name: status for name, status in statuses.items() if name.startswith(prefix)}
        equivalent = sum(1 for name in mine if name in EQUIVALENT)
        counts = collections.Counter(status for name, status in mine.items() if name not in EQUIVALENT)
        total = sum(counts[s] for s in _COUNTED)
        score = 100.0 * counts["killed"] / total if total else 0.0
        raw = 100.0 * counts["killed"] / (total + equivalent) if total + equivalent else 0.0
        rows.append((package, counts, equivalent, score, raw))
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
    head = f"{'package':<18} {'score':>7} {'raw':>7} {'killed':>7} {'survived':>9} {'no tests':>9} {'timeout':>8}"
    print(f"{head} {'equiv.':>7} {'other':>6}")
    missed = []
    for package, counts, equivalent, score, raw in scores(statuses):
        other = sum(n for status, n in counts.items() if status not in (*_COUNTED, "not checked"))
        print(
            f"{package:<18} {score:>6.1f}% {raw:>6.1f}% {counts['killed']:>7} {counts['survived']:>9} "
            f"{counts['no tests']:>9} {counts['timeout']:>8} {equivalent:>7} {other:>6}"
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
