"""Log levels of an engine's own records kept in traces (loguru's names, lowest first)."""

from __future__ import annotations

__all__ = ["DEFAULT_LOG_LEVEL", "LOG_LEVELS"]

LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
DEFAULT_LOG_LEVEL = "INFO"
