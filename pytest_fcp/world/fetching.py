"""One fetch as the world sees it, in two halves: :func:`begin` (what the cache and Vision held, the ``request``
event) and :func:`finish` (the ``outcome`` event, the cache afterwards, the :class:`Observation`). ``World.fetch``
runs one engine call between them; :func:`fetch_together` runs several engine instances' calls at once, one
thread each, on the one shared cache, each fetch with its own requests, faults and events (:data:`FETCH`)."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pytest_fcp.core.cache_states import PATH_WORDS, DayFileState
from pytest_fcp.core.sources import error_kind
from pytest_fcp.world.budget import Spent
from pytest_fcp.world.observation import FetchRequest, Observation, rows_per_source, tally
from pytest_fcp.world.recorder import FETCH

if TYPE_CHECKING:
    from pytest_fcp.world.turns import Turns
    from pytest_fcp.world.world import World

__all__ = ["Pending", "as_fetch", "begin", "call_engine", "fetch_together", "finish"]


@dataclass
class Pending:
    """A fetch begun: its request and what the world held when it began; then the engine's answer."""

    request: FetchRequest
    now: dt.datetime
    before: dict[dt.date, DayFileState]
    outside: dict[dt.date, DayFileState]
    published: frozenset[dt.date]
    instance: int = 0
    table: pa.Table | None = None
    error: BaseException | None = None
    engine_seconds: float = 0.0
    neighbours: tuple[dt.date, ...] = field(default=())
    together: int = 1  # how many fetches ran at once with this one (1: alone)
    number: int = 1  # which fetch of its world this is (1 for the first)

    @property
    def series(self) -> tuple[str, str, str]:
        """``(symbol, market, interval)``."""
        return self.request.symbol, self.request.market, self.request.interval


@contextlib.contextmanager
def as_fetch(fetch: int | None) -> Iterator[None]:
    """What is recorded inside (in this thread and the threads it starts) is ``fetch``'s."""
    token = FETCH.set(fetch)
    try:
        yield
    finally:
        FETCH.reset(token)


def begin(world: World, request: FetchRequest, instance: int = 0, number: int | None = None) -> Pending:
    """Record the ``request`` event and what the cache and Vision held for its days (``number``: which fetch of
    the world it is; by default the one after those it has observed)."""
    number = len(world.results) + 1 if number is None else number
    series = (request.symbol, request.market, request.interval)
    now, days = world.now, request.days
    before = {d: world.watch.state(series, d) for d in days}
    around = (days[0] - dt.timedelta(days=1), days[-1] + dt.timedelta(days=1)) if days else ()
    outside = {d: world.watch.state(series, d) for d in around if d not in before}
    published = frozenset(d for d in days if world.vision.has_day(series[1], series[0], series[2], d, now))
    world.recorder.event(
        "request",
        symbol=request.symbol,
        market=request.market,
        interval=request.interval,
        start=request.start.isoformat(),
        end=request.end.isoformat(),
        cache_days={d.isoformat(): PATH_WORDS[s.status] for d, s in before.items()},
        **({"engine": instance + 1} if world.instance_count > 1 else {}),
    )
    return Pending(request, now, before, outside, published, instance, neighbours=tuple(around), number=number)


def call_engine(world: World, pending: Pending) -> None:
    """Ask the pending fetch's engine instance; its table or exception lands in ``pending``."""
    request = pending.request
    began = time.perf_counter()
    try:
        pending.table = world.instances[pending.instance].fetch(
            request.symbol, request.market, request.interval, request.start, request.end
        )
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a pyo3 PanicException, SystemExit ... too: a verdict, never a traceback
        pending.error = exc
    pending.engine_seconds = time.perf_counter() - began


def budget_word(world: World, pendings: Sequence[Pending]) -> None:
    """Past the budget, the fetches' outcome is the world's ``EndlessRetry``, even when the engine swallowed it
    and returned (world/budget.py); the budget is then reset for what runs between fetches."""
    over = world.spent.over
    if over is not None:
        for pending in pendings:
            pending.table, pending.error = None, over
    world.spent = Spent(world.spent.budget, 0)


def finish(
    world: World,
    pending: Pending,
    recorded: tuple[Any, Any, Any],
    after: dict[dt.date, DayFileState] | None = None,
) -> Observation:
    """The ``outcome`` event and the observation (``recorded``: the fetch's events, requests and fault firings,
    without the outcome event, which is added here)."""
    table, error = pending.table, pending.error
    times, by_day = tally(table)
    if error is not None:
        outcome = world.recorder.event(
            "outcome", error=type(error).__name__, error_kind=error_kind(error), message=world.local(str(error))[:500]
        )
    else:
        assert table is not None
        outcome = world.recorder.event(
            "outcome",
            rows=table.num_rows,
            rows_by_source=rows_per_source(by_day),
            rows_by_day={(d.isoformat() if d else "null"): per for d, per in sorted(by_day.items(), key=str)},
        )
    events, requests, firings = recorded
    series = pending.series
    after = after if after is not None else {d: world.watch.state(series, d) for d in pending.request.days}
    return Observation(
        request=pending.request,
        now=pending.now,
        table=table,
        error=error,
        events=(*events, outcome),
        requests=requests,
        firings=firings,
        violations=tuple(world.recorder.violations),
        cache_before=pending.before,
        cache_after={d: after[d] for d in pending.request.days},
        expected=world.expected(pending.request.start, pending.request.end, *series),
        published=pending.published,
        row_times=times,
        rows_per_day=by_day,
        cache_outside={d: (state, world.watch.state(series, d)) for d, state in pending.outside.items()},
        engine_seconds=pending.engine_seconds,
        together=pending.together,
        error_text=world.local(str(error)) if error is not None else "",
        fetch_number=pending.number,
    )


def fetch_together(
    world: World, calls: Sequence[tuple[int, Sequence[FetchRequest]]], turns: Turns | None = None
) -> list[list[Observation]]:
    """Run each engine instance's requests in its own thread, all at once, on the one shared cache; returns each
    instance's observations in its order. Each fetch is judged with its own requests and faults; the cache's
    state before is the state when they all began, afterwards when they all ended (the cache is shared).
    ``turns``: the schedule deciding which instance goes on at each request and sleep (``None``: the threads
    run as the operating system schedules them)."""
    mark = world.recorder.mark()
    begun: list[list[Pending]] = []
    ids: dict[int, int] = {}
    for instance, requests in calls:
        row = []
        for request in requests:
            fetch = len(ids)
            with as_fetch(fetch):
                pending = begin(world, request, instance, len(world.results) + 1 + fetch)
            ids[id(pending)] = fetch
            row.append(pending)
        begun.append(row)
    everyone = [p for row in begun for p in row]
    for pending in everyone:
        pending.together = len(everyone)
    world.block_for(everyone)
    start = threading.Barrier(len(begun))
    world.players = {ids[id(p)]: p.instance for p in everyone} if turns is not None else {}
    world.turns = turns

    def run(row: list[Pending]) -> None:
        start.wait()
        player = row[0].instance
        try:
            if turns is not None:
                turns.start(player)
            for pending in row:
                with as_fetch(ids[id(pending)]):
                    call_engine(world, pending)
        finally:
            if turns is not None:
                turns.finish(player)

    days = sum(len(p.request.days) for p in everyone)
    world.spent = Spent(world.spent.budget, everyone[0].number, days)  # one budget for the fetches running together
    with world.engine_warnings():
        threads = [threading.Thread(target=run, args=(row,), name=f"fcp-engine-{i + 1}") for i, row in enumerate(begun)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    budget_word(world, everyone)
    world.turns, world.players = None, {}
    if turns is not None:
        world.recorder.event("schedule", order=turns.order[:200], forced=turns.forced or None)
    world.end_fetch()
    after: dict[tuple[str, str, str], dict[dt.date, DayFileState]] = {}
    out: list[list[Observation]] = []
    for row in begun:
        observed = []
        for pending in row:
            seen = after.setdefault(pending.series, {})
            for day in pending.request.days:
                if day not in seen:
                    seen[day] = world.watch.state(pending.series, day)
            with as_fetch(ids[id(pending)]):
                observed.append(finish(world, pending, world.recorder.of_fetch(ids[id(pending)], mark), seen))
        out.append(observed)
    world.results.extend(o for row in out for o in row)
    world.remark()
    return out
