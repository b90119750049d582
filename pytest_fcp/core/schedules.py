"""Schedules of engine instances running together: the strategies that pick who goes next (world/turns.py)."""

from __future__ import annotations

__all__ = ["DEFAULT_STRATEGY", "STRATEGIES"]

#: ``random``: a uniform random walk through interleavings; ``pct``: random priorities with change points.
STRATEGIES = ("random", "pct")
DEFAULT_STRATEGY = "random"
