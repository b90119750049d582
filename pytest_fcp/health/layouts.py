"""The cache layouts a health scan recognises: the bundled engine adapters' own declarations."""

from __future__ import annotations

import pathlib

from pytest_fcp.core.markets import INTERVALS
from pytest_fcp.engines import CacheLayout
from pytest_fcp.engines.ckvd import CACHE_LAYOUT as CKVD_LAYOUT
from pytest_fcp.engines.ckvd import default_cache_dir
from pytest_fcp.engines.reference import CACHE_LAYOUT as REFERENCE_LAYOUT

__all__ = [
    "CACHE_LAYOUTS",
    "LAYOUTS",
    "default_cache_dir",
    "expected_series_dir",
    "guess_layouts",
    "layout",
    "series_of",
]

#: The recognised layouts by name, in the order a directory is matched against them.
CACHE_LAYOUTS: dict[str, CacheLayout] = {CKVD_LAYOUT.name: CKVD_LAYOUT, REFERENCE_LAYOUT.name: REFERENCE_LAYOUT}
LAYOUTS = tuple(CACHE_LAYOUTS)


def layout(name: str) -> CacheLayout:
    """The layout called ``name``."""
    return CACHE_LAYOUTS[name]


def series_of(directory: str) -> tuple[str, str, str, str] | None:
    """(layout, market, symbol, interval) if the ``/``-separated ``directory`` is a series directory."""
    for name, known in CACHE_LAYOUTS.items():
        ident = known.series_of(directory)
        if ident is not None and ident[2] in INTERVALS:
            return (name, *ident)
    return None


def guess_layouts(root: pathlib.Path) -> set[str]:
    """The layouts a tree without any series directory is most likely meant for."""
    return {
        name for name, known in CACHE_LAYOUTS.items() if known.app_subdir and (root / known.app_subdir).is_dir()
    } or {REFERENCE_LAYOUT.name}


def expected_series_dir(root: pathlib.Path, layout_name: str, market: str, symbol: str, interval: str) -> pathlib.Path:
    """Where a series' day files live under ``root`` in a layout (below an app root's cache dir if ``root`` is one)."""
    known = CACHE_LAYOUTS[layout_name]
    base = root
    if known.app_subdir and (root / known.app_subdir / known.app_subdir).is_dir():
        base = root / known.app_subdir  # the app root (one level up) holds the cache dir
    return known.series_path(base, market, symbol, interval)
