"""What one scenario may ask for at most, defined once: the scenario validator enforces it, the coverage map
names the cells no scenario can reach within it."""

from __future__ import annotations

__all__ = ["SCENARIO_LIMITS"]

#: Bars over all requests, days of one request, requests, faults and cached days of one scenario.
SCENARIO_LIMITS = {"bars": 100_000, "request_days": 400, "requests": 20, "faults": 50, "cached": 400}
