"""The simulated Binance world (truth, Vision, REST, network, cache sandbox, virtual clock).

``World`` and friends load on first use, so importing one part (``pytest_fcp.world.vision`` for key parsing,
say) does not import the network's respx and moto.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["FetchResult", "Observation", "World", "WorldError", "WorldSpec"]

if TYPE_CHECKING:
    from pytest_fcp.world.observation import Observation
    from pytest_fcp.world.spec import WorldError, WorldSpec
    from pytest_fcp.world.world import FetchResult, World

_HOME = {
    "FetchResult": "world",
    "World": "world",
    "Observation": "observation",
    "WorldError": "spec",
    "WorldSpec": "spec",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        import importlib

        return getattr(importlib.import_module(f"pytest_fcp.world.{_HOME[name]}"), name)
    raise AttributeError(f"module 'pytest_fcp.world' has no attribute {name!r}")
