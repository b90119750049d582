"""Engine deaths and hangs are verdicts on one scenario: BaseException in-process, the endless-retry budget, and
the fork server's reports of a signal, an exit code or a hang (planted engines: tests/engines/dying_engine.py).

Which scenarios a planted death must fail is computed from the reference engine's observations of the same
scenarios (the point a fetch reaches: a request, a read of a day file that exists, a cache write), never listed.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import types
from typing import Any

import pytest

from pytest_fcp.contract import CHECKS, judge
from pytest_fcp.core.cache_states import DayFileState
from pytest_fcp.plugin.deaths import death_verdict
from pytest_fcp.plugin.forkserver import Death, describe_status
from pytest_fcp.plugin.isolation import default_mode, isolation_settings
from pytest_fcp.scenarios.decisions import failure_key
from pytest_fcp.scenarios.loader import load_file
from pytest_fcp.scenarios.runner import run_scenario
from pytest_fcp.world.budget import FetchBudget, Spent
from pytest_fcp.world.observation import FetchRequest, Observation
from pytest_fcp.world.spec import WorldSpec
from tests.conftest import ROOT, utc
from tests.engines import dying_engine

pytest_plugins = ["pytester"]

NOW = utc(2024, 1, 10, 12)
THEME = ROOT / "scenarios" / "basics.toml"  # 17 scenarios: cold, cached, partial, young days, several fetches
ENGINE = "tests.engines.dying_engine:die_{way}_at_{point}"


# --- in-process: a BaseException is a verdict ------------------------------------------------------
def _observation(error: BaseException | None, fetch_number: int = 1) -> Observation:
    request = FetchRequest("BTCUSDT", "spot", "1h", utc(2024, 1, 2), utc(2024, 1, 3))
    empty = {day: DayFileState("missing") for day in request.days}
    return Observation(
        request, NOW, None, error, (), (), (), (), empty, empty, _empty(), frozenset(), fetch_number=fetch_number
    )


def _empty() -> Any:
    import pyarrow as pa

    return pa.table({})


def test_engine_death_check_names_a_base_exception() -> None:
    panic = dying_engine.PanicException("called `Result::unwrap()` on an `Err` value\nmore detail")
    verdicts = judge(WorldSpec(NOW), _observation(panic, fetch_number=2))
    assert [str(v) for v in verdicts] == [  # a Rust panic's nested message differs run to run: the trace keeps it
        "[engine_death] engine raised PanicException during fetch 2, a BaseException `except Exception` does not "
        "catch (its message is in the trace)"
    ]
    verdicts = judge(WorldSpec(NOW), _observation(SystemExit("leaving now\nmore"), fetch_number=1))
    assert [str(v) for v in verdicts] == [
        "[engine_death] engine raised SystemExit during fetch 1, a BaseException `except Exception` does not "
        "catch: leaving now"
    ]


def test_engine_death_check_is_silent_on_an_ordinary_exception() -> None:
    verdicts = judge(WorldSpec(NOW), _observation(RuntimeError("boom")), skip=set(CHECKS) - {"engine_death"})
    assert verdicts == []
    assert judge(WorldSpec(NOW), _observation(None), skip=set(CHECKS) - {"engine_death"}) == []


def test_a_panicking_engine_in_a_world_gets_a_verdict_with_a_stable_key(tmp_path: pathlib.Path) -> None:
    scenario = next(s for s in load_file(THEME) if s.name == "fully_cached_range")
    keys = []
    for run_dir in ("one", "two"):
        run = run_scenario(scenario, dying_engine.die_panic_at_cache_read, tmp_path / run_dir / "cache")
        assert isinstance(run.results[0].error, dying_engine.PanicException)
        keys.append(sorted(failure_key(v, str(run.world.cache_dir)) for v in run.verdicts))
        assert run.world.trace.path() == "cache hit 3d -> PanicException"  # the path ends in the panic
    assert keys[0] == keys[1]
    assert any(k.startswith("engine_death: engine raised PanicException during fetch 1") for k in keys[0])


# --- the endless-retry budget ----------------------------------------------------------------------
def test_spent_budget_raises_past_the_requests_and_keeps_raising() -> None:
    spent = Spent(FetchBudget(requests=3, sleep_s=10.0), fetch=2)
    for sent in range(3):
        spent.check(sent, "GET https://x/1")
    with pytest.raises(BaseException, match=r"endless retry: more than 3 requests in fetch 2, last: GET https://x/1"):
        spent.check(3, "GET https://x/1")
    with pytest.raises(BaseException, match="more than 3 requests"):
        spent.check(0, None, sleeping=0.0)  # once past it, every request and sleep is refused


def test_spent_budget_grows_with_the_days_a_fetch_asks_about() -> None:
    budget = FetchBudget(requests=30, sleep_s=10.0)
    assert [budget.requests_for(d) for d in (0, 1, 100, 101, 1_501)] == [30, 30, 30, 60, 480]  # per 100 days begun
    spent = Spent(budget, fetch=1, days=150)
    for sent in range(60):
        spent.check(sent, "GET https://x/1")
    with pytest.raises(BaseException, match=r"endless retry: more than 60 requests in fetch 1"):
        spent.check(60, "GET https://x/1")


def test_spent_budget_counts_virtual_sleep() -> None:
    spent = Spent(FetchBudget(requests=100, sleep_s=10.0), fetch=1)
    spent.check(0, None, sleeping=6.0)
    with pytest.raises(BaseException, match=r"more than 10 s of virtual sleep in fetch 1"):
        spent.check(0, None, sleeping=6.0)


def test_an_endless_retry_loop_is_a_verdict_without_isolation(tmp_path: pathlib.Path) -> None:
    from pytest_fcp.world.budget import set_fetch_budget

    scenario = next(s for s in load_file(THEME) if s.name == "cold_fetch_from_vision")
    set_fetch_budget(FetchBudget(requests=20))
    try:
        run = run_scenario(scenario, dying_engine.die_retry_at_request, tmp_path / "cache")
    finally:
        set_fetch_budget(FetchBudget())
    reasons = [str(v) for v in run.verdicts if v.check == "endless_retry"]
    assert reasons == [
        "[endless_retry] endless retry: more than 20 requests in fetch 1, last: GET "
        "https://data.binance.vision/data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-02.zip"
    ]
    assert len(run.results[0].requests) == 20


# --- the parent's words for a death ----------------------------------------------------------------
def _events(*kinds: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"index": i, "kind": k, "virtual": "", "real_ms": 0.0, **d} for i, (k, d) in enumerate(kinds)]


def test_death_verdict_names_the_signal_the_fetch_and_the_last_cache_read() -> None:
    events = _events(
        ("request", {"cache_days": {"2024-01-03": "miss"}}),
        ("http", {"method": "GET", "url": "https://v/z.zip", "status": 200}),
        ("cache", {"op": "write", "path": "spot/BTCUSDT/1h/2024-01-03.arrow"}),
        ("outcome", {"rows": 24}),
        ("request", {"cache_days": {"2024-01-03": "hit"}}),
        ("cache", {"op": "read", "path": "spot/BTCUSDT/1h/2024-01-03.arrow"}),
    )
    check, verdict, key = death_verdict(Death("died", "SIGBUS", events))
    assert (check, verdict) == ("engine_death", "engine process died: SIGBUS during fetch 2, after reading 2024-01-03")
    assert key == "engine process died: SIGBUS during fetch 2"
    hung = death_verdict(Death("hung", "no progress for 5 s", events[:2]))
    assert hung[1] == "engine hung: no progress for 5 s during fetch 1 (after GET https://v/z.zip (200))"
    quiet = death_verdict(Death("died", "exit code 3", events[:5]))
    assert quiet[1] == "engine process died: exit code 3 during fetch 2, before any request (its cache held 2024-01-03)"


def test_wait_statuses_in_words() -> None:
    assert describe_status(signal.SIGBUS) == "SIGBUS"  # a wait status of a signal is the signal's number
    assert describe_status(3 << 8) == "exit code 3"


# --- options -------------------------------------------------------------------------------------------
def _config(**given: Any) -> Any:
    return types.SimpleNamespace(getoption=lambda name, default=None: given.get(name), getini=lambda name: "")


def test_fork_where_fork_is_missing_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "fork")
    assert default_mode() == "off"
    with pytest.raises(pytest.UsageError, match=r"^pytest-fcp: --fcp-isolation fork: this platform .* has no os.fork"):
        isolation_settings(_config(fcp_isolation="fork"))


def test_the_default_is_fork_only_on_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.platform", "darwin")
    assert default_mode() == "off"
    monkeypatch.setattr("sys.platform", "linux")
    assert default_mode() == ("fork" if hasattr(os, "fork") else "off")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fcp-isolation=spawn"], "ERROR: pytest-fcp: --fcp-isolation spawn: allowed: fork or off"),
        (
            ["--fcp-hang-seconds=0"],
            "ERROR: pytest-fcp: --fcp-hang-seconds 0: must be a number of seconds greater than 0",
        ),
        (
            ["--fcp-max-requests=lots"],
            "ERROR: pytest-fcp: --fcp-max-requests lots: must be a whole number greater than 0",
        ),
    ],
)
def test_bad_isolation_options_are_one_line(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    result = pytester.runpytest("-p", "no:xdist", *args)
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


# --- the fork server, on the planted engines -------------------------------------------------------
@pytest.fixture(scope="module")
def reached(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """For each point of a fetch, the scenarios of the theme whose reference run reaches it."""
    out: dict[str, set[str]] = {"request": set(), "cache_read": set(), "cache_write": set()}
    root = tmp_path_factory.mktemp("reference")
    for scenario in load_file(THEME):
        run = run_scenario(scenario, "reference", root / scenario.name / "cache")
        for obs in run.results:
            if obs.requests:
                out["request"].add(scenario.name)
            if any(state.status != "missing" for state in obs.cache_before.values()):
                out["cache_read"].add(scenario.name)
            began = next(i for i, e in enumerate(obs.events) if e.kind == "request")
            if any(e.kind == "cache" and e.data.get("op") in ("write", "replace") for e in obs.events[began:]):
                out["cache_write"].add(scenario.name)
    return out


def _run(pytester: pytest.Pytester, way: str, point: str, *extra: str) -> tuple[Any, dict[str, dict[str, Any]]]:
    """The theme on a planted engine in a pytester subprocess; its outcome per scenario (from the JSONL trace)."""
    own = pytester.path / "own"
    own.mkdir(exist_ok=True)
    shutil.copy(THEME, own / THEME.name)
    pytester.syspathinsert(ROOT)
    engine = ENGINE.format(way=way, point=point)
    args = ["--fcp-scenarios", "--fcp-no-bundled", "--fcp-scenarios-dir=own", f"--fcp-engine={engine}"]
    args += ["-p", "no:randomly", "--fcp-isolation=fork", "--fcp-trace-dir=traces", *extra]
    result = pytester.runpytest(*args)
    records = {}
    for path in (pytester.path / "traces").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record.get("type") == "test":
                records[record["scenario"].split("/")[-1]] = record
    return result, records


DEATHS = {
    "panic": "[engine_death] engine raised PanicException during fetch",
    "sigbus": "[engine_death] engine process died: SIGBUS during fetch",
    "sigsegv": "[engine_death] engine process died: SIGSEGV during fetch",
    "sigabrt": "[engine_death] engine process died: SIGABRT during fetch",
    "sigkill": "[engine_death] engine process died: SIGKILL during fetch",
    "exit": "[engine_death] engine process died: exit code 3 during fetch",
    "deadlock": "[engine_hung] engine hung: no progress for 1 s during fetch",
    "retry": "[endless_retry] endless retry: more than 30 requests in fetch",
}


@pytest.mark.parametrize(
    ("way", "point", "workers"),
    [
        ("panic", "cache_read", "0"),
        ("sigbus", "cache_write", "0"),
        ("sigsegv", "request", "0"),
        ("sigabrt", "cache_read", "0"),
        ("sigkill", "cache_write", "2"),
        ("exit", "request", "2"),
        ("deadlock", "request", "0"),
        ("retry", "request", "0"),
    ],
)
def test_a_planted_death_fails_exactly_the_scenarios_that_reach_its_point(
    pytester: pytest.Pytester, reached: dict[str, set[str]], way: str, point: str, workers: str
) -> None:
    extra = ["-n", workers, "--fcp-hang-seconds=1", "--fcp-max-requests=30"]
    result, records = _run(pytester, way, point, *extra)
    expected = reached[point]
    assert expected and len(expected) < len(records) == 17  # the theme reaches the point in some scenarios only
    failed = {name for name, record in records.items() if record["outcome"] == "failed"}
    passed = {name for name, record in records.items() if record["outcome"] == "passed"}
    assert failed == expected
    assert passed == set(records) - expected
    output = result.stdout.str()
    for name in expected:
        assert f"NEW FAILING basics/{name}: {DEATHS[way]}" in output  # the verdict that names the death
        assert records[name]["path"]  # the decision path up to the death, in the JSON Lines trace too
        assert any(e["kind"] == "request" for e in records[name]["events"])
    result.assert_outcomes(failed=len(expected), passed=17 - len(expected))


def test_a_death_reaches_every_report_and_a_baseline_records_it(
    pytester: pytest.Pytester, reached: dict[str, set[str]]
) -> None:
    result, records = _run(pytester, "sigbus", "cache_read", "--fcp-html=report.html", "--junitxml=junit.xml")
    dead = records["fully_cached_range"]
    assert dead["outcome"] == "failed"
    assert dead["path"] and dead["events"][0]["kind"] == "request"
    assert "engine process died: SIGBUS" in (pytester.path / "report.html").read_text()
    junit = (pytester.path / "junit.xml").read_text()
    assert "engine process died: SIGBUS during fetch 1, before any request" in junit
    assert "fcp decision trace" in result.stdout.str()
    assert "fcp replay" in result.stdout.str()
    assert "fcp engine traceback" in result.stdout.str()  # faulthandler's stack, from the child

    update, _ = _run(pytester, "sigbus", "cache_read", "--fcp-update-baselines", "--fcp-baseline-dir=bl")
    update.assert_outcomes(passed=17)
    baseline = next((pytester.path / "bl").glob("*.toml")).read_text()
    assert "engine_death: engine process died: SIGBUS during fetch 1" in baseline
    again, records = _run(pytester, "sigbus", "cache_read", "--fcp-baseline-dir=bl")
    failing = len(reached["cache_read"])
    again.assert_outcomes(passed=17 - failing, xfailed=failing)  # a known death is a known failure, stable


def test_exitfirst_stops_after_the_first_death(pytester: pytest.Pytester, reached: dict[str, set[str]]) -> None:
    result, records = _run(pytester, "sigkill", "request", "-x", "-n", "0")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1
    assert outcomes.get("passed", 0) + 1 < 17
    assert len(records) == outcomes.get("passed", 0) + 1


def test_a_fuzz_item_whose_engine_dies_fails_with_the_death_and_its_replay_line(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert(ROOT)
    engine = ENGINE.format(way="exit", point="request")
    result = pytester.runpytest(
        "--fcp-fuzz", f"--fcp-engine={engine}", "--fcp-fuzz-examples=3", "--fcp-fuzz-db=none", "-n", "0"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*FAIL [[]engine_death[]] engine process died: exit code 3 during fetch 1, before any request*",
            "*fcp replay*",
            f"*--fcp-fuzz*--fcp-engine={engine}*",
        ]
    )


def test_an_engine_spinning_on_the_cpu_meets_the_item_cap(pytester: pytest.Pytester) -> None:
    result, records = _run(pytester, "spin", "request", "-k", "cold_fetch_from_vision", "--fcp-item-seconds=1")
    result.assert_outcomes(failed=1, deselected=16)
    assert records["cold_fetch_from_vision"]["outcome"] == "failed"
    result.stdout.fnmatch_lines(["*FAIL [[]engine_hung[]] engine still running after 1 s during fetch 1*"])


def test_the_coverage_map_is_the_same_with_and_without_isolation(pytester: pytest.Pytester) -> None:
    maps = []
    for mode in ("fork", "off"):
        shutil.copy(THEME, pytester.path / THEME.name)
        args = ["--fcp-scenarios", "--fcp-no-bundled", f"--fcp-scenarios-dir={pytester.path}", "-n", "0"]
        args += ["--fcp-engine=reference", f"--fcp-isolation={mode}", f"--fcp-coverage-json=cov-{mode}.json"]
        pytester.runpytest(*args, "-p", "no:randomly").assert_outcomes(passed=17)
        maps.append(json.loads((pytester.path / f"cov-{mode}.json").read_text()))
    assert maps[0] == maps[1]
    assert maps[0]["exercised"] > 0  # the cells of 17 scenarios, carried from the children on their reports


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            found.update(int(n) for n in (task / "children").read_text().split())
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
    return found


@pytest.mark.skipif(not pathlib.Path("/proc/self/task").exists(), reason="reads /proc")
def test_ctrl_c_in_the_parent_kills_the_child_and_stops_the_run(pytester: pytest.Pytester) -> None:
    shutil.copy(THEME, pytester.path / THEME.name)
    pytester.syspathinsert(ROOT)
    engine = ENGINE.format(way="deadlock", point="request")
    args = ["--fcp-scenarios", "--fcp-no-bundled", f"--fcp-scenarios-dir={pytester.path}", f"--fcp-engine={engine}"]
    args += ["-n", "0", "-p", "no:randomly", "-v", "--fcp-hang-seconds=600", "-k", "cold_fetch_from_vision"]
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", *args], cwd=pytester.path, stdout=subprocess.PIPE, text=True, env=env
    )
    children: set[int] = set()
    try:
        assert process.stdout is not None
        seen = ""
        while "cold_fetch_from_vision" not in seen:  # -v names the item as it starts: the child is serving it
            char = process.stdout.read(1)
            assert char, seen
            seen += char
        children = _children(process.pid)
        while not children:  # the parent names the item, then prepares and forks the fork server's child
            assert process.poll() is None
            os.sched_yield()
            children = _children(process.pid)
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=300)  # a safety net: a run that never ends fails here, not the suite
        assert process.returncode == 2  # pytest's "interrupted"
        assert "KeyboardInterrupt" in rest
        for pid in children:
            assert not pathlib.Path(f"/proc/{pid}").exists() or "Z" in pathlib.Path(f"/proc/{pid}/stat").read_text()
    finally:  # never leave the deadlocked run behind, whatever failed above (only its own processes)
        for pid in (*children, process.pid):
            with contextlib.suppress(OSError):
                if engine in pathlib.Path(f"/proc/{pid}/cmdline").read_text():
                    os.kill(pid, signal.SIGKILL)
        process.wait()
