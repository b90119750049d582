"""Fuzzing at scale (pytest_fcp.fuzz.database, the --fcp-fuzz items): findings kept in Hypothesis's example
database and replayed first, the budget split into seeded shards that pytest-xdist runs in parallel, the replay
line that reruns one shard, the seam that steers the search towards cells not reached yet."""

from __future__ import annotations

import importlib
import pathlib
import re
import shlex

import pytest
from hypothesis.database import DirectoryBasedExampleDatabase, InMemoryExampleDatabase

from pytest_fcp.fuzz.database import (
    DatabaseSpecError,
    check_spec,
    database_key,
    load_database,
    shard_examples,
    shard_seed,
)
from pytest_fcp.fuzz.search import fuzz_engine
from pytest_fcp.scenarios.model import Scenario
from tests.test_fuzz import retry_after_ignored

DEFECT = "tests.test_fuzz:retry_after_ignored"
ROOT = pathlib.Path(__file__).resolve().parent.parent


# --- shards -----------------------------------------------------------------------------------------------
def test_shards_split_the_examples_with_distinct_seeds() -> None:
    assert shard_seed(7, 1, 1) == 7  # one shard: the run's seed itself, as before
    seeds = {shard_seed(7, k, 4) for k in range(1, 5)}
    assert len(seeds) == 4 and 7 not in seeds
    assert shard_seed(7, 2, 4) == shard_seed(7, 2, 4) != shard_seed(8, 2, 4)
    for examples, shards in ((100, 2), (101, 2), (1000, 3), (5, 4)):
        shares = [shard_examples(examples, k, shards) for k in range(1, shards + 1)]
        assert sum(shares) == examples and max(shares) - min(shares) <= 1


# --- the database spec ------------------------------------------------------------------------------------
SHARED = InMemoryExampleDatabase()


def make_db() -> InMemoryExampleDatabase:
    return SHARED


NOT_A_DB = {"a": 1}


def test_database_specs(tmp_path: pathlib.Path) -> None:
    assert check_spec("none", tmp_path) == "none" and load_database("none") is None
    assert check_spec("found", tmp_path) == str(tmp_path / "found")
    db = load_database(str(tmp_path / "found"))
    assert isinstance(db, DirectoryBasedExampleDatabase)
    here = importlib.import_module("tests.test_fuzz_scale")  # (pytest may import this file under another name)
    assert load_database("tests.test_fuzz_scale:SHARED") is here.SHARED
    assert load_database("tests.test_fuzz_scale:make_db") is here.SHARED  # a callable returning one
    (tmp_path / "file").write_text("x")
    bad = {
        "file": "is a file",
        "no_such_module_xyz:db": "cannot import module 'no_such_module_xyz'",
        "tests.test_fuzz_scale:NOPE": "module 'tests.test_fuzz_scale' has no attribute 'NOPE'",
        "tests.test_fuzz_scale:NOT_A_DB": "not a hypothesis ExampleDatabase",
        " ": "is empty",
    }
    for spec, message in bad.items():
        with pytest.raises(DatabaseSpecError, match=message):
            check_spec(str(tmp_path / spec) if spec == "file" else spec, tmp_path)
    assert database_key("reference") != database_key("ckvd")


# --- a finding is kept and replayed first -----------------------------------------------------------------
def test_database_replays_a_finding_first(tmp_path: pathlib.Path) -> None:
    db = DirectoryBasedExampleDatabase(tmp_path / "db")
    kwargs = {"examples": 300, "shrink_budget": 20.0, "database": db, "name": DEFECT, "workdir": tmp_path / "w"}
    first = fuzz_engine(retry_after_ignored, seed_value=3, **kwargs)
    assert not first.passed and first.generated > 1, first.report()
    assert list(db.fetch(database_key(DEFECT))), "the shrunk finding was not kept"
    # another run, another seed, another shard: the finding comes first
    again = fuzz_engine(retry_after_ignored, seed_value=11, shard=(2, 2), search_seed=shard_seed(11, 2, 2), **kwargs)
    assert not again.passed and again.generated == 1, again.report()
    assert again.scenario == first.scenario
    assert "seed 11, shard 2/2" in again.report()
    assert "--fcp-fuzz-shards=2 --fcp-fuzz-shard=2" in again.report()
    # the correct engine replays nothing kept for the defect's key, and the key of the defect is untouched
    ok = fuzz_engine("reference", examples=5, seed_value=3, database=db, workdir=tmp_path / "w")
    assert ok.passed and not list(db.fetch(database_key("reference")))
    assert list(db.fetch(database_key(DEFECT)))
    assert not list((tmp_path / "w").iterdir()), "example directories were left behind"


def test_derandomized_search_with_a_database_replays_too(tmp_path: pathlib.Path) -> None:
    db = InMemoryExampleDatabase()  # (Hypothesis keeps no database when derandomized: a fixed seed instead)
    kwargs = {"examples": 300, "shrink_budget": 20.0, "database": db, "derandomize": True, "workdir": tmp_path}
    first = fuzz_engine(retry_after_ignored, seed_value=1, **kwargs)
    second = fuzz_engine(retry_after_ignored, seed_value=1, **kwargs)
    assert not first.passed and first.generated > 1, first.report()
    assert not second.passed and second.generated == 1 and second.scenario == first.scenario


def test_without_a_database_a_finding_is_searched_again(tmp_path: pathlib.Path) -> None:
    kwargs = {"examples": 300, "shrink_budget": 20.0, "seed_value": 3, "workdir": tmp_path}
    first = fuzz_engine(retry_after_ignored, **kwargs)
    second = fuzz_engine(retry_after_ignored, **kwargs)
    assert not first.passed and not second.passed
    assert second.generated == first.generated > 1


# --- the coverage seam ------------------------------------------------------------------------------------
def test_cells_steer_the_search_and_are_counted(tmp_path: pathlib.Path) -> None:
    returned: list[set[tuple[str, str]]] = []
    runs: set[str] = set()

    def cells(scenario: Scenario, run: object) -> set[tuple[str, str]]:
        runs.add(type(run).__name__)
        reached = {("fault", f.id) for f in scenario.faults} | {("interval", scenario.interval)}
        returned.append(reached)
        return reached

    result = fuzz_engine("reference", examples=40, seed_value=2, cells=cells, workdir=tmp_path)
    assert result.passed, result.report()
    assert len(returned) == result.examples and runs == {"ScenarioRun"}  # once per scenario run, with the run
    assert result.cells == len(set().union(*returned)) >= 3
    assert fuzz_engine("reference", examples=5, seed_value=2, workdir=tmp_path).cells == 0  # no function, no count


def test_the_target_phase_runs_only_when_steering_is_asked(tmp_path: pathlib.Path, monkeypatch) -> None:
    from hypothesis import Phase

    from pytest_fcp.fuzz import search

    phases: list[tuple[object, ...]] = []
    real = search.settings

    def spy(*args: object, **kwargs: object) -> object:
        phases.append(tuple(kwargs["phases"]))  # type: ignore[arg-type]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(search, "settings", spy)
    for climb in (False, True):
        result = fuzz_engine(
            "reference",
            examples=3,
            seed_value=2,
            cells=lambda scenario, run: {("interval", scenario.interval)},
            workdir=tmp_path / str(climb),
            climb=climb,
        )
        assert result.cells >= 1  # counted either way
    assert [Phase.target in p for p in phases] == [False, True]


# --- the plugin: database, shards, replay, bad input --------------------------------------------------------
def _args(*extra: str) -> list[str]:
    return ["--fcp-seed=3", "--fcp-fuzz", "--fcp-fuzz-examples=150", f"--fcp-engine={DEFECT}", *extra]


def _found_after(text: str) -> list[int]:
    """The examples each failing item needed, from its report (not the short summary, which repeats it in CI)."""
    report = "\n".join(line for line in text.splitlines() if not line.startswith("FAILED "))
    return [int(n) for n in re.findall(r"found after (\d+) examples", report)]


def test_plugin_replays_findings_from_the_default_database(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert(ROOT)
    first = pytester.runpytest("-p", "no:xdist", *_args())
    first.assert_outcomes(failed=1)
    (searched,) = _found_after(first.stdout.str())
    assert searched > 1
    assert any((pytester.path / ".pytest_cache" / "d" / "fcp-fuzz").rglob("*")), "nothing kept"
    second = pytester.runpytest("-p", "no:xdist", *_args())
    second.assert_outcomes(failed=1)
    assert _found_after(second.stdout.str()) == [1]
    # none: no database, the search starts over
    third = pytester.runpytest("-p", "no:xdist", *_args("--fcp-fuzz-db=none"))
    (again,) = _found_after(third.stdout.str())
    assert again > 1  # searched again, not replayed (coverage targeting may take another path to it)


def test_plugin_shards_under_xdist_share_the_database(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert(ROOT)
    db = pytester.path / "shared-db"
    first = pytester.runpytest_subprocess("-n", "2", *_args(f"--fcp-fuzz-db={db}", "--fcp-fuzz-examples=600"))
    first.assert_outcomes(failed=2)  # one item per shard: the default is one shard per worker
    first.stdout.fnmatch_lines(["*fcp_fuzz?tests.test_fuzz:retry_after_ignored:1/2?*"])
    assert all(n > 1 for n in _found_after(first.stdout.str()))
    second = pytester.runpytest_subprocess("-n", "2", *_args(f"--fcp-fuzz-db={db}", "--fcp-fuzz-examples=600"))
    second.assert_outcomes(failed=2)
    assert _found_after(second.stdout.str()) == [1, 1]
    replay = re.search(r"replay: (.*pytest .*--fcp-fuzz-shard=2)", second.stdout.str())
    assert replay is not None, second.stdout.str()
    words = shlex.split(replay.group(1))
    args = words[words.index("--fcp-fuzz") :]  # after the launcher (uv run, python -m pytest ...)
    assert "--fcp-fuzz-shards=2" in args and "--fcp-seed=3" in args
    one = pytester.runpytest("-p", "no:xdist", *args)
    one.assert_outcomes(failed=1)  # exactly that shard
    one.stdout.fnmatch_lines(["*seed 3, shard 2/2*"])


def test_plugin_shards_a_correct_engine_and_sums_the_budget(pytester: pytest.Pytester) -> None:
    args = ["-p", "no:xdist", "--fcp-seed=5", "--fcp-fuzz", "--fcp-engine=reference", "--fcp-fuzz-examples=30"]
    result = pytester.runpytest(*args, "--fcp-fuzz-shards=3", "--fcp-fuzz-db=none")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["reference shard 1/3: passed, * (*seed 5, shard 1/3)"])


def test_plugin_replay_line_without_shards_pins_one_shard(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert(ROOT)
    more = ("--fcp-fuzz-examples=600",)  # budget enough to find the defect on every Hypothesis version tested
    result = pytester.runpytest("-p", "no:xdist", *_args("--fcp-fuzz-db=none", "--fcp-fuzz-budget=50", *more))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "replay: *pytest --fcp-fuzz --fcp-seed=3 * --fcp-engine=* --fcp-fuzz-budget=50 --fcp-fuzz-db=none "
            "--fcp-fuzz-shards=1"
        ]
    )
    assert not (pytester.path / ".pytest_cache" / "d" / "fcp-fuzz").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fcp-fuzz-db=no_such_module_xyz:db"], "*ERROR: pytest-fcp: --fcp-fuzz-db no_such_module_xyz:db: cannot*"),
        (["--fcp-fuzz-db=afile"], "*ERROR: pytest-fcp: --fcp-fuzz-db afile: is a file*"),
        (["--fcp-fuzz-shards=2", "--fcp-fuzz-shard=3"], "*ERROR: pytest-fcp: --fcp-fuzz-shard 3: must be between 1*"),
        (["--fcp-fuzz-shards=0"], "*ERROR: pytest-fcp: --fcp-fuzz-shards 0: must be a whole number*"),
    ],
)
def test_bad_fuzz_options_are_one_line(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    (pytester.path / "afile").write_text("x")
    result = pytester.runpytest("-p", "no:xdist", "--fcp-fuzz", "--fcp-engine=reference", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()
