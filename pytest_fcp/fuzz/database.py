"""Where the fuzzer keeps what it found: Hypothesis's example database, and the budget split into shards.

``--fcp-fuzz-db`` (ini ``fcp_fuzz_db``) names the database: a directory (a
:class:`~hypothesis.database.DirectoryBasedExampleDatabase`; several machines may share one), ``module:attr``
(an :class:`~hypothesis.database.ExampleDatabase` object, or a callable returning one: Redis, a
``MultiplexedDatabase`` of a local and a shared one, ...), or ``none``. By default it is the directory
``fcp-fuzz`` in pytest's cache (``.pytest_cache/d/fcp-fuzz``). A search replays the examples kept under
its engine's key before generating new ones, so a finding is found again first, on every machine that shares it.

The shards: ``--fcp-fuzz-shards N`` splits each engine's examples into N items, shard ``k`` running its share
with the Hypothesis seed :func:`shard_seed` derives from the run's seed and ``k``; pytest-xdist runs them in
parallel. Nothing here imports Hypothesis at module level.
"""

from __future__ import annotations

import hashlib
import pathlib
import re
from typing import Any

from pytest_fcp.core.objects import ObjectSpecError, resolve_object

__all__ = [
    "DEFAULT_DB_DIR",
    "DatabaseSpecError",
    "check_spec",
    "database_key",
    "is_disabled",
    "is_object_spec",
    "load_database",
    "shard_examples",
    "shard_seed",
]

#: The default database directory's name inside pytest's cache directory (``config.cache.mkdir``).
DEFAULT_DB_DIR = "fcp-fuzz"
_OBJECT_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_DISABLED = ("none", "off", "false", "0")


class DatabaseSpecError(ValueError):
    """A ``--fcp-fuzz-db`` value that names no usable database (the message says what is allowed)."""


def is_object_spec(spec: str) -> bool:
    """Whether ``spec`` reads as ``module:attr`` (a Python object) rather than a directory."""
    return bool(_OBJECT_SPEC.match(spec)) and not pathlib.Path(spec).exists()


def is_disabled(spec: str) -> bool:
    """Whether ``spec`` turns the database off (``none``)."""
    return spec.strip().lower() in _DISABLED


def check_spec(spec: str, base: pathlib.Path) -> str:
    """``spec`` checked at start-up: a directory made absolute against ``base``, ``module:attr`` loaded once.

    Raises :class:`DatabaseSpecError` (one line). Hypothesis is imported only for ``module:attr``."""
    spec = spec.strip()
    if not spec:
        raise DatabaseSpecError("--fcp-fuzz-db is empty: give a directory, module:attr or none")
    if is_disabled(spec):
        return "none"
    if is_object_spec(spec):
        load_database(spec)
        return spec
    path = pathlib.Path(spec).expanduser()
    path = path if path.is_absolute() else base / path
    if path.exists() and not path.is_dir():
        raise DatabaseSpecError(f"--fcp-fuzz-db {spec}: is a file; give a directory, module:attr or none")
    return str(path)


def load_database(spec: str, *, base: pathlib.Path | None = None) -> Any:
    """The :class:`~hypothesis.database.ExampleDatabase` ``spec`` names (``None`` for ``none``).

    A directory is taken relative to ``base`` (default: the working directory) and created when first written.
    Raises :class:`DatabaseSpecError` with one line saying what is wrong and what is allowed."""
    from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

    spec = spec.strip()
    if not spec:
        raise DatabaseSpecError("--fcp-fuzz-db is empty: give a directory, module:attr or none")
    if is_disabled(spec):
        return None
    if not is_object_spec(spec):
        path = pathlib.Path(spec).expanduser()
        path = path if path.is_absolute() or base is None else base / path
        if path.exists() and not path.is_dir():
            raise DatabaseSpecError(f"--fcp-fuzz-db {spec}: is a file; give a directory, module:attr or none")
        return DirectoryBasedExampleDatabase(path)
    try:
        obj: Any = resolve_object(spec)
    except ObjectSpecError as exc:
        raise DatabaseSpecError(f"--fcp-fuzz-db {spec}: {exc}") from None
    if not isinstance(obj, ExampleDatabase) and callable(obj):
        obj = obj()
    if not isinstance(obj, ExampleDatabase):
        raise DatabaseSpecError(
            f"--fcp-fuzz-db {spec}: is a {type(obj).__name__}, not a hypothesis ExampleDatabase "
            "(or a callable returning one)"
        )
    return obj


def database_key(engine: str) -> bytes:
    """The key an engine's findings are kept under: the same for every seed and shard, so all replay them."""
    return hashlib.sha256(f"pytest-fcp fuzz v1 {engine}".encode()).digest()


def shard_seed(seed: int, shard: int, shards: int) -> int:
    """The Hypothesis seed of shard ``shard`` (1-based) of ``shards``: the run's seed itself for one shard."""
    if shards <= 1:
        return seed
    digest = hashlib.sha256(f"pytest-fcp shard {seed} {shard}/{shards}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def shard_examples(examples: int, shard: int, shards: int) -> int:
    """How many of ``examples`` shard ``shard`` (1-based) of ``shards`` runs (the first ones take the rest)."""
    base, rest = divmod(examples, shards)
    return max(1, base + (1 if shard <= rest else 0))
