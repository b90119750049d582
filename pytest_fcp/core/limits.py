"""Bounds defined once: what one scenario may ask for at most (the scenario validator enforces it, the coverage
map names the cells no scenario can reach within it), and bounds on one fetch and on one isolated test (the
endless-retry budget and the hang and time caps).

The budget sits far above what an honest engine needs on the catalog (measured: at most 64 requests and 6.8
virtual seconds of sleep in one fetch of up to a few months, on the reference engine and ckvd 4.6.1; a fetch of
1,501 days asks Vision once a day); past it an engine is in an endless retry loop on the virtual clock.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_HANG_SECONDS",
    "DEFAULT_ITEM_SECONDS",
    "FETCH_BUDGET_DAYS",
    "MAX_FETCH_REQUESTS",
    "MAX_FETCH_SLEEP_S",
    "SCENARIO_LIMITS",
]

#: Bars over all requests, days of one request, requests, faults and cached days of one scenario: enough for a
#: month of 1s bars (2,592,000) and for more daily bars than the longest REST page holds (1,501 days).
SCENARIO_LIMITS = {"bars": 3_000_000, "request_days": 1_600, "requests": 20, "faults": 50, "cached": 400}
#: Requests one fetch may send before the world calls it an endless retry loop ...
MAX_FETCH_REQUESTS = 2000
#: ... for each this many UTC days it asks about, begun: a fetch of 1,501 days may send 16 times the budget.
FETCH_BUDGET_DAYS = 100
#: Virtual seconds one fetch may sleep (an hour) before the world calls it an endless retry loop.
MAX_FETCH_SLEEP_S = 3_600.0
#: Real seconds without progress (no trace event, almost no CPU) after which an isolated engine has hung.
DEFAULT_HANG_SECONDS = 5.0
#: Real seconds one isolated test may take at most (an engine spinning on the CPU).
DEFAULT_ITEM_SECONDS = 600.0
