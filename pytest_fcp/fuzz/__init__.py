"""Property-based fault schedules: Hypothesis strategies that build FCP scenarios, a TOML writer for the
shrunk counterexamples, and the search the ``--fcp-fuzz`` items run (``pytest_fcp.plugin.fuzz_items``; see
``docs/fuzz.md``)."""

from __future__ import annotations

__all__ = [
    "cache_states",
    "fault_schedules",
    "render_scenario",
    "requests",
    "save_scenario",
    "scenarios",
    "worlds",
]


def __getattr__(name: str) -> object:  # lazy: importing the package must not import Hypothesis
    if name in ("render_scenario", "save_scenario"):
        from pytest_fcp.fuzz import save

        return getattr(save, name)
    if name in ("cache_states", "fault_schedules", "requests", "scenarios", "worlds"):
        from pytest_fcp.fuzz import strategies

        return getattr(strategies, name)
    raise AttributeError(name)
