"""The fork server: each isolated test runs in a forked child, so an engine that dies takes only its test.

One server per process (one per xdist worker). Before the first fork the parent imports what the run's engines
need; then it forks a child that serves tests one after another: the parent sends a test's index, the child
runs pytest's own ``runtestprotocol`` on it and sends the reports back. Every trace event is streamed as it is
recorded (:func:`~pytest_fcp.world.recorder.set_event_sink`) into an :class:`EventLog`, memory shared by parent
and child that outlives the child: no system call per event, and nothing lost when the child dies. A child that
dies (a signal, an exit code) or hangs (no event and almost no CPU for ``hang_seconds``; or past ``item_seconds``
in all) is reaped or killed, the parent reports the test as :mod:`~pytest_fcp.plugin.deaths` words it, and the
next test gets a fresh child.

Messages on the pipes are length-prefixed pickles: to the child ``(index, next index)``; from it
``("reports", [serialised report, ...])``.
"""

from __future__ import annotations

import contextlib
import faulthandler
import mmap
import os
import pickle
import select
import signal
import struct
import threading
import time
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

__all__ = ["Death", "EventLog", "ForkServer", "child_cpu", "describe_status"]

_HEADER = struct.Struct("!I")
_END = struct.Struct("!Q")
_LOG_BYTES = 256 << 20  # the event log's size: pages are taken only as they are written
_POLL_S = 0.1  # how often the parent looks at a silent child
_BUSY = 0.05  # a child using at least this share of one CPU is making progress


@dataclass
class Death:
    """How a child ended a test without reports: ``died`` (signal or exit code) or ``hung``, with its events."""

    kind: str  # died | hung | slow
    what: str  # "SIGBUS", "exit code 3", "no progress for 5 s", "still running after 600 s"
    events: list[dict[str, Any]] = field(default_factory=list)
    native: str = ""  # what faulthandler wrote as the process died (the Python stack of a fatal signal)


def describe_status(status: int) -> str:
    """A wait status as words: ``SIGBUS`` or ``exit code 3``."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            return signal.Signals(number).name
        except ValueError:
            return f"signal {number}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def child_cpu(pid: int) -> tuple[float, bool] | None:
    """The child's CPU seconds so far (every thread) and whether it is running or in disk I/O now (``/proc``); ``None``
    where there is no ``/proc`` (progress is then the streamed events alone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks, fields[0] in (b"R", b"D")


def _send(fd: int, message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


class _Frames:
    """Length-prefixed messages read from a pipe as they arrive."""

    def __init__(self, fd: int) -> None:
        self.fd, self.buffer, self.eof = fd, bytearray(), False

    def feed(self) -> None:
        chunk = os.read(self.fd, 1 << 16)
        self.eof = not chunk
        self.buffer += chunk

    def messages(self) -> Iterator[Any]:
        while len(self.buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self.buffer)
            if len(self.buffer) < _HEADER.size + size:
                return
            data = bytes(self.buffer[_HEADER.size : _HEADER.size + size])
            del self.buffer[: _HEADER.size + size]
            yield pickle.loads(data)


class EventLog:
    """One test's trace events as length-prefixed pickles in anonymous shared memory (written by the child, read
    by the parent after a death); the first 8 bytes say where the written part ends."""

    def __init__(self, size: int = _LOG_BYTES) -> None:
        self.map = mmap.mmap(-1, size)  # MAP_SHARED: the child's writes are the parent's
        self.size = size
        self._lock = threading.Lock()  # engine threads record events concurrently
        self.reset()

    def reset(self) -> None:
        """Empty the log (before each test)."""
        _END.pack_into(self.map, 0, _END.size)

    @property
    def end(self) -> int:
        """Where the written part ends: it grows with every event."""
        return int(_END.unpack_from(self.map, 0)[0])

    def append(self, event: dict[str, Any], fresh: bool = False) -> None:
        """Add one event (``fresh``: the first of a new world, so the log keeps the last world's events only: a
        fuzz item runs hundreds); a full log keeps what it has."""
        try:
            data = pickle.dumps(event, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError):
            plain = {k: v if isinstance(v, int | float | str) else str(v) for k, v in event.items()}
            data = pickle.dumps(plain, protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            if fresh:
                self.reset()
            start = self.end
            stop = start + _HEADER.size + len(data)
            if stop > self.size:
                return
            _HEADER.pack_into(self.map, start, len(data))
            self.map[start + _HEADER.size : stop] = data
            _END.pack_into(self.map, 0, stop)  # last: a reader never sees half an event

    def events(self) -> list[dict[str, Any]]:
        """Every event written since the last reset."""
        out, at, end = [], _END.size, self.end
        while at < end:
            (size,) = _HEADER.unpack_from(self.map, at)
            out.append(pickle.loads(self.map[at + _HEADER.size : at + _HEADER.size + size]))
            at += _HEADER.size + size
        return out


class ForkServer:
    """Runs isolated tests in a forked child, one child at a time, a fresh one after each death."""

    def __init__(self, session: pytest.Session, hang_seconds: float, item_seconds: float) -> None:
        self.session = session
        self.hang_seconds, self.item_seconds = hang_seconds, item_seconds
        self.pid: int | None = None
        self._to: int = -1
        self._from: _Frames | None = None
        self._index: dict[str, int] = {}
        self._native = os.memfd_create("fcp-faulthandler") if hasattr(os, "memfd_create") else -1
        self.log = EventLog()

    # --- the parent -----------------------------------------------------------------------------------
    def run(self, item: pytest.Item, nextitem: pytest.Item | None) -> list[pytest.TestReport] | Death:
        """Run ``item`` in the child: its reports, or how the child ended without them."""
        if not self._index:
            self._index = {it.nodeid: i for i, it in enumerate(self.session.items)}
        following = self._index.get(nextitem.nodeid, -1) if nextitem is not None else -1
        self.log.reset()
        try:
            if self.pid is None:
                self._fork()
            _send(self._to, (self._index[item.nodeid], following))
            return self._wait()
        except BrokenPipeError:
            return self._died(self._reap())
        except BaseException:  # Ctrl-C, pytest's exit: the child goes with the parent
            self.stop(kill=True)
            raise

    def _wait(self) -> list[pytest.TestReport] | Death:
        assert self._from is not None and self.pid is not None
        began = last = looked = time.monotonic()
        cpu, written = child_cpu(self.pid), self.log.end
        while True:
            ready, _, _ = select.select([self._from.fd], [], [], _POLL_S)
            now = time.monotonic()
            if ready:
                self._from.feed()
                for _kind, payload, warned in self._from.messages():
                    self._warn(warned)
                    return [self._report(data) for data in payload]
                if self._from.eof:
                    return self._died(self._reap())
                continue
            seen = child_cpu(self.pid)
            busy = seen is not None and cpu is not None and (seen[1] or seen[0] - cpu[0] >= _BUSY * (now - looked))
            if busy or self.log.end != written:
                last = now  # a new event, running, or its share of a CPU since the last look: not hung
            cpu, written, looked = seen if seen is not None else cpu, self.log.end, now
            if now - last >= self.hang_seconds:
                self.stop(kill=True)
                return Death("hung", f"no progress for {self.hang_seconds:g} s", self.log.events())
            if now - began >= self.item_seconds:
                self.stop(kill=True)
                return Death("slow", f"still running after {self.item_seconds:g} s", self.log.events())

    def _died(self, what: str) -> Death:
        """A death, with its events and what faulthandler wrote (then cleared for the next child)."""
        native = ""
        if self._native >= 0:
            size = os.lseek(self._native, 0, os.SEEK_END)
            native = os.pread(self._native, size, 0).decode("utf-8", "replace")
            os.ftruncate(self._native, 0)
            os.lseek(self._native, 0, os.SEEK_SET)
        return Death("died", what, self.log.events(), native)

    def _warn(self, warned: list[tuple[Any, ...]]) -> None:
        """Hand the warnings pytest caught in the child to this process's ``pytest_warning_recorded`` (the summary)."""
        for message, category, filename, lineno, when, nodeid in warned:
            record = warnings.WarningMessage(message, category, filename, lineno)
            kwargs = {"warning_message": record, "when": when, "nodeid": nodeid, "location": None}
            self.session.config.hook.pytest_warning_recorded.call_historic(kwargs=kwargs)

    def _report(self, data: dict[str, Any]) -> pytest.TestReport:
        config = self.session.config
        report = config.hook.pytest_report_from_serializable(config=config, data=data)
        return report  # type: ignore[no-any-return]

    def _reap(self) -> str:
        """Wait for the dead child and say how it ended."""
        pid, self.pid = self.pid, None
        self._close()
        if pid is None:
            return "exit code ?"
        _, status = os.waitpid(pid, 0)
        return describe_status(status)

    def stop(self, kill: bool = False) -> None:
        """End the child: close its pipe (it exits when idle), or kill it; then reap it."""
        pid, self.pid = self.pid, None
        self._close()
        if pid is None:
            return
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)

    def _close(self) -> None:
        for fd in (self._to, self._from.fd if self._from is not None else -1):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._to, self._from = -1, None

    def _fork(self) -> None:
        to_read, to_write = os.pipe()
        from_read, from_write = os.pipe()
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # Ctrl-C waits until the pid is kept
        try:
            with warnings.catch_warnings():  # "this process is multi-threaded": the child runs on this thread only
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # pragma: no cover - the child; coverage does not follow it
                os.close(to_write)
                os.close(from_read)
                _child(self.session, to_read, from_write, self._native, self.log, blocked)
            os.close(to_read)
            os.close(from_write)
            self.pid, self._to, self._from = pid, to_write, _Frames(from_read)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


# --- the child -----------------------------------------------------------------------------------------
def _child(  # pragma: no cover - runs in the child
    session: pytest.Session, inbox: int, outbox: int, native: int, log: EventLog, mask: set[signal.Signals]
) -> None:
    """Serve tests until the parent closes the pipe; never return into the parent's session."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends the child at once; the parent reports it
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if native >= 0:  # a fatal signal's Python stack goes to the parent's report, not to the terminal
            faulthandler.enable(file=native, all_threads=True)
        _serve(session, _Frames(inbox), outbox, log)
    except BaseException:  # the harness's own failure: its traceback goes where a fatal signal's stack goes
        code = 70
        if native >= 0:
            os.write(native, traceback.format_exc().encode("utf-8", "replace"))
    finally:
        os._exit(code)


def _serve(session: pytest.Session, inbox: _Frames, outbox: int, log: EventLog) -> None:  # pragma: no cover - child
    from _pytest.runner import runtestprotocol
    from _pytest.warnings import catch_warnings_for_item

    from pytest_fcp.world.recorder import set_event_sink

    items, hook, config = session.items, session.config.hook, session.config
    set_event_sink(lambda event: log.append(event.to_dict(), fresh=event.index == 0))
    caught = _CaughtWarnings()
    config.pluginmanager.register(caught, "fcp-child-warnings")
    while True:
        inbox.feed()
        for index, following in inbox.messages():
            item = items[index]
            nextitem = items[following] if following >= 0 else None
            with catch_warnings_for_item(config, ihook=item.ihook, when="runtest", item=item):  # the run's filters
                reports = runtestprotocol(item, log=False, nextitem=nextitem)
            data = [hook.pytest_report_to_serializable(config=config, report=r) for r in reports]
            _send(outbox, ("reports", data, caught.take()))
        if inbox.eof:
            return


class _CaughtWarnings:  # pragma: no cover - in the child
    """The warnings pytest records in the child, sent on with the reports."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    def pytest_warning_recorded(self, warning_message: Any, when: str, nodeid: str, location: Any) -> None:
        """Keep one warning as plain, picklable data."""
        message, category = warning_message.message, warning_message.category
        try:
            pickle.dumps((message, category))
        except Exception:
            message, category = str(message), UserWarning
        self.seen.append((message, category, str(warning_message.filename), warning_message.lineno, when, nodeid))

    def take(self) -> list[tuple[Any, ...]]:
        """The warnings since the last call."""
        seen, self.seen = self.seen, []
        return seen
