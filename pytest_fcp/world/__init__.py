"""The simulated Binance world (truth, Vision, REST, network, cache sandbox, virtual clock)."""

from pytest_fcp.world.world import FetchResult, World, WorldError

__all__ = ["FetchResult", "World", "WorldError"]
