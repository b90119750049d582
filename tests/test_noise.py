"""Noise: the engine's warnings go to the trace (counted), not pytest's summary; ckvd's stderr logs stay plain."""

from __future__ import annotations

import re
import warnings

import pytest

from pytest_fcp.world import World
from pytest_fcp.world.spec import WorldSpec
from tests.conftest import utc

pytest_plugins = ["pytester"]


class WarningEngine:
    """Wraps the reference engine; warns (twice the same, once another, and from a thread) while fetching."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def fetch(self, *args: object) -> object:
        import threading

        for _ in range(2):
            warnings.warn("old API", DeprecationWarning, stacklevel=1)
        worker = threading.Thread(target=lambda: warnings.warn("from a worker", FutureWarning, stacklevel=1))
        worker.start()
        worker.join()
        return self.inner.fetch(*args)  # type: ignore[attr-defined]


def test_engine_warnings_become_deduplicated_trace_events(tmp_path) -> None:
    from pytest_fcp.engines.reference import create

    spec = WorldSpec(now=utc(2024, 1, 10, 12), seed=1)
    with World.from_spec(spec, tmp_path) as world, warnings.catch_warnings(record=True) as outside:
        warnings.simplefilter("always")
        world.attach(WarningEngine(create(world.cache_dir)))
        world.fetch(utc(2024, 1, 2), utc(2024, 1, 3))
    events = [e.data for e in world.trace.of_kind("warning")]
    by_message = {e["message"]: e for e in events}
    assert by_message["old API"]["count"] == 2 and by_message["old API"]["category"] == "DeprecationWarning"
    assert by_message["from a worker"]["category"] == "FutureWarning"
    assert by_message["old API"]["module"].endswith("test_noise")
    assert world.warning_count == 3
    assert not outside  # none reached the caller's (pytest's) warnings
    assert "warning" not in world.trace.path()


#: Every ckvd fetch also warns once more: whether ckvd itself warns depends on the versions installed (numpy 2.5
#: deprecates what ckvd does with timedeltas; numpy 2.1, the floor on Python 3.13, does not warn).
PLANTED_WARNING = """
import warnings

from pytest_fcp.engines.ckvd import CkvdEngine

real_fetch = CkvdEngine.fetch


def fetch(self, *args):
    warnings.warn("planted", DeprecationWarning, stacklevel=1)
    return real_fetch(self, *args)


CkvdEngine.fetch = fetch
"""


def test_conformance_counts_engine_warnings_and_pytest_shows_none(pytester: pytest.Pytester) -> None:
    pytest.importorskip("ckvd")
    from pytest_fcp.scenarios.loader import catalog_dir

    pytester.makepyfile(planted=PLANTED_WARNING)  # a plugin: the catalog's rootdir is not this directory
    args = ["-p", "xdist", "-p", "planted", "-n", "0", "--fcp-scenarios", "--fcp-engine=ckvd", "--fcp-seed=2"]
    result = pytester.runpytest(*args, str(catalog_dir() / "basics.toml"))
    out = result.stdout.str()
    counted = re.search(r"\(17 scenarios; (\d+) engine warnings, in the traces\)", out)
    assert counted and int(counted[1]) >= 17, out  # at least the planted one of every scenario
    assert "warnings summary" not in out and "planted" not in out, out


def test_ckvd_logs_to_a_non_terminal_without_colours(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    pytest.importorskip("ckvd")
    from loguru import logger

    from pytest_fcp.engines.ckvd import create

    monkeypatch.delenv("CKVD_DISABLE_COLORS", raising=False)
    engine = create(tmp_path)
    engine.manager("spot")  # a ckvd instance sets up its stderr sink
    handlers = list(logger._core.handlers.values())  # loguru has no public lookup
    assert handlers and not any(getattr(h, "_colorize", False) for h in handlers)
