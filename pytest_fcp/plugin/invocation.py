"""What pytest was given and how it was started, read once by ``settings`` (a leaf below it): the command a
replay line begins with, the ``-p`` plugins given, the hint for scenario files given without
``--fcp-scenarios``, options given without the option they work with, and the checked values of the options
argparse used to type (a bad value is one ``ERROR: pytest-fcp: ...`` line, never argparse's usage text). The
launcher and the hint are pure functions of what they are given (argv, environment, a ``which``), so each form
is tested without starting it.

The launcher, so that a replay line pasted in the user's shell reruns the way pytest was started:

- under ``uv run`` (uv sets ``UV_RUN_RECURSION_DEPTH`` for what it runs, and ``UV`` to its own path): the
  line begins with ``uv run`` (``uv``'s path when another ``uv`` comes first on ``PATH``);
- ``python -m pytest`` (with the interpreter's options): ``python`` when the first ``python`` on ``PATH`` is
  this interpreter, else this interpreter's path;
- the ``pytest`` script: ``pytest`` when it is the first ``pytest`` on ``PATH``, else its path as started
  (a virtual environment's ``pytest`` run by path);
- anything else (``pytest.main()`` from a program): this interpreter with ``-m pytest``.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import sys
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest

from pytest_fcp.core.fuzz_profiles import PROFILES
from pytest_fcp.core.objects import ObjectSpecError, resolve_object

__all__ = [
    "FCP_DESTS",
    "FUZZ_ONLY",
    "SCENARIO_ONLY",
    "check_engine",
    "current_launcher",
    "fuzz_options",
    "fuzz_replay_options",
    "given_plugins",
    "launcher",
    "lean",
    "number",
    "only_with",
    "run_launcher",
    "scenario_path_hint",
    "usage",
]

#: Options that mean something only with --fcp-scenarios, and only with --fcp-fuzz (dest -> option).
SCENARIO_ONLY = {
    "fcp_scenarios_dirs": "--fcp-scenarios-dir",
    "fcp_no_bundled": "--fcp-no-bundled",
    "fcp_baseline_dir": "--fcp-baseline-dir",
    "fcp_unused_baselines": "--fcp-unused-baselines",
    "fcp_schedules": "--fcp-schedules",
    "fcp_schedule": "--fcp-schedule",
    "fcp_schedule_strategy": "--fcp-schedule-strategy",
}
FUZZ_ONLY = {
    "fcp_fuzz_examples": "--fcp-fuzz-examples",
    "fcp_fuzz_budget": "--fcp-fuzz-budget",
    "fcp_fuzz_save": "--fcp-fuzz-save",
    "fcp_fuzz_profile": "--fcp-fuzz-profile",
    "fcp_fuzz_db": "--fcp-fuzz-db",
    "fcp_fuzz_shards": "--fcp-fuzz-shards",
    "fcp_fuzz_shard": "--fcp-fuzz-shard",
    "fcp_fuzz_steer": "--fcp-fuzz-steer",
}
#: Every --fcp-* option's dest (tests/test_hygiene.py checks it against the registered options).
FCP_DESTS = (
    "fcp_engine",
    "fcp_seed",
    "fcp_log_level",
    "fcp_now",
    "fcp_trace_dir",
    "fcp_html",
    "fcp_scenarios",
    "fcp_fuzz",
    "fcp_update_baselines",
    "fcp_prune_baselines",
    "fcp_lean",
    "fcp_coverage",
    "fcp_coverage_json",
    "fcp_save_cache",
    "fcp_cache_from",
    "fcp_isolation",
    "fcp_hang_seconds",
    "fcp_item_seconds",
    "fcp_max_requests",
    "fcp_max_sleep",
    *SCENARIO_ONLY,
    *FUZZ_ONLY,
)
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")

Which = Callable[[str], str | None]
_SCRIPTS = ("pytest", "py.test")


def _same_program(found: str | None, started: str) -> bool:
    """Whether ``found`` (from ``PATH``) is the program ``started``: the same file in the same directory (a
    virtual environment's ``python`` links to its base interpreter, which is not the same environment)."""
    if not found:
        return False
    try:
        same_dir = pathlib.Path(found).parent.resolve() == pathlib.Path(started).parent.resolve()
        return same_dir and os.path.samefile(found, started)
    except OSError:
        return False


def _python(executable: str, which: Which) -> str:
    return "python" if _same_program(which("python"), executable) else executable


def launcher(
    orig_argv: Sequence[str], argv0: str, env: Mapping[str, str], which: Which, executable: str
) -> tuple[str, ...]:
    """The words a replay line starts with, so that pasted in the same shell it reruns pytest as it was started."""
    prefix: tuple[str, ...] = ()
    if env.get("UV_RUN_RECURSION_DEPTH"):
        uv = env.get("UV") or "uv"
        prefix = ("uv" if uv == "uv" or _same_program(which("uv"), uv) else uv, "run")
    main = pathlib.PurePath(argv0)
    if main.name == "__main__.py" and main.parent.name == "pytest":  # python [options] -m pytest
        module_at = next((i for i, a in enumerate(orig_argv) if a in ("-m", "-mpytest") and i > 0), len(orig_argv))
        return (*prefix, _python(executable, which), *orig_argv[1:module_at], "-m", "pytest")
    if main.name in _SCRIPTS:  # the pytest script
        return (*prefix, main.name if _same_program(which(main.name), argv0) else argv0)
    return (*prefix, _python(executable, which), "-m", "pytest")


def current_launcher() -> tuple[str, ...]:
    """:func:`launcher` for this process."""
    argv0 = sys.argv[0] if sys.argv else ""
    return launcher(sys.orig_argv, argv0, os.environ, shutil.which, sys.executable)


#: pytest's own options that shape a test and take a value: short form (or None) -> long form (or None).
_SHAPING = {"-p": None, "-o": "--override-ini", "-W": "--pythonwarnings", "-c": "--config-file", None: "--rootdir"}


def _shaping(arg: str, tokens: Iterator[str]) -> tuple[str, ...]:
    """``arg`` (with its value, taken from ``tokens`` when separate) as a replay repeats it, or nothing."""
    for short, long in _SHAPING.items():
        name, value = None, None
        if (short and arg == short) or (long and arg == long):
            name, value = short or long, next(tokens, None)
        elif short and arg.startswith(short) and not arg.startswith("--"):
            name, value = short, arg[len(short) :]
        elif long and arg.startswith(long + "="):
            name, value = short or long, arg[len(long) + 1 :]
        if name is not None and value is not None:
            return (name, value) if short else (f"{name}={value}",)
    return ()


def given_plugins(args: Sequence[str]) -> tuple[str, ...]:
    """The options among pytest's command-line ``args`` that shape a test beyond pytest-fcp's own: ``-p``
    plugins, ``-o`` ini overrides, ``-W`` warning filters, ``-c`` config file and ``--rootdir``, in order."""
    out: list[str] = []
    tokens = iter(args)
    for arg in tokens:
        if arg == "--":
            break
        out += _shaping(arg, tokens)
    return tuple(out)


def _is_scenario_file(path: pathlib.Path) -> bool:
    if path.suffix != ".toml" or not path.is_file():
        return False
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return isinstance(data.get("scenario"), list)


def scenario_path_hint(
    args: Sequence[str], invocation_dir: pathlib.Path, scenarios: bool, covered: Callable[[pathlib.Path], bool]
) -> str | None:
    """A one-line message when a path given to pytest is a scenario file, or a directory of scenario files and
    no Python file, that this run would not collect (``covered``: whether a directory's scenario files are
    collected once ``--fcp-scenarios`` is on); None otherwise."""
    for arg in args:
        given = pathlib.PurePath(arg.split("::", 1)[0])
        path = invocation_dir / given
        if _is_scenario_file(path):
            kind, folder, shown = "an FCP scenario file", path.parent, given.parent
        elif path.is_dir() and not any(path.glob("*.py")) and any(_is_scenario_file(p) for p in path.glob("*.toml")):
            kind, folder, shown = "a directory of FCP scenario files", path, given
        else:
            continue
        need = [] if scenarios else ["--fcp-scenarios"]
        if not covered(folder.resolve()):
            need.append(f"--fcp-scenarios-dir={shown}")
        if need:
            them = "it" if len(need) == 1 else "them"
            return f"{arg} is {kind}, which pytest runs only with {' '.join(need)}: add {them}"
    return None


# --- options read the same way everywhere -------------------------------------------------------------
def _given(config: pytest.Config, name: str) -> Any:
    return config.getoption(name, None)


def usage(message: str) -> pytest.UsageError:
    """The one-line ``ERROR: pytest-fcp: ...`` error of a bad option or ini value."""
    return pytest.UsageError(f"pytest-fcp: {message}")


def number(text: object, kind: type[int] | type[float], message: str) -> Any:
    """``text`` read as an int or a finite float, else a usage error saying ``message``."""
    try:
        value = kind(str(text).strip())
    except ValueError:
        raise usage(message) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise usage(message)
    return value


def fuzz_options(config: pytest.Config) -> tuple[int | None, float | None, str | None]:
    """``--fcp-fuzz-examples``, ``--fcp-fuzz-budget`` and ``--fcp-fuzz-profile`` as given, checked."""
    examples, budget, profile = (
        _given(config, n) for n in ("fcp_fuzz_examples", "fcp_fuzz_budget", "fcp_fuzz_profile")
    )
    if examples is not None:
        examples = number(examples, int, f"--fcp-fuzz-examples {examples}: must be a whole number of at least 1")
        if examples < 1:
            raise usage(f"--fcp-fuzz-examples {examples}: must be a whole number of at least 1")
    if budget is not None:
        budget = number(budget, float, f"--fcp-fuzz-budget {budget}: must be a number of seconds")
        if budget < 0:
            raise usage(f"--fcp-fuzz-budget {budget:g}: must be a number of seconds, not negative")
    if profile is not None and profile not in PROFILES:
        raise usage(f"--fcp-fuzz-profile {profile}: no such profile; use one of {', '.join(PROFILES)}")
    return examples, budget, profile


def only_with(config: pytest.Config, switch: str, needs: dict[str, str]) -> None:
    """A usage error for an option of ``needs`` given without the option ``switch`` it works with."""
    if _given(config, switch.lstrip("-").replace("-", "_")):
        return
    for dest, option in needs.items():
        if _given(config, dest) not in (None, False):
            raise usage(f"{option} works only with {switch}: add {switch} (or leave {option} out)")


def lean(config: pytest.Config) -> bool:
    """``--fcp-lean`` or ini ``fcp_lean`` (true or false; anything else is a usage error)."""
    if _given(config, "fcp_lean"):
        return True
    text = str(config.getini("fcp_lean")).strip().lower()
    if text not in _TRUE + _FALSE:
        raise usage(f"ini fcp_lean = {text!r}: must be true or false")
    return text in _TRUE


def run_launcher(config: pytest.Config) -> tuple[str, ...]:
    """How pytest was started (an xdist worker's is its controller's)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get("fcp_launcher"):
        return tuple(workerinput["fcp_launcher"])
    return current_launcher()


def check_engine(name: str) -> None:
    """A usage error unless ``name`` is a registered engine or a ``package.module:factory`` taking one argument.

    Registered engines are not imported here (a bundled engine whose package is missing skips its tests)."""
    import importlib.util
    import inspect
    from importlib.metadata import entry_points

    registered = sorted({ep.name for ep in entry_points(group="pytest_fcp.engines")})
    if ":" not in name:
        if name not in registered:
            raise usage(
                f"--fcp-engine {name}: no such engine; registered engines are {', '.join(registered) or 'none'}, "
                "or give 'package.module:factory'"
            )
        return
    try:
        target: Any = resolve_object(name)
    except ObjectSpecError as exc:
        raise usage(f"--fcp-engine {name}: {exc}") from None
    try:
        inspect.signature(target).bind("cache_dir")
        factory = callable(target)
    except TypeError:
        factory = False
    except ValueError:  # no signature to read (some builtins): let the first call tell
        factory = callable(target)
    if not factory:
        raise usage(
            f"--fcp-engine {name}: {target!r} is not an engine factory (a callable taking one argument, the "
            f"cache directory, and returning an engine); registered engines are {', '.join(registered) or 'none'}"
        )
    missing = [m for m in getattr(target, "requires", ()) if importlib.util.find_spec(m) is None]
    if missing:
        raise usage(f"--fcp-engine {name}: cannot be loaded: it needs {', '.join(missing)}, which is not installed")


def fuzz_replay_options(config: pytest.Config) -> tuple[str, ...]:
    """The fuzz options given, for a fuzz item's replay line (with ``--fcp-fuzz``)."""
    examples, budget, profile = fuzz_options(config)
    out = [f"--fcp-fuzz-examples={examples}"] if examples is not None else []
    out += [f"--fcp-fuzz-budget={budget:g}"] if budget is not None else []
    out += [f"--fcp-fuzz-profile={profile}"] if profile else []
    save = _given(config, "fcp_fuzz_save")
    return (*out, f"--fcp-fuzz-save={pathlib.Path(save).resolve()}") if save else tuple(out)
