"""The run's ``--fcp-fuzz*`` settings, read and checked once (a leaf below ``settings``, as ``invocation`` is)."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_fcp.core.fuzz_profiles import DEFAULT_EXAMPLES, PROFILES
from pytest_fcp.plugin.invocation import fuzz_options, usage

__all__ = ["FuzzSettings", "fuzz_settings"]


def _option(config: pytest.Config, name: str) -> Any:
    return config.getoption(name, None)


_usage = usage


@dataclass(frozen=True)
class FuzzSettings:
    """``--fcp-fuzz*``: whether to fuzz, and how many examples, how long, seeded or derandomized, saved where."""

    enabled: bool = False
    examples: int = DEFAULT_EXAMPLES
    budget: float | None = None
    derandomize: bool = False
    save_dir: pathlib.Path | None = None
    db: str = ""  # --fcp-fuzz-db: a directory (absolute), module:attr, "none", or "" for pytest's cache dir
    shards: int = 1  # fuzz items per engine
    only_shard: int | None = None  # --fcp-fuzz-shard: the one shard to run
    steer: bool = True  # --fcp-fuzz-steer: draw towards the coverage map's empty cells


def fuzz_settings(config: pytest.Config) -> FuzzSettings:
    """``--fcp-fuzz`` and its options (profile, examples, budget, save, database, shards), checked."""
    examples, budget, profile_name = fuzz_options(config)
    if not _option(config, "fcp_fuzz"):
        return FuzzSettings()
    profile = PROFILES.get(profile_name or "", {})
    if examples is None:
        try:
            examples = int(config.getini("fcp_fuzz_examples") or DEFAULT_EXAMPLES)
        except ValueError:
            raise _usage("ini fcp_fuzz_examples must be a whole number") from None
    if budget is None and config.getini("fcp_fuzz_budget"):
        try:
            budget = float(config.getini("fcp_fuzz_budget"))
        except ValueError:
            raise _usage("ini fcp_fuzz_budget must be a number of seconds") from None
    if budget is None:
        budget = profile.get("budget")
    save = _option(config, "fcp_fuzz_save")
    shards, only = _fuzz_shards(config)
    return FuzzSettings(
        enabled=True,
        examples=max(1, round(examples * profile.get("examples_factor", 1.0))),
        budget=budget,
        derandomize=bool(profile.get("derandomize", False)),
        save_dir=pathlib.Path(save) if save else None,
        db=_fuzz_db(config),
        shards=shards,
        only_shard=only,
        steer=_fuzz_steer(config),
    )


def _fuzz_steer(config: pytest.Config) -> bool:
    """``--fcp-fuzz-steer on|off`` (ini ``fcp_fuzz_steer``): whether the search steers towards empty cells."""
    given = _option(config, "fcp_fuzz_steer")
    text = str(given if given is not None else config.getini("fcp_fuzz_steer") or "on").strip().lower()
    if text not in STEER_WORDS:
        where = "--fcp-fuzz-steer" if given is not None else "ini fcp_fuzz_steer"
        raise _usage(f"{where} must be on or off (true / false), not {text!r}")
    return STEER_WORDS[text]


#: The words ``--fcp-fuzz-steer`` and ini ``fcp_fuzz_steer`` take.
STEER_WORDS = {"on": True, "true": True, "yes": True, "1": True, "off": False, "false": False, "no": False, "0": False}


def _fuzz_db(config: pytest.Config) -> str:
    """The database spec, checked now: "" (pytest's cache dir), an absolute directory, module:attr or none."""
    from pytest_fcp.fuzz.database import DatabaseSpecError, check_spec

    given, ini = _option(config, "fcp_fuzz_db"), str(config.getini("fcp_fuzz_db") or "").strip()
    if given is None and not ini:
        return ""
    try:
        if given is not None:
            return check_spec(given, config.invocation_params.dir)
        return check_spec(ini, config.rootpath)
    except DatabaseSpecError as exc:
        raise _usage(str(exc) if given is not None else f"ini fcp_fuzz_db: {exc}") from None


def _fuzz_shards(config: pytest.Config) -> tuple[int, int | None]:
    """How many shards per engine (given, ini, else the xdist workers) and the one to run, if given."""
    shards = _option(config, "fcp_fuzz_shards")
    if shards is None and str(config.getini("fcp_fuzz_shards") or "").strip():
        try:
            shards = int(config.getini("fcp_fuzz_shards"))
        except ValueError:
            raise _usage("ini fcp_fuzz_shards must be a whole number of at least 1") from None
    if shards is None:
        workerinput = getattr(config, "workerinput", None)  # an xdist worker: the controller's count
        workers = workerinput.get("workercount", 1) if workerinput else config.getoption("numprocesses", None)
        if not isinstance(workers, int):  # no xdist here (a nested run inherits only the environment)
            workers = 1
        shards = max(1, workers)
    if shards < 1:
        raise _usage(f"--fcp-fuzz-shards {shards}: must be a whole number of at least 1")
    only = _option(config, "fcp_fuzz_shard")
    if only is not None and not 1 <= only <= shards:
        raise _usage(f"--fcp-fuzz-shard {only}: must be between 1 and --fcp-fuzz-shards ({shards})")
    return shards, only
