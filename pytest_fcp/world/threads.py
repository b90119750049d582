"""The fetch an engine's own threads work for: the context (:data:`~pytest_fcp.world.recorder.FETCH`) follows
the work into the threads an engine starts and the pools it submits to, so what a pool thread records while
two engines run side by side is attributed to the fetch that asked for it.

Python 3.13 starts threads with an empty context; this patches, while a world is active,
:meth:`threading.Thread.start` (the new thread runs in a copy of its starter's context) and
:meth:`concurrent.futures.ThreadPoolExecutor.submit` (each work item runs in a copy of its submitter's, as
``asyncio`` tasks do already). Both are undone when the world stops.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

__all__ = ["carry_context"]


@contextlib.contextmanager
def carry_context() -> Iterator[None]:
    """While inside, new threads and pool work items run in a copy of the context that started them."""
    start, submit = threading.Thread.start, ThreadPoolExecutor.submit

    def start_in_context(self: threading.Thread) -> None:
        context = contextvars.copy_context()
        run = self.run
        self.run = functools.partial(context.run, run)  # type: ignore[method-assign]
        start(self)

    def submit_in_context(
        self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Future[Any]:
        return submit(self, functools.partial(contextvars.copy_context().run, fn), *args, **kwargs)

    threading.Thread.start = start_in_context  # type: ignore[method-assign]
    ThreadPoolExecutor.submit = submit_in_context  # type: ignore[method-assign]
    try:
        yield
    finally:
        threading.Thread.start = start  # type: ignore[method-assign]
        ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]
