"""Crash points of the engine's cache writes (``crash`` scenarios) and the cache faults that reach native readers.

Both ways: the reference engine and the test engines keep the crashes theme; an engine that writes in place
and trusts the file it finds fails it, naming the crash point; planted readers fail the new cache faults.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
import pathlib
import re

import pyarrow as pa
import pytest

from pytest_fcp.scenarios import ScenarioError, catalog_dir, load_file
from pytest_fcp.scenarios.loader import parse_file
from pytest_fcp.scenarios.runner import run_scenario
from pytest_fcp.world.arrow_layout import ipc_boundaries, message_spans
from pytest_fcp.world.crash_points import WriteLog, crash_points, put_cache_in, snapshot
from tests.conftest import ALT

CRASHES = load_file(catalog_dir() / "crashes.toml")
CORRUPTION = {s.name: s for s in load_file(catalog_dir() / "cache_corruption.toml")}
DEATHS = load_file(catalog_dir() / "deaths.toml")
DEFECTS = "tests.engines.crash_defects"
CORRECT = {
    "reference": "reference",
    "alt": ALT,
    "requests": "tests.engines.requests_engine:create",
    "aiohttp": "tests.engines.aiohttp_engine:create",
    "renaming": f"{DEFECTS}:create_renaming",
    "in_place_careful": f"{DEFECTS}:create_in_place_careful",
}


def _arrow_file(rows: int) -> bytes:
    table = pa.table({"open_time": pa.array(range(rows), pa.int64()), "close": pa.array([1.5] * rows)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


# --- where an Arrow IPC file's pieces lie ---------------------------------------------------------------
def test_boundaries_are_the_magic_and_each_message_of_an_arrow_file() -> None:
    data = _arrow_file(24)
    cuts, arrow = ipc_boundaries(data)
    spans, is_file = message_spans(data)
    assert arrow and is_file
    assert [kind for _, _, kind in spans] == ["schema", "record batch"]
    assert cuts[0] == 8 and cuts == sorted({8, *(c for s, e, _ in spans for c in (s, e))})
    for start, end, kind in spans:  # each span is one whole message, readable on its own
        assert pa.ipc.read_message(pa.BufferReader(data[start:end])).type == kind
    for cut in cuts:  # no prefix is a readable file
        with pytest.raises(pa.ArrowInvalid):
            pa.ipc.open_file(pa.BufferReader(data[:cut]))


def test_a_polars_file_has_ckvds_three_write_boundaries() -> None:
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({"open_time": list(range(24)), "close": [1.5] * 24})
    sink = io.BytesIO()
    frame.write_ipc(sink)
    cuts, arrow = ipc_boundaries(sink.getvalue())
    assert arrow and len(cuts) == 3 and cuts[0] == 8  # magic, schema, record batch: ckvd's 8, 856, 4520


def test_a_file_that_is_not_arrow_is_cut_at_half() -> None:
    assert ipc_boundaries(b"not an arrow file") == ([8], False)
    assert ipc_boundaries(b"") == ([], False)


# --- deriving crash points from an observed write sequence ----------------------------------------------
def _log_writes(root: pathlib.Path, action) -> tuple[WriteLog, list]:
    day_path = root / "s" / "2024-01-03.arrow"
    log = WriteLog(root, {day_path: dt.date(2024, 1, 3)})
    action(day_path)
    log.close()
    if not log.available:
        pytest.skip("no inotify here")
    return log, log.writes()


def test_an_in_place_write_of_a_new_file_gives_absent_empty_and_each_prefix(tmp_path: pathlib.Path) -> None:
    data = _arrow_file(24)
    _, writes = _log_writes(tmp_path, lambda path: path.write_bytes(data))
    assert [(w.how, w.old, w.new) for w in writes] == [("in_place", None, data)]
    points = crash_points(writes)
    cuts, _ = ipc_boundaries(data)
    assert [p.label for p in points] == [
        "absent (not created yet)",
        "empty (after the truncating open)",
        *(f"prefix {n} of {len(data)} bytes" for n in cuts),
    ]
    assert [p.final for p in points] == [None, b"", *(data[:n] for n in cuts)]
    assert points[2].describe() == (
        f"crash point 3 of {len(points)} (2024-01-03 day file: prefix 8 of {len(data)} bytes, written in place)"
    )


def test_a_renamed_write_over_an_old_file_keeps_it_beside_the_temporary_file(tmp_path: pathlib.Path) -> None:
    old, new = _arrow_file(12), _arrow_file(24)
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "2024-01-03.arrow").write_bytes(old)

    def rename(path: pathlib.Path) -> None:
        temp = path.with_name(".2024-01-03.arrow.ab12cd34.tmp")
        temp.write_bytes(new)
        os.replace(temp, path)

    _, writes = _log_writes(tmp_path, rename)
    assert [(w.how, w.temp, w.old) for w in writes] == [("rename", "s/.2024-01-03.arrow.ab12cd34.tmp", old)]
    points = crash_points(writes)
    assert all(p.final == old for p in points[:-1]) and points[-1].final == new
    assert (
        points[0].label
        == f"the old day file ({len(old)} bytes) intact, temporary file .2024-01-03.arrow.*.tmp left empty"
    )
    assert points[-2].temp == new and points[-1].temp is None and points[-1].label == "after the rename"


def test_the_cache_in_a_crash_state_has_earlier_writes_done_and_later_ones_not(tmp_path: pathlib.Path) -> None:
    days = {tmp_path / f"2024-01-0{d}.arrow": dt.date(2024, 1, d) for d in (2, 3, 4)}
    (tmp_path / "index.json").write_text("before")
    log = WriteLog(tmp_path, days)
    for path in days:
        path.write_bytes(_arrow_file(24))
    (tmp_path / "index.json").write_text("after")
    log.close()
    if not log.available:
        pytest.skip("no inotify here")
    writes = log.writes()
    assert [w.day.day for w in writes] == [2, 3, 4]
    middle = next(p for p in crash_points(writes) if p.write.day.day == 3 and p.label.startswith("prefix"))
    put_cache_in(tmp_path, log, middle, writes)
    assert snapshot(tmp_path) == {
        "2024-01-02.arrow": writes[0].new,  # done before the crash
        "2024-01-03.arrow": middle.final,  # torn
        "index.json": b"before",  # every file that is not a day file: as before the fetch
    }


# --- the crashes theme ------------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", list(CORRECT.values()), ids=list(CORRECT))
@pytest.mark.parametrize("scenario", CRASHES, ids=[s.name for s in CRASHES])
def test_correct_engines_keep_every_crash_point(scenario, engine, tmp_path: pathlib.Path) -> None:
    run = run_scenario(scenario, engine, tmp_path / "cache", seed=5)
    assert run.passed, run.summary()
    assert len(run.results) > 1  # the crash points were replayed, each with a fresh engine


@pytest.mark.parametrize("scenario", CRASHES, ids=[s.name for s in CRASHES])
def test_an_in_place_writer_that_trusts_its_files_fails_naming_the_point(scenario, tmp_path: pathlib.Path) -> None:
    run = run_scenario(scenario, f"{DEFECTS}:create_in_place", tmp_path / "cache", seed=5)
    assert run.verdicts and all(v.at.startswith("crash point ") for v in run.verdicts), run.summary()
    assert all(v.check == "outcome" for v in run.verdicts)
    torn = ("prefix ", "empty (after the truncating open)", "truncated to 0 bytes")
    assert all(any(word in v.at for word in torn) for v in run.verdicts), run.summary()
    assert "written in place): [outcome] raised" in str(run.verdicts[0])


def test_same_seed_same_points_same_verdicts(tmp_path: pathlib.Path) -> None:
    scenario = next(s for s in CRASHES if s.name == "overwrite_partial_day_every_point")
    runs = [run_scenario(scenario, f"{DEFECTS}:create_in_place", tmp_path / str(i), seed=9) for i in range(2)]
    assert [str(v) for v in runs[0].verdicts] == [str(v) for v in runs[1].verdicts]
    assert runs[0].verdicts[0].at == (
        "crash point 1 of 4 (2024-01-03 day file: the old file (1786 bytes) truncated to 0 bytes, written in place)"
    )


def test_a_chosen_point_runs_once_and_one_beyond_the_fetch_is_noted(tmp_path: pathlib.Path) -> None:
    scenario = next(s for s in CRASHES if s.name == "futures_chosen_point")
    assert scenario.crash == (3,)
    run = run_scenario(scenario, f"{DEFECTS}:create_in_place", tmp_path / "a", seed=1)
    assert len(run.results) == 2 and [v.at.split(" (")[0] for v in run.verdicts] == ["crash point 3 of 5"]
    far = run_scenario(dataclasses.replace(scenario, crash=(99,)), "reference", tmp_path / "b", seed=1)
    assert len(far.results) == 1 and far.passed
    notes = [e.data["message"] for e in far.world.trace.events if e.data.get("module") == "pytest_fcp.crash"]
    made = re.fullmatch(r"crash points: (\d+) in 1 day-file write\(s\) of the first fetch", notes[0])
    assert made and notes[1] == f"crash point(s) 99 not reached: the fetch made {made[1]}"


BASE = """
[[scenario]]
name = "c"
description = "d"
now = "2024-01-10T12:00:00Z"
request = { start = "2024-01-02", end = "2024-01-03" }
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('crash = "all"', 'c [crash]: expected "every", a crash point number from 1 to 1000 or a list of them'),
        ("crash = 0", "c [crash]: expected"),
        ("crash = true", "c [crash]: expected"),
        ("crash = []", "c [crash]: expected"),
        ('crash = ["1"]', "c [crash]: expected"),
    ],
)
def test_a_bad_crash_value_is_one_line_naming_the_field(extra: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message.replace("[", r"\[")):
        parse_file(BASE + extra + "\n", file="t.toml", theme="t")


def test_a_crash_scenario_has_at_most_two_requests() -> None:
    three = BASE.replace(
        'request = { start = "2024-01-02", end = "2024-01-03" }',
        'request = [{ start = "2024-01-02", end = "2024-01-03" }, { start = "2024-01-03", end = "2024-01-04" },'
        ' { start = "2024-01-04", end = "2024-01-05" }]',
    )
    with pytest.raises(ScenarioError, match=r"t.toml::c \[crash\]: 3 requests; a crash scenario has one"):
        parse_file(three + 'crash = "every"\n', file="t.toml", theme="t")
    assert parse_file(BASE + "crash = [4, 2, 2]\n", file="t.toml", theme="t")[0].crash == (2, 4)


# --- cache faults that reach native readers ------------------------------------------------------------------
@pytest.mark.parametrize("engine", list(CORRECT.values())[:4], ids=list(CORRECT)[:4])
def test_correct_engines_keep_the_native_reader_faults(engine, tmp_path: pathlib.Path) -> None:
    for i, scenario in enumerate([*DEATHS, CORRUPTION["mixed_writers_is_a_miss"], CORRUPTION["truncated_while_read"]]):
        run = run_scenario(scenario, engine, tmp_path / str(i), seed=2)
        assert run.passed, (scenario.id, run.summary())


def test_a_short_body_fails_a_reader_that_trusts_an_intact_footer(tmp_path: pathlib.Path) -> None:
    run = run_scenario(DEATHS[0], f"{DEFECTS}:create_in_place", tmp_path / "cache", seed=2)
    assert "[outcome] raised OSError (Expected to be able to read" in run.summary()


def test_mixed_writers_fail_a_reader_that_serves_any_readable_file(tmp_path: pathlib.Path) -> None:
    run = run_scenario(CORRUPTION["mixed_writers_is_a_miss"], f"{DEFECTS}:create_lenient", tmp_path / "c", seed=2)
    assert "[rows] 8 duplicated bar(s), first at 2024-01-03T08:00:00+00:00" in run.summary()
    assert run.results[0].cache_before[dt.date(2024, 1, 3)].status == "extra"


def test_a_file_cut_while_read_fails_an_engine_that_reads_it_again(tmp_path: pathlib.Path) -> None:
    scenario = CORRUPTION["truncated_while_read"]
    run = run_scenario(scenario, f"{DEFECTS}:create_rereading", tmp_path / "a", seed=2)
    assert "[outcome] raised ArrowInvalid" in run.summary()
    fine = run_scenario(scenario, "reference", tmp_path / "b", seed=2)
    cut = [e.data["message"] for e in fine.world.trace.events if e.data.get("module") == "pytest_fcp.world"]
    assert cut == [
        "cache.truncated_on_read: spot/BTCUSDT/1h/2024-01-02.arrow cut to 1181 of 2362 bytes after the engine opened it"
    ]
    assert fine.results[0].cache_after[dt.date(2024, 1, 2)].status == "unreadable" and fine.passed


WRITE_FAILS = """
[[scenario]]
name = "w"
description = "d"
now = "2024-01-10T12:00:00Z"
faults = ["cache.write_fails", { id = "cache.partial_day", days = ["2024-01-03"] }]
cached = ["2024-01-02"]
request = { start = "2024-01-02", end = "2024-01-05" }
"""


def test_write_fails_is_refused_for_a_native_writer_it_cannot_stop(tmp_path: pathlib.Path) -> None:
    scenario = parse_file(WRITE_FAILS, file="w.toml", theme="w")[0]
    refused = r"w.toml::w \[faults\]: cache.write_fails cannot reach this engine: it wrote spot/BTCUSDT/1h/2024-01-03"
    with pytest.raises(ScenarioError, match=refused):
        run_scenario(scenario, "tests.engines.native_engine:create", tmp_path / "a")
    assert run_scenario(scenario, "reference", tmp_path / "b").passed  # a Python writer is stopped


# --- the marker and the fcp_crash fixture ---------------------------------------------------------------------
MARKED = """
import datetime as dt

import pytest

UTC = dt.UTC


@pytest.mark.fcp(now="2024-01-10T12:00:00Z", crash=CRASH)
def test_crash(fcp_crash):
    run = fcp_crash(dt.datetime(2024, 1, 2, tzinfo=UTC), dt.datetime(2024, 1, 4, tzinfo=UTC))
    assert len(run.results) > 1
    assert not run.verdicts, "\\n".join(str(v) for v in run.verdicts)
"""


@pytest.mark.parametrize(
    ("engine", "crash", "outcome", "line"),
    [
        ("reference", '"every"', "passed", None),
        (f"{DEFECTS}:create_in_place", '"every"', "failed", "*crash point 2 of 10 (2024-01-02 day file: empty *"),
        (f"{DEFECTS}:create_in_place", "[3]", "failed", "*crash point 3 of 10 (2024-01-02 day file: prefix 8 *"),
        ("reference", '"all"', "errors", '*@pytest.mark.fcp: crash: expected "every", a crash point number*'),
    ],
)
def test_the_marker_chooses_the_points_of_fcp_crash(
    pytester: pytest.Pytester, engine: str, crash: str, outcome: str, line: str | None
) -> None:
    pytester.makepyfile(test_marked=MARKED.replace("CRASH", crash))
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", "-n", "0", f"--fcp-engine={engine}")
    result.assert_outcomes(**{outcome: 1})
    if line:
        result.stdout.fnmatch_lines([line])
