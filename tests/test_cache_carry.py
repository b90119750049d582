"""A cache carried across runs: ``--fcp-save-cache`` saves each test's cache with its manifest; ``cache_from`` (a
scenario field, the marker's argument) and ``--fcp-cache-from`` start a world from a saved one. Upgrading an
engine while keeping its cache becomes a regression check: record with one release, judge the next."""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import textwrap
from importlib import metadata

import pytest

from pytest_fcp.contract import judge
from pytest_fcp.contract.oracle import DayPlan
from pytest_fcp.engines import _editable_distribution, engine_release
from pytest_fcp.engines.reference import create as reference
from pytest_fcp.world import World, WorldError
from pytest_fcp.world.cache_seed import MANIFEST, copy_tree, find_saved, part, save_cache, saved_dir, saved_seed
from tests.conftest import utc
from tests.engines import versions

NOW = utc(2024, 1, 10, 12)
START, END = utc(2024, 1, 2), utc(2024, 1, 5)
OLD = [dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)]
V1, V2 = "tests.engines.versions:create_v1", "tests.engines.versions:create_v2"
V2_FIXED = "tests.engines.versions:create_v2_fixed"
_OWN = ("--fcp-scenarios", "--fcp-no-bundled", "--fcp-scenarios-dir", "scenarios", "-p", "no:randomly")
SCENARIOS = """
    [[scenario]]
    name = "old_days"
    description = "three old days from Vision, which the engine caches"
    now = "2024-01-10T12:00:00Z"
    request = { start = "2024-01-02", end = "2024-01-05" }

    [[scenario]]
    name = "young_days"
    description = "young days from REST, which the engine does not cache"
    now = "2024-01-10T12:00:00Z"
    request = { start = "2024-01-08", end = "2024-01-10T06:00:00Z" }
    """


def _scenarios(pytester: pytest.Pytester, text: str = SCENARIOS) -> None:
    pytester.makefile(".toml", **{"scenarios/mine": textwrap.dedent(text)})


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*_OWN, "-n", "0", *args)


def _files(root: pathlib.Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _v1_cache(tmp_path: pathlib.Path) -> pathlib.Path:
    """Release 1's cache of the three old days, saved with its manifest."""
    with World(tmp_path / "v1", NOW, seed=5) as world:
        world.create_engine(versions.create_v1)
        assert world.fetch(START, END).ok
    return save_cache(world.cache_dir, tmp_path / "saved", {"seed": 5})


# --- the world ----------------------------------------------------------------------------------------------
def test_a_defective_upgrade_fails_on_the_old_cache_and_the_fixed_one_refetches(tmp_path: pathlib.Path) -> None:
    saved = _v1_cache(tmp_path)
    outcomes = {}
    for name, factory in (("v2", versions.create_v2), ("fixed", versions.create_v2_fixed), ("v1", versions.create_v1)):
        with World(tmp_path / name, NOW, seed=5, cache_from=saved) as world:
            world.create_engine(factory)
            assert not (world.cache_dir / MANIFEST).exists()  # the manifest stays behind
            obs = world.fetch(START, END)
        assert all(obs.cache_before[d].valid and obs.cache_before[d].carried for d in OLD)
        outcomes[name] = (obs, [str(v) for v in judge(world.spec, obs)])
    obs, verdicts = outcomes["v2"]
    assert verdicts == [
        "[outcome] raised SchemaError (cache file for 2024-01-02: unexpected column(s) __index_level_0__) although "
        "every day was obtainable"
    ]
    obs, verdicts = outcomes["fixed"]
    assert verdicts == [] and obs.sources_by_day() == {d: {"vision"} for d in OLD}
    assert all(obs.cache_after[d].valid and not obs.cache_after[d].carried for d in OLD)  # its own files now
    obs, verdicts = outcomes["v1"]
    assert verdicts == [] and obs.requests == () and obs.sources_by_day() == {d: {"cache"} for d in OLD}


def test_the_saved_seed_is_the_market_the_cache_was_written_against(tmp_path: pathlib.Path) -> None:
    saved = _v1_cache(tmp_path)
    assert saved_seed(saved) == 5
    with World(tmp_path / "other-seed", NOW, seed=6, cache_from=saved) as world:
        world.create_engine(versions.create_v1)
        obs = world.fetch(START, END)
    assert {obs.cache_before[d].status for d in OLD} == {"stale"}  # another market: every carried bar differs
    (saved / MANIFEST).write_text("not json")
    assert saved_seed(saved) is None and saved_seed(None) is None


def test_a_missing_cache_from_is_refused_saying_what_is_allowed(tmp_path: pathlib.Path) -> None:
    with pytest.raises(WorldError, match=r"cache_from .*nowhere does not exist: give a directory saved by"):
        World(tmp_path / "cache", NOW, cache_from=tmp_path / "nowhere")
    (tmp_path / "file").write_text("")
    with pytest.raises(WorldError, match="is not a directory"):
        World(tmp_path / "cache", NOW, cache_from=tmp_path / "file")


def test_a_carried_day_may_be_served_or_fetched_anew() -> None:
    day = OLD[0]
    carried = DayPlan(day, cached=False, old=True, vision="certain", rest="certain", carried=True)
    assert carried.allowed_sources == {"cache", "vision"} and carried.obtainable == "certain"
    cut_off = DayPlan(day, cached=False, old=True, vision="impossible", rest="impossible", carried=True)
    assert cut_off.allowed_sources == {"cache"} and cut_off.obtainable == "possible"
    own = DayPlan(day, cached=True, old=True, vision="certain", rest="certain")
    assert own.allowed_sources == {"cache"}


# --- saving and finding ---------------------------------------------------------------------------------------
def test_copy_tree_keeps_files_and_their_directories_only(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "source"
    (source / "a" / "b").mkdir(parents=True)
    (source / "a" / "b" / "day.arrow").write_bytes(b"x")
    (source / "empty.arrow").mkdir()  # what cache.unreadable stands in for a day file when run as root
    (source / MANIFEST).write_text("{}")
    os.symlink(tmp_path, source / "link")
    copied = copy_tree(source, tmp_path / "target", skip=frozenset({MANIFEST}))
    assert copied == ["a/b/day.arrow"] == _files(tmp_path / "target")
    assert not (tmp_path / "target" / "empty.arrow").exists()


def test_saved_directories_and_their_lookup(tmp_path: pathlib.Path) -> None:
    assert part("tests.engines.versions:create_v1") == "tests.engines.versions_create_v1"
    assert part("..") == "_.." and part("test_x[a/b]") == "test_x[a_b]"
    assert saved_dir(tmp_path, "ckvd", "basics", "x") == tmp_path / "ckvd" / "basics" / "x"
    assert find_saved(tmp_path, "ckvd", "basics", "x") is None
    for where in ("basics/x", "any/basics/x", "ckvd/basics/x"):
        (tmp_path / where).mkdir(parents=True)
        assert find_saved(tmp_path, "ckvd", "basics", "x") == tmp_path / where  # each outranks the one before


def test_engine_release_names_the_package_an_engine_comes_from() -> None:
    assert engine_release(reference) == ("pytest-fcp", metadata.version("pytest-fcp"))
    assert engine_release(versions.create_v1) == (None, None)
    # Python < 3.12 maps no package to an editable install: the install named like the top package stands in
    assert _editable_distribution(reference.__module__) in (None, "pytest-fcp")  # None when installed from a wheel
    assert _editable_distribution(versions.create_v1.__module__) is None

    def factory(cache_dir: pathlib.Path) -> object:
        return None

    factory.distribution = "pytest"  # type: ignore[attr-defined]
    assert engine_release(factory) == ("pytest", metadata.version("pytest"))
    factory.distribution = "no-such-distribution-fcp"  # type: ignore[attr-defined]
    assert engine_release(factory) == ("no-such-distribution-fcp", None)
    ckvd = pytest.importorskip("pytest_fcp.engines.ckvd")
    pytest.importorskip("ckvd")
    assert engine_release(ckvd.create) == ("crypto-kline-vision-data", metadata.version("crypto-kline-vision-data"))


# --- the plugin: scenarios -------------------------------------------------------------------------------------
def test_save_cache_writes_each_scenarios_cache_with_its_manifest(pytester: pytest.Pytester) -> None:
    _scenarios(pytester)
    _run(pytester, "--fcp-engine", "reference", "--fcp-seed", "7", "--fcp-save-cache", "saved").assert_outcomes(
        passed=2
    )
    root = pytester.path / "saved"
    assert _files(root) == [
        "reference/mine/old_days/fcp-cache.json",
        "reference/mine/old_days/spot/BTCUSDT/1h/2024-01-02.arrow",
        "reference/mine/old_days/spot/BTCUSDT/1h/2024-01-03.arrow",
        "reference/mine/old_days/spot/BTCUSDT/1h/2024-01-04.arrow",
        "reference/mine/young_days/fcp-cache.json",
    ]
    manifest = json.loads((root / "reference/mine/old_days" / MANIFEST).read_text())
    assert manifest == {
        "engine": "reference",
        "distribution": "pytest-fcp",
        "version": metadata.version("pytest-fcp"),
        "test": "mine/old_days",
        "seed": 7,
        "now": "2024-01-10T12:00:00Z",
        "last_fetch_now": "2024-01-10T12:00:00Z",
        "started_from": None,
        "format": 1,
    }


def test_record_with_release_one_judge_release_two(pytester: pytest.Pytester) -> None:
    """The defective release fails only where it meets release 1's files, naming the cause; the same release
    on an empty cache passes; the fixed release passes on release 1's cache."""
    _scenarios(pytester)
    _run(pytester, "--fcp-engine", V1, "--fcp-save-cache", "saved").assert_outcomes(passed=2)
    old = "saved/tests.engines.versions_create_v1"
    result = _run(pytester, "--fcp-engine", V2, "--fcp-cache-from", old)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            f"mine/old_days on {V2} breaks the FCP contract",
            f"*started from the cache saved at {pytester.path / old}/mine/old_days (seed *); failures its baseline*",
            "*FAIL [[]outcome[]] raised SchemaError (cache file for 2024-01-02: unexpected column(s) "
            "__index_level_0__) although every day was obtainable",
            "*--fcp-cache-from=*saved/tests.engines.versions_create_v1*",  # the replay line carries it
        ]
    )
    result.stdout.fnmatch_lines([f"  started from a carried cache: 2 of 2 ({pytester.path / old})"])
    _run(pytester, "--fcp-engine", V2).assert_outcomes(passed=2)
    _run(pytester, "--fcp-engine", V2_FIXED, "--fcp-cache-from", old).assert_outcomes(passed=2)
    result = _run(pytester, "--fcp-engine", V2, "--fcp-cache-from", "saved")  # release 1's caches are one level down
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["  started from a carried cache: 0 of 2 (*saved)"])


def test_reference_round_trip(pytester: pytest.Pytester) -> None:
    _scenarios(pytester)
    _run(pytester, "--fcp-engine", "reference", "--fcp-save-cache", "saved").assert_outcomes(passed=2)
    result = _run(pytester, "--fcp-engine", "reference", "--fcp-cache-from", "saved", "--fcp-save-cache", "again")
    result.assert_outcomes(passed=2)
    manifest = json.loads((pytester.path / "again/reference/mine/old_days" / MANIFEST).read_text())
    assert manifest["started_from"] == str(pytester.path / "saved/reference/mine/old_days")
    first = json.loads((pytester.path / "saved/reference/mine/old_days" / MANIFEST).read_text())
    assert manifest["seed"] == first["seed"]  # the world served the market the cache was written against


def test_release_two_on_release_ones_cache_against_its_own_warm_baseline(pytester: pytest.Pytester) -> None:
    """The precise upgrade check: release 2's baseline recorded on its own saved cache, then release 2 on release
    1's cache compared with it in full: the days it had to fetch anew are the difference."""
    _scenarios(pytester)
    for engine, into in ((V1, "saved"), (V2_FIXED, "saved")):
        _run(pytester, "--fcp-engine", engine, "--fcp-seed", "3", "--fcp-save-cache", into).assert_outcomes(passed=2)
    own, old = "saved/tests.engines.versions_create_v2_fixed", "saved/tests.engines.versions_create_v1"
    warm = ("--fcp-engine", V2_FIXED, "--fcp-baseline-dir", "warm")
    _run(pytester, *warm, "--fcp-cache-from", own, "--fcp-update-baselines").assert_outcomes(passed=2)
    _run(pytester, *warm, "--fcp-cache-from", own).assert_outcomes(passed=2)
    result = _run(pytester, *warm, "--fcp-cache-from", old)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["mine/old_days on * behaves *", "*2024-01-02: vision (none) -> https 200 x2*"])


def test_save_cache_under_two_workers(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    _scenarios(pytester)
    result = pytester.runpytest(*_OWN, "-n", "2", "--fcp-engine", "reference", "--fcp-save-cache", "saved")
    result.assert_outcomes(passed=2)
    root = pytester.path / "saved" / "reference" / "mine"
    assert sorted(p.name for p in root.iterdir()) == ["old_days", "young_days"]  # no staging directory left
    seeds = {json.loads((root / name / MANIFEST).read_text())["seed"] for name in ("old_days", "young_days")}
    assert len(seeds) == 1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--fcp-save-cache", "afile/sub"), "ERROR: pytest-fcp: --fcp-save-cache afile/sub: cannot create or write *"),
        (("--fcp-cache-from", "nowhere"), "ERROR: pytest-fcp: --fcp-cache-from nowhere: no such directory *"),
        (
            ("--fcp-cache-from", "scenarios", "--fcp-update-baselines"),
            "ERROR: pytest-fcp: --fcp-cache-from: a carried cache changes what a scenario does; record its baselines "
            "apart *add --fcp-baseline-dir DIR*",
        ),
    ],
)
def test_a_bad_cache_directory_is_one_line(pytester: pytest.Pytester, args: tuple[str, ...], says: str) -> None:
    _scenarios(pytester)
    (pytester.path / "afile").write_text("")
    result = _run(pytester, "--fcp-engine", "reference", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([says])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


# --- the scenario field and the marker ----------------------------------------------------------------------------
def test_a_scenario_starts_from_a_fixture_cache(pytester: pytest.Pytester) -> None:
    _scenarios(pytester)
    _run(pytester, "--fcp-engine", V1, "--fcp-save-cache", "saved").assert_outcomes(passed=2)
    (pytester.path / "saved/tests.engines.versions_create_v1/mine/old_days").rename(pytester.path / "v1-cache")
    _scenarios(pytester, SCENARIOS.replace('now = "2024-01-10T12:00:00Z"', 'now = "2024-01-10T12:00:00Z"\n'
                                          '    cache_from = "../v1-cache"', 1))  # fmt: skip
    result = _run(pytester, "--fcp-engine", V2)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*FAIL [[]outcome[]] raised SchemaError (cache file for 2024-01-02*"])
    _run(pytester, "--fcp-engine", V2_FIXED).assert_outcomes(passed=2)


def test_a_missing_scenario_cache_from_names_file_scenario_and_field(pytester: pytest.Pytester) -> None:
    _scenarios(pytester, SCENARIOS.replace('now = "2024-01-10T12:00:00Z"', 'now = "2024-01-10T12:00:00Z"\n'
                                           '    cache_from = "../nowhere"', 1))  # fmt: skip
    result = _run(pytester, "--fcp-engine", "reference")
    result.stdout.fnmatch_lines(["*mine.toml::old_days [[]cache_from[]]: cache_from *nowhere does not exist*"])
    assert "Traceback" not in result.stdout.str()


MARKER_TEST = """
    import datetime as dt

    import pytest

    from pytest_fcp.contract import judge

    @pytest.mark.fcp(now="2024-01-10T12:00:00Z"{extra})
    def test_upgrade(fcp_world, fcp_engine):
        obs = fcp_world.fetch(dt.datetime(2024, 1, 2, tzinfo=dt.UTC), dt.datetime(2024, 1, 5, tzinfo=dt.UTC))
        print("CARRIED", sorted(d.isoformat() for d, s in obs.cache_before.items() if s.carried))
        assert not judge(fcp_world.spec, obs), [str(v) for v in judge(fcp_world.spec, obs)]
    """


def test_the_marker_saves_and_starts_from_a_saved_cache(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_upgrade=textwrap.dedent(MARKER_TEST).format(extra=""))
    pytester.runpytest("-n", "0", "-p", "no:randomly", "--fcp-engine", V1, "--fcp-save-cache", "saved").assert_outcomes(
        passed=1
    )
    saved = pytester.path / "saved/tests.engines.versions_create_v1/test_upgrade/test_upgrade"  # engine id dropped
    assert json.loads((saved / MANIFEST).read_text())["test"] == "test_upgrade/test_upgrade"
    result = pytester.runpytest("-n", "0", "-p", "no:randomly", "-s", "--fcp-engine", V2, "--fcp-cache-from",
                                "saved/tests.engines.versions_create_v1")  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*raised SchemaError*"])
    saved.rename(pytester.path / "v1-cache")
    pytester.makepyfile(test_upgrade=textwrap.dedent(MARKER_TEST).format(extra=', cache_from="v1-cache"'))
    result = pytester.runpytest("-n", "0", "-p", "no:randomly", "-s", "--fcp-engine", V2_FIXED)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*CARRIED *'2024-01-02', '2024-01-03', '2024-01-04'*"])


def test_a_missing_marker_cache_from_fails_the_test_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_upgrade=textwrap.dedent(MARKER_TEST).format(extra=', cache_from="nowhere"'))
    result = pytester.runpytest("-n", "0", "-p", "no:randomly", "--fcp-engine", "reference")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*pytest-fcp: bad world for test_upgrade.py::test_upgrade*cache_from *nowhere does "
                                 "not exist*"])  # fmt: skip
    assert "Traceback" not in result.stdout.str()
