"""The ``@pytest.mark.fcp`` marker and the fixtures ``fcp_world``, ``fcp_engine``, ``fcp_engine_name``, ``fcp_trace``.

Also the engine parametrisation of tests that use ``fcp_engine_name`` and the check, after each test's call,
that the engine stayed inside the simulated world. The world, pyarrow, moto and respx load when a test first
asks for a world.
"""

from __future__ import annotations

import datetime as dt
import pathlib
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from pytest_fcp.plugin.settings import DEFAULT_ENGINES, ENGINE_NAME_KEY, WORLD_KEY, RunSettings, parse_now, settings

if TYPE_CHECKING:
    from pytest_fcp.engines import Engine
    from pytest_fcp.plugin.user_baselines import BaselineCheck
    from pytest_fcp.scenarios.crash_run import CrashRun
    from pytest_fcp.trace import Trace
    from pytest_fcp.world import World
    from pytest_fcp.world.spec import WorldSpec

__all__ = [
    "FCP_FIXTURES",
    "MARKER_DOC",
    "MARKER_KEYS",
    "after_call",
    "build_world",
    "fcp_crash",
    "fcp_engine",
    "fcp_engine_name",
    "fcp_trace",
    "fcp_world",
    "load_factory",
    "marker_kwargs",
    "parametrize_engines",
    "reseed",
    "uses_fcp",
    "world_spec",
]

MARKER_DOC = (
    "fcp(*, faults=(), now=None, market='spot', symbol=None, interval='1h', truth='synthetic', "
    "cached=(), publish_delay_hours=24, local_tz=None, env=None, cache_from=None, engines=None, crash=None): run "
    "the test's engine (fixture fcp_engine) in a "
    "simulated Binance world. faults: fault ids or pytest_fcp.fault(...) objects (see pytest_fcp.FAULTS); "
    "now: the world's UTC now (ISO string or aware datetime; default --fcp-now); market: spot | "
    "futures_usdt | futures_coin; cached: days pre-cached valid before the fetch (ISO dates); "
    "truth: synthetic | golden; env: environment variables the engine runs with ({name: value}); "
    "cache_from: a saved cache directory the world starts from (relative to the test file); "
    "engines: restrict the engines this test runs on; crash: 'every', a crash point "
    "number or a list of them, for the fcp_crash fixture."
)
MARKER_KEYS = (
    "faults",
    "now",
    "market",
    "symbol",
    "interval",
    "truth",
    "cached",
    "publish_delay_hours",
    "local_tz",
    "env",
    "cache_from",
    "engines",
    "crash",
)


# --- engine parametrisation -------------------------------------------------------------------------
def parametrize_engines(metafunc: pytest.Metafunc) -> None:
    """Run a test that asks for ``fcp_engine_name`` once per engine (the marker's ``engines`` narrow them)."""
    if "fcp_engine_name" not in metafunc.fixturenames:
        return
    if any(m.name == "parametrize" and "fcp_engine_name" in str(m.args[0]) for m in metafunc.definition.iter_markers()):
        return
    names = list(settings(metafunc.config).engines)
    marker = metafunc.definition.get_closest_marker("fcp")
    wanted = marker.kwargs.get("engines") if marker else None
    if wanted and _names(wanted):  # anything else: the test fails at setup, saying what engines takes
        names = [n for n in names if n in wanted] or list(wanted)
    metafunc.parametrize("fcp_engine_name", names, ids=names)


def _names(value: object) -> bool:
    """Whether ``value`` is a list (or tuple) of engine names."""
    return isinstance(value, list | tuple) and all(isinstance(n, str) and n for n in value)


def load_factory(name: str) -> Any:
    """The engine factory named ``name``; an unavailable bundled engine skips the test, any other fails it."""
    from pytest_fcp.engines import EngineLoadError, load_engine

    try:
        return load_engine(name)
    except EngineLoadError as exc:
        if name in DEFAULT_ENGINES and "cannot be loaded" in str(exc):
            pytest.skip(f"pytest-fcp: {exc}")
        pytest.fail(f"pytest-fcp: {exc}", pytrace=False)


# --- the world ----------------------------------------------------------------------------------------
def marker_kwargs(item: pytest.Item) -> dict[str, Any]:
    """The ``@pytest.mark.fcp`` keyword arguments of ``item``; misuse fails the test clearly."""
    marker = item.get_closest_marker("fcp")
    if marker is None:
        return {}
    if marker.args:
        pytest.fail(f"@pytest.mark.fcp takes keyword arguments only ({', '.join(MARKER_KEYS)})", pytrace=False)
    unknown = sorted(set(marker.kwargs) - set(MARKER_KEYS))
    if unknown:
        pytest.fail(
            f"@pytest.mark.fcp: unknown argument(s) {', '.join(unknown)}; allowed: {', '.join(MARKER_KEYS)}",
            pytrace=False,
        )
    kwargs = dict(marker.kwargs)
    for key in ("faults", "cached", "engines"):
        if isinstance(kwargs.get(key), str | bytes | dict | dt.date):
            example = {"faults": "['vision.http403']", "cached": "['2024-01-03']", "engines": "['reference']"}[key]
            pytest.fail(
                f"@pytest.mark.fcp: {key} must be a list, e.g. {key}={example}; got {kwargs[key]!r}", pytrace=False
            )
    if kwargs.get("engines") is not None and not _names(kwargs["engines"]):
        pytest.fail(
            f"@pytest.mark.fcp: engines must be a list of engine names, got {kwargs['engines']!r}", pytrace=False
        )
    if "crash" in kwargs:
        kwargs["crash"] = _crash(kwargs["crash"])
    return kwargs


def _crash(value: object) -> str | tuple[int, ...] | None:
    """The marker's ``crash``, validated as a scenario's is; misuse fails the test with one line."""
    from pytest_fcp.scenarios.validate import crash_value

    def fail(field: str, message: str) -> NoReturn:
        pytest.fail(f"@pytest.mark.fcp: {field}: {message}", pytrace=False)

    return crash_value(list(value) if isinstance(value, tuple) else value, 1, fail)


def world_spec(options: dict[str, Any], run: RunSettings) -> WorldSpec:
    """The world a marker asks for (marker-style options), in this run's settings."""
    from pytest_fcp.core.markets import default_symbol
    from pytest_fcp.faults import Fault, FaultSpecError, fault
    from pytest_fcp.faults.rules import setup_conflicts
    from pytest_fcp.world.cache_seed import saved_seed
    from pytest_fcp.world.spec import WorldError, WorldSpec

    now = parse_now(options["now"], "fcp marker 'now'") if options.get("now") else run.now
    faults = []
    for entry in options.get("faults", ()) or ():
        if isinstance(entry, Fault):
            faults.append(entry)
        elif isinstance(entry, dict):  # the scenario files' form: {"id": ..., "days": [...], ...}
            spec = dict(entry)
            if "id" not in spec:
                raise FaultSpecError(f"fault {entry!r} has no 'id'; e.g. {{'id': 'vision.http403'}}")
            faults.append(fault(str(spec.pop("id")), **spec))
        else:
            faults.append(fault(str(entry)))
    market = options.get("market", "spot")
    delay = options.get("publish_delay_hours", 24)
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= 720:
        raise ValueError(f"publish_delay_hours must be a number of hours from 0 to 720, got {delay!r}")
    cached = tuple(_marker_day(d, f"cached[{i}]") for i, d in enumerate(options.get("cached") or ()))
    series = (options.get("symbol") or default_symbol(market), market, options.get("interval", "1h"))
    found = setup_conflicts(faults, cached, series, now)
    if found:
        raise WorldError(f"@pytest.mark.fcp {found[0]}")
    carried = saved_seed(options.get("cache_from")) if isinstance(options.get("cache_from"), pathlib.Path) else None
    return WorldSpec(
        now=now,
        market=market,
        symbol=options.get("symbol") or default_symbol(market),
        interval=options.get("interval", "1h"),
        truth=options.get("truth", "synthetic"),
        seed=run.seed if carried is None else carried,  # a saved cache was written against its seed's market
        faults=tuple(faults),
        publish_delay=dt.timedelta(hours=float(delay)),
        log_level=run.log_level,
        cached=cached,
        local_tz=options.get("local_tz"),
        env=_marker_env(options.get("env")),
        cache_from=options.get("cache_from"),
    )


def _marker_env(value: object) -> tuple[tuple[str, str], ...]:
    """The marker's ``env`` as sorted pairs; else a one-line error saying what is allowed."""
    from pytest_fcp.world.spec import WorldError, check_env

    if value is None:
        return ()
    try:
        return check_env(value)
    except ValueError as exc:
        raise WorldError(f"@pytest.mark.fcp env: {exc}") from None


def _marker_day(value: object, field: str) -> dt.date:
    """A day of the marker (an ISO string or a date); else a one-line error naming ``field``."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        from pytest_fcp.world.spec import WorldError

        raise WorldError(
            f"@pytest.mark.fcp {field}: {value!r} is not a day; write an ISO date like '2024-01-03'"
        ) from None


def build_world(item: pytest.Item, cache_root: Any, options: dict[str, Any]) -> World:
    """A started world for ``item`` from marker-style options; misuse fails the test at setup, clearly."""
    from pytest_fcp.faults import FaultSpecError
    from pytest_fcp.plugin.cache_carry import marker_cache_from
    from pytest_fcp.world import World, WorldError

    try:
        world = World.from_spec(world_spec(marker_cache_from(item, options), settings(item.config)), cache_root)
    except (FaultSpecError, WorldError, ValueError, OverflowError, TypeError) as exc:
        pytest.fail(f"pytest-fcp: bad world for {item.nodeid}: {exc}", pytrace=False)
    world.start()
    item.stash[WORLD_KEY] = world
    return world


def after_call(item: pytest.Item) -> Generator[None, Any, Any]:
    """Wrap a test's call: fail it if its engine sent a request the simulated world does not serve."""
    result = yield
    world = item.stash.get(WORLD_KEY, None)
    if world is not None and world.violations:
        listed = "\n  ".join(world.violations)
        pytest.fail(
            f"pytest-fcp: the engine left the simulated world:\n  {listed}\n"
            "Every request must go to data.binance.vision or the Binance klines endpoints.",
            pytrace=False,
        )
    return result


# --- fixtures --------------------------------------------------------------------------------------
@pytest.fixture
def fcp_world(request: pytest.FixtureRequest, tmp_path: Any) -> Generator[World, None, None]:
    """A started simulated Binance world (Vision, REST, sealed network, cache sandbox, virtual clock).

    Configured by ``@pytest.mark.fcp(...)``; ``fcp_world.fetch(start, end)`` runs the attached engine.
    """
    from pytest_fcp.plugin import cache_carry

    world = build_world(request.node, tmp_path / "fcp-cache", marker_kwargs(request.node))
    try:
        yield world
    finally:
        world.stop()
    cache_carry.save(request.config, cache_carry.marker_key(request.node), world)  # under --fcp-save-cache


@pytest.fixture
def fcp_engine_name() -> str:
    """The engine under test (parametrised from --fcp-engine / ini fcp_engine)."""
    return DEFAULT_ENGINES[0]


@pytest.fixture
def fcp_engine(request: pytest.FixtureRequest, fcp_world: World, fcp_engine_name: str) -> Engine:
    """The engine under test, created on the world's cache sandbox, with the marker's cache state applied."""
    factory = load_factory(fcp_engine_name)
    engine = fcp_world.create_engine(factory)  # seeds the marker's cached days, then applies its cache faults
    request.node.stash[ENGINE_NAME_KEY] = fcp_engine_name
    return engine


@pytest.fixture
def fcp_crash(
    request: pytest.FixtureRequest, fcp_world: World, fcp_engine: Engine, fcp_engine_name: str
) -> Callable[..., CrashRun]:
    """``fcp_crash(start, end, again=None)``: fetch, then a fresh engine at each crash point of that fetch's cache
    writes the marker's ``crash`` chooses (``"every"`` by default) fetches ``again`` (``(start, end)``; default the
    same range); returns the fetches and the failed verdicts, each named by its crash point."""
    from pytest_fcp.scenarios.crash_run import Ask, crash_fetches

    crash = marker_kwargs(request.node).get("crash") or "every"
    factory = load_factory(fcp_engine_name)
    series = (fcp_world.symbol, fcp_world.market, fcp_world.interval)

    def run(start: dt.datetime, end: dt.datetime, again: tuple[dt.datetime, dt.datetime] | None = None) -> CrashRun:
        second = Ask(again[0], again[1], series) if again else None
        return crash_fetches(fcp_world, factory, crash, Ask(start, end, series), second)

    return run


@pytest.fixture
def fcp_trace(fcp_world: World) -> Trace:
    """The decision trace of this test's world (``.path()``, ``.assert_path(...)``, ``.table()``)."""
    return fcp_world.trace


FCP_FIXTURES = frozenset({"fcp_world", "fcp_engine", "fcp_engine_name", "fcp_trace", "fcp_baseline", "fcp_crash"})


def uses_fcp(item: pytest.Item) -> bool:
    """Whether ``item`` is one of pytest-fcp's: a scenario or fuzz item, or a test with its marker or fixtures."""
    if hasattr(item, "engine") or item.get_closest_marker("fcp") is not None:
        return True
    return not FCP_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))


def reseed(item: pytest.Item) -> None:
    """Reseed ``random`` for a pytest-fcp test from the run's seed and the test's identity (as pytest-randomly
    does), so an engine's random retry jitter is the same in every run with the same seed, in any process.
    Any other test keeps ``random`` as it finds it."""
    import random

    if not uses_fcp(item):
        return
    scenario = getattr(item, "scenario", None)
    identity = f"{scenario.id}[{getattr(item, 'engine', '')}]" if scenario is not None else item.nodeid
    random.seed(f"{settings(item.config).seed}:{identity}")


@pytest.fixture
def fcp_baseline(request: pytest.FixtureRequest, fcp_world: World, fcp_engine_name: str) -> BaselineCheck:
    """Compare the test's decision table with its stored baseline: call ``fcp_baseline.assert_match()`` after the
    fetches (``--fcp-update-baselines`` records it, in ``fcp_baselines/<engine>.toml`` beside the test file)."""
    from pytest_fcp.plugin.user_baselines import BaselineCheck

    return BaselineCheck(request.node, fcp_world, fcp_engine_name)
