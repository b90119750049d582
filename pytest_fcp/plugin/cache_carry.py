"""``--fcp-save-cache`` and ``--fcp-cache-from`` for scenario items and marker tests (the copying itself is
:mod:`pytest_fcp.world.cache_seed`).

A test's key is ``(engine, theme, name)``: a scenario's theme and name; for a test using ``fcp_world``, its
module's path below the rootdir, dotted (``tests.test_upgrade``), and its name without the engine parameter, so
that the same test on another engine or release finds the same directory. A scenario started from a carried
cache by ``--fcp-cache-from`` is judged by the contract against its engine's baseline failures only (its
decisions differ from a cold start by design): a failure the baseline does not list fails it. Baselines recorded
from carried caches (``--fcp-cache-from`` with ``--fcp-baseline-dir`` and ``--fcp-update-baselines``) are
compared in full, as any baseline.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib
from typing import TYPE_CHECKING, Any

import pytest

from pytest_fcp.plugin.settings import ENGINE_NAME_KEY, RunSettings, settings

if TYPE_CHECKING:
    from pytest_fcp.baseline import Record
    from pytest_fcp.contract import Verdict
    from pytest_fcp.scenarios.model import Scenario
    from pytest_fcp.world import World

__all__ = [
    "carried_failures",
    "carried_scenario",
    "manifest",
    "marker_cache_from",
    "marker_key",
    "save",
    "scenario_cache_from",
    "warm_baseline",
]


def scenario_cache_from(config: pytest.Config, engine: str, theme: str, name: str) -> pathlib.Path | None:
    """The saved cache ``--fcp-cache-from`` starts scenario ``theme/name`` on ``engine`` from, if any."""
    from pytest_fcp.world.cache_seed import find_saved

    root = settings(config).cache_from
    return find_saved(root, engine, theme, name) if root is not None else None


def carried_scenario(scenario: Scenario, carried: pathlib.Path) -> Scenario:
    """``scenario`` started from the saved cache ``carried``: its own ``expect`` (sources, requests, outcome,
    cache states), written for its own starting cache, gives way to the contract's checks; ``skip_checks`` stay."""
    from pytest_fcp.scenarios.model import Expect

    return dataclasses.replace(scenario, cache_from=carried, expect=Expect(skip_checks=scenario.expect.skip_checks))


def marker_key(item: pytest.Item) -> tuple[str, str, str]:
    """``(engine, theme, name)`` of a test using ``fcp_world`` (engine ``any`` when it names none)."""
    from pytest_fcp.world.cache_seed import ANY_ENGINE

    callspec = getattr(item, "callspec", None)
    params = getattr(callspec, "params", {}) if callspec is not None else {}
    engine = str(params.get("fcp_engine_name") or item.stash.get(ENGINE_NAME_KEY, "") or ANY_ENGINE)
    path = pathlib.Path(str(getattr(item, "path", item.nodeid.split("::")[0])))
    if path.is_relative_to(item.config.rootpath):
        path = path.relative_to(item.config.rootpath)
    theme = ".".join(p for p in path.with_suffix("").parts if p != path.anchor) or "tests"
    ids = getattr(callspec, "id", "") if callspec is not None else ""
    if "fcp_engine_name" in params:
        ids = _without(ids, engine)
    base = getattr(item, "originalname", None) or item.name.partition("[")[0]
    return engine, theme, f"{base}[{ids}]" if ids else base


def _without(ids: str, engine: str) -> str:
    """A parametrised test's id without the engine's part (``reference-3`` -> ``3``)."""
    if ids == engine:
        return ""
    for form, cut in ((f"{engine}-", "start"), (f"-{engine}", "end")):
        if cut == "start" and ids.startswith(form):
            return ids[len(form) :]
        if cut == "end" and ids.endswith(form):
            return ids[: -len(form)]
    return ids.replace(f"-{engine}-", "-", 1)


def marker_cache_from(item: pytest.Item, options: dict[str, Any]) -> dict[str, Any]:
    """The marker's options with ``cache_from`` made absolute (relative to the test file's directory) and, under
    ``--fcp-cache-from``, replaced by the test's saved cache when there is one."""
    from pytest_fcp.world.cache_seed import find_saved

    given = options.get("cache_from")
    if isinstance(given, str | pathlib.Path) and str(given):
        path = pathlib.Path(given).expanduser()
        options = {**options, "cache_from": pathlib.Path(str(getattr(item, "path", "."))).parent / path}
    root = settings(item.config).cache_from
    found = find_saved(root, *marker_key(item)) if root is not None else None
    return {**options, "cache_from": found} if found is not None else options


def manifest(engine: str, test: str, world: World) -> dict[str, Any]:
    """What ``fcp-cache.json`` says: which engine and release wrote the cache, in which test, seed and now."""
    from pytest_fcp.engines import engine_release

    distribution, version = engine_release(world.engine)
    last = world.results[-1].now if world.results else world.spec.now
    return {
        "engine": engine,
        "distribution": distribution,
        "version": version,
        "test": test,
        "seed": world.spec.seed,
        "now": _iso(world.spec.now),
        "last_fetch_now": _iso(last),
        "started_from": str(world.spec.cache_from) if world.spec.cache_from else None,
        "format": 1,
    }


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def save(config: pytest.Config, key: tuple[str, str, str], world: World) -> pathlib.Path | None:
    """Under ``--fcp-save-cache``: copy ``world``'s cache (stopped) to the test's directory; a failure to do so
    fails the test with one line."""
    from pytest_fcp.world.cache_seed import save_cache, saved_dir

    root = settings(config).save_cache
    if root is None or world.engine is None:
        return None
    engine, theme, name = key
    target = saved_dir(root, engine, theme, name)
    try:
        return save_cache(world.cache_dir, target, manifest(engine, f"{theme}/{name}", world))
    except OSError as exc:
        pytest.fail(f"pytest-fcp: cannot save the cache to {target}: {exc.strerror or exc}", pytrace=False)


def warm_baseline(run: RunSettings, source: pathlib.Path | None) -> bool:
    """Whether a scenario's baseline entry was recorded from a carried cache: under ``--fcp-cache-from`` with
    ``--fcp-baseline-dir``, an entry from that directory (``--fcp-update-baselines`` wrote it from such a run)."""
    return run.carried_baselines and source is not None and source.parent == run.baseline_dir


def carried_failures(expected: Record | None, verdicts: list[Verdict], cache_root: str) -> list[str]:
    """The verdicts of a run from a carried cache whose failure keys the engine's baseline entry does not list."""
    from pytest_fcp.scenarios.decisions import failure_key

    known = set(expected.failures) if expected is not None else set()
    return [str(v) for v in verdicts if failure_key(v, cache_root) not in known]
