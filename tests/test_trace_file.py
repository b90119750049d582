"""The JSON Lines trace file: one line per test (setup errors too), distinct outcomes, same seed -> same file."""

from __future__ import annotations

import json
import pathlib

import pytest

from pytest_fcp.trace import VOLATILE_FIELDS, canonical
from pytest_fcp.world.cache_watch import stable_path

pytest_plugins = ["pytester"]

WALL_CLOCK = ("duration_s", "engine_s", "events", "path")  # raw order: the scheduler's; ``canonical*`` are order-free


def _tests(directory: pathlib.Path) -> list[dict]:
    (file,) = directory.glob("fcp-trace-*.jsonl")
    lines = [json.loads(line) for line in file.read_text().splitlines()]
    assert lines[0]["type"] == "header"
    return lines[1:]


def _stable(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in WALL_CLOCK} for r in records]


@pytest.mark.parametrize("engine", ["reference", "ckvd"])
def test_same_seed_same_trace_file_for_scenarios(pytester: pytest.Pytester, engine: str) -> None:
    from pytest_fcp.scenarios.loader import catalog_dir, load_file

    pytest.importorskip("ckvd") if engine == "ckvd" else None
    files = [str(catalog_dir() / name) for name in ("basics.toml", "cache_corruption.toml")]
    runs = []
    for name in ("a", "b"):
        args = ["-p", "xdist", "-n", "0", "--fcp-scenarios", f"--fcp-engine={engine}", "--fcp-seed=9"]
        pytester.runpytest(*args, f"--fcp-trace-dir={name}", *files)
        runs.append(_tests(pytester.path / name))
    assert len(runs[0]) == sum(len(load_file(pathlib.Path(f))) for f in files)
    for record in runs[0]:
        assert record["canonical"] == canonical(record["events"])
        if engine == "reference":  # one thread: the canonical path tells the same story as the raw one
            assert sorted(record["canonical_path"].split(" -> ")) == sorted(record["path"].split(" -> "))
    if engine == "ckvd":  # ckvd's threads race over its own cache files (which day gets replaced, read again)
        runs = [[_decisions(r) for r in run] for run in runs]  # and now and then over its requests: its results
    assert _stable(runs[0]) == _stable(runs[1]), _first_difference(_stable(runs[0]), _stable(runs[1]))


def _decisions(record: dict) -> dict:
    return dict(record, canonical=[e for e in record["canonical"] if e["kind"] in ("request", "outcome")])


def test_canonical_form_is_order_free_and_drops_wall_clock() -> None:
    request = {"index": 0, "kind": "request", "virtual": "t0", "real_ms": 1.0}
    http = [{"index": i, "kind": "http", "url": u, "real_ms": 2.0 + i, "took_ms": 0.5} for i, u in ((1, "b"), (2, "a"))]
    outcome = {"index": 3, "kind": "outcome", "rows": 1, "real_ms": 9.0}
    one = canonical([request, *http, outcome])
    other = canonical([request, *reversed(http), outcome])
    assert one == other
    assert [e.get("url") for e in one] == [None, "a", "b", None]
    assert not any(set(VOLATILE_FIELDS) & set(e) for e in one)


def test_temporary_cache_file_names_are_normalised() -> None:
    assert stable_path("BTCUSDT/1h/.2024-01-03.arrow.wqud7bfm.tmp") == "BTCUSDT/1h/.2024-01-03.arrow.*.tmp"
    assert stable_path("x/tmpab12cd_4") == "x/tmp*"
    assert stable_path("x/2024-01-03.feather.tmp") == "x/2024-01-03.feather.tmp"
    assert stable_path("BTCUSDT/1h/2024-01-03.arrow") == "BTCUSDT/1h/2024-01-03.arrow"


OUTCOMES = """
import datetime as dt
import pytest

DAY = (dt.datetime(2024, 1, 2, tzinfo=dt.UTC), dt.datetime(2024, 1, 3, tzinfo=dt.UTC))

@pytest.mark.fcp(engines=["reference"])
def test_passes(fcp_world, fcp_engine):
    fcp_world.fetch(*DAY)

@pytest.mark.fcp(engines=["reference"])
def test_fails(fcp_world, fcp_engine):
    fcp_world.fetch(*DAY)
    assert False

@pytest.mark.fcp(engines=["reference"])
@pytest.mark.xfail(reason="known")
def test_xfails(fcp_world, fcp_engine):
    fcp_world.fetch(*DAY)
    assert False

@pytest.mark.fcp(engines=["reference"])
def test_skips(fcp_world, fcp_engine):
    pytest.skip("not today")

@pytest.mark.fcp(faults=["no.such.fault"], engines=["reference"])
def test_setup_error(fcp_world, fcp_engine):
    pass

def test_plain():
    pass
"""


@pytest.mark.parametrize("workers", [None, "2"])
def test_one_line_per_test_with_distinct_outcomes(pytester: pytest.Pytester, workers: str | None) -> None:
    pytester.makepyfile(OUTCOMES)
    args = ["--fcp-trace-dir=t", "-p", "xdist"] + (["-n", workers] if workers else ["-n", "0"])
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=2, failed=1, xfailed=1, skipped=1, errors=1)
    outcomes = {r["nodeid"].split("::")[1]: r["outcome"] for r in _tests(pytester.path / "t")}
    assert outcomes == {
        "test_passes[reference]": "passed",
        "test_fails[reference]": "failed",
        "test_xfails[reference]": "xfailed",
        "test_skips[reference]": "skipped",
        "test_setup_error[reference]": "error",
    }


def test_a_trace_dir_gone_bad_at_the_end_does_not_lose_the_summary(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(OUTCOMES)
    pytester.makeconftest(
        """
        import shutil

        import pytest

        @pytest.hookimpl(tryfirst=True)
        def pytest_sessionfinish(session):
            shutil.rmtree(session.config.rootpath / "t")
            (session.config.rootpath / "t").write_text("now a file")
        """
    )
    result = pytester.runpytest("--fcp-trace-dir=t", "-p", "no:xdist")
    result.assert_outcomes(passed=2, failed=1, xfailed=1, skipped=1, errors=1)
    result.stdout.fnmatch_lines(["fcp: could not write the traces to t: *"])


def _first_difference(one: list[dict], other: list[dict]) -> str:
    for a, b in zip(one, other, strict=True):
        if a != b:
            for x, y in zip(a.get("canonical", []), b.get("canonical", []), strict=False):
                if x != y:
                    return f"{a['nodeid']}: {x} != {y}"
            keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
            return f"{a['nodeid']}: {', '.join(f'{k}: {a.get(k)!r} != {b.get(k)!r}' for k in keys)}"
    return ""
