"""The endless-retry budget of one fetch: requests sent and virtual seconds slept.

An engine that retries forever on the virtual clock never hangs in real time; it sends requests and sleeps
without end. Past the budget the world raises :class:`EndlessRetry` (a ``BaseException``, so ``except
Exception`` in the engine cannot swallow it) into the engine at its next request or sleep, and keeps raising
it until the fetch returns. The plugin sets the run's budget from ``--fcp-max-requests`` / ``--fcp-max-sleep``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_fcp.core.limits import FETCH_BUDGET_DAYS, MAX_FETCH_REQUESTS, MAX_FETCH_SLEEP_S

__all__ = ["EndlessRetry", "FetchBudget", "Spent", "fetch_budget", "set_fetch_budget"]


class EndlessRetry(BaseException):
    """The engine went past the fetch's budget of requests or virtual sleep."""


@dataclass(frozen=True)
class FetchBudget:
    """How many requests one fetch may send and how many virtual seconds it may sleep."""

    requests: int = MAX_FETCH_REQUESTS
    sleep_s: float = MAX_FETCH_SLEEP_S

    def requests_for(self, days: int) -> int:
        """The requests a fetch asking about ``days`` UTC days may send: ``requests`` for each 100 days, begun."""
        return self.requests * max(1, -(-days // FETCH_BUDGET_DAYS))


_budget = [FetchBudget()]


def fetch_budget() -> FetchBudget:
    """The budget new worlds get (the run's, once the plugin set it)."""
    return _budget[0]


def set_fetch_budget(budget: FetchBudget) -> None:
    """Give every world started from now on ``budget``."""
    _budget[0] = budget


class Spent:
    """What one fetch spent of its budget; once past it, the same :class:`EndlessRetry` at every request and sleep."""

    def __init__(self, budget: FetchBudget, fetch: int, days: int = 0) -> None:
        self.budget, self.fetch = budget, fetch
        self.limit = budget.requests_for(days)  # ``days``: the UTC days the fetch (or fetches together) ask about
        self.slept = 0.0
        self.over: EndlessRetry | None = None

    def check(self, sent: int, last: str | None, *, sleeping: float | None = None) -> None:
        """Before a request (``sent`` so far; ``last`` the previous one) or at a sleep of ``sleeping`` seconds;
        fetch 0 (outside any fetch: the world's own sleeps, a test's between fetches) has no budget."""
        if self.fetch == 0:
            return
        if self.over is None:
            self.slept += sleeping or 0.0
            if sleeping is None and sent >= self.limit:
                what = f"more than {self.limit} requests"
            elif self.slept > self.budget.sleep_s:
                what = f"more than {self.budget.sleep_s:g} s of virtual sleep"
            else:
                return
            where = f", last: {last}" if last else ""
            self.over = EndlessRetry(f"endless retry: {what} in fetch {self.fetch}{where}")
        raise self.over
