"""Cache health: scan an FCP engine's kline cache and say what is wrong with it, file by file.

The layouts come from the engine adapters (:data:`pytest_fcp.engines.ckvd.CACHE_LAYOUT`,
:data:`pytest_fcp.engines.reference.CACHE_LAYOUT`); the issue names from
:data:`pytest_fcp.core.cache_states.HEALTH_ISSUES`. See ``docs/cli.md`` for the layouts, the issues and speed.
"""

from __future__ import annotations

from pytest_fcp.health.files import NEEDED_COLUMNS, FileReport, check_day_file
from pytest_fcp.health.layouts import CACHE_LAYOUTS, LAYOUTS, default_cache_dir, expected_series_dir
from pytest_fcp.health.report import ISSUES, PROBLEM_ISSUES, HealthReport, SeriesReport, human_bytes
from pytest_fcp.health.scan import POOL_THRESHOLD, STALE_JUMP, ProgressHook, scan_cache

__all__ = [
    "CACHE_LAYOUTS",
    "ISSUES",
    "LAYOUTS",
    "NEEDED_COLUMNS",
    "POOL_THRESHOLD",
    "PROBLEM_ISSUES",
    "STALE_JUMP",
    "FileReport",
    "HealthReport",
    "ProgressHook",
    "SeriesReport",
    "check_day_file",
    "default_cache_dir",
    "expected_series_dir",
    "human_bytes",
    "scan_cache",
]
