"""The simulated world: market truth, Vision, REST, a sealed network, a cache sandbox and a virtual clock.

A :class:`World` composes those services; each gets narrow ports (the truth, the clock, the fault schedule,
the recorder), never the world. Start it (``with World(...) as world``), attach the engine
(``world.attach(engine)``), optionally pre-cache days, then ``world.fetch(...)``, which returns an immutable
:class:`~pytest_fcp.world.observation.Observation` for the contract. Starting is one ``ExitStack``: stopping
undoes exactly what starting did, in reverse, also after a failure half-way through starting.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import pathlib
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pyarrow as pa

from pytest_fcp.core.cache_states import PATH_WORDS, DayFileState
from pytest_fcp.core.freshness import DEFAULT_PUBLISH_DELAY
from pytest_fcp.core.logs import DEFAULT_LOG_LEVEL
from pytest_fcp.core.markets import day_bounds_ms, to_ms
from pytest_fcp.core.sources import error_kind
from pytest_fcp.engines import Engine
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
from pytest_fcp.world.cache_watch import CacheWatch, Series
from pytest_fcp.world.clock import VirtualClock, local_zone
from pytest_fcp.world.environment import EngineThreads, recorded_warnings, sandboxed_environment, takes_level
from pytest_fcp.world.network import SealedNetwork, active_network
from pytest_fcp.world.observation import FetchRequest, Observation, rows_per_source, tally
from pytest_fcp.world.recorder import Recorder
from pytest_fcp.world.rest import RestApi
from pytest_fcp.world.spec import WorldError, WorldSpec
from pytest_fcp.world.truth import Truth
from pytest_fcp.world.vision import VisionBucket

__all__ = ["FetchResult", "World", "WorldError"]

#: What ``fetch`` returns (the name older code uses).
FetchResult = Observation


class World:
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
    ) -> None:
        spec = WorldSpec(
            now, market, symbol, interval, truth, seed, tuple(faults), publish_delay, log_level, tuple(cached), local_tz
        )
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
        self.rest = RestApi(self.truth, self.clock, self.faults, self.recorder)
        self.network = SealedNetwork(
            self.vision, self.rest, self.recorder, self.clock, self._before_request, self._start_aws
        )
        self.watch = CacheWatch(self.sandbox, self.recorder, self._truth_of, self._path_of)
        self.engine: Engine | None = None
        self.results: list[Observation] = []
        self._cache_paths: dict[tuple[str, str, str, dt.date], pathlib.Path] = {}
        self._to_block: list[pathlib.Path] = []  # day files to block at this fetch's first request
        self._blocked: list[pathlib.Path] = []  # directories standing in for day files while writes fail
        self._block_lock = threading.Lock()
        self._mark = self.recorder.mark()
        self.warning_count = 0  # warnings the engine raised (recorded as trace events)
        self._engine_threads = EngineThreads()  # whose warnings are the engine's
        self._mock: Any = None
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
            stack.enter_context(sandboxed_environment(self.sandbox))
            stack.callback(self.vision.stop)
            self.vision.start()
            stack.callback(self._stop_aws)
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

    def _start_aws(self) -> None:
        """Start moto's AWS mock the first time a botocore client talks to the world (it costs ~15 ms)."""
        if self._mock is None:
            from moto import mock_aws

            self._mock = mock_aws()
            self._mock.start()
            self.vision.start()  # the mock starts from a clean backend: the bucket again (files come lazily)

    def _stop_aws(self) -> None:
        if self._mock is not None:
            mock, self._mock = self._mock, None
            mock.stop()

    # --- the engine ---------------------------------------------------------------------------------
    def attach(self, engine: Engine) -> Engine:
        """Run ``engine`` in this world: the spec's cached days are seeded valid, then its cache faults are
        applied (whole-directory ones last), and its logs traced."""
        self.engine = engine
        self._cache_paths.clear()
        set_sink = getattr(engine, "set_log_sink", None)
        if callable(set_sink):
            if takes_level(set_sink):
                set_sink(self._on_log, level=self.log_level)
            else:
                set_sink(self._on_log)
        if self.spec.cached:
            self.seed_cache(self.spec.cached)
        for item in sorted(self.faults.of_source("cache"), key=lambda f: not f.kind.needs_days):
            days: Iterable[dt.date | None] = item.days or () if item.kind.needs_days else (None,)
            for day in days:
                self._apply_cache_fault(item, day)
        self.poll_cache(quiet=True)
        return engine

    def create_engine(self, factory: Any) -> Engine:
        """Create the engine on this world's cache sandbox and attach it (its warnings go to the trace)."""
        with self._engine_warnings():
            engine = factory(self.cache_dir)
        return self.attach(engine)

    @contextlib.contextmanager
    def _engine_warnings(self) -> Iterator[None]:
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
            self.watch.remember_fault(item.id, self.cache_path(day, *series))

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

    # --- truth ---------------------------------------------------------------------------------------
    def truth_day(
        self, day: dt.date, symbol: str | None = None, market: str | None = None, interval: str | None = None
    ) -> pa.Table:
        """The true bars of UTC ``day``."""
        start, end = day_bounds_ms(day)
        return self.truth.klines(market or self.market, symbol or self.symbol, interval or self.interval, start, end)

    def _truth_of(self, day: dt.date, series: Series) -> pa.Table:
        symbol, market, interval = series
        return self.truth_day(day, symbol, market, interval)

    def expected(
        self,
        start: dt.datetime,
        end: dt.datetime,
        symbol: str | None = None,
        market: str | None = None,
        interval: str | None = None,
    ) -> pa.Table:
        """The truth for ``[start, end)``, limited to bars that have opened by "now"."""
        upper = min(to_ms(end), to_ms(self.now) + 1)
        return self.truth.klines(
            market or self.market, symbol or self.symbol, interval or self.interval, to_ms(start), upper
        )

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
    ) -> Observation:
        """Ask the engine for ``[start, end)``; never raises the engine's exception (see ``Observation``)."""
        engine = self._need_engine()
        request = FetchRequest(symbol or self.symbol, market or self.market, interval or self.interval, start, end)
        series = (request.symbol, request.market, request.interval)
        now, days = self.now, request.days
        before = {d: self.watch.state(series, d) for d in days}
        around = (days[0] - dt.timedelta(days=1), days[-1] + dt.timedelta(days=1)) if days else ()
        edges = [d for d in around if d not in before]
        outside = {d: self.watch.state(series, d) for d in edges}
        published = frozenset(d for d in days if self.vision.has_day(series[1], series[0], series[2], d, now))
        self.recorder.event(
            "request",
            symbol=request.symbol,
            market=request.market,
            interval=request.interval,
            start=start.isoformat(),
            end=end.isoformat(),
            cache_days={d.isoformat(): PATH_WORDS[s.status] for d, s in before.items()},
        )
        table: pa.Table | None = None
        error: BaseException | None = None
        if writes_fail(self.sandbox.root):  # blocked at the first request: after the engine read its cache
            self._to_block = [self._path_of(series, d) for d in (*days, *around)]
        began = time.perf_counter()
        self.spent = Spent(self.spent.budget, len(self.results) + 1)
        try:
            with self._engine_warnings():
                table = engine.fetch(request.symbol, request.market, request.interval, start, end)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a pyo3 PanicException, SystemExit ... too: a verdict, never a traceback
            error = exc
        if self.spent.over is not None:  # the budget's word, even when the engine swallowed it and returned
            table, error = None, self.spent.over
        self.spent = Spent(self.spent.budget, 0)
        engine_seconds = time.perf_counter() - began
        self.poll_cache()
        self._to_block = []
        unblock_day_files(self._blocked)
        self.watch.blocked.clear()
        times, by_day = tally(table)
        if error is not None:
            self.recorder.event(
                "outcome",
                error=type(error).__name__,
                error_kind=error_kind(error),
                message=self._local(str(error))[:500],
            )
        else:
            assert table is not None
            self.recorder.event(
                "outcome",
                rows=table.num_rows,
                rows_by_source=rows_per_source(by_day),
                rows_by_day={(d.isoformat() if d else "null"): per for d, per in sorted(by_day.items(), key=str)},
            )
        events, requests, firings = self.recorder.since(self._mark)
        self._mark = self.recorder.mark()
        after = {d: self.watch.state(series, d) for d in days}
        outside_after = {d: (state, self.watch.state(series, d)) for d, state in outside.items()}
        observation = Observation(
            request=request,
            now=now,
            table=table,
            error=error,
            events=events,
            requests=requests,
            firings=firings,
            violations=tuple(self.recorder.violations),
            cache_before=before,
            cache_after=after,
            expected=self.expected(start, end, *series),
            published=published,
            row_times=times,
            rows_per_day=by_day,
            cache_outside=outside_after,
            engine_seconds=engine_seconds,
            fetch_number=len(self.results) + 1,
        )
        self.results.append(observation)
        return observation

    # --- recording -----------------------------------------------------------------------------------
    def poll_cache(self, quiet: bool = False) -> None:
        """Record the cache operations since the last poll."""
        self.watch.poll(quiet)

    def _before_request(self) -> None:
        """Before each request is answered: poll the cache; under ``cache.write_fails``, at the fetch's first
        request (the engine has read its cache by then), stand an empty directory in for each missing day
        file, so a native writer's write fails too (:func:`block_day_file`; directories make no cache events)."""
        self.poll_cache()
        self._within_budget()
        with self._block_lock:
            paths, self._to_block = self._to_block, []
            for path in paths:
                created = block_day_file(path)
                self.watch.blocked.update(self.sandbox.relative(p) for p in created[-1:])
                self._blocked.extend(created)

    def _on_sleep(self, seconds: float) -> None:
        self.poll_cache()
        self.recorder.event("sleep", seconds=seconds)
        self._within_budget(seconds)

    def _within_budget(self, sleeping: float | None = None) -> None:
        """Raise :class:`~pytest_fcp.world.budget.EndlessRetry` into the engine past the fetch's budget."""
        records = self.recorder.requests
        last = f"{records[-1].method} {records[-1].url}" if len(records) > self._mark.requests else None
        self.spent.check(len(records) - self._mark.requests, last, sleeping=sleeping)

    def _local(self, text: str) -> str:
        """``text`` with this world's cache directory (a fresh temporary one each run) written ``<cache>``."""
        return text.replace(str(self.cache_dir), "<cache>")

    def _on_log(self, record: dict[str, Any]) -> None:
        self.recorder.event(
            "log",
            level=record.get("level"),
            message=self._local(str(record.get("message", "")))[:300],
            module=record.get("module"),
        )
