"""Behaviour records stay stable and their files stay exact: temporary paths are masked in failure keys, every
malformed field is named, the rendering round-trips any text, and each kind of difference is told apart (the
mutation campaign, docs/mutation.md, measures how many planted changes these tests notice)."""

from __future__ import annotations

import pytest

from pytest_fcp.baseline import compare, load_baseline, render_baseline, write_baseline
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
