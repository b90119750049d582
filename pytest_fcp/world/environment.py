"""What the world sets around the engine: a sandboxed environment (no real cache, home or AWS identity), and
the engine's warnings and log sink routed into the recorder."""

from __future__ import annotations

import contextlib
import os
import pathlib
import warnings
from collections.abc import Iterator
from typing import Any

from pytest_fcp.world.cache import CacheSandbox
from pytest_fcp.world.recorder import Recorder

__all__ = ["recorded_warnings", "sandboxed_environment", "takes_level"]


@contextlib.contextmanager
def sandboxed_environment(sandbox: CacheSandbox) -> Iterator[None]:
    """Point the engine's cache, home directories and AWS identity into ``sandbox``; restore them after."""
    home = sandbox.home
    values = {
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "CKVD_CACHE_DIR": str(sandbox.root),
        "AWS_DEFAULT_REGION": "ap-northeast-1",
        # never the user's AWS identity: fake keys, no config or credentials files
        "AWS_ACCESS_KEY_ID": "FCPSIMULATEDKEY",
        "AWS_SECRET_ACCESS_KEY": "FCPSIMULATEDSECRET",
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "AWS_CONFIG_FILE": str(home / "aws-config"),
    }
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def recorded_warnings(recorder: Recorder) -> Iterator[list[int]]:
    """Record the warnings raised inside (the engine's threads' too) as ``warning`` events, one per distinct
    warning with a count, instead of pytest's warnings summary; yields a one-item list that ends up holding
    how many were raised. ``catch_warnings`` is process-wide: fine while one world runs at a time."""
    counted = [0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield counted
        finally:
            counts: dict[tuple[str, str, str], int] = {}
            for w in caught:
                key = (w.category.__name__, str(w.message)[:300], _module_of(w.filename))
                counts[key] = counts.get(key, 0) + 1
            for (category, message, module), count in counts.items():
                recorder.event("warning", category=category, message=message, module=module, count=count)
            counted[0] = sum(counts.values())


def _module_of(filename: str) -> str:
    """The dotted module a warning came from, read from its file's path (``ckvd/core/x.py`` -> ``ckvd.core.x``)."""
    parts = pathlib.PurePath(filename).with_suffix("").parts
    for anchor in ("site-packages", "dist-packages", "lib"):
        if anchor in parts:
            parts = parts[len(parts) - parts[::-1].index(anchor) :]
            break
    else:
        parts = parts[-2:]
    return ".".join(p for p in parts if p != "__init__")


def takes_level(function: Any) -> bool:
    """Whether an engine's ``set_log_sink`` accepts ``level=`` (the older form takes only the callback)."""
    import inspect

    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "level" or p.kind is p.VAR_KEYWORD for p in parameters)
