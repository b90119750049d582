"""The simulated world: market truth, Vision, REST, a sealed network, a cache sandbox and a virtual clock.

A :class:`World` composes those services; each gets narrow ports (the truth, the clock, the fault schedule,
the recorder), never the world. Start it (``with World(...) as world``), attach the engine
(``world.attach(engine)``), optionally pre-cache days, then ``world.fetch(...)``, which returns an immutable
:class:`~pytest_fcp.world.observation.Observation` for the contract. Starting is one ``ExitStack``: stopping
undoes exactly what starting did, in reverse, also after a failure half-way through starting.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import pathlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pyarrow as pa

from pytest_fcp.core.cache_states import DayFileState
from pytest_fcp.core.freshness import DEFAULT_PUBLISH_DELAY
from pytest_fcp.core.logs import DEFAULT_LOG_LEVEL
from pytest_fcp.engines import Engine, env_prefixes
from pytest_fcp.faults import Fault, FaultSchedule, fault
from pytest_fcp.faults.rules import cache_fault_series
from pytest_fcp.trace import Trace
from pytest_fcp.world.budget import Spent, fetch_budget
from pytest_fcp.world.cache import CacheSandbox, truth_to_cache_table
from pytest_fcp.world.cache_faults import (
    allow_writes,
    apply_cache_fault,
    block_day_file,
    unblock_day_files,
    writes_fail,
    writes_paused,
)
from pytest_fcp.world.cache_seed import carry_in
from pytest_fcp.world.cache_watch import CacheWatch, Series
from pytest_fcp.world.clock import VirtualClock, local_zone
from pytest_fcp.world.environment import (
    EngineThreads,
    owned_environment,
    recorded_warnings,
    sandboxed_environment,
    takes_level,
)
from pytest_fcp.world.fetching import Pending, begin, budget_word, call_engine, fetch_together, finish
from pytest_fcp.world.network import SealedNetwork, active_network
from pytest_fcp.world.observation import FetchRequest, Observation
from pytest_fcp.world.recorder import FETCH, Recorder
from pytest_fcp.world.rest import RestApi
from pytest_fcp.world.sandbox_writes import watch_writes
from pytest_fcp.world.spec import WorldError, WorldSpec
from pytest_fcp.world.threads import carry_context
from pytest_fcp.world.truth import Truth
from pytest_fcp.world.truth_views import TruthViews
from pytest_fcp.world.turns import Turns
from pytest_fcp.world.vision import LazyAws, VisionBucket

__all__ = ["FetchResult", "World", "WorldError"]

#: What ``fetch`` returns (the name older code uses).
FetchResult = Observation


class World(TruthViews):
    """One simulated Binance for one engine (see the module docstring)."""

    def __init__(
        self,
        cache_root: pathlib.Path,
        now: dt.datetime,
        *,
        market: str = "spot",
        symbol: str = "BTCUSDT",
        interval: str = "1h",
        truth: str | Truth = "synthetic",
        seed: int = 0,
        faults: Sequence[Fault] = (),
        publish_delay: dt.timedelta = DEFAULT_PUBLISH_DELAY,
        log_level: str = DEFAULT_LOG_LEVEL,
        local_tz: str | None = None,
        cached: Sequence[dt.date] = (),
        env: Iterable[tuple[str, str]] = (),
        cache_from: pathlib.Path | None = None,
    ) -> None:
        spec = WorldSpec(now, market, symbol, interval, truth, seed, tuple(faults), publish_delay, log_level)
        spec = dataclasses.replace(spec, cached=tuple(cached), local_tz=local_tz, env=tuple(env), cache_from=cache_from)
        self.spec = spec
        self.market, self.symbol, self.interval, self.seed = market, symbol, interval, seed
        self.truth: Truth = spec.make_truth()
        self.publish_delay, self.log_level = publish_delay, spec.log_level
        self.recorder = Recorder()
        self.trace: Trace = self.recorder.trace
        self.violations = self.recorder.violations
        self.faults = FaultSchedule(spec.faults)
        self.clock = VirtualClock(now, on_sleep=self._on_sleep)
        self.sandbox = CacheSandbox(pathlib.Path(cache_root))
        self.vision = VisionBucket(self.truth, self.clock, self.faults, self.recorder, publish_delay)
        self.aws = LazyAws(self.vision)  # the S3 door's moto mock, started on first use
        self.rest = RestApi(self.truth, self.clock, self.faults, self.recorder)
        self.network = SealedNetwork(
            self.vision, self.rest, self.recorder, self.clock, self._before_request, self.aws.start
        )
        self.watch = CacheWatch(self.sandbox, self.recorder, self._truth_of, self._path_of)
        self.engine: Engine | None = None
        self.instances: list[Engine] = []  # the engine and the other instances of it on the same cache
        self.turns: Turns | None = None  # while instances run together: whose turn it is (world/turns.py)
        self.players: dict[int, int] = {}  # fetch -> the instance it runs on, while they run together
        self.results: list[Observation] = []
        self._cache_paths: dict[tuple[str, str, str, dt.date], pathlib.Path] = {}
        self._to_block: list[pathlib.Path] = []  # day files to block at this fetch's first request
        self._blocked: list[pathlib.Path] = []  # directories standing in for day files while writes fail
        self._block_lock = threading.Lock()
        self._mark = self.recorder.mark()
        self.warning_count = 0  # warnings the engine raised (recorded as trace events)
        self._engine_threads = EngineThreads()  # whose warnings are the engine's
        self._stack: contextlib.ExitStack | None = None
        self.spent = Spent(fetch_budget(), 0)  # past its budget, a fetch is an endless retry loop (world/budget.py)

    @classmethod
    def from_spec(cls, spec: WorldSpec, cache_root: pathlib.Path) -> World:
        """A world (not started) of ``spec``, whose cache sandbox is ``cache_root``."""
        return cls(
            cache_root,
            spec.now,
            market=spec.market,
            symbol=spec.symbol,
            interval=spec.interval,
            truth=spec.truth,
            seed=spec.seed,
            faults=spec.faults,
            publish_delay=spec.publish_delay,
            log_level=spec.log_level,
            local_tz=spec.local_tz,
            cached=spec.cached,
            env=spec.env,
            cache_from=spec.cache_from,
        )

    # --- lifecycle --------------------------------------------------------------------------------
    @property
    def cache_dir(self) -> pathlib.Path:
        """The directory the engine caches in (the sandbox's root)."""
        return self.sandbox.root

    @property
    def now(self) -> dt.datetime:
        """The world's virtual now."""
        return self.clock.now()

    def advance_to(self, when: dt.datetime) -> None:
        """Move the virtual now forward to ``when`` (a clock step between fetches; never backwards)."""
        step = (when - self.now).total_seconds()
        if step < 0:
            raise WorldError(f"cannot move now back from {self.now.isoformat()} to {when.isoformat()}")
        self.clock.advance(step)

    def __enter__(self) -> World:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Patch the environment, create the bucket, start the clock and the network, watch the cache."""
        if active_network() is not None:
            raise WorldError(
                "another simulated world is still active (started and never stopped): one world at a time; "
                "`with World(...)` and the fcp_world fixture stop theirs"
            )
        with contextlib.ExitStack() as stack:
            stack.enter_context(sandboxed_environment(self.sandbox, self.spec.env))
            roots = (str(self.sandbox.root), str(self.sandbox.home))
            stack.enter_context(watch_writes(roots, self._engine_threads.running, self._wrote_outside))
            stack.callback(self.vision.stop)
            self.vision.start()
            stack.callback(self.aws.stop)
            stack.enter_context(carry_context())
            stack.callback(self.clock.stop)
            self.clock.start()
            if self.spec.local_tz:
                stack.enter_context(local_zone(self.spec.local_tz))
            stack.callback(allow_writes, self.sandbox.root)
            stack.callback(unblock_day_files, self._blocked)
            stack.callback(self.network.stop)
            self.network.start()
            stack.callback(self.sandbox.restore)
            stack.callback(self.watch.close)
            carry_in(self.spec.cache_from, self.sandbox.root, self.watch)  # before the watch opens: no events
            self.watch.open()
            stack.callback(self._close_engine)
            self._stack = stack.pop_all()

    def stop(self) -> None:
        """Undo everything ``start`` did, in reverse; every step runs even when an earlier one fails."""
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    def _close_engine(self) -> None:
        self.poll_cache()
        close = getattr(self.engine, "close", None) if self.engine is not None else None
        if callable(close):
            try:
                close()
            except Exception as exc:
                self.recorder.event("log", level="ERROR", message=f"engine close() failed: {exc!r}")

    # --- the engine ---------------------------------------------------------------------------------
    def attach(self, engine: Engine, prepare: bool = True) -> Engine:
        """Run ``engine`` in this world: the spec's cached days are seeded valid, then its cache faults are
        applied (whole-directory ones last; ``prepare=False``: neither), and its logs traced."""
        self.engine = engine
        self.instances = [engine]
        self._cache_paths.clear()
        self._sink(engine)
        if prepare and self.spec.cached:
            self.seed_cache(self.spec.cached)
        for item in sorted(self.faults.of_source("cache") if prepare else (), key=lambda f: not f.kind.needs_days):
            days: Iterable[dt.date | None] = item.days or () if item.kind.needs_days else (None,)
            for day in days:
                self._apply_cache_fault(item, day)
        self.poll_cache(quiet=True)
        return engine

    def _sink(self, engine: Engine) -> None:
        set_sink = getattr(engine, "set_log_sink", None)
        if callable(set_sink):
            if takes_level(set_sink):
                set_sink(self._on_log, level=self.log_level)
            else:
                set_sink(self._on_log)

    def add_instance(self, factory: Any) -> Engine:
        """Another instance of the engine on the same cache (after :meth:`create_engine`, which seeded it)."""
        self._need_engine()
        with self.engine_warnings():
            engine = factory(self.cache_dir)
        self._sink(engine)
        self.instances.append(engine)
        return engine

    def create_engine(self, factory: Any, prepare: bool = True) -> Engine:
        """Create the engine on this world's cache sandbox and attach it (its warnings go to the trace). The
        variables the engine declares its own (:func:`~pytest_fcp.engines.env_prefixes`) are cleared from here to
        the world's stop, except those the world and the scenario set."""
        if self._stack is not None:
            self._stack.enter_context(owned_environment(env_prefixes(factory), self.spec.env, self.recorder))
        with self.engine_warnings():
            engine = factory(self.cache_dir)
        return self.attach(engine, prepare)

    def restart_engine(self, factory: Any) -> Engine:
        """Close the engine and create a fresh instance on the same cache, as a new process would (nothing
        is seeded or faulted again)."""
        self._close_engine()
        return self.create_engine(factory, prepare=False)

    @contextlib.contextmanager
    def engine_warnings(self) -> Iterator[None]:
        """Record the warnings raised inside as ``warning`` events (see :func:`recorded_warnings`)."""
        counted = [0]
        try:
            with recorded_warnings(self.recorder, self._engine_threads) as counted:
                yield
        finally:
            self.warning_count += counted[0]

    def seed_cache(self, days: Iterable[dt.date], state: str = "valid") -> None:
        """Pre-cache ``days`` through the engine (``valid``) or in a cache fault's state (``cache.*``)."""
        engine = self._need_engine()
        for day in days:
            if state == "valid":
                table = truth_to_cache_table(self.truth_day(day))
                with writes_paused():  # the harness's own write, also under cache.write_fails
                    engine.write_cache(self.symbol, self.market, self.interval, day, table)
            else:
                self._apply_cache_fault(fault(state, days=[day]), day)
        self.poll_cache(quiet=True)

    def _apply_cache_fault(self, item: Fault, day: dt.date | None) -> None:
        engine = self._need_engine()
        symbol, market, interval = series = cache_fault_series(item, (self.symbol, self.market, self.interval))
        truth = self.truth_day(day, *series) if day else pa.table({})
        when = day or dt.date(1970, 1, 1)
        with writes_paused():  # the harness puts the file in its state, also under cache.write_fails
            applied = apply_cache_fault(engine, item, symbol, market, interval, when, truth, self.sandbox)
        if not applied:  # the engine's own format: its file stays valid, and no fault is recorded
            self.recorder.event(
                "log", level="INFO", message=f"{item.id} on {day}: the engine's own format, not a fault"
            )
            return
        self.recorder.fault(item.id, "cache", day)
        if day is not None:
            keep = float(item.param("keep")) if "keep" in item.kind.params else 0.5
            self.watch.remember_fault(item.id, self.cache_path(day, *series), keep)

    def cache_path(
        self, day: dt.date, symbol: str | None = None, market: str | None = None, interval: str | None = None
    ) -> pathlib.Path:
        """Where the attached engine keeps ``day`` (asked of the engine once per day and world)."""
        return self._path_of((symbol or self.symbol, market or self.market, interval or self.interval), day)

    def _path_of(self, series: Series, day: dt.date) -> pathlib.Path:
        key = (*series, day)
        path = self._cache_paths.get(key)
        if path is None:
            path = self._cache_paths[key] = pathlib.Path(self._need_engine().cache_file(*series, day))
        return path

    def _need_engine(self) -> Engine:
        if self.engine is None:
            raise WorldError("no engine attached: call world.attach(engine) first (the fcp_engine fixture does)")
        return self.engine

    def cache_state(
        self, day: dt.date, symbol: str | None = None, market: str | None = None, interval: str | None = None
    ) -> DayFileState:
        """The state of the engine's file for ``day``, judged against the truth."""
        return self.watch.state((symbol or self.symbol, market or self.market, interval or self.interval), day)

    # --- the fetch -------------------------------------------------------------------------------------
    def fetch(
        self,
        start: dt.datetime,
        end: dt.datetime,
        *,
        symbol: str | None = None,
        market: str | None = None,
        interval: str | None = None,
        instance: int = 0,
    ) -> Observation:
        """Ask the engine (instance ``instance`` of it) for ``[start, end)``; never raises the engine's
        exception (see ``Observation``)."""
        self._need_engine()
        request = FetchRequest(symbol or self.symbol, market or self.market, interval or self.interval, start, end)
        pending = begin(self, request, self._instance(instance))
        self.block_for([pending])
        self.spent = Spent(self.spent.budget, pending.number, len(request.days))
        with self.engine_warnings():
            call_engine(self, pending)
        budget_word(self, [pending])
        self.end_fetch()
        observation = finish(self, pending, self.recorder.since(self._mark))
        self.remark()
        self.results.append(observation)
        return observation

    def fetch_together(
        self, calls: Sequence[tuple[int, Sequence[FetchRequest]]], schedule: int | None = 0, strategy: str = "random"
    ) -> list[list[Observation]]:
        """Each ``(instance, requests)`` in its own thread, all at once (see :func:`fetch_together`), in the
        interleaving schedule number ``schedule`` picks from the world's seed (``None``: as the threads run)."""
        self._need_engine()
        players = [self._instance(i) for i, _ in calls]
        turns = None if schedule is None else Turns(players, hash((self.seed, schedule)) & 0xFFFFFFFF, strategy)
        return fetch_together(self, [(i, requests) for i, (_, requests) in zip(players, calls, strict=True)], turns)

    def _instance(self, instance: int) -> int:
        if not 0 <= instance < len(self.instances):
            raise WorldError(f"no engine instance {instance + 1}: this world has {len(self.instances)}")
        return instance

    def block_for(self, pendings: Sequence[Pending]) -> None:
        """Under ``cache.write_fails``: the day files to block at the first request (after the engine read its
        cache), for the fetches about to run."""
        if writes_fail(self.sandbox.root):
            self._to_block = [self._path_of(p.series, d) for p in pendings for d in (*p.request.days, *p.neighbours)]

    def end_fetch(self) -> None:
        """After the engine calls: poll the cache, take the blocked day files away."""
        self.poll_cache()
        self._to_block = []
        unblock_day_files(self._blocked)
        self.watch.blocked.clear()

    def remark(self) -> None:
        """What is recorded from now on belongs to the next fetch."""
        self._mark = self.recorder.mark()

    @property
    def instance_count(self) -> int:
        """How many engine instances work on this world's cache."""
        return len(self.instances)

    # --- recording -----------------------------------------------------------------------------------
    def poll_cache(self, quiet: bool = False) -> None:
        """Record the cache operations since the last poll."""
        self.watch.poll(quiet)

    def _before_request(self) -> None:
        """Before each request is answered: poll the cache; under ``cache.write_fails``, at the fetch's first
        request (the engine has read its cache by then), stand an empty directory in for each missing day
        file, so a native writer's write fails too (:func:`block_day_file`; directories make no cache events)."""
        self.poll_cache()
        self._yield_turn()
        self._within_budget()
        with self._block_lock:
            paths, self._to_block = self._to_block, []
            for path in paths:
                created = block_day_file(path)
                self.watch.blocked.update(self.sandbox.relative(p) for p in created[-1:])
                self._blocked.extend(created)

    def _wrote_outside(self, event: str, path: str) -> None:
        self.recorder.violation("write", f"wrote outside its sandbox: {path} ({event})")

    def _yield_turn(self) -> None:
        """A request or a sleep of an instance running together: the schedule decides who goes on."""
        turns, fetch = self.turns, FETCH.get()
        if turns is not None and fetch in self.players:
            turns.yield_point(self.players[fetch])

    def _on_sleep(self, seconds: float) -> None:
        self._yield_turn()
        self.poll_cache()
        self.recorder.event("sleep", seconds=seconds)
        self._within_budget(seconds)

    def _within_budget(self, sleeping: float | None = None) -> None:
        """Raise :class:`~pytest_fcp.world.budget.EndlessRetry` into the engine past the fetch's budget."""
        records = self.recorder.requests
        last = f"{records[-1].method} {records[-1].url}" if len(records) > self._mark.requests else None
        self.spent.check(len(records) - self._mark.requests, last, sleeping=sleeping)

    def local(self, text: str) -> str:
        """``text`` with this world's cache directory (a fresh temporary one each run) written ``<cache>``."""
        return text.replace(str(self.cache_dir), "<cache>")

    def _on_log(self, record: dict[str, Any]) -> None:
        self.recorder.event(
            "log",
            level=record.get("level"),
            message=self.local(str(record.get("message", "")))[:300],
            module=record.get("module"),
        )
