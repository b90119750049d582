"""A cache carried across runs: saving the cache directory a run left, and starting a world from a saved one.

``--fcp-save-cache DIR`` copies each test's cache sandbox, as the test left it, to
``DIR/<engine>/<theme>/<name>/`` with a small :data:`MANIFEST` saying who wrote it; a scenario's ``cache_from``
(or ``--fcp-cache-from DIR``, looked up with :func:`find_saved`) names such a directory, and the world copies it
into the fresh sandbox before the engine is created (:func:`carry_in`). The cache watch then judges each day
file found there against the truth like any cached day, remembering that it was carried in: a file another run
wrote, perhaps another engine or release, which the engine may read or fetch anew (``DayFileState.carried``).

Only the cache sandbox is saved and carried, never the engine's home or temporary directory. The layout is
deterministic: one directory per engine, theme and test, each written by the process that ran the test (under
pytest-xdist every worker writes only its own tests' directories), replaced whole.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
from collections.abc import Mapping
from typing import Any, Protocol

__all__ = [
    "ANY_ENGINE",
    "MANIFEST",
    "carry_in",
    "copy_tree",
    "find_saved",
    "part",
    "save_cache",
    "saved_dir",
    "saved_seed",
]

#: The file beside a saved cache's day files that says which engine, release, test, seed and now wrote it.
MANIFEST = "fcp-cache.json"
#: The engine directory of a saved cache meant for any engine (a fixture cache).
ANY_ENGINE = "any"
_UNSAFE = re.compile(r"[^A-Za-z0-9._\-\[\]=+,@]")


class CarriedFiles(Protocol):
    """Where carried files are remembered (the world's cache watch)."""

    def carry(self, rels: list[str]) -> None:
        """The files at these paths (relative to the sandbox) were just carried in."""
        ...


def part(name: str) -> str:
    """``name`` as one directory name: every character outside letters, digits and ``._-[]=+,@`` becomes ``_``
    (``tests.engines.versions:create_v1`` -> ``tests.engines.versions_create_v1``)."""
    cleaned = _UNSAFE.sub("_", name)[:150]
    return cleaned if cleaned.strip(".") else "_" + cleaned


def saved_dir(root: pathlib.Path, engine: str, theme: str, name: str) -> pathlib.Path:
    """Where ``--fcp-save-cache root`` puts the cache of test ``theme/name`` on ``engine``."""
    return root / part(engine) / part(theme) / part(name)


def find_saved(root: pathlib.Path, engine: str, theme: str, name: str) -> pathlib.Path | None:
    """The saved cache ``--fcp-cache-from root`` starts test ``theme/name`` on ``engine`` from: the first
    directory that exists of ``root/<engine>/<theme>/<name>`` (the same engine's, e.g. its previous release),
    ``root/any/<theme>/<name>`` (meant for any engine) and ``root/<theme>/<name>`` (``root`` is one engine's
    directory, e.g. ``saved/ckvd`` to judge another engine on ckvd's cache); ``None`` when none does."""
    for candidate in (
        saved_dir(root, engine, theme, name),
        saved_dir(root, ANY_ENGINE, theme, name),
        root / part(theme) / part(name),
    ):
        if candidate.is_dir():
            return candidate
    return None


def saved_seed(source: pathlib.Path | None) -> int | None:
    """The seed a saved cache was written with (its manifest's ``seed``), if it says: a world carrying it in
    serves the same synthetic market, or every carried day would differ from the truth. ``None`` when there is
    no manifest or it names no seed (a fixture cache of the golden truth needs none)."""
    if source is None:
        return None
    try:
        seed = json.loads((source / MANIFEST).read_text(encoding="utf-8")).get("seed")
    except (OSError, ValueError, AttributeError):
        return None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def copy_tree(source: pathlib.Path, target: pathlib.Path, *, skip: frozenset[str] = frozenset()) -> list[str]:
    """Copy the regular files under ``source`` into ``target`` with the directories they are in (contents only:
    fresh modes and times; links followed nowhere; empty directories, such as one a cache fault stood in for a day
    file, and other kinds of file left out); ``skip``: names left out at the top. Returns the copied files' paths
    relative to ``target``, ``/``-separated, sorted."""
    copied: list[str] = []
    for dirpath, dirs, names in os.walk(source):
        here = pathlib.Path(dirpath)
        rel = here.relative_to(source)
        dirs[:] = sorted(d for d in dirs if not (here / d).is_symlink())
        for name in sorted(names):
            origin = here / name
            if (rel == pathlib.Path() and name in skip) or origin.is_symlink() or not origin.is_file():
                continue
            (target / rel).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(origin, target / rel / name)
            copied.append((rel / name).as_posix())
    return sorted(copied)


def carry_in(source: pathlib.Path | None, root: pathlib.Path, watch: CarriedFiles) -> list[str]:
    """Copy the saved cache ``source`` (``None``: nothing) into the sandbox ``root``, without its manifest, and
    tell ``watch`` which files came in; returns their paths relative to ``root``."""
    if source is None:
        return []
    copied = copy_tree(source, root, skip=frozenset({MANIFEST}))
    watch.carry(copied)
    return copied


def save_cache(root: pathlib.Path, target: pathlib.Path, manifest: Mapping[str, Any]) -> pathlib.Path:
    """Copy the cache directory ``root`` to ``target`` (replacing what was there) with ``manifest`` as
    :data:`MANIFEST`; ``OSError`` when that cannot be done."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
        copy_tree(root, staging)
        (staging / MANIFEST).write_text(json.dumps(dict(manifest), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
