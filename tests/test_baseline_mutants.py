"""Behaviour records stay stable and their files stay exact: temporary paths are masked in failure keys, every
malformed field is named, the rendering round-trips any text, and each kind of difference is told apart (the
mutation campaign, docs/mutation.md, measures how many planted changes these tests notice)."""

from __future__ import annotations

import pathlib

import pytest

from pytest_fcp.baseline import Change, Record, compare, load_baseline, render, render_baseline, write_baseline
from pytest_fcp.contract import Verdict
from pytest_fcp.scenarios.decisions import failure_key, record_of
from tests.test_contract import NOW, Truth, observe, result_table
from tests.test_contract import world as world  # the fixture

# --- temporary paths never reach a baseline ------------------------------------------------------------------

MASKED = [
    (
        "raised OSError ([Errno 13] Permission denied: '/tmp/pytest-of-root/pytest-12/test_x0/spot/2024-01-03.arrow')",
        "raised OSError ([Errno 13] Permission denied: '<tmp>')",
    ),
    ("wrote /home/u/.cache/fcp-sandbox_k2j3/x.arrow.part twice", "wrote <tmp> twice"),
    ("could not rename /tmp/tmpk2j3h4l5/2024-01-03.arrow (busy)", "could not rename <tmp> (busy)"),
    ("a lock held at 0x7f3a2b1c9d00 and 0xDEADBEEF", "a lock held at 0x… and 0x…"),
]


@pytest.mark.parametrize(("reason", "key"), MASKED)
def test_failure_keys_mask_temporary_paths_and_addresses(reason: str, key: str) -> None:
    assert failure_key(Verdict("cache", reason)) == f"cache: {key}"


def test_failure_keys_mask_the_cache_root_and_leave_other_text_alone() -> None:
    reason = "lost /work/run-7/cache/spot/BTCUSDT/2024-01-03.arrow"
    masked = "cache: lost <cache>/spot/BTCUSDT/2024-01-03.arrow"
    assert failure_key(Verdict("cache", reason), "/work/run-7/cache") == masked
    assert failure_key(Verdict("cache", reason)) == f"cache: {reason}"  # no root given: a plain path stays
    plain = "kept /srv/data/2024-01-03.arrow, a tmpdir word and 0x1f"
    assert failure_key(Verdict("rows", plain), "") == f"rows: {plain}"


def test_two_runs_in_different_temporary_directories_give_the_same_baseline(world: Truth, tmp_path) -> None:
    start, end = NOW.replace(day=3, hour=0), NOW.replace(day=4, hour=0)
    obs = observe(world, result_table(world, start, end), start, end)
    records = {}
    for run, root in enumerate(("/tmp/pytest-of-a/pytest-1/test_a0", "/tmp/pytest-of-b/pytest-9/test_b0")):
        verdicts = [
            Verdict("cache", f"2024-01-03: left {root}/cache/spot/2024-01-03.arrow.tmp behind"),
            Verdict("outcome", f"raised OSError (No space left on device: '{root}/cache/x') although ..."),
        ]
        record = record_of([obs], verdicts, f"{root}/cache")
        records[f"t/run{run}"] = record
    first, second = records.values()
    assert first.failures == second.failures
    assert first.failures == (
        "cache: 2024-01-03: left <cache>/spot/2024-01-03.arrow.tmp behind",
        "outcome: raised OSError (No space left on device: '<cache>/x') although ...",
    )
    text = render_baseline("reference", records)
    assert "/tmp" not in text and "pytest-of" not in text
    assert compare(first, second).kind == "same"
    loaded = load_baseline(write_baseline(tmp_path / "reference.toml", "reference", records), "reference")
    assert loaded.records == records


# --- records: errors and descriptions --------------------------------------------------------------------------


def test_a_record_error_says_what_is_allowed_only_when_it_knows() -> None:
    from pytest_fcp.baseline import RecordError

    assert str(RecordError("totals", "is odd")) == "field totals: is odd"
    assert str(RecordError("totals", "is odd", "allowed: a table")) == "field totals: is odd; allowed: a table"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({}, "a table"),
        ([1], "an array"),
        (None, "None (NoneType)"),
        ((1, 2), "(1, 2) (tuple)"),
        ("two\nlines", '"two\\nlines" (string)'),
        ("x" * 58, '"' + "x" * 58 + '" (string)'),  # 60 characters with the quotes: shown whole
        ("x" * 59, '"' + "x" * 59 + "… (string)"),  # 61: cut to 60 and marked
        ("y" * 100, '"' + "y" * 59 + "… (string)"),
    ],
)
def test_describe_names_a_value_briefly_with_its_toml_type(value: object, text: str) -> None:
    from pytest_fcp.baseline.record import describe

    assert describe(value) == text


def test_a_fetch_record_finds_its_day_rows() -> None:
    from pytest_fcp.baseline import DayRow, FetchRecord

    fetch = FetchRecord("data", (DayRow("2024-01-03", rows="rest 24"), DayRow("2024-01-02", rows="vision 24")))
    assert [row.day for row in fetch.days] == ["2024-01-02", "2024-01-03"]
    assert fetch.day("2024-01-03") == DayRow("2024-01-03", rows="rest 24")
    assert fetch.day("2024-01-04") is None


# --- files: the errors name the field and what is allowed --------------------------------------------------------

HEAD = 'format = 1\nengine = "ckvd"\n\n["basics/a"]\noutcome = "data"\nfailures = []\n'
TOTALS = "totals = { vision = 0, rest = 0, rest_weight = 0, retries = 0, sleeps = 0 }\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            HEAD + TOTALS + "days = 3\n",
            'scenario "basics/a", field days: is 3 (integer); '
            "allowed: a table of days, one YYYY-MM-DD = { ... } per day",
        ),
        (
            HEAD + TOTALS + '["basics/a".days]\n2024-01-02 = { cache_before = "", vision = "", rest = "", rows = "", '
            'cache_after = "", colour = "" }\n',
            'scenario "basics/a", field days.2024-01-02.colour: unknown key; '
            "allowed: cache_before, vision, rest, rows, cache_after",
        ),
    ],
)
def test_a_malformed_days_table_is_named_with_what_is_allowed(tmp_path, text: str, message: str) -> None:
    from pytest_fcp.baseline import BaselineError

    path = tmp_path / "ckvd.toml"
    path.write_text(text)
    with pytest.raises(BaselineError) as caught:
        load_baseline(path)
    assert str(caught.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[expected_failures]\n"a/b" = "why"\n[other]\n', "not an old expectations file; allowed: a single "),
        ('format = 1\n[expected_failures]\n"a/b" = "why"\n', "not an old expectations file; allowed: a single "),
        ("expected_failures = 3\n", "field expected_failures: is 3 (integer); allowed: a table of id = reason"),
        (
            '[expected_failures]\n"a/b" = 3\n',
            'scenario "a/b", field expected_failures: is 3 (integer); allowed: a reason string',
        ),
    ],
)
def test_a_bad_old_expectations_file_is_named(tmp_path, text: str, message: str) -> None:
    from pytest_fcp.baseline import BaselineError, read_legacy_expectations

    path = tmp_path / "ckvd.toml"
    path.write_text(text)
    with pytest.raises(BaselineError) as caught:
        read_legacy_expectations(path)
    assert str(caught.value).startswith(f"{path}: {message}")
    assert caught.value.path == path


def test_updates_start_from_nothing_replace_broken_files_and_ignore_unknown_removals(tmp_path) -> None:
    from pytest_fcp.baseline import Record, update_baseline

    one, two = Record.single("data"), Record.single("RuntimeError")
    path = tmp_path / "new" / "ckvd.toml"
    assert update_baseline(path, "ckvd", {"t/a": one, "t/b": two}, only={"t/a"}).records == {"t/a": one}
    assert load_baseline(path).records == {"t/a": one}
    path.write_text("not = [toml")
    assert update_baseline(path, "ckvd", {"t/b": two}, remove=["t/gone"]).records == {"t/b": two}
    assert load_baseline(path, "ckvd").records == {"t/b": two}


# --- differences ---------------------------------------------------------------------------------------------


def record(*fetches: tuple[str, dict[str, str]], failures: tuple[str, ...] = ()) -> Record:
    """A record of fetches given as (outcome, {day: rows})."""
    from pytest_fcp.baseline import DayRow, FetchRecord

    return Record(
        tuple(FetchRecord(o, tuple(DayRow(d, rows=r) for d, r in days.items())) for o, days in fetches), failures
    )


def test_failure_keys_read_as_check_and_reason_only_when_they_look_so() -> None:
    base = record(("data", {}))
    keys = ("rows: day 2024: odd\r", "two words: text", "no separator at all")
    assert compare(base, record(("data", {}), failures=keys)).lines == [
        "newly failing no separator at all",
        "newly failing [rows] day 2024: odd\\r",
        "newly failing two words: text",
    ]


def test_a_day_present_on_one_side_only_is_shown_whole_and_the_next_day_still_compared() -> None:
    old = record(("data", {"2024-01-02": "", "2024-01-03": "vision 24"}))
    new = record(("data", {"2024-01-03": "rest 24"}))
    change = compare(old, new)
    assert change == Change("changed", ["2024-01-02: (nothing) -> (absent)", "2024-01-03: rows vision 24 -> rest 24"])


def test_a_run_with_more_fetches_than_its_baseline_shows_each_new_fetch() -> None:
    one = record(("data", {"2024-01-02": "vision 24"}))
    two = record(("data", {"2024-01-02": "vision 24"}), ("RuntimeError", {"2024-01-02": "cache 24"}))
    assert compare(one, two) == Change(
        "changed",
        [
            "fetches 1 -> 2",
            "fetch 2: outcome (absent) -> RuntimeError",
            "fetch 2, 2024-01-02: (absent) -> rows cache 24",
        ],
    )
    assert compare(two, one).lines[:2] == ["fetches 2 -> 1", "fetch 2: outcome RuntimeError -> (absent)"]
    assert compare(None, two).lines == ["not in the baseline: outcome data / RuntimeError, no failures"]
    failing = record(("data", {}), failures=("rows: x",))
    assert compare(None, failing).lines == ["not in the baseline: outcome data, 1 failure", "failing [rows] x"]


def test_render_shows_twenty_lines_then_counts_the_rest() -> None:
    assert render(Change("changed", [f"line {i}" for i in range(20)])).splitlines()[-1] == "line 19"
    shown = render(Change("changed", [f"line {i}" for i in range(21)])).splitlines()
    assert shown[-2:] == ["line 19", "… 1 more difference"]


def test_errors_name_a_non_ascii_scenario_as_written(tmp_path) -> None:
    from pytest_fcp.baseline import BaselineError

    path = tmp_path / "ckvd.toml"
    path.write_text(HEAD.replace("basics/a", "basics/ü").replace('"data"', '"no data"') + TOTALS, encoding="utf-8")
    with pytest.raises(BaselineError) as caught:
        load_baseline(path)
    assert str(caught.value).startswith(f'{path}: scenario "basics/ü", field outcome: "no data" (string) is not')


def test_a_file_with_a_format_is_never_the_old_format(tmp_path) -> None:
    from pytest_fcp.baseline import BaselineError, LegacyBaselineError

    path = tmp_path / "ckvd.toml"
    path.write_text('format = 1\nengine = "ckvd"\n[expected_failures]\n"a/b" = "why"\n')
    with pytest.raises(BaselineError) as caught:
        load_baseline(path)
    assert not isinstance(caught.value, LegacyBaselineError)
    assert str(caught.value).startswith(f'{path}: scenario "expected_failures", field outcome: missing')


def test_the_header_names_the_engine_and_format_and_keeps_each_comment_on_one_line(tmp_path) -> None:
    text = render_baseline("my\nengine", {})
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert (
        header[0]
        == "# Behaviour baseline of the 'my\\nengine' engine against the pytest-fcp scenario catalog (format 1)."
    )
    assert header[-1] == "#   pytest --fcp-scenarios --fcp-engine my?engine --fcp-update-baselines"
    assert 'engine = "my\\nengine"' in text
    (tmp_path / "x.toml").write_text(text, encoding="utf-8")
    assert load_baseline(tmp_path / "x.toml").engine == "my\nengine"


def test_a_baseline_is_written_through_a_hidden_temporary_file_beside_it(tmp_path, monkeypatch) -> None:
    import os

    replaced = []
    real_replace = os.replace

    def spy(src, dst):
        replaced.append((pathlib.Path(src), pathlib.Path(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    path = tmp_path / "two" / "levels" / "ckvd.toml"
    write_baseline(path, "ckvd", {})
    [(src, dst)] = replaced
    assert dst == path and src.parent == path.parent
    assert src.name.startswith(".ckvd.toml.") and src.name.endswith(".tmp")
    assert sorted(p.name for p in path.parent.iterdir()) == ["ckvd.toml"]


def test_record_fields_are_named_in_their_errors() -> None:
    from pytest_fcp.baseline import DayRow, FetchRecord, RecordError

    cases = [
        (lambda: DayRow("2024-01-02", rows=3), 'field rows: is 3 (integer); allowed: a string such as "https 200 x2"'),
        (
            lambda: DayRow("2024-01-02", vision="\ud800"),
            "field vision: holds a lone surrogate, which is not Unicode text; allowed: a string such as",
        ),
        (lambda: FetchRecord("no data"), 'field outcome: "no data" (string) is not an outcome; allowed: "data" or'),
        (
            lambda: FetchRecord("data", (DayRow("2024-01-02"), DayRow("2024-01-02"))),
            "field days.2024-01-02: appears twice; allowed: one row per day",
        ),
        (
            lambda: Record.single("data", failures=["ok", 3]),
            "field failures[1]: is 3 (integer); allowed: a failure key",
        ),
    ]
    for build, message in cases:
        with pytest.raises(RecordError) as caught:
            build()
        assert str(caught.value).startswith(message), str(caught.value)


def test_a_record_needs_a_fetch_and_keeps_its_fetches_as_a_tuple() -> None:
    from pytest_fcp.baseline import FetchRecord, RecordError

    with pytest.raises(RecordError) as caught:
        Record(())
    assert str(caught.value) == "field outcome: no fetch recorded; allowed: at least one fetch"
    listed = Record([FetchRecord("data")])  # type: ignore[arg-type]
    assert listed.fetches == (FetchRecord("data"),) and hash(listed.fetches)
