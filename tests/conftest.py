"""Shared helpers for pytest-fcp's own tests."""

from __future__ import annotations

import datetime as dt
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests.engines.alt_engine is importable by name (as engines plug in)
    sys.path.insert(0, str(ROOT))

ALT = "tests.engines.alt_engine:create"


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)
