"""Behaviour baselines: the record, the TOML file (round trip, determinism, updates, validation) and the differ."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tomllib

import pytest

from pytest_fcp.baseline import (
    Baseline,
    BaselineError,
    Change,
    DayRow,
    FetchRecord,
    LegacyBaselineError,
    Record,
    RecordError,
    Totals,
    compare,
    first_line,
    load_baseline,
    read_legacy_expectations,
    render,
    render_baseline,
    update_baseline,
    validate_ids,
    write_baseline,
)

REPO = pathlib.Path(__file__).resolve().parents[1]


def day(
    date: str,
    before: str = "miss",
    vision: str = "https 200 x2",
    rest: str = "",
    rows: str = "vision 24",
    after: str = "valid",
) -> DayRow:
    """A day row with the defaults of a cold day fetched from Vision."""
    return DayRow(date, before, vision, rest, rows, after)


COLD = Record.single(
    "data",
    [day("2024-01-02"), day("2024-01-03"), day("2024-01-04")],
    ["needed_only: asked Vision for day(s) outside the request: 2024-01-05"],
    Totals(vision=8),
)
TRICKY = Record.single(
    "DataSourceError",
    [day("2024-01-09", vision="https 403 x1, s3 200 x2", rest="429 x1, 200 x2", rows="cache 12, rest 12")],
    [
        'outcome: raised DataSourceError ("quoted" \\ back\\slash) although every day was obtainable',
        "rows: ünïcödé ✓ 日本 bar(s)\ttab\nnewline \x01 control \x7f del",
    ],
    Totals(vision=3, rest=3, rest_weight=6, retries=2, sleeps=3),
)
TWICE = Record(
    (
        FetchRecord("data", (day("2024-01-02"), day("2024-01-03"))),
        FetchRecord("RuntimeError", (day("2024-01-02", before="hit", vision="", rows="", after="valid"),)),
        FetchRecord("data"),
    ),
    ("outcome: raised RuntimeError although every day was obtainable",),
    Totals(vision=4, sleeps=600),
)
RECORDS = {"basics/cold_fetch_from_vision": COLD, 'rest_errors/tricky "id" ü': TRICKY, "basics/twice": TWICE}


# --- round trip and determinism -------------------------------------------------------------------------------


def test_round_trip_equals_the_records(tmp_path: pathlib.Path) -> None:
    path = write_baseline(tmp_path / "ckvd.toml", "ckvd", RECORDS)
    loaded = load_baseline(path, engine="ckvd")
    assert loaded == Baseline("ckvd", RECORDS)
    assert loaded.records["basics/twice"].outcomes == ("data", "RuntimeError", "data")
    assert loaded.records["basics/twice"].totals.sleeps == 600
    assert tomllib.loads(path.read_text(encoding="utf-8"))['rest_errors/tricky "id" ü'] == TRICKY.to_data()
    assert [p.name for p in tmp_path.iterdir()] == ["ckvd.toml"]  # no temporary file left behind


def test_file_shape_is_one_line_per_day_in_a_fixed_key_order(tmp_path: pathlib.Path) -> None:
    text = render_baseline("ckvd", {"basics/cold_fetch_from_vision": COLD, "basics/twice": TWICE})
    body = text[text.index("format = 1") :]
    assert body == (
        'format = 1\nengine = "ckvd"\n\n'
        '["basics/cold_fetch_from_vision"]\n'
        'outcome = "data"\n'
        'failures = ["needed_only: asked Vision for day(s) outside the request: 2024-01-05"]\n'
        "totals = { vision = 8, rest = 0, rest_weight = 0, retries = 0, sleeps = 0 }\n"
        '["basics/cold_fetch_from_vision".days]\n'
        + "".join(
            f'2024-01-0{d} = {{ cache_before = "miss", vision = "https 200 x2", rest = "", rows = "vision 24", '
            'cache_after = "valid" }\n'
            for d in (2, 3, 4)
        )
        + '\n["basics/twice"]\n'
        'outcome = ["data", "RuntimeError", "data"]\n'
        'failures = ["outcome: raised RuntimeError although every day was obtainable"]\n'
        "totals = { vision = 4, rest = 0, rest_weight = 0, retries = 0, sleeps = 600 }\n"
        '["basics/twice".days]\n'
        '2024-01-02 = { cache_before = "miss", vision = "https 200 x2", rest = "", rows = "vision 24", '
        'cache_after = "valid" }\n'
        '2024-01-03 = { cache_before = "miss", vision = "https 200 x2", rest = "", rows = "vision 24", '
        'cache_after = "valid" }\n'
        '["basics/twice".days_2]\n'
        '2024-01-02 = { cache_before = "hit", vision = "", rest = "", rows = "", cache_after = "valid" }\n'
        '["basics/twice".days_3]\n'
    )
    assert text.startswith("# Behaviour baseline of the 'ckvd' engine")
    assert "--fcp-update-baselines" in text.split("format = 1")[0]
    several = render_baseline("ckvd", {"x/y": TRICKY})
    assert "failures = [\n  " in several and several.count("\n  ") == 2


def test_same_records_in_another_order_give_identical_bytes(tmp_path: pathlib.Path) -> None:
    shuffled = Record(
        (FetchRecord(TRICKY.outcomes[0], tuple(reversed(TRICKY.fetches[0].days))),),
        tuple(reversed(TRICKY.failures)),
        TRICKY.totals,
    )
    reordered = {key: RECORDS[key] for key in reversed(list(RECORDS))} | {'rest_errors/tricky "id" ü': shuffled}
    one = write_baseline(tmp_path / "a.toml", "ckvd", RECORDS).read_bytes()
    two = write_baseline(tmp_path / "b.toml", "ckvd", reordered).read_bytes()
    assert one == two
    cold_days = Record.single("data", reversed(COLD.fetches[0].days), reversed(COLD.failures), COLD.totals)
    assert render_baseline("e", {"k/v": cold_days}) == render_baseline("e", {"k/v": COLD})


def test_records_reject_bad_values() -> None:
    with pytest.raises(RecordError, match=r"field day: 2024-02-30 is not a calendar day"):
        DayRow("2024-02-30")
    with pytest.raises(RecordError, match=r"field days.2024-01-02: appears twice"):
        FetchRecord("data", (day("2024-01-02"), day("2024-01-02")))
    with pytest.raises(RecordError, match=r"field outcome: no fetch recorded"):
        Record(())
    with pytest.raises(RecordError, match=r"field totals.retries: is True \(boolean\)"):
        Totals(retries=True)  # type: ignore[arg-type]


# --- updates -------------------------------------------------------------------------------------------------------


def test_partial_update_keeps_the_other_scenarios(tmp_path: pathlib.Path) -> None:
    path = write_baseline(tmp_path / "ckvd.toml", "ckvd", RECORDS)
    before = path.read_text(encoding="utf-8")
    worse = Record.single("RuntimeError", [day("2024-01-02", vision="", rows="", after="missing")])
    extra = Record.single("data")
    result = update_baseline(
        path,
        "ckvd",
        {"basics/cold_fetch_from_vision": worse, "basics/new_one": extra, "basics/not_selected": extra},
        only={"basics/cold_fetch_from_vision", "basics/new_one", "basics/twice"},
        remove=['rest_errors/tricky "id" ü'],
    )
    loaded = load_baseline(path)
    assert loaded == result
    assert loaded.records == {"basics/cold_fetch_from_vision": worse, "basics/new_one": extra, "basics/twice": TWICE}
    twice_block = before[before.index('["basics/twice"]') :]
    assert twice_block.split("\n\n")[0] in path.read_text(encoding="utf-8")  # untouched text of a kept scenario


def test_full_update_replaces_everything_and_migrates_the_old_format(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "ckvd.toml"
    path.write_text('[expected_failures]\n"basics/x" = "a reason"\n', encoding="utf-8")
    assert read_legacy_expectations(path) == {"basics/x": "a reason"}
    update_baseline(path, "ckvd", {"basics/a": COLD}, only={"basics/a"})
    assert load_baseline(path).records == {"basics/a": COLD}
    update_baseline(path, "ckvd", {"basics/b": TWICE})
    assert load_baseline(path).records == {"basics/b": TWICE}


def test_update_refuses_a_broken_or_foreign_file(tmp_path: pathlib.Path) -> None:
    path = write_baseline(tmp_path / "ckvd.toml", "reference", {"basics/a": COLD})
    with pytest.raises(BaselineError, match=r'field engine: is "reference", not "ckvd"'):
        update_baseline(path, "ckvd", {}, only={"basics/a"})
    path.write_bytes(b"format = \n")
    with pytest.raises(BaselineError, match="not valid TOML"):
        update_baseline(path, "ckvd", {}, only=set())
    assert path.read_bytes() == b"format = \n"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: pathlib.Path, monkeypatch) -> None:
    path = write_baseline(tmp_path / "ckvd.toml", "ckvd", {"basics/a": COLD})
    before = path.read_bytes()

    def refuse(src: str, dst: str) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(BaselineError, match=r"ckvd.toml: cannot write it \(Permission denied\)"):
        write_baseline(path, "ckvd", RECORDS)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckvd.toml"]


def test_legacy_expectations_files_are_recognised(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "ckvd.toml"  # as the earlier releases wrote them
    path.write_text(
        "# Known FCP contract failures of the 'ckvd' engine against the pytest-fcp scenario catalog.\n"
        "[expected_failures]\n"
        '"basics/cold_fetch_from_vision" = "asked Vision for day(s) outside the request: 2024-01-05"\n'
    )
    with pytest.raises(LegacyBaselineError) as info:
        load_baseline(path)
    assert str(info.value) == (
        f"{path}: this is the old expectations format ([expected_failures]); "
        "rerun with --fcp-update-baselines to replace it with a behaviour baseline"
    )
    legacy = read_legacy_expectations(path)
    assert legacy["basics/cold_fetch_from_vision"] == "asked Vision for day(s) outside the request: 2024-01-05"


def test_validate_ids_lists_the_unknown_ones() -> None:
    baseline = Baseline("ckvd", dict(RECORDS))
    assert validate_ids(baseline, ["basics/twice", "basics/cold_fetch_from_vision", "other/x"]) == [
        'rest_errors/tricky "id" ü'
    ]
    assert validate_ids(baseline, RECORDS) == []


# --- malformed files -----------------------------------------------------------------------------------------------

VALID = """\
format = 1
engine = "ckvd"

["basics/a"]
outcome = "data"
failures = []
totals = { vision = 1, rest = 0, rest_weight = 0, retries = 0, sleeps = 0 }
["basics/a".days]
2024-01-02 = { cache_before = "miss", vision = "https 200 x1", rest = "", rows = "vision 24", cache_after = "valid" }
"""


def edit(old: str, new: str) -> str:
    assert old in VALID
    return VALID.replace(old, new, 1)


DAY = "2024-01-02 = "
SCN = 'scenario "basics/a", field'
MALFORMED = [
    ("invalid_toml", 'format = 1\nengine = "ckvd\n', "not valid TOML (Illegal character '\\n' (at line 2, column 15))"),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8 text (byte 0x89 at offset 0); a UTF-8 TOML file"),
    ("nul_bytes", b"format = 1\x00\x00", "not valid TOML ("),
    (
        "old_format",
        '[expected_failures]\n"a/b" = "why"\n',
        "this is the old expectations format ([expected_failures]); rerun with --fcp-update-baselines",
    ),
    ("format_missing", edit("format = 1\n", ""), "field format: missing; allowed: format = 1"),
    (
        "format_unknown",
        edit("format = 1", "format = 2"),
        "field format: version 2 is not supported; this pytest-fcp reads format 1 only",
    ),
    ("format_string", edit("format = 1", 'format = "1"'), 'field format: is "1" (string); allowed: format = 1'),
    ("engine_missing", edit('engine = "ckvd"\n', ""), "field engine: missing; allowed: the engine's name"),
    ("engine_type", edit('engine = "ckvd"', "engine = 7"), "field engine: is 7 (integer); allowed: the engine's name"),
    ("top_unknown", edit("format = 1", 'format = 1\ncolour = "red"'), "field colour: unknown key; allowed: format, "),
    (
        "scenario_not_table",
        edit('["basics/a"]', '"basics/b" = 3\n["basics/a"]'),
        'scenario "basics/b": is 3 (integer); allowed: a table per',
    ),
    (
        "scenario_unknown",
        edit("failures = []", 'failures = []\nnote = "x"'),
        f"{SCN} note: unknown key; allowed: outcome, failures, totals, days",
    ),
    ("outcome_missing", edit('outcome = "data"\n', ""), f'{SCN} outcome: missing; allowed: "data" or an exception'),
    ("outcome_type", edit('outcome = "data"', "outcome = 3"), f"{SCN} outcome: is 3 (integer); allowed: "),
    ("outcome_word", edit('"data"', '"no data"'), f'{SCN} outcome: "no data" (string) is not an outcome; allowed'),
    ("outcome_empty", edit('"data"', "[]"), f"{SCN} outcome: is an empty array; allowed: "),
    ("outcome_item", edit('"data"', '["data", 2]'), f"{SCN} outcome[1]: is 2 (integer); allowed: "),
    ("failures_type", edit("failures = []", 'failures = "x"'), f'{SCN} failures: is "x" (string); allowed: an array'),
    ("failures_item", edit("failures = []", 'failures = ["a", 2]'), f"{SCN} failures[1]: is 2 (integer); allowed: "),
    ("failures_missing", edit("failures = []\n", ""), f"{SCN} failures: missing; allowed: an array of failure key"),
    ("totals_type", edit("totals = {", "totals = [1]\n#"), f"{SCN} totals: is an array; allowed: a table"),
    (
        "totals_count_type",
        edit("vision = 1", 'vision = "1"'),
        f'{SCN} totals.vision: is "1" (string); allowed: a non-negative integer',
    ),
    ("totals_negative", edit("rest = 0,", "rest = -1,"), f"{SCN} totals.rest: is -1 (integer); allowed: a non-neg"),
    ("totals_float", edit("retries = 0", "retries = 0.5"), f"{SCN} totals.retries: is 0.5 (float); allowed: a non-"),
    (
        "sleeps_negative",
        edit("sleeps = 0", "sleeps = -1"),
        f"{SCN} totals.sleeps: is -1 (integer); allowed: a non-negative integer",
    ),
    ("sleeps_not_integer", edit("sleeps = 0", "sleeps = 1.5"), f"{SCN} totals.sleeps: is 1.5 (float); allowed: "),
    (
        "totals_unknown",
        edit("sleeps = 0", "sleeps = 0, slept_s = 1"),
        f"{SCN} totals.slept_s: unknown key; allowed: vision, rest, rest_weight, retries, sleeps",
    ),
    ("totals_missing", edit("retries = 0, ", ""), f"{SCN} totals.retries: missing; allowed: a table {{ vision = 0"),
    (
        "day_key_bad",
        edit(DAY, "2024-13-02 = "),
        f"{SCN} days.2024-13-02: 2024-13-02 is not a calendar day; allowed: a UTC day as YYYY-MM-DD",
    ),
    ("day_key_word", edit(DAY, "monday = "), f'{SCN} days.monday: "monday" (string) is not a day; allowed: a UTC'),
    (
        "day_key_datetime",
        edit(DAY, '"2024-01-02T00:00" = '),
        f'{SCN} days.2024-01-02T00:00: "2024-01-02T00:00" (string) is not a day',
    ),
    (
        "day_not_table",
        VALID + '2024-01-03 = "x"\n',
        f'{SCN} days.2024-01-03: is "x" (string); allowed: a table {{ cache_before',
    ),
    (
        "day_field_type",
        edit('vision = "https 200 x1"', "vision = 200"),
        f'{SCN} days.2024-01-02.vision: is 200 (integer); allowed: a string such as "https 200 x2"',
    ),
    ("day_unknown", edit('rest = ""', 'rest = "", source = "x"'), f"{SCN} days.2024-01-02.source: unknown key"),
    ("day_missing", edit(' rows = "vision 24",', ""), f"{SCN} days.2024-01-02.rows: missing; allowed: a table"),
    ("days_missing", VALID.split('["basics/a".days]')[0], f"{SCN} days: missing; allowed: a table of days"),
    ("days_2_missing", edit('"data"', '["data", "data"]'), f"{SCN} days_2: missing; allowed: a table of days"),
    (
        "days_2_unexpected",
        VALID + '["basics/a".days_2]\n',
        f"{SCN} days_2: unknown key (one days table per fetch: "
        "list one outcome per fetch); allowed: outcome, failures, totals, days",
    ),
    ("date_value", edit('"data"', "2024-01-02"), f"{SCN} outcome: is datetime.date(2024, 1, 2) (date/time)"),
]


@pytest.mark.parametrize(("content", "expected"), [case[1:] for case in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_file_gives_one_line_naming_file_scenario_and_field(
    tmp_path: pathlib.Path, content: str | bytes, expected: str
) -> None:
    path = tmp_path / "ckvd.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    with pytest.raises(BaselineError) as info:
        load_baseline(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert message.count(": ") >= 1 and len(message) < 300


def test_valid_file_of_the_malformed_cases_loads(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "ckvd.toml"
    path.write_text(VALID, encoding="utf-8")
    expected = Record.single("data", [day("2024-01-02", vision="https 200 x1")], totals=Totals(vision=1))
    assert load_baseline(path).records == {"basics/a": expected}


def test_engine_mismatch_and_missing_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "ckvd.toml"
    path.write_text(VALID, encoding="utf-8")
    with pytest.raises(BaselineError) as info:
        load_baseline(path, engine="reference")
    assert str(info.value) == f'{path}: field engine: is "ckvd", not "reference"; allowed: the engine this file is for'
    with pytest.raises(BaselineError) as info:
        load_baseline(tmp_path / "none.toml")
    assert str(info.value) == f"{tmp_path / 'none.toml'}: cannot read it (No such file or directory); a readable file"


# --- the differ ----------------------------------------------------------------------------------------------------

ROWS_FAILURE = "rows: 72 bar(s) differ from the source data, first at 2024-01-02T00:00:00+00:00"
RAISED = "outcome: raised RuntimeError although every day was obtainable"
BASE = Record.single(
    "data",
    [day("2024-01-03", vision="", rest="200 x1", rows="rest 24"), day("2024-01-04")],
    [ROWS_FAILURE],
    Totals(vision=2, rest=3, rest_weight=6),
)


def test_compare_same_and_better() -> None:
    assert compare(BASE, BASE) == Change("same", [])
    fixed = Record(BASE.fetches, (), BASE.totals)
    change = compare(BASE, fixed)
    assert change == Change("better", [f"no longer failing [rows] {ROWS_FAILURE[6:]}"])
    assert first_line(change) == f"better: no longer failing [rows] {ROWS_FAILURE[6:]}"
    assert first_line(compare(BASE, BASE)) == "same"


def test_compare_worse_renders_every_difference_most_important_first() -> None:
    actual = Record.single(
        "RuntimeError",
        [
            day("2024-01-03", vision="", rest="", rows=""),
            day("2024-01-04", after="missing"),
            day("2024-01-05", vision="", rest="200 x1", rows="rest 24"),
        ],
        [RAISED],
        Totals(vision=2, rest=6, rest_weight=12),
    )
    change = compare(BASE, actual)
    assert change.kind == "worse"
    assert render(change) == "\n".join(
        [
            "outcome data -> RuntimeError",
            "newly failing [outcome] raised RuntimeError although every day was obtainable",
            "no longer failing [rows] 72 bar(s) differ from the source data, first at 2024-01-02T00:00:00+00:00",
            "2024-01-03: rest 200 x1 -> (none)",
            "2024-01-03: rows rest 24 -> (none)",
            "2024-01-04: cache_after valid -> missing",
            "2024-01-05: (absent) -> cache_before miss, rest 200 x1, rows rest 24, cache_after valid",
            "totals: rest 3 -> 6, rest_weight 6 -> 12",
        ]
    )
    assert first_line(change) == "worse: outcome data -> RuntimeError (+7 more)"
    assert render(change, limit=3).splitlines()[3:] == ["… 5 more differences"]
    assert render(change, limit=7).splitlines()[-1] == "… 1 more difference"


def test_compare_worse_by_outcome_alone_and_by_an_added_failure() -> None:
    errored = Record((FetchRecord("DataSourceError", BASE.fetches[0].days),), BASE.failures, BASE.totals)
    assert compare(BASE, errored) == Change("worse", ["outcome data -> DataSourceError"])
    assert compare(errored, BASE) == Change("changed", ["outcome DataSourceError -> data"])
    added = Record(BASE.fetches, (*BASE.failures, RAISED), BASE.totals)
    assert compare(BASE, added).kind == "worse"


def test_compare_changed_when_behaviour_differs_with_the_same_failures() -> None:
    slower = Record(
        (FetchRecord("data", (BASE.fetches[0].days[0], day("2024-01-04", vision="https 500 x1, https 200 x1"))),),
        BASE.failures,
        Totals(vision=3, rest=3, rest_weight=6, retries=1, sleeps=2),
    )
    assert compare(BASE, slower) == Change(
        "changed",
        [
            "2024-01-04: vision https 200 x2 -> https 500 x1, https 200 x1",
            "totals: vision 2 -> 3, retries 0 -> 1, sleeps 0 -> 2",
        ],
    )
    dropped = Record((FetchRecord("data", BASE.fetches[0].days[:1]),), BASE.failures, BASE.totals)
    assert compare(BASE, dropped).lines == [
        "2024-01-04: cache_before miss, vision https 200 x2, rows vision 24, cache_after valid -> (absent)"
    ]
    fixed_but_different = Record(BASE.fetches[:1], (), Totals())
    assert compare(BASE, fixed_but_different).kind == "changed"


def test_compare_several_fetches_and_new() -> None:
    one_less = Record(TWICE.fetches[:2], TWICE.failures, TWICE.totals)
    assert compare(TWICE, one_less) == Change("changed", ["fetches 3 -> 2", "fetch 3: outcome data -> (absent)"])
    recovered = Record(
        (TWICE.fetches[0], FetchRecord("data", TWICE.fetches[1].days), TWICE.fetches[2]), (), TWICE.totals
    )
    assert compare(TWICE, recovered).lines == [
        "fetch 2: outcome RuntimeError -> data",
        "no longer failing [outcome] raised RuntimeError although every day was obtainable",
    ]
    broken = Record((TWICE.fetches[0], FetchRecord("data", ()), TWICE.fetches[2]), TWICE.failures, TWICE.totals)
    assert compare(TWICE, broken).lines == [
        "fetch 2: outcome RuntimeError -> data",
        "fetch 2, 2024-01-02: cache_before hit, cache_after valid -> (absent)",
    ]
    new = compare(None, TRICKY)
    assert new.kind == "new"
    assert new.lines[0] == "not in the baseline: outcome DataSourceError, 2 failures"
    assert new.lines[2] == "failing [rows] ünïcödé ✓ 日本 bar(s)\ttab\\nnewline \x01 control \x7f del"
    assert compare(None, Record.single("data")).lines == ["not in the baseline: outcome data, no failures"]


def test_the_package_imports_nothing_but_the_standard_library() -> None:
    code = (
        "import sys, pytest_fcp.baseline; "
        "print(sorted(m for m in sys.modules if m.startswith(('pytest', '_pytest', 'pytest_fcp.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(
        [
            "pytest_fcp",
            "pytest_fcp.baseline",
            "pytest_fcp.baseline.diff",
            "pytest_fcp.baseline.record",
            "pytest_fcp.baseline.store",
        ]
    )
