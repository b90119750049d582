"""Where ``fcp`` prints: a rich console sized for a terminal or for a pipe."""

from __future__ import annotations

import datetime as dt
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["console", "iso"]


def console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr): no markup or highlighting; 150 columns (``$COLUMNS``) when not a TTY."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    width = None if tty else int(os.environ.get("COLUMNS", "0") or 0) or 150
    return Console(file=stream, width=width, highlight=False, soft_wrap=True, emoji=False, markup=False)


def iso(moment: dt.datetime) -> str:
    """``moment`` in ISO 8601 with a ``Z`` for UTC."""
    return moment.isoformat().replace("+00:00", "Z")
