"""Schedules: which of several engine instances running together goes next, decided from a seed.

While instances run together (:func:`~pytest_fcp.world.fetching.fetch_together`), one instance holds the turn.
Every request an engine sends and every sleep it takes is a *yield point*: the thread stops there, the
schedule picks which waiting instance goes on (the same one, or another), and only that instance's threads
pass. An instance that is single-threaded therefore runs in a fixed interleaving with the others, given the
seed: the same schedule number, the same order of requests and cache writes, the same verdicts. Threads an
instance starts itself (a pool) share their instance's turn and are stopped at their own yield points.

Strategies (``--fcp-schedule-strategy``):

* ``random``: at each yield point, any waiting instance, uniformly (a random walk through interleavings);
* ``pct``: each instance gets a random priority, the highest waiting one goes; at ``depth`` random yield
  points the running one drops to the lowest priority (PCT, Burckhardt et al. 2010: bugs of depth d are hit
  with probability at least 1/(n k^(d-1)) per schedule).

When the turn holder makes no progress for ``stall`` real seconds (it waits on something of another instance
that is not a yield point: a lock, a file), the turn passes on anyway and the schedule says it was forced: it
may then differ between runs (``forced`` counts those moments).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable

from pytest_fcp.core.schedules import STRATEGIES

__all__ = ["STRATEGIES", "Turns"]


class Turns:
    """The turn among ``players`` (instance numbers), chosen by ``strategy`` from ``seed``."""

    def __init__(self, players: Iterable[int], seed: int, strategy: str = "random", *, stall: float = 5.0) -> None:
        self.players = sorted(set(players))
        self.rng = random.Random(seed)
        self.strategy = strategy
        self.stall = stall
        self.order: list[int] = []  # who got the turn, decision by decision (the schedule as it ran)
        self.forced = 0
        self._cond = threading.Condition()
        self._waiting: dict[int, int] = dict.fromkeys(self.players, 0)
        self._done: set[int] = set()
        self._holder: int | None = None
        self._moves = 0
        self._priority = {p: self.rng.random() for p in self.players}
        self._change_points = {self.rng.randrange(1, 40) for _ in range(2)} if strategy == "pct" else set()

    def _pick(self, candidates: list[int]) -> int:
        if self.strategy == "pct":
            return max(candidates, key=lambda p: self._priority[p])
        return self.rng.choice(candidates)

    def _decide(self) -> None:
        """Give the turn to one of the waiting instances (called with the lock held)."""
        candidates = [p for p in self.players if self._waiting[p] and p not in self._done]
        if not candidates:
            self._holder = None
            return
        self._moves += 1
        if self._holder is not None and self._moves in self._change_points:
            self._priority[self._holder] = -self._moves  # PCT: the running one drops to the lowest priority
        self._holder = self._pick(candidates)
        self.order.append(self._holder)
        self._cond.notify_all()

    def start(self, player: int) -> None:
        """``player``'s thread begins: it waits for its first turn (the first decision when all have arrived)."""
        with self._cond:
            self._waiting[player] += 1
            if self._holder is None and all(self._waiting[p] for p in self.players if p not in self._done):
                self._decide()
            self._wait(player)

    def yield_point(self, player: int) -> None:
        """A thread of ``player`` reached a request or a sleep: the schedule decides who goes on."""
        with self._cond:
            self._waiting[player] += 1
            if self._holder in (player, None):
                self._decide()
            self._wait(player)

    def finish(self, player: int) -> None:
        """``player`` has no more requests: the turn passes on."""
        with self._cond:
            self._done.add(player)
            if self._holder in (player, None):
                self._decide()

    def _wait(self, player: int) -> None:
        try:
            while self._holder != player:
                moves = self._moves
                if not self._cond.wait(self.stall) and self._moves == moves and self._holder != player:
                    self.forced += 1  # the holder is stuck outside a yield point: pass the turn on
                    self._holder = None
                    self._decide()
        finally:
            self._waiting[player] -= 1
