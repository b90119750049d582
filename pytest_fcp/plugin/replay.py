"""The replay line every failure prints: a command that, pasted in the same directory, reruns exactly that test.

It starts the way this pytest was started (``uv run pytest``, ``python -m pytest``, a virtual environment's
``pytest`` by path: :mod:`~pytest_fcp.plugin.invocation`). It repeats everything that shaped the test (see
:func:`RunSettings.replay_options <pytest_fcp.plugin.settings.RunSettings>`): the seed always, the test's engine,
pytest's ``-p``, ``-o``, ``-W``, ``-c`` and ``--rootdir`` as given, and each other ``--fcp-*`` option that was
given or differs from its default (a fuzz item's fuzz options too), in ``--option=value`` form. The test is named
by its file and the rest of its node id; the file is written relative to the invocation directory when it lies
below it, else as an absolute path (the bundled catalog's files always are), so the line resolves from anywhere
for bundled scenarios.

Also :func:`fix_rootdir`: pytest picks its rootdir before plugins register their options, so the value of
``--fcp-baseline-dir DIR`` (given as two tokens) would be taken for a test path; the rootdir is worked out again
without it.
"""

from __future__ import annotations

import inspect
import os
import pathlib
import shlex

import pytest

from pytest_fcp.plugin.settings import ENGINE_NAME_KEY, RunSettings

__all__ = ["fix_rootdir", "replay_command", "replay_target"]


def replay_target(item: pytest.Item, run: RunSettings) -> str:
    """The command-line argument that selects ``item``: its file (relative or absolute) and the rest of its id."""
    rest = item.nodeid.split("::", 1)[1] if "::" in item.nodeid else ""
    path = pathlib.Path(item.path).resolve()
    bundled = bool(run.scenario_dirs) and not run.no_bundled and path.is_relative_to(run.scenario_dirs[0])
    here = run.invocation_dir.resolve()
    shown = str(path) if bundled or not path.is_relative_to(here) else os.path.relpath(path, here)
    return f"{shown}::{rest}" if rest else shown


def replay_command(run: RunSettings, item: pytest.Item) -> str:
    """The command line that reruns ``item`` with the same seed, engine and options."""
    if callable(getattr(item, "replay_line", None)):  # a fuzz item: its seed, shard and database too
        return item.replay_line(run)  # type: ignore[attr-defined]
    engine = getattr(item, "engine", None) or item.stash.get(ENGINE_NAME_KEY, None)
    engines = (engine,) if engine else run.engines
    args = [*run.launcher, f"--fcp-seed={run.seed}", *run.replay_options]
    args += [f"--fcp-engine={name}" for name in engines]
    args.append(replay_target(item, run))
    return shlex.join(args)


def fix_rootdir(config: pytest.Config) -> None:
    """Work the rootdir out again from the real test paths when pytest took an option's value for one."""
    from _pytest.config.findpaths import determine_setup

    given = shlex.split(os.environ.get("PYTEST_ADDOPTS", "")) + list(config.invocation_params.args)
    if not any(arg.startswith("--fcp-") and "=" not in arg for arg in given):
        return  # pytest's own reading was right
    ns = config._parser.parse_known_args(given)
    if ns.rootdir:
        return
    old_root = config.rootpath
    # private: pytest 9 added override_ini (keyword-only) and a fourth item to the result; pytest 8 has neither
    wanted = {
        "inifile": ns.inifilename,
        "override_ini": ns.override_ini,
        "args": list(ns.file_or_dir),
        "rootdir_cmd_arg": None,
        "invocation_dir": config.invocation_params.dir,
    }
    accepted = inspect.signature(determine_setup).parameters
    rootpath, inipath, inicfg = determine_setup(**{k: v for k, v in wanted.items() if k in accepted})[:3]
    if rootpath == old_root:
        return
    # pytest has no public way to correct these; they were set from the misread arguments a moment ago
    config._rootpath = rootpath
    config._parser.extra_info["rootdir"] = str(rootpath)
    if inipath != config.inipath:
        config._inipath = inipath
        if hasattr(config, "_inicfg"):
            config._inicfg = inicfg
        else:  # pytest 8
            config.inicfg = inicfg  # type: ignore[attr-defined]
        config._inicache.clear()
        config._parser.extra_info["inifile"] = str(inipath)
    known = config.known_args_namespace
    if known.confcutdir == str(old_root):
        known.confcutdir = str(inipath.parent if inipath else rootpath)
