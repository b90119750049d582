"""pytest-fcp's hooks, options, marker and fixtures (the ``pytest11`` entry point).

Only pytest and the standard library are imported here; the simulated world, pyarrow, moto and respx load
when a test first asks for them, so the plugin costs nothing in runs that do not use it.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_fcp.engines import Engine
    from pytest_fcp.trace import Trace
    from pytest_fcp.world import World

DEFAULT_NOW = "2024-01-10T12:00:00+00:00"
DEFAULT_ENGINES = ("reference", "ckvd")

SEED_KEY = pytest.StashKey[int]()
LOG_LEVEL_KEY = pytest.StashKey[str]()
WORLD_KEY = pytest.StashKey["World"]()
REPORTER_KEY = pytest.StashKey["Reporter"]()

MARKER_DOC = (
    "fcp(*, faults=(), now=None, market='spot', symbol=None, interval='1h', truth='synthetic', "
    "cached=(), publish_delay_hours=24, engines=None): run the test's engine (fixture fcp_engine) in a "
    "simulated Binance world. faults: fault ids or pytest_fcp.fault(...) objects (see pytest_fcp.FAULTS); "
    "now: the world's UTC now (ISO string or aware datetime; default --fcp-now); market: spot | "
    "futures_usdt | futures_coin; cached: days pre-cached valid before the fetch (ISO dates); "
    "truth: synthetic | golden; engines: restrict the engines this test runs on."
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
    "engines",
)


# --- options --------------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fcp", "pytest-fcp (Failover Control Protocol harness)")
    group.addoption(
        "--fcp-engine",
        action="append",
        dest="fcp_engine",
        metavar="NAME",
        help="engine to test: an entry point of group 'pytest_fcp.engines' (bundled: reference, ckvd) or "
        "'package.module:factory'. Repeat for several. Default: ini fcp_engine, else reference and ckvd.",
    )
    parser.addini("fcp_engine", type="linelist", default=[], help="default engines (one name a line)")
    group.addoption(
        "--fcp-seed",
        type=int,
        dest="fcp_seed",
        metavar="N",
        help="seed of the synthetic market truth and of fuzzing; shown in the header; replays a run",
    )
    group.addoption(
        "--fcp-log-level",
        dest="fcp_log_level",
        metavar="LEVEL",
        help="lowest level of the engine's own log records kept in each trace: TRACE, DEBUG, INFO, SUCCESS, "
        "WARNING, ERROR or CRITICAL (default: ini fcp_log_level, else INFO; DEBUG keeps everything but costs "
        "ckvd about a tenth of its time)",
    )
    parser.addini("fcp_log_level", default="", help="lowest engine log level kept in traces (like --fcp-log-level)")
    group.addoption("--fcp-now", dest="fcp_now", metavar="ISO", help=f"default world 'now' (default {DEFAULT_NOW})")
    parser.addini("fcp_now", default="", help="default world 'now' (ISO 8601, UTC)")
    group.addoption(
        "--fcp-trace-dir",
        dest="fcp_trace_dir",
        metavar="DIR",
        help="write every test's decision trace as JSON Lines to DIR/fcp-trace-<run id>.jsonl",
    )
    parser.addini("fcp_trace_dir", default="", help="directory for JSON Lines traces (like --fcp-trace-dir)")
    group.addoption(
        "--fcp-scenarios",
        action="store_true",
        dest="fcp_scenarios",
        help="collect and run the FCP scenario catalog (bundled + --fcp-scenarios-dir) on every engine",
    )
    group.addoption(
        "--fcp-scenarios-dir",
        action="append",
        dest="fcp_scenarios_dirs",
        metavar="DIR",
        help="extra directory of scenario TOML files (repeatable); with --fcp-scenarios",
    )
    parser.addini("fcp_scenarios_dirs", type="paths", default=[], help="extra scenario directories")
    group.addoption(
        "--fcp-no-bundled",
        action="store_true",
        dest="fcp_no_bundled",
        help="with --fcp-scenarios: leave out the bundled catalog (run only --fcp-scenarios-dir)",
    )
    group.addoption(
        "--fcp-expectations-dir",
        dest="fcp_expectations_dir",
        metavar="DIR",
        help="directory of <engine>.toml expectation files (default: the bundled scenarios/expectations)",
    )
    parser.addini("fcp_expectations_dir", default="", help="directory of <engine>.toml expectation files")
    from pytest_fcp.fuzz import plugin as fuzz_plugin

    fuzz_plugin.addoption(parser)
    group.addoption(
        "--fcp-update-expectations",
        action="store_true",
        dest="fcp_update_expectations",
        help="rewrite each engine's expectation file from this run's scenario results",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_DOC)
    seed = config.getoption("fcp_seed", None)
    workerinput = getattr(config, "workerinput", None)
    if seed is None and workerinput is not None:
        seed = workerinput.get("fcp_seed")
    if seed is None:
        seed = random.Random().getrandbits(32)
    config.stash[SEED_KEY] = int(seed)
    config.stash[LOG_LEVEL_KEY] = log_level(config)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(), "fcp-xdist")
    from pytest_fcp.reporting import Reporter

    reporter = Reporter(config)
    config.stash[REPORTER_KEY] = reporter
    config.pluginmanager.register(reporter, "fcp-reporter")
    from pytest_fcp.fuzz import plugin as fuzz_plugin

    fuzz_plugin.configure(config)
    if config.getoption("fcp_scenarios", False):
        from pytest_fcp.scenarios import collect

        config.pluginmanager.register(collect.ScenarioCollector(config), "fcp-scenarios")
        config.pluginmanager.register(collect, "fcp-scenario-reports")
        config.addinivalue_line("markers", "fcp_scenario: an item generated from an FCP scenario file")


class XdistHooks:
    """Registered only when pytest-xdist is present: hands the controller's seed to every worker."""

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["fcp_seed"] = node.config.stash[SEED_KEY]


def engine_names(config: pytest.Config) -> list[str]:
    names = config.getoption("fcp_engine", None) or config.getini("fcp_engine") or list(DEFAULT_ENGINES)
    out: list[str] = []
    for name in names:
        for part in str(name).replace(",", " ").split():
            if part not in out:
                out.append(part)
    return out


def log_level(config: pytest.Config) -> str:
    """``--fcp-log-level`` / ini ``fcp_log_level`` (default INFO), checked: a bad one is a usage error."""
    from pytest_fcp.core.logs import DEFAULT_LOG_LEVEL, LOG_LEVELS

    given = config.getoption("fcp_log_level", None) or config.getini("fcp_log_level") or DEFAULT_LOG_LEVEL
    level = str(given).strip().upper()
    if level not in LOG_LEVELS:
        raise pytest.UsageError(
            f"pytest-fcp: --fcp-log-level {given!r} is not a log level; use one of {', '.join(LOG_LEVELS)}"
        )
    return level


def default_now(config: pytest.Config) -> dt.datetime:
    text = config.getoption("fcp_now", None) or config.getini("fcp_now") or DEFAULT_NOW
    return parse_now(text, "--fcp-now")


def parse_now(value: object, what: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        moment = value
    else:
        try:
            moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{what}: {value!r} is not an ISO 8601 time like 2024-01-10T12:00:00Z") from None
    if moment.tzinfo is None:
        raise ValueError(f"{what}: {value!r} has no timezone; write it in UTC, e.g. 2024-01-10T12:00:00Z")
    return moment.astimezone(dt.UTC)


def pytest_report_header(config: pytest.Config) -> list[str]:
    seed = config.stash[SEED_KEY]
    line = f"fcp: seed={seed} (replay with --fcp-seed={seed}), engines={','.join(engine_names(config))}"
    trace_dir = config.getoption("fcp_trace_dir", None) or config.getini("fcp_trace_dir")
    if trace_dir:
        line += f", traces -> {trace_dir}"
    return [line]


# --- engine parametrisation -------------------------------------------------------------------------
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fcp_engine_name" not in metafunc.fixturenames:
        return
    if any(m.name == "parametrize" and "fcp_engine_name" in str(m.args[0]) for m in metafunc.definition.iter_markers()):
        return
    names = engine_names(metafunc.config)
    marker = metafunc.definition.get_closest_marker("fcp")
    wanted = marker.kwargs.get("engines") if marker else None
    if wanted:
        names = [n for n in names if n in wanted] or list(wanted)
    metafunc.parametrize("fcp_engine_name", names, ids=names)


# --- fixtures --------------------------------------------------------------------------------------
def _marker_kwargs(item: pytest.Item) -> dict[str, Any]:
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
    return dict(marker.kwargs)


def build_world(item: pytest.Item, cache_root: Any, options: dict[str, Any]) -> World:
    """A started world for ``item`` from marker-style options; misuse fails the test at setup, clearly."""
    from pytest_fcp.faults import Fault, FaultSpecError, fault
    from pytest_fcp.world import World, WorldError

    config = item.config
    try:
        now = parse_now(options["now"], "fcp marker 'now'") if options.get("now") else default_now(config)
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
        symbol = options.get("symbol") or ("BTCUSD_PERP" if market == "futures_coin" else "BTCUSDT")
        world = World(
            cache_root,
            now,
            market=market,
            symbol=symbol,
            interval=options.get("interval", "1h"),
            truth=options.get("truth", "synthetic"),
            seed=config.stash[SEED_KEY],
            faults=faults,
            publish_delay=dt.timedelta(hours=float(options.get("publish_delay_hours", 24))),
            log_level=config.stash[LOG_LEVEL_KEY],
        )
    except (FaultSpecError, WorldError, ValueError) as exc:
        pytest.fail(f"pytest-fcp: bad world for {item.nodeid}: {exc}", pytrace=False)
    world.start()
    item.stash[WORLD_KEY] = world
    return world


@pytest.fixture
def fcp_world(request: pytest.FixtureRequest, tmp_path: Any) -> Generator[World, None, None]:
    """A started simulated Binance world (Vision, REST, sealed network, cache sandbox, virtual clock).

    Configured by ``@pytest.mark.fcp(...)``; ``fcp_world.fetch(start, end)`` runs the attached engine.
    """
    world = build_world(request.node, tmp_path / "fcp-cache", _marker_kwargs(request.node))
    try:
        yield world
    finally:
        world.stop()


@pytest.fixture
def fcp_engine_name() -> str:
    """The engine under test (parametrised from --fcp-engine / ini fcp_engine)."""
    return DEFAULT_ENGINES[0]


def load_factory(name: str) -> Any:
    from pytest_fcp.engines import EngineLoadError, load_engine

    try:
        return load_engine(name)
    except EngineLoadError as exc:
        if name in DEFAULT_ENGINES and "cannot be loaded" in str(exc):
            pytest.skip(f"pytest-fcp: {exc}")
        pytest.fail(f"pytest-fcp: {exc}", pytrace=False)


@pytest.fixture
def fcp_engine(request: pytest.FixtureRequest, fcp_world: World, fcp_engine_name: str) -> Engine:
    """The engine under test, created on the world's cache sandbox, with the marker's cache state applied."""
    factory = load_factory(fcp_engine_name)
    engine = fcp_world.create_engine(factory)
    cached = _marker_kwargs(request.node).get("cached") or ()
    if cached:
        fcp_world.seed_cache([dt.date.fromisoformat(str(d)) for d in cached])
    request.node.stash[ENGINE_NAME_KEY] = fcp_engine_name
    return engine


ENGINE_NAME_KEY = pytest.StashKey[str]()


@pytest.fixture
def fcp_trace(fcp_world: World) -> Trace:
    """The decision trace of this test's world (``.path()``, ``.assert_path(...)``, ``.table()``)."""
    return fcp_world.trace


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
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
