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

from pytest_fcp.core.fuzz_profiles import DEFAULT_EXAMPLES, PROFILES
from pytest_fcp.core.logs import DEFAULT_LOG_LEVEL, LOG_LEVELS

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
    "parse_now",
    "settings",
]

DEFAULT_NOW = "2024-01-10T12:00:00+00:00"
DEFAULT_ENGINES = ("reference", "ckvd")


@dataclass(frozen=True)
class FuzzSettings:
    """``--fcp-fuzz*``: whether to fuzz, and how many examples, how long, seeded or derandomized, saved where."""

    enabled: bool = False
    examples: int = DEFAULT_EXAMPLES
    budget: float | None = None
    derandomize: bool = False
    save_dir: pathlib.Path | None = None


@dataclass(frozen=True)
class RunSettings:
    """Everything the plugin's parts need to know about this run, read once from options and ini."""

    engines: tuple[str, ...]
    seed: int
    now: dt.datetime
    log_level: str
    trace_dir: str | None = None
    html: pathlib.Path | None = None  # --fcp-html: the report's path (absolute)
    scenarios: bool = False
    scenario_dirs: tuple[pathlib.Path, ...] = ()  # bundled catalog (unless no_bundled) + extra dirs, resolved
    no_bundled: bool = False
    baseline_dir: pathlib.Path | None = None  # with --fcp-scenarios: where the engines' baselines are read
    baseline_write_dir: pathlib.Path | None = None  # where --fcp-update-baselines writes them
    update_baselines: bool = False
    rootdir: pathlib.Path = pathlib.Path()
    fuzz: FuzzSettings = field(default_factory=FuzzSettings)
    worker: bool = False  # an xdist worker (the controller writes files and summaries)
    explicit_args: bool = False  # paths were given on the command line

    def collection_args(self) -> list[str] | None:
        """What to collect when no paths were given: the scenario dirs, nothing (fuzz only), or the default."""
        if self.explicit_args:
            return None
        if self.scenarios:
            return [str(d) for d in self.scenario_dirs]
        if self.fuzz.enabled:
            return []
        return None


SETTINGS_KEY = pytest.StashKey[RunSettings]()
WORLD_KEY: pytest.StashKey[World] = pytest.StashKey()  # on an item: the world its test ran in
ENGINE_NAME_KEY = pytest.StashKey[str]()  # on an item: the engine it tested


def settings(config: pytest.Config) -> RunSettings:
    """This run's settings (built in ``pytest_configure``)."""
    return config.stash[SETTINGS_KEY]


def _usage(message: str) -> pytest.UsageError:
    return pytest.UsageError(f"pytest-fcp: {message}")


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
    return tuple(out)


def _seed(config: pytest.Config) -> int:
    seed = _option(config, "fcp_seed")
    workerinput = getattr(config, "workerinput", None)
    if seed is None and workerinput is not None:
        seed = workerinput.get("fcp_seed")
    if seed is None:
        seed = random.Random().getrandbits(32)
    return int(seed)


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
        if not path.is_dir():
            raise _usage(f"--fcp-scenarios-dir {extra}: no such directory")
        dirs.append(path)
    return tuple(d.resolve() for d in dirs)


def _html(config: pytest.Config) -> pathlib.Path | None:
    """``--fcp-html`` (relative to the working directory) or ini ``fcp_html`` (relative to the rootdir), checked."""
    given = _option(config, "fcp_html")
    base = pathlib.Path.cwd()
    if not given:
        given, base = config.getini("fcp_html"), config.rootpath
    if not given:
        return None
    path = (base / str(given)).resolve()
    if path.is_dir():
        raise _usage(f"--fcp-html {given}: is a directory; give the path of a file, e.g. {given}/fcp-report.html")
    if not path.parent.is_dir():
        raise _usage(f"--fcp-html {given}: no such directory {path.parent}")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise _usage(f"--fcp-html {given}: {path.parent} is not writable")
    return path


def _installed(path: pathlib.Path) -> bool:
    """Whether ``path`` lies inside an installed package (site-packages): never a place to write to."""
    return "site-packages" in path.resolve().parts or "dist-packages" in path.resolve().parts


def _baseline_dirs(config: pytest.Config) -> tuple[pathlib.Path, pathlib.Path]:
    """Where baselines are read and where updates are written (see ``--fcp-baseline-dir``)."""
    from pytest_fcp.scenarios.loader import catalog_dir

    given = _option(config, "fcp_baseline_dir") or config.getini("fcp_baseline_dir")
    project = config.rootpath / "fcp-baselines"
    if given:
        path = pathlib.Path(given)
        if path.exists() and not path.is_dir():
            raise _usage(f"--fcp-baseline-dir {given}: not a directory")
        if not path.exists() and not _option(config, "fcp_update_baselines"):
            raise _usage(f"--fcp-baseline-dir {given}: no such directory (--fcp-update-baselines creates it)")
        return path, path
    if project.is_dir():
        return project, project
    bundled = catalog_dir() / "baselines"
    return bundled, (project if _installed(bundled) else bundled)


def _fuzz(config: pytest.Config) -> FuzzSettings:
    if not _option(config, "fcp_fuzz"):
        return FuzzSettings()
    profile = PROFILES.get(_option(config, "fcp_fuzz_profile") or "", {})
    examples = _option(config, "fcp_fuzz_examples")
    if examples is None:
        try:
            examples = int(config.getini("fcp_fuzz_examples") or DEFAULT_EXAMPLES)
        except ValueError:
            raise _usage("ini fcp_fuzz_examples must be a whole number") from None
    budget = _option(config, "fcp_fuzz_budget")
    if budget is None and config.getini("fcp_fuzz_budget"):
        try:
            budget = float(config.getini("fcp_fuzz_budget"))
        except ValueError:
            raise _usage("ini fcp_fuzz_budget must be a number of seconds") from None
    if budget is None:
        budget = profile.get("budget")
    save = _option(config, "fcp_fuzz_save")
    return FuzzSettings(
        enabled=True,
        examples=max(1, round(examples * profile.get("examples_factor", 1.0))),
        budget=budget,
        derandomize=bool(profile.get("derandomize", False)),
        save_dir=pathlib.Path(save) if save else None,
    )


def build_settings(config: pytest.Config) -> RunSettings:
    """Read and check every pytest-fcp option and ini key; a bad value is a one-line ``pytest.UsageError``."""
    scenarios = bool(_option(config, "fcp_scenarios"))
    no_bundled = bool(_option(config, "fcp_no_bundled"))
    baselines = _baseline_dirs(config) if scenarios else (None, None)
    return RunSettings(
        engines=_engines(config),
        seed=_seed(config),
        now=_now(config),
        log_level=_log_level(config),
        trace_dir=_option(config, "fcp_trace_dir") or config.getini("fcp_trace_dir") or None,
        html=_html(config),
        scenarios=scenarios,
        scenario_dirs=_scenario_dirs(config, no_bundled) if scenarios else (),
        no_bundled=no_bundled,
        baseline_dir=baselines[0],
        baseline_write_dir=baselines[1],
        update_baselines=bool(_option(config, "fcp_update_baselines")),
        rootdir=config.rootpath,
        fuzz=_fuzz(config),
        worker=hasattr(config, "workerinput"),
        explicit_args=config.args_source == pytest.Config.ArgsSource.ARGS,
    )
