"""Count, per kind of contract failure, the scenarios of a behaviour baseline that show it.

    python scripts/baseline_counts.py                          # the bundled ckvd baseline
    python scripts/baseline_counts.py fcp-baselines/mine.toml  # any baseline file (format 1)

The counts of docs/ckvd.md come from this script; every failure key that none of the kinds below matches
is listed too, so nothing is left out of the page by accident.
"""

from __future__ import annotations

import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent

#: (label, pattern over one failure key); a scenario counts once per label however many keys match.
KINDS: list[tuple[str, str]] = [
    ("end treated as inclusive", r"^needed_only: treated the request's end as inclusive"),
    (
        "... and a one-bar partial cache file left for that day",
        r"\(outside the request\): .*partial file .*\(1 of ",
    ),
    ("placeholder rows (NaN, no source tag)", r"^rows: \d+ bar\(s\) are placeholders"),
    ("Vision asked for days younger than 48 h", r"^order: .*asked Vision for a day younger than 48 h"),
    ("days younger than 48 h cached", r"^cache: .*cached a day younger than 48 h"),
    ("plain RuntimeError, not DataSourceError / RateLimitError", r"^outcome: raised RuntimeError .*not the documented"),
    ("raised although every day was obtainable", r"^outcome: raised .* although every day was obtainable"),
    (
        "... of which a corrupt cache file crashed the read",
        r"^outcome: raised (Compute|Schema|ColumnNotFound)Error (?!\(data type mismatch for column open_time)",
    ),
    (
        "... of which its own day files, written in two time units, could not be read together",
        r"^outcome: raised SchemaError \(data type mismatch for column open_time: incoming: Datetime\('ms'",
    ),
    ("REST rows tagged as Vision rows", r"^sources: .*rows tagged vision; expected rest"),
    ("another interval's Vision files fetched", r"^needed_only: asked Vision for another interval's files"),
    ("another symbol's Vision files fetched", r"^needed_only: asked Vision for another symbol's files"),
    ("rows of a Vision file that failed verification used or cached", r"failed its checksum|could not be verified"),
    ("rows of another symbol's or interval's Vision file used or cached", r"\(vision\.wrong_(symbol|interval)\)"),
    ("REST asked for days Vision had served", r"^needed_only: asked REST for day\(s\) Vision had served"),
    (
        "Vision asked again for days valid in the cache",
        r"^needed_only: asked Vision for day\(s\) already valid",
    ),
    (
        "a crash during a cache write wedged the cache: a fresh engine raised although every day was obtainable",
        r"^crash point .*\): \[outcome\] raised .* although every day was obtainable",
    ),
    ("a crash during a cache write: a fresh engine served wrong or placeholder rows", r"^crash point .*\): \[rows\]"),
]
#: A crash point's failure key: ``crash point 3 of 7 (...): [check] reason``.
CRASH_POINT = re.compile(r"^crash point \d+ of \d+ \(.*?\): \[([\w.]+)\]")


def main(argv: list[str]) -> int:
    """Print each kind's scenario count, then the failure keys no kind covers."""
    path = pathlib.Path(argv[0]) if argv else ROOT / "scenarios" / "baselines" / "ckvd.toml"
    baseline = tomllib.loads(path.read_text(encoding="utf-8"))
    scenarios = {k: v for k, v in baseline.items() if isinstance(v, dict)}
    conforming = sorted(k for k, v in scenarios.items() if not v["failures"])
    print(f"{path.name}: engine {baseline.get('engine')}, {len(scenarios)} scenarios, {len(conforming)} conforming")
    if 0 < len(conforming) <= 10:
        print("  conforming: " + ", ".join(conforming))
    covered: set[str] = set()
    for label, pattern in KINDS:
        hits = sorted(k for k, v in scenarios.items() if any(re.search(pattern, f) for f in v["failures"]))
        covered |= {f for v in scenarios.values() for f in v["failures"] if re.search(pattern, f)}
        print(f"{len(hits):4d}  {label}")
    others: dict[str, set[str]] = {}
    for name, entry in scenarios.items():
        for failure in entry["failures"]:
            if failure not in covered:
                crash = CRASH_POINT.match(failure)
                check = f"{crash.group(1)} after a crash point" if crash else failure.split(":")[0]
                others.setdefault(check, set()).add(name)
    print(
        "other failures (scenarios per check): "
        + (", ".join(f"{c} {len(s)}" for c, s in sorted(others.items())) or "none")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
