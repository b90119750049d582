"""The run's settings: read from options and ini once, in ``pytest_configure``, checked, kept in ``config.stash``.

A leaf: it imports nothing of the plugin's other parts (they all read :func:`settings` instead of the options).
The scenario catalog's location is looked up only when ``--fcp-scenarios`` asks for it, so a run that does not
use the catalog imports no more than pytest and the standard library here.
"""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from pytest_fcp.core.fuzz_profiles import DEFAULT_EXAMPLES
from pytest_fcp.core.logs import DEFAULT_LOG_LEVEL, LOG_LEVELS
from pytest_fcp.core.schedules import DEFAULT_STRATEGY
from pytest_fcp.plugin.fuzz_settings import FuzzSettings, fuzz_settings
from pytest_fcp.plugin.invocation import (
    FCP_DESTS,
    FUZZ_ONLY,
    SCENARIO_ONLY,
    check_engine,
    fuzz_replay_options,
    lean,
    number,
    only_with,
    run_launcher,
)
from pytest_fcp.plugin.isolation import IsolationSettings, budget_replay_options, isolation_settings
from pytest_fcp.plugin.schedule_settings import ScheduleSettings, schedule_settings

if TYPE_CHECKING:
    from pytest_fcp.world import World

__all__ = [
    "DEFAULT_ENGINES",
    "DEFAULT_EXAMPLES",
    "DEFAULT_NOW",
    "ENGINE_NAME_KEY",
    "SETTINGS_KEY",
    "WORLD_KEY",
    "FuzzSettings",
    "RunSettings",
    "build_settings",
    "header_line",
    "parse_now",
    "settings",
]

DEFAULT_NOW = "2024-01-10T12:00:00+00:00"
DEFAULT_ENGINES = ("reference", "ckvd")


@dataclass(frozen=True)
class RunSettings:
    """Everything the plugin's parts need to know about this run, read once from options and ini."""

    engines: tuple[str, ...]
    seed: int
    now: dt.datetime
    log_level: str
    trace_dir: str | None = None
    html: pathlib.Path | None = None  # --fcp-html: the report's path (absolute)
    coverage: bool = False  # --fcp-coverage: record and report the coverage map
    coverage_json: pathlib.Path | None = None  # --fcp-coverage-json: where the full map goes (absolute)
    scenarios: bool = False
    scenario_dirs: tuple[pathlib.Path, ...] = ()  # bundled catalog (unless no_bundled) + extra dirs, resolved
    no_bundled: bool = False
    baseline_dir: pathlib.Path | None = None  # with --fcp-scenarios: the first place the engines' baselines are read
    baseline_dirs: tuple[pathlib.Path, ...] = ()  # every place, in lookup order (a project's, then the bundled)
    baseline_write_dir: pathlib.Path | None = None  # where --fcp-update-baselines writes them
    bundled_baseline_dir: pathlib.Path | None = None  # the bundled baselines (named "bundled" in the summary)
    update_baselines: bool = False
    prune_baselines: bool = False  # --fcp-prune-baselines: an update also drops unused entries
    unused_baselines: str = "report"  # --fcp-unused-baselines: report unused entries, or fail the run on them
    rootdir: pathlib.Path = pathlib.Path()
    fuzz: FuzzSettings = field(default_factory=FuzzSettings)
    schedules: ScheduleSettings = field(default_factory=ScheduleSettings)
    isolation: IsolationSettings = field(default_factory=IsolationSettings)  # --fcp-isolation and the bounds
    worker: bool = False  # an xdist worker (the controller writes files and summaries)
    explicit_args: bool = False  # paths were given on the command line
    given_args: tuple[str, ...] = ()  # those paths (or node ids), as given
    replay_options: tuple[str, ...] = ()  # the options a replay line repeats (all but the engine), see replay.py
    fuzz_replay_options: tuple[str, ...] = ()  # what a fuzz item's replay line adds to --fcp-fuzz
    launcher: tuple[str, ...] = ("pytest",)  # how pytest was started: a replay line's first words
    invocation_dir: pathlib.Path = pathlib.Path()
    lean: bool = False  # --fcp-lean: the process-level speed measures of plugin/lean.py
    announced: bool = False  # an --fcp-* option was given: the header shows the run's seed
    save_cache: pathlib.Path | None = None  # --fcp-save-cache: where each test's cache is saved (absolute, created)
    cache_from: pathlib.Path | None = None  # --fcp-cache-from: where each test's saved cache is looked up (absolute)
    carried_baselines: bool = False  # --fcp-cache-from with --fcp-baseline-dir: its entries are of carried runs

    def collection_args(self) -> list[str] | None:
        """What to collect: the scenario dirs plus any given paths, nothing (fuzz only), or pytest's default.

        Given paths add to the catalog, unless one of them already names a scenario file or directory (a node id
        such as a replay line's): then exactly the given paths are collected."""
        if self.scenarios:
            if not self.explicit_args:
                return [str(d) for d in self.scenario_dirs]
            if any(self._in_scenario_dirs(arg) for arg in self.given_args):
                return None
            return [str(d) for d in self.scenario_dirs] + list(self.given_args)
        if self.explicit_args or not self.fuzz.enabled:
            return None
        return []

    def _in_scenario_dirs(self, arg: str) -> bool:
        path = (self.invocation_dir / arg.split("::", 1)[0]).resolve()
        return any(path == d or path.is_relative_to(d) or d.is_relative_to(path) for d in self.scenario_dirs)


SETTINGS_KEY = pytest.StashKey[RunSettings]()
WORLD_KEY: pytest.StashKey[World] = pytest.StashKey()  # on an item: the world its test ran in
ENGINE_NAME_KEY = pytest.StashKey[str]()  # on an item: the engine it tested


def settings(config: pytest.Config) -> RunSettings:
    """This run's settings (built in ``pytest_configure``)."""
    return config.stash[SETTINGS_KEY]


def _usage(message: str) -> pytest.UsageError:
    return pytest.UsageError(f"pytest-fcp: {message}")


def header_line(run: RunSettings) -> str:
    """The run's ``fcp:`` line: seed (with its replay option), engines, where traces and the report go."""
    line = f"fcp: seed={run.seed} (replay with --fcp-seed={run.seed}), engines={','.join(run.engines)}"
    line += f", traces -> {run.trace_dir}" if run.trace_dir else ""
    return line + (f", html -> {run.html}" if run.html else "")


def _option(config: pytest.Config, name: str) -> Any:
    return config.getoption(name, None)


def parse_now(value: object, what: str) -> dt.datetime:
    """An aware UTC datetime from an ISO 8601 string or datetime; ValueError naming ``what`` otherwise."""
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


def _engines(config: pytest.Config) -> tuple[str, ...]:
    names = _option(config, "fcp_engine") or config.getini("fcp_engine") or list(DEFAULT_ENGINES)
    out: list[str] = []
    for name in names:
        for part in str(name).replace(",", " ").split():
            if part not in out:
                out.append(part)
    if not out:
        raise _usage(
            "--fcp-engine: no engine named; give a registered engine (e.g. reference) or 'package.module:factory'"
        )
    for name in out:
        check_engine(name)
    return tuple(out)


def _seed(config: pytest.Config) -> int:
    seed = _option(config, "fcp_seed")
    if seed is not None:
        return number(seed, int, f"--fcp-seed {seed}: not a whole number; give an integer, e.g. --fcp-seed=1234")
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get("fcp_seed") is not None:
        return int(workerinput["fcp_seed"])
    return random.Random().getrandbits(32)


def _log_level(config: pytest.Config) -> str:
    given = _option(config, "fcp_log_level") or config.getini("fcp_log_level") or DEFAULT_LOG_LEVEL
    level = str(given).strip().upper()
    if level not in LOG_LEVELS:
        raise _usage(f"--fcp-log-level {given!r} is not a log level; use one of {', '.join(LOG_LEVELS)}")
    return level


def _now(config: pytest.Config) -> dt.datetime:
    text = _option(config, "fcp_now") or config.getini("fcp_now") or DEFAULT_NOW
    try:
        return parse_now(text, "--fcp-now")
    except ValueError as exc:
        raise _usage(str(exc)) from None


def _scenario_dirs(config: pytest.Config, no_bundled: bool) -> tuple[pathlib.Path, ...]:
    from pytest_fcp.scenarios.loader import catalog_dir

    dirs: list[pathlib.Path] = [] if no_bundled else [catalog_dir()]
    for extra in (_option(config, "fcp_scenarios_dirs") or []) + list(config.getini("fcp_scenarios_dirs")):
        path = pathlib.Path(extra).resolve()
        if path.is_file():
            raise _usage(f"--fcp-scenarios-dir {extra}: is a file, not a directory")
        if not path.is_dir():
            raise _usage(f"--fcp-scenarios-dir {extra}: no such directory")
        if path not in dirs:
            dirs.append(path)
    return tuple(dict.fromkeys(d.resolve() for d in dirs))


def _html(config: pytest.Config) -> pathlib.Path | None:
    """``--fcp-html`` (relative to the working directory) or ini ``fcp_html`` (relative to the rootdir), checked."""
    return _output_file(config, "fcp_html", "--fcp-html", "fcp-report.html")


def _output_file(config: pytest.Config, name: str, option: str, example: str) -> pathlib.Path | None:
    """An output file's option (relative to the working directory) or ini key (relative to the rootdir), checked."""
    given = _option(config, name)
    base = pathlib.Path.cwd()
    if not given:
        given, base = config.getini(name), config.rootpath
    if not given:
        return None
    path = (base / str(given)).resolve()
    if path.is_dir():
        raise _usage(f"{option} {given}: is a directory; give the path of a file, e.g. {given}/{example}")
    if not path.parent.is_dir():
        raise _usage(f"{option} {given}: no such directory {path.parent}")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise _usage(f"{option} {given}: {path.parent} is not writable")
    return path


def _cache_dir(config: pytest.Config, name: str, option: str, *, create: bool) -> pathlib.Path | None:
    """``--fcp-save-cache`` (``create``: made now, and proven writable) or ``--fcp-cache-from`` (an existing
    directory; not with ``--fcp-update-baselines``), relative to the working directory, or its ini key relative to
    the rootdir; a usage error saying what is wrong."""
    given, base = _option(config, name), pathlib.Path.cwd()
    if not given:
        given, base = config.getini(name), config.rootpath
    if not given:
        return None
    path = (base / str(given)).expanduser().resolve()
    if not create:
        if not path.is_dir():
            raise _usage(f"{option} {given}: no such directory {path}; give a directory written by --fcp-save-cache")
        if _option(config, "fcp_update_baselines") and not _own_baselines(config):
            raise _usage(
                f"{option}: a carried cache changes what a scenario does; record its baselines apart from those of "
                "a cold start: add --fcp-baseline-dir DIR (a directory for them), or drop --fcp-update-baselines"
            )
        return path
    try:
        _probe_writable(path)
    except OSError as exc:
        raise _usage(f"{option} {given}: cannot create or write the directory {path} ({exc.strerror or exc})") from None
    return path


def _own_baselines(config: pytest.Config) -> bool:
    """Whether the run names its own baseline directory (``--fcp-baseline-dir`` or ini ``fcp_baseline_dir``)."""
    return bool(_option(config, "fcp_baseline_dir") or config.getini("fcp_baseline_dir"))


def _installed(path: pathlib.Path) -> bool:
    """Whether ``path`` lies inside an installed package (site-packages): never a place to write to."""
    return "site-packages" in path.resolve().parts or "dist-packages" in path.resolve().parts


def _is_this_repository(root: pathlib.Path, bundled: pathlib.Path) -> bool:
    """Whether ``root`` is the checkout whose ``scenarios/baselines`` is ``bundled`` (not an installed package)."""
    return not _installed(bundled) and bundled.resolve().parent.parent == root.resolve()


def _baseline_dirs(config: pytest.Config) -> tuple[tuple[pathlib.Path, ...], pathlib.Path, pathlib.Path]:
    """Where baselines are read (in lookup order), where updates are written, and the bundled directory.

    The run's own directory (``--fcp-baseline-dir``, else ``<rootdir>/fcp-baselines`` if it exists) comes first;
    the bundled baselines fill in the scenarios it lacks. Updates go to the run's own directory, or into the
    bundled one only when the rootdir is this repository's checkout; elsewhere to ``<rootdir>/fcp-baselines``."""
    from pytest_fcp.scenarios.loader import catalog_dir

    given = _option(config, "fcp_baseline_dir") or config.getini("fcp_baseline_dir")
    project = config.rootpath / "fcp-baselines"
    bundled = (catalog_dir() / "baselines").resolve()
    if given:
        path = pathlib.Path(given)
        if path.exists() and not path.is_dir():
            raise _usage(f"--fcp-baseline-dir {given}: not a directory")
        if not path.exists() and not _option(config, "fcp_update_baselines"):
            raise _usage(f"--fcp-baseline-dir {given}: no such directory (--fcp-update-baselines creates it)")
        own: pathlib.Path | None = path.resolve()
    else:
        own = project.resolve() if project.is_dir() else None
    reads = tuple(dict.fromkeys(d for d in (own, bundled) if d is not None))
    if own is not None:
        return reads, own, bundled
    return reads, (bundled if _is_this_repository(config.rootpath, bundled) else project.resolve()), bundled


def _unused_mode(config: pytest.Config) -> str:
    """``--fcp-unused-baselines`` / ini ``fcp_unused_baselines``: ``report`` (default) or ``fail``."""
    given = _option(config, "fcp_unused_baselines") or config.getini("fcp_unused_baselines") or "report"
    mode = str(given).strip().lower()
    if mode not in ("report", "fail"):
        raise _usage(f"ini fcp_unused_baselines = {given!r}: not a mode; allowed: report or fail")
    return mode


def _prune(config: pytest.Config) -> bool:
    """``--fcp-prune-baselines``, which only makes sense with ``--fcp-update-baselines``."""
    prune = bool(_option(config, "fcp_prune_baselines"))
    if prune and not _option(config, "fcp_update_baselines"):
        raise _usage(
            "--fcp-prune-baselines: it removes unused entries while rewriting the baselines; "
            "give it with --fcp-update-baselines"
        )
    return prune


def _trace_dir(config: pytest.Config) -> str | None:
    """The trace directory, created and proven writable now (a usage error otherwise), or None."""
    given = _option(config, "fcp_trace_dir") or config.getini("fcp_trace_dir") or None
    if not given or hasattr(config, "workerinput"):  # only the controller writes the file
        return given
    path = pathlib.Path(given)
    if path.exists() and not path.is_dir():
        raise _usage(f"--fcp-trace-dir {given}: is a file, not a directory")
    try:
        _probe_writable(path)
    except OSError as exc:
        raise _usage(f"--fcp-trace-dir {given}: cannot write there ({exc.strerror or exc})") from None
    return given


def _probe_writable(path: pathlib.Path) -> None:
    """Create ``path`` if needed and write and remove a probe file in it; ``OSError`` when that fails."""
    path.mkdir(parents=True, exist_ok=True)
    probe = path / f".fcp-write-probe-{os.getpid()}"
    probe.write_text("")
    probe.unlink()


def _given_paths(config: pytest.Config, scenarios: bool, no_bundled: bool) -> tuple[str, ...]:
    """The paths given on the command line; a usage error when one is scenario files this run would not run."""
    from pytest_fcp.plugin.invocation import scenario_path_hint

    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return ()
    given = tuple(config.args)

    def covered(folder: pathlib.Path) -> bool:
        dirs = _scenario_dirs(config, no_bundled) if scenarios else ()
        return folder.name == "scenarios" or any(folder.is_relative_to(d) for d in dirs)

    hint = scenario_path_hint(given, config.invocation_params.dir, scenarios, covered)
    if hint:
        raise _usage(hint)
    return given


def build_settings(config: pytest.Config) -> RunSettings:
    """Read and check every pytest-fcp option and ini key; a bad value is a one-line ``pytest.UsageError``."""
    scenarios = bool(_option(config, "fcp_scenarios"))
    no_bundled = bool(_option(config, "fcp_no_bundled"))
    only_with(config, "--fcp-scenarios", SCENARIO_ONLY)
    only_with(config, "--fcp-fuzz", FUZZ_ONLY)
    reads, write, bundled = _baseline_dirs(config) if scenarios else ((), None, None)
    given = _given_paths(config, scenarios, no_bundled)
    is_lean = lean(config)
    coverage_json = _output_file(config, "fcp_coverage_json", "--fcp-coverage-json", "fcp-coverage.json")
    return RunSettings(
        engines=_engines(config),
        seed=_seed(config),
        now=_now(config),
        log_level=_log_level(config),
        trace_dir=_trace_dir(config),
        html=_html(config),
        coverage=bool(_option(config, "fcp_coverage") or config.getini("fcp_coverage")) or bool(coverage_json),
        coverage_json=coverage_json,
        scenarios=scenarios,
        scenario_dirs=_scenario_dirs(config, no_bundled) if scenarios else (),
        no_bundled=no_bundled,
        baseline_dir=reads[0] if reads else None,
        baseline_dirs=reads,
        baseline_write_dir=write,
        bundled_baseline_dir=bundled,
        update_baselines=bool(_option(config, "fcp_update_baselines")),
        prune_baselines=_prune(config),
        unused_baselines=_unused_mode(config),
        rootdir=config.rootpath,
        fuzz=fuzz_settings(config),
        schedules=schedule_settings(config),
        isolation=isolation_settings(config),
        worker=hasattr(config, "workerinput"),
        explicit_args=config.args_source == pytest.Config.ArgsSource.ARGS,
        given_args=given,
        replay_options=_replay_options(config, scenarios, no_bundled, reads[0] if reads else None, is_lean),
        fuzz_replay_options=fuzz_replay_options(config),
        launcher=run_launcher(config),
        invocation_dir=config.invocation_params.dir,
        lean=is_lean,
        save_cache=_cache_dir(config, "fcp_save_cache", "--fcp-save-cache", create=True),
        cache_from=_cache_dir(config, "fcp_cache_from", "--fcp-cache-from", create=False),
        carried_baselines=_own_baselines(config)
        and bool(_option(config, "fcp_cache_from") or config.getini("fcp_cache_from")),
        announced=any(_option(config, dest) not in (None, False) for dest in FCP_DESTS),
    )


def _replay_options(
    config: pytest.Config, scenarios: bool, no_bundled: bool, baseline_dir: pathlib.Path | None, lean: bool
) -> tuple[str, ...]:
    """What shaped this run besides the engine and the seed: options that were given or differ from defaults,
    and pytest's ``-p``, ``-o``, ``-W``, ``-c`` and ``--rootdir`` as given (not ``--fcp-trace-dir``, ``--fcp-html``
    or ``--fcp-update-baselines``: a replay writes no report and rewrites no baseline)."""
    from pytest_fcp.plugin.invocation import given_plugins

    out: list[str] = list(given_plugins(config.invocation_params.args))
    if scenarios:
        out.append("--fcp-scenarios")
        for extra in _option(config, "fcp_scenarios_dirs") or []:
            out.append(f"--fcp-scenarios-dir={pathlib.Path(extra).resolve()}")
        if no_bundled:
            out.append("--fcp-no-bundled")
        if _option(config, "fcp_baseline_dir") and baseline_dir is not None:
            out.append(f"--fcp-baseline-dir={baseline_dir.resolve()}")
    now = _now(config)
    if now != parse_now(DEFAULT_NOW, "default"):
        out.append(f"--fcp-now={now.isoformat().replace('+00:00', 'Z')}")
    level = _log_level(config)
    if level != DEFAULT_LOG_LEVEL or _option(config, "fcp_log_level"):
        out.append(f"--fcp-log-level={level}")
    if lean:
        out.append("--fcp-lean")
    strategy = schedule_settings(config).strategy
    if strategy != DEFAULT_STRATEGY:
        out.append(f"--fcp-schedule-strategy={strategy}")
    carried = _option(config, "fcp_cache_from") or config.getini("fcp_cache_from")
    if carried:
        base = pathlib.Path.cwd() if _option(config, "fcp_cache_from") else config.rootpath
        out.append(f"--fcp-cache-from={(base / str(carried)).expanduser().resolve()}")
    out.extend(budget_replay_options(isolation_settings(config)))
    return tuple(out)
