"""The simulated Binance world (truth, Vision, REST, network, cache sandbox, virtual clock).

``World`` and friends load on first use, so importing one part (``pytest_fcp.world.vision`` for key parsing,
say) does not import the network's respx and moto.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["FetchResult", "World", "WorldError"]

if TYPE_CHECKING:
    from pytest_fcp.world.world import FetchResult, World, WorldError


def __getattr__(name: str) -> Any:
    if name in __all__:
        from pytest_fcp.world import world

        return getattr(world, name)
    raise AttributeError(f"module 'pytest_fcp.world' has no attribute {name!r}")
