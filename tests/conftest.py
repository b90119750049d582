"""Shared helpers for pytest-fcp's own tests."""

from __future__ import annotations

import datetime as dt
import pathlib
import sys
import threading
from collections.abc import Callable

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests.engines.alt_engine is importable by name (as engines plug in)
    sys.path.insert(0, str(ROOT))

ALT = "tests.engines.alt_engine:create"


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def run_in_threads(*targets: Callable[[], object]) -> None:
    """Run each target in its own thread at once, switching threads as often as CPython allows."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=target) for target in targets]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(old)
