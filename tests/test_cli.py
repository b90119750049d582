"""The ``fcp`` command, run as a user runs it (a subprocess), against caches written by the real engines.

* ``cache-health`` on caches written by ckvd (through the adapter's ``write_cache``, i.e. ckvd's own
  ``save_to_cache``) and by the reference engine; on caches broken with ``apply_cache_fault`` for every
  ``cache.*`` fault id (each must be detected and named), plus hand-made duplicate / out-of-day / too-recent
  files; ``--json`` parses; exit codes 0 / 1 / 2.
* ``diagnose --simulate`` in the simulated world (fixed ``--now``), and the live path's quick, clear failure
  without a network.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import pytest

from pytest_fcp.cli import main
from pytest_fcp.core.markets import day_bounds_ms
from pytest_fcp.engines.reference import ReferenceEngine
from pytest_fcp.faults import FAULTS, fault
from pytest_fcp.world.cache import CacheSandbox, truth_to_cache_table
from pytest_fcp.world.cache_faults import apply_cache_fault
from pytest_fcp.world.truth import SyntheticTruth

NOW = "2024-01-20T12:00:00Z"
FIRST = dt.date(2023, 12, 1)
TRUTH = SyntheticTruth(seed=0)

#: cache fault id -> the status cache-health must report for it.
EXPECTED_STATUS = {
    "cache.zero_byte": "zero_byte",
    "cache.truncated": "truncated",
    "cache.random_bytes": "not_arrow",
    "cache.arrow_stream": "arrow_stream",
    "cache.missing_column": "missing_column",
    "cache.wrong_types": "wrong_types",
    "cache.ns_timestamps": "ns_timestamps",
    "cache.partial_day": "partial_day",
    "cache.stale_day": "stale_day",
    "cache.duplicate_rows": "duplicate",
    "cache.unreadable": "unreadable",
    "cache.short_body": "truncated",  # the footer is intact, a record batch is short
    "cache.mixed_writers": "duplicate",
    "cache.truncated_on_read": "ok",  # valid at rest: it is cut only once an engine opens it
}
FILE_FAULTS = [fid for fid in FAULTS if fid.startswith("cache.") and FAULTS[fid].needs_days]


def test_every_file_fault_has_an_expected_status() -> None:
    assert sorted(FILE_FAULTS) == sorted(EXPECTED_STATUS)


# --- helpers ---------------------------------------------------------------------------------------------
def fcp_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest_fcp.cli", *args]


def fcp_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The user's environment, a wide terminal, and bytecode caching in a private directory.

    With PYTHONDONTWRITEBYTECODE set, every ``fcp`` process would compile moto, pandas & co. from source
    (seconds); a pycache prefix outside the repository and the venv keeps that to the first run.
    """
    env = {**os.environ, "COLUMNS": "200", **(extra or {})}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(pathlib.Path(tempfile.gettempdir()) / "pytest-fcp-pycache"))
    return env


def run_fcp(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(fcp_command(*args), capture_output=True, text=True, timeout=timeout, env=fcp_env(env))


def start_fcp(*args: str) -> subprocess.Popen[str]:
    """Start ``fcp`` in the background (the slow diagnose runs overlap with the rest of the module)."""
    return subprocess.Popen(
        fcp_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=fcp_env()
    )


def finish(process: subprocess.Popen[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    out, err = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def truth_day(symbol: str, day: dt.date, market: str = "spot", interval: str = "1h") -> pa.Table:
    return TRUTH.klines(market, symbol, interval, *day_bounds_ms(day))


def write_valid(engine: Any, symbol: str, days: Sequence[dt.date]) -> None:
    for day in days:
        engine.write_cache(symbol, "spot", "1h", day, truth_to_cache_table(truth_day(symbol, day)))


def break_days(engine: Any, symbol: str, root: pathlib.Path) -> dict[dt.date, str]:
    """Valid days with a faulty day between each pair: FIRST+0 valid, +1 fault 1, +2 valid, +3 fault 2 ..."""
    sandbox = CacheSandbox(root)
    faulty: dict[dt.date, str] = {}
    write_valid(engine, symbol, [FIRST + dt.timedelta(days=2 * i) for i in range(len(FILE_FAULTS) + 1)])
    for i, fid in enumerate(FILE_FAULTS):
        day = FIRST + dt.timedelta(days=2 * i + 1)
        apply_cache_fault(engine, fault(fid, days=[day]), symbol, "spot", "1h", day, truth_day(symbol, day), sandbox)
        faulty[day] = fid
    return faulty


def series(report: dict[str, Any], layout: str, symbol: str) -> dict[str, Any]:
    found = [s for s in report["series"] if s["layout"] == layout and s["symbol"] == symbol]
    assert len(found) == 1, [(s["layout"], s["symbol"]) for s in report["series"]]
    return found[0]


# --- caches ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def diagnose_runs() -> Iterator[dict[str, subprocess.Popen[str]]]:
    """The simulated diagnose runs, started first so that they overlap with the cache tests."""
    runs = {
        "403": start_fcp("diagnose", "BTCUSDT", "spot", "1h", "--simulate", "vision.http403", "--now", NOW),
        "warm": start_fcp("diagnose", "BTCUSDT", "spot", "1h", "--simulate", "none", "--warm", "--now", NOW, "--json"),
    }
    yield runs
    for process in runs.values():
        if process.poll() is None:
            process.kill()
            process.communicate()


def build_ckvd_caches(app_root: str, broken_root: str) -> dict[str, Any]:
    """Write the ckvd caches through the adapter (ckvd's own writer); run in a subprocess (see below).

    ``app_root`` gets a healthy cache at ckvd's default place for ``CKVD_CACHE_DIR=app_root``; ``broken_root``
    gets every file fault. Returns ckvd's ``real_cache_root()`` for that setting and the faulted days.
    """
    from pytest_fcp.engines import ckvd as adapter

    os.environ["CKVD_CACHE_DIR"] = app_root
    engine = adapter.CkvdEngine(adapter.real_cache_root())  # what CryptoKlineVisionData() uses by default
    write_valid(engine, "BTCUSDT", [dt.date(2024, 1, d) for d in (1, 2, 3, 5)])
    engine.close()
    broken = adapter.CkvdEngine(pathlib.Path(broken_root))
    faults = break_days(broken, "BTCUSDT", pathlib.Path(broken_root))
    broken.close()
    return {
        "real_cache_root": str(adapter.real_cache_root()),
        "faults": {day.isoformat(): fid for day, fid in faults.items()},
    }


@pytest.fixture(scope="module")
def ckvd_caches(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], dict[str, Any]]]:
    """Start writing the ckvd caches in a subprocess at once (importing ckvd costs seconds); wait on use.

    The subprocess gets the bytecode cache of :func:`fcp_env`, which this process (run with the user's
    PYTHONDONTWRITEBYTECODE) would not have.
    """
    pytest.importorskip("ckvd")
    base = tmp_path_factory.mktemp("ckvd")
    paths = {"app_root": base / "ckvd-app", "broken_root": base / "broken"}
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); from tests.test_cli import build_ckvd_caches; "
        "print(json.dumps(build_ckvd_caches(sys.argv[2], sys.argv[3])))"
    )
    repo = str(pathlib.Path(__file__).resolve().parent.parent)
    process = subprocess.Popen(
        [sys.executable, "-c", code, repo, str(paths["app_root"]), str(paths["broken_root"])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=fcp_env(),
    )  # fmt: skip
    result: dict[str, Any] = {}

    def wait() -> dict[str, Any]:
        if not result:
            out, err = process.communicate(timeout=180)
            assert process.returncode == 0, err
            result.update(json.loads(out.strip().splitlines()[-1]), **paths)
        return result

    yield wait
    if process.poll() is None:
        process.kill()
        process.communicate()


@pytest.fixture(scope="module")
def reference_root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("reference")
    engine = ReferenceEngine(root)
    write_valid(engine, "BTCUSDT", [dt.date(2024, 1, d) for d in range(1, 8)])
    engine.close()
    return root


@pytest.fixture(scope="module")
def broken_root(
    tmp_path_factory: pytest.TempPathFactory, ckvd_caches: Callable[[], dict[str, Any]]
) -> tuple[pathlib.Path, dict[str, dict[dt.date, str]]]:
    """Both layouts in one tree, each with every file fault applied to its own day, plus hand-made faults."""
    root = tmp_path_factory.mktemp("broken") / "cache"
    reference = ReferenceEngine(root)
    faults = {"reference": break_days(reference, "BTCUSDT", root)}
    # What no fault id produces: duplicated bars, a bar of the next day, a day younger than 48 h.
    dup_day, out_day, young_day = dt.date(2024, 1, 2), dt.date(2024, 1, 4), dt.date(2024, 1, 19)
    write_valid(reference, "ETHUSDT", [dt.date(2024, 1, 1), dt.date(2024, 1, 3), young_day])
    full = truth_to_cache_table(truth_day("ETHUSDT", dup_day))
    reference.write_cache("ETHUSDT", "spot", "1h", dup_day, pa.concat_tables([full, full]).sort_by("open_time"))
    spill = truth_to_cache_table(TRUTH.klines("spot", "ETHUSDT", "1h", *day_bounds_ms(out_day)))
    next_bar = truth_to_cache_table(truth_day("ETHUSDT", out_day + dt.timedelta(days=1))).slice(0, 1)
    reference.write_cache("ETHUSDT", "spot", "1h", out_day, pa.concat_tables([spill, next_bar]))
    faults["extra"] = {dup_day: "duplicate", out_day: "out_of_day", young_day: "too_recent"}
    reference.close()
    ckvd = ckvd_caches()
    os.replace(ckvd["broken_root"] / "data", root / "data")  # one tree, both layouts, one scan
    faults["ckvd"] = {dt.date.fromisoformat(day): fid for day, fid in ckvd["faults"].items()}
    return root, faults


# --- cache-health ------------------------------------------------------------------------------------------
def test_healthy_ckvd_cache_at_ckvd_default_location(ckvd_caches: Callable[[], dict[str, Any]]) -> None:
    ckvd_app_root = ckvd_caches()["app_root"]
    done = run_fcp("cache-health", "--json", "--now", NOW, env={"CKVD_CACHE_DIR": str(ckvd_app_root)})
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    # The default directory is ckvd's own, resolved as ckvd resolves it (and as the adapter reports it).
    assert report["cache_dir"] == str(ckvd_app_root / "data")
    assert "CKVD_CACHE_DIR" in report["cache_dir_source"]
    s = series(report, "ckvd", "BTCUSDT")
    assert (s["market"], s["interval"], s["files"], s["writable"]) == ("spot", "1h", 4, True)
    assert (s["first_day"], s["last_day"]) == ("2024-01-01", "2024-01-05")
    assert s["gaps"] == [["2024-01-04", "2024-01-04"]] and s["gap_days"] == 1
    assert s["bad_files"] == [] and s["problems"] == []
    assert report["summary"]["healthy"] is True and report["verdict"].startswith("HEALTHY")


def test_default_dir_is_the_adapters_real_cache_root(
    ckvd_caches: Callable[[], dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_fcp.health import default_cache_dir

    built = ckvd_caches()
    monkeypatch.setenv("CKVD_CACHE_DIR", str(built["app_root"]))
    assert default_cache_dir()[0] == pathlib.Path(built["real_cache_root"]) == built["app_root"] / "data"


def test_healthy_reference_cache_human_output(reference_root: pathlib.Path) -> None:
    done = run_fcp(
        "cache-health", "--cache-dir", str(reference_root), "--now", NOW, "--from", "2024-01-02", "--to", "2024-01-06"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""  # no progress bar when stderr is not a terminal
    assert f"Cache dir: {reference_root}" in done.stdout
    assert "given with --cache-dir" in done.stdout
    assert "reference" in done.stdout and "2024-01-02..2024-01-06" in done.stdout
    assert "5 of 5 cacheable day(s) healthy" in done.stdout
    lines = done.stdout.strip().splitlines()
    assert lines[-1].startswith("HEALTHY: 5 day file(s)"), lines[-1]


def test_requested_range_coverage(reference_root: pathlib.Path) -> None:
    done = run_fcp(
        "cache-health", "--cache-dir", str(reference_root), "--json", "--now", NOW,
        "--from", "2023-12-30", "--to", "2024-01-19", "--symbol", "btcusdt", "--interval", "1h",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    requested = series(report, "reference", "BTCUSDT")["requested"]
    assert requested["healthy_days"] == 7
    # 2024-01-18 and -19 ended 36 h and 12 h before now: not cacheable yet, so not "missing".
    assert requested["too_recent_days"] == 2
    assert requested["missing"] == [["2023-12-30", "2023-12-31"], ["2024-01-08", "2024-01-17"]]
    assert "12 requested day(s) not cached" in report["verdict"]


def test_every_cache_fault_is_detected_and_named(
    broken_root: tuple[pathlib.Path, dict[str, dict[dt.date, str]]],
) -> None:
    root, faults = broken_root
    human = start_fcp("cache-health", "--cache-dir", str(root), "--now", NOW, "--verbose")
    done = run_fcp("cache-health", "--cache-dir", str(root), "--json", "--now", NOW)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["layouts"] == ["ckvd", "reference"]

    for layout in ("reference", "ckvd"):
        s = series(report, layout, "BTCUSDT")
        statuses = {f["day"]: f["status"] for f in s["bad_files"]}
        expected = {day.isoformat(): EXPECTED_STATUS[fid] for day, fid in faults[layout].items()}
        expected = {day: status for day, status in expected.items() if status != "ok"}
        if layout == "ckvd":  # ckvd stores open_time in nanoseconds itself: that file is its normal format
            ns_day = next(day for day, fid in faults[layout].items() if fid == "cache.ns_timestamps")
            del expected[ns_day.isoformat()]
        assert statuses == expected, (layout, statuses)
        assert s["files"] == 2 * len(FILE_FAULTS) + 1
        stale = next(f for f in s["bad_files"] if f["status"] == "stale_day")
        assert "jump" in stale["detail"]

    extra = series(report, "reference", "ETHUSDT")
    assert {f["day"]: f["issues"] for f in extra["bad_files"]} == {
        day.isoformat(): [status] for day, status in faults["extra"].items()
    }
    layouts = ("reference", "ckvd")
    repeated = sum(EXPECTED_STATUS[fid] == "duplicate" for layout in layouts for fid in faults[layout].values())
    assert report["summary"]["issues"]["duplicate"] == 1 + repeated
    assert report["verdict"].startswith("PROBLEMS:")

    shown = finish(human)
    assert shown.returncode == 1
    for status in {*EXPECTED_STATUS.values(), "duplicate", "out_of_day", "too_recent"} - {"ok"}:
        assert status in shown.stdout, status
    assert shown.stdout.strip().splitlines()[-1].startswith("PROBLEMS:")


def test_read_only_directory(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "cache"
    engine = ReferenceEngine(root)
    write_valid(engine, "BTCUSDT", [dt.date(2024, 1, 1)])
    sandbox = CacheSandbox(root)
    try:
        apply_cache_fault(
            engine, fault("cache.read_only_dir"), "BTCUSDT", "spot", "1h", dt.date(2024, 1, 1),
            truth_day("BTCUSDT", dt.date(2024, 1, 1)), sandbox,
        )  # fmt: skip
    except OSError as exc:  # pragma: no cover - a file system without the immutable attribute
        pytest.skip(str(exc))
    try:
        done = run_fcp("cache-health", "--cache-dir", str(root), "--json", "--now", NOW)
    finally:
        sandbox.restore()
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["writable"] is False
    s = series(report, "reference", "BTCUSDT")
    assert s["writable"] is False and s["problems"] == ["directory not writable"]
    assert "not writable" in report["verdict"]


def run_with_tty_stderr(*args: str) -> tuple[int, str, bytes]:
    """Run ``fcp`` with stderr on a pseudo-terminal (stdout piped); return status, stdout, terminal bytes."""
    import pty

    master, slave = pty.openpty()
    process = subprocess.Popen(
        fcp_command(*args), stdout=subprocess.PIPE, stderr=slave, text=True,
        env=fcp_env({"FCP_PROGRESS_FROM": "1"}),
    )  # fmt: skip
    os.close(slave)
    out, _ = process.communicate(timeout=120)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other end is closed and drained
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    return process.returncode, out, seen


def test_progress_bar_only_on_a_terminal_and_never_with_json(reference_root: pathlib.Path) -> None:
    status, out, terminal = run_with_tty_stderr("cache-health", "--cache-dir", str(reference_root), "--now", NOW)
    assert status == 0 and "HEALTHY" in out
    assert b"scanning day files" in terminal
    status, out, terminal = run_with_tty_stderr(
        "cache-health", "--cache-dir", str(reference_root), "--now", NOW, "--json"
    )
    assert status == 0 and json.loads(out)["summary"]["files"] == 7
    assert terminal == b""


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["cache-health", "--market", "moon"], ["'moon'", "spot, futures_usdt, futures_coin"]),
        (["cache-health", "--interval", "7m"], ["'7m'", "1s, 1m"]),
        (["cache-health", "--from", "2024-02-30"], ["'2024-02-30'", "YYYY-MM-DD"]),
        (["cache-health", "--cache-dir", "/no/such/dir"], ["/no/such/dir", "does not exist"]),
        (
            ["cache-health", "--from", "2024-02-02", "--to", "2024-02-01", "--cache-dir", "."],
            ["--from", "after"],
        ),
        (
            ["diagnose", "BTCUSDT", "spot", "1h", "--simulate", "vision.http430"],
            ["vision.http430", "vision.http403"],
        ),
        (["diagnose", "BTCUSDT", "moon", "1h"], ["'moon'", "futures_usdt"]),
        (["diagnose", "BTCUSDT", "futures_usdt", "1s", "--simulate", "none"], ["'1s'", "1m"]),
        (["diagnose", "BTCUSDT", "spot", "1h", "--engine", "nope"], ["'nope'", "reference"]),
        (["diagnose", "BTCUSDT", "spot", "1h", "--now", "2024-01-10", "--simulate", "none"], ["timezone"]),
        (["diagnose", "BTC/USDT", "spot", "1h"], ["'BTC/USDT'", "BTCUSDT"]),
        (["nonsense"], ["'nonsense'", "cache-health", "diagnose"]),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    args: list[str], names: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for name in names:
        assert name in err


def test_usage_error_from_the_command_line() -> None:
    done = run_fcp("cache-health", "--market", "moon")
    assert done.returncode == 2
    assert done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "fcp cache-health: error: argument --market: unknown market 'moon'; "
        "expected one of spot, futures_usdt, futures_coin (see fcp cache-health --help)"
    ]


# --- diagnose ----------------------------------------------------------------------------------------------
def test_diagnose_simulated_vision_403(diagnose_runs: dict[str, subprocess.Popen[str]]) -> None:
    done = finish(diagnose_runs["403"])
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    path_line = next(line for line in out.splitlines() if line.startswith("Decision path:"))
    assert "vision 403" in path_line and "rest 200" in path_line
    assert path_line.index("vision 403") < path_line.index("rest 200")
    assert "simulated world (offline)" in out and "faults: vision.http403" in out
    assert "vision_403" in out and "Forbidden" in out
    assert "too_recent_for_vision" in out  # today and the two days before are not on Vision yet
    for source in ("cache", "vision", "rest"):
        assert any(line.split()[:1] == [source] for line in out.splitlines()), source
    assert out.strip().splitlines()[-1].startswith("PROBLEMS FOUND: cache miss 4d -> vision 403")


def test_diagnose_simulated_warm_cache_json(diagnose_runs: dict[str, subprocess.Popen[str]]) -> None:
    done = finish(diagnose_runs["warm"])
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["mode"] == "simulated" and report["engine"] == "reference" and report["ok"] is True
    assert report["start"] == "2024-01-17T00:00:00Z" and report["end"] == NOW
    assert report["cache_before"]["2024-01-17"] == "valid"
    assert report["rows_by_source"] == {"cache": 24, "rest": 60}
    assert report["rows"] == report["expected_rows"] == 84
    assert report["decision_path"].startswith("cache hit 1d -> cache miss 3d -> rest 200 x1")
    assert report["sources"]["cache"]["rows"] == 24 and report["sources"]["vision"]["requests"] == 0
    assert report["days_too_recent_for_vision"] == ["2024-01-18", "2024-01-19", "2024-01-20"]
    assert {h["id"] for h in report["hints"]} == {"too_recent_for_vision", "ok"}
    assert all(h["severity"] == "info" for h in report["hints"])
    assert report["trace"][0]["kind"] == "request"


def test_diagnose_live_without_network_fails_fast_and_clearly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    from pytest_fcp.cli import main

    looked_up: list[str] = []

    def no_dns(host: str, *args: object, **kwargs: object) -> object:  # a resolver that knows no names
        looked_up.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    started = time.monotonic()
    code = main(["diagnose", "BTCUSDT", "spot", "1h", "--timeout", "2"])
    out, err = capsys.readouterr()
    assert time.monotonic() - started < 20
    assert code == 2 and "data.binance.vision" in looked_up
    assert out == "" and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert "no network" in err and "data.binance.vision" in err and "--simulate" in err


def test_diagnose_json_errors_are_json_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_fcp.cli import main

    for argv in (["diagnose", "--json", "BTCUSDT", "spot", "1h", "--engine", "nosuch"], ["diagnose", "--json"]):
        code = main(argv)
        out, err = capsys.readouterr()
        data = json.loads(out)
        assert code == 2 and data["exit"] == 2 and data["error"].startswith("fcp diagnose: error: "), out
        assert err == ""
