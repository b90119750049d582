"""Every fault of the library fires exactly where its scope says, and nowhere else."""

from __future__ import annotations

import datetime as dt

import pytest

from pytest_fcp.engines import load_engine
from pytest_fcp.faults import FAULTS, FaultSchedule, FaultSpecError, fault, faults_for_source
from pytest_fcp.world import World
from tests.conftest import ALT, run_in_threads, utc

NOW = utc(2024, 1, 10, 12)
DAY = dt.date(2024, 1, 3)
ENGINES = ["reference", "ckvd", ALT]


def _engine(name: str):
    if name == "ckvd":
        pytest.importorskip("ckvd")
    return load_engine(name)


def _fault_events(world: World):
    return [e for e in world.trace.events if e.kind == "fault"]


@pytest.mark.parametrize("engine", ENGINES, ids=["reference", "ckvd", "alt"])
@pytest.mark.parametrize("fid", faults_for_source("vision"))
def test_vision_fault_hits_only_its_day(fid, engine, tmp_path):
    with World(tmp_path / "c", NOW, faults=[fault(fid, days=[DAY])]) as world:
        world.create_engine(_engine(engine))
        world.fetch(utc(2024, 1, 2), utc(2024, 1, 5))
        fired = _fault_events(world)
        assert fired, f"{fid} never fired although the engine asked Vision for {DAY}"
        assert {(e.data["id"], e.data["day"]) for e in fired} == {(fid, DAY.isoformat())}
        objects = set(FAULTS[fid].objects)
        for event in fired:
            url = event.data["url"]
            assert ("CHECKSUM" in url and "checksum" in objects) or ("CHECKSUM" not in url and "zip" in objects)
        for event in world.trace.requests("vision"):
            if DAY.isoformat() not in event.data["url"] and "2024-01-0" in event.data["url"]:
                assert event.data.get("status") in (200, 404), event.data  # other days untouched


@pytest.mark.parametrize("engine", ENGINES, ids=["reference", "ckvd", "alt"])
@pytest.mark.parametrize("fid", faults_for_source("rest"))
def test_rest_fault_hits_only_its_day(fid, engine, tmp_path):
    recent = dt.date(2024, 1, 9)
    with World(tmp_path / "c", NOW, faults=[fault(fid, days=[recent])]) as world:
        world.create_engine(_engine(engine))
        world.fetch(utc(2024, 1, 9), utc(2024, 1, 10, 6))
        fired = _fault_events(world)
        assert fired, f"{fid} never fired although the engine asked REST for {recent}"
        assert {(e.data["id"], e.data["day"]) for e in fired} == {(fid, recent.isoformat())}
    # the same fault scoped to another day leaves these days alone
    with World(tmp_path / "d", NOW, faults=[fault(fid, days=[dt.date(2024, 1, 1)])]) as world:
        world.create_engine(_engine(engine))
        world.fetch(utc(2024, 1, 9), utc(2024, 1, 10, 6))
        assert _fault_events(world) == []


@pytest.mark.parametrize("engine", ["reference", ALT], ids=["reference", "alt"])
@pytest.mark.parametrize(("attempts", "expected"), [("first:1", 1), ("nth:1", 1), ("always", None)])
def test_attempt_scopes(engine, attempts, expected, tmp_path):
    with World(tmp_path / "c", NOW, faults=[fault("rest.http503", attempts=attempts)]) as world:
        world.create_engine(_engine(engine))
        world.fetch(utc(2024, 1, 9), utc(2024, 1, 9, 6))
        fired = _fault_events(world)
        rest = world.trace.requests("rest")
        if expected is None:
            assert len(fired) == len(rest) >= 1  # every attempt
        else:
            assert len(fired) == expected
            assert [e.data["attempt"] for e in fired] == [1]


def test_nth_attempt_only(tmp_path):
    with World(tmp_path / "c", NOW, faults=[fault("rest.http503", attempts="nth:2")]) as world:
        world.create_engine(_engine(ALT))
        world.fetch(utc(2024, 1, 9), utc(2024, 1, 9, 6))  # alt retries: attempt 1 ok, nothing to retry
        assert _fault_events(world) == []
        world.fetch(utc(2024, 1, 9, 6), utc(2024, 1, 9, 12))  # a second request is attempt 2
        assert [e.data["attempt"] for e in _fault_events(world)] == [2]


@pytest.mark.parametrize("door", ["https", "s3"])
def test_vision_door_scope(door, tmp_path):
    for engine, engine_door in (("reference", "https"), (ALT, "s3")):
        with World(tmp_path / engine[:3] / door, NOW, faults=[fault("vision.http403", door=door)]) as world:
            world.create_engine(_engine(engine))
            world.fetch(utc(2024, 1, 2), utc(2024, 1, 3))
            assert bool(_fault_events(world)) == (door == engine_door)


@pytest.mark.parametrize("engine", ENGINES, ids=["reference", "ckvd", "alt"])
@pytest.mark.parametrize("fid", [f for f in faults_for_source("cache") if FAULTS[f].needs_days])
def test_cache_fault_spoils_only_its_day(fid, engine, tmp_path):
    days = [dt.date(2024, 1, 2), DAY, dt.date(2024, 1, 4)]
    own_format = (fid, engine) == ("cache.ns_timestamps", ENGINES[1])  # ckvd keeps nanoseconds itself
    valid_until_read = FAULTS[fid].cut_while_read  # the file is cut once the engine has opened it
    with World(tmp_path / "c", NOW, faults=[fault(fid, days=[DAY])]) as world:
        world.create_engine(_engine(engine))
        world.seed_cache([days[0], days[2]])
        assert world.cache_state(DAY).valid == (own_format or valid_until_read), world.cache_state(DAY)
        assert world.cache_state(days[0]).valid and world.cache_state(days[2]).valid
        assert [e.data["id"] for e in _fault_events(world)] == ([] if own_format else [fid])


def test_read_only_cache_dir(tmp_path):
    with World(tmp_path / "c", NOW, faults=[fault("cache.read_only_dir")]) as world:
        world.create_engine(_engine("reference"))
        with pytest.raises(OSError):
            (world.cache_dir / "probe").write_bytes(b"x")
        result = world.fetch(utc(2024, 1, 2), utc(2024, 1, 3))
        assert result.ok and result.table.num_rows == 24
    (world.cache_dir / "probe").write_bytes(b"x")  # restored for clean-up


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"id": "vision.http4033"}, "Did you mean 'vision.http403'"),
        ({"id": "rest.http429", "attempts": "first:0"}, "first:N"),
        ({"id": "rest.http429", "retry_after": "soon"}, "retry_after must be a number"),
        ({"id": "rest.http429", "delay": 3}, "no parameter 'delay'; its parameters: retry_after, retry_after_format"),
        ({"id": "rest.http503", "door": "s3"}, "only Vision faults take a door"),
        ({"id": "cache.zero_byte", "attempts": "first:1"}, "take no attempts"),
        ({"id": "vision.http403", "days": ["2024-13-01"]}, "bad day"),
        ({"id": "vision.http403", "market": "margin"}, "unknown market"),
        ({"id": "cache.zero_byte"}, "cache faults describe given days' files"),
    ],
)
def test_fault_misuse_says_what_is_wrong(kwargs, message):
    spec = dict(kwargs)
    with pytest.raises(FaultSpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fault(spec.pop("id"), **spec)


def implemented_effects() -> dict[str, set[str]]:
    """The effect kinds each source implements (its effect tables)."""
    from pytest_fcp.world import cache_faults, rest, vision

    return {
        "vision": set(vision._EFFECTS),
        "rest": set(rest._ANSWERS) | set(rest._PAGES),
        "cache": set(cache_faults._WRITTEN) | set(cache_faults._SPOILED) | {"read_only"},
    }


def test_every_fault_has_an_effect():
    assert {k.split(".")[0] for k in FAULTS} == {"vision", "rest", "cache"}
    assert len(faults_for_source("vision")) >= 13 and len(faults_for_source("rest")) >= 13
    assert len(faults_for_source("cache")) >= 11
    effects = implemented_effects()
    missing = {k: v.effect.kind for k, v in FAULTS.items() if v.effect.kind not in effects[v.source]}
    assert missing == {}
    used = {(v.source, v.effect.kind) for v in FAULTS.values()}
    unused = {(source, kind) for source, kinds in effects.items() for kind in kinds} - used
    assert unused == set()  # no effect left without a fault


def test_requests_from_engine_threads_count_every_attempt_once():
    # ckvd asks for Vision files from a thread pool: attempts are counted atomically, and each thread
    # learns the attempt its own request was answered at.
    schedule = FaultSchedule([fault("rest.http500", attempts="first:300")])
    day = dt.date(2024, 1, 3)
    fired: list[int] = []

    def worker() -> None:
        for _ in range(200):
            if schedule.answering_fault("rest", "spot", "BTCUSDT", "1h", [day]) is not None:
                assert schedule.last_day == day
                fired.append(schedule.last_attempt)

    run_in_threads(*[worker] * 6)
    assert sorted(fired) == list(range(1, 301))  # attempts 1..300 fired, each once; the other 900 did not
