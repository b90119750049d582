"""Causes, not symptoms: which injected fault a wrong day's data came from, and the stale values a cache
fault left (a valid-looking file an engine cannot tell from the truth)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from pytest_fcp.world.observation import Observation

__all__ = ["content_cause", "stale_values"]

#: What a Vision payload fault did to the day's data, by effect kind (swap: by what it swapped).
_PAYLOAD = {
    "alter_values": "a Vision zip that failed its checksum",
    "truncate": "a truncated Vision zip",
    "html_page": "a Vision payload that is not a zip",
    ("other_file", "symbol"): "another symbol's Vision file",
    ("other_file", "interval"): "another interval's Vision file",
}


def content_cause(obs: Observation, day: dt.date) -> str | None:
    """What spoiled payload the world served for ``day`` (e.g. ``a Vision zip that failed its checksum
    (vision.checksum_mismatch)``), or ``None`` when no payload fault answered a request for it."""
    from pytest_fcp.faults import FAULTS

    for firing in obs.firings:
        if firing.day != day or firing.source != "vision":
            continue
        effect = FAULTS[firing.id].effect
        text = _PAYLOAD.get((effect.kind, effect.swap)) or _PAYLOAD.get(effect.kind)
        if isinstance(text, str):
            return f"{text} ({firing.id})"
    return None


def stale_values(truth_day: pa.Table) -> pa.Table:
    """The values ``cache.stale_day`` leaves in a day's file, as ``write_cache`` takes them."""
    from pytest_fcp.world.cache import truth_to_cache_table
    from pytest_fcp.world.cache_faults import stale_table

    return stale_table(truth_to_cache_table(truth_day))
