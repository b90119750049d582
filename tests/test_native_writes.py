"""``cache.write_fails`` on engines whose cache is written by native code (pyarrow, polars), not Python calls."""

from __future__ import annotations

import datetime as dt
import os
import pathlib

import pyarrow as pa
import pytest

from pytest_fcp.contract import judge
from pytest_fcp.core.schemas import CACHE_SCHEMA
from pytest_fcp.engines import load_engine
from pytest_fcp.faults import fault
from pytest_fcp.world import World
from pytest_fcp.world.cache_faults import allow_writes, block_day_file, fail_writes, unblock_day_files
from tests.conftest import utc
from tests.engines.native_engine import create, create_loud

NOW = utc(2024, 1, 10, 12)
DAYS = [dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)]


def _files(root: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_the_audit_hook_alone_does_not_see_a_native_write(tmp_path: pathlib.Path) -> None:
    """Why the world blocks day files: pyarrow's own open passes the hook that stops Python's."""
    root = tmp_path / "cache"
    root.mkdir()
    fail_writes(root, 28)
    try:
        with pytest.raises(OSError, match="No space left"):
            (root / "py.arrow").write_bytes(b"x")
        with pa.OSFile(str(root / "native.arrow"), "wb") as sink:
            sink.write(b"x")
    finally:
        allow_writes(root)
    assert (root / "native.arrow").read_bytes() == b"x"


def test_a_blocked_day_file_refuses_native_writes_and_renames(tmp_path: pathlib.Path) -> None:
    (tmp_path / "cache").mkdir()
    path = tmp_path / "cache" / "a" / "b" / "2024-01-03.arrow"
    created = block_day_file(path)
    assert created[-1] == path and path.is_dir()
    with pytest.raises(OSError), pa.OSFile(str(path), "wb"):
        pass
    (tmp_path / "tmp.arrow").write_bytes(b"x")
    with pytest.raises(OSError):
        os.replace(tmp_path / "tmp.arrow", path)
    assert block_day_file(path) == []  # something is there already: nothing created
    unblock_day_files(created)
    assert not (tmp_path / "cache" / "a").exists() and (tmp_path / "cache").is_dir()


@pytest.mark.parametrize("error", ["ENOSPC", "EIO"])
def test_write_fails_stops_a_native_writer(
    tmp_path: pathlib.Path, error: str, caplog: pytest.LogCaptureFixture
) -> None:
    with World(tmp_path / "cache", NOW, faults=[fault("cache.write_fails", error=error)], cached=DAYS[:1]) as world:
        world.create_engine(create)
        seeded = _files(world.cache_dir)
        obs = world.fetch(utc(2024, 1, 2), utc(2024, 1, 5))
        assert obs.ok, obs.error
        assert obs.rows_by_source() == {"cache": 24, "vision": 48}
        assert {d: s.status for d, s in obs.cache_before.items()} == dict(
            zip(DAYS, ["valid", "missing", "missing"], strict=True)
        )
        assert {d: s.status for d, s in obs.cache_after.items()} == dict(
            zip(DAYS, ["valid", "missing", "missing"], strict=True)
        )
        assert _files(world.cache_dir) == seeded
        assert not judge(world.spec, obs)
    failed = [r.getMessage() for r in caplog.records if "cannot write cache" in r.getMessage()]
    assert len(failed) == 2 and all("is a directory" in m for m in failed), failed
    leftovers = [p for p in (tmp_path / "cache").rglob("*") if p.is_dir() and not any(p.iterdir())]
    assert not leftovers, "the world removes the directories it stood in for day files"


def test_without_the_fault_the_native_writer_caches(tmp_path: pathlib.Path) -> None:
    with World(tmp_path / "cache", NOW) as world:
        world.create_engine(create)
        obs = world.fetch(utc(2024, 1, 2), utc(2024, 1, 5))
        assert {s.status for s in obs.cache_after.values()} == {"valid"}
        assert not judge(world.spec, obs)


def test_an_engine_that_fails_on_a_failed_native_write_is_named(tmp_path: pathlib.Path) -> None:
    with World(tmp_path / "cache", NOW, faults=[fault("cache.write_fails")], cached=DAYS[:1]) as world:
        world.create_engine(create_loud)
        obs = world.fetch(utc(2024, 1, 2), utc(2024, 1, 5))
    assert not obs.ok and "cache write failed" in str(obs.error)
    assert any(v.check == "outcome" for v in judge(world.spec, obs))


def test_a_second_fetch_finds_no_directory_where_a_day_file_goes(tmp_path: pathlib.Path) -> None:
    """The stand-ins live for one fetch: the next one reads the days as missing, not as directories."""
    with World(tmp_path / "cache", NOW, faults=[fault("cache.write_fails")]) as world:
        world.create_engine(create)
        world.fetch(utc(2024, 1, 2), utc(2024, 1, 4))
        assert not world.cache_path(DAYS[0]).exists()
        obs = world.fetch(utc(2024, 1, 2), utc(2024, 1, 4))
        assert obs.ok and {s.status for s in obs.cache_before.values()} == {"missing"}


def test_write_fails_on_ckvd(tmp_path: pathlib.Path) -> None:
    """ckvd writes its cache with polars: its writes fail too, its fetch still returns the data."""
    pytest.importorskip("ckvd")
    with World(tmp_path / "cache", NOW, faults=[fault("cache.write_fails", error="EIO")], cached=DAYS[:1]) as world:
        world.create_engine(load_engine("ckvd"))
        seeded = _files(world.cache_dir)
        obs = world.fetch(utc(2024, 1, 2), utc(2024, 1, 5))
        assert obs.ok, obs.error
        assert {d: s.status for d, s in obs.cache_after.items()} == dict(
            zip(DAYS, ["valid", "missing", "missing"], strict=True)
        )
        assert _files(world.cache_dir) == seeded
        errors = [e.data["message"] for e in world.trace.of_kind("log") if e.data.get("level") == "ERROR"]
        assert any("Error saving cache file" in m for m in errors), errors


def test_ckvd_caches_without_the_fault(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("ckvd")
    with World(tmp_path / "cache", NOW, cached=DAYS[:1]) as world:
        world.create_engine(load_engine("ckvd"))
        obs = world.fetch(utc(2024, 1, 2), utc(2024, 1, 5))
        assert {s.status for s in obs.cache_after.values()} == {"valid"}


def test_the_native_engine_writes_the_reference_layout(tmp_path: pathlib.Path) -> None:
    engine = create(tmp_path)
    table = CACHE_SCHEMA.empty_table()
    engine.write_cache("BTCUSDT", "spot", "1h", DAYS[0], table)
    assert engine.cache_file("BTCUSDT", "spot", "1h", DAYS[0]).is_file()
