"""The ``fcp`` argument parser, its argument types, exit statuses and the usage error."""

from __future__ import annotations

import argparse
import datetime as dt
import pathlib
import re
from typing import NoReturn

from pytest_fcp.core.markets import INTERVALS, MARKETS

__all__ = ["EXIT_OK", "EXIT_PROBLEMS", "EXIT_USAGE", "UsageError", "build_parser"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input: printed as one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (no usage block) and exits 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``message`` as one line and exit 2."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --- argument types ---
def _market(text: str) -> str:
    if text not in MARKETS:
        raise argparse.ArgumentTypeError(f"unknown market {text!r}; expected one of {', '.join(MARKETS)}")
    return text


def _interval(text: str) -> str:
    if text not in INTERVALS:
        raise argparse.ArgumentTypeError(f"unknown interval {text!r}; expected one of {', '.join(INTERVALS)}")
    return text


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2024-01-31 (YYYY-MM-DD)") from None


def _now(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time like 2024-01-10T12:00:00Z") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no timezone; write it in UTC, e.g. 2024-01-10T12:00:00Z")
    return moment.astimezone(dt.UTC)


def _symbol(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9]+(_[A-Za-z0-9]+)?", text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a Binance symbol; expected letters and digits like BTCUSDT (COIN-M: BTCUSD_PERP)"
        )
    return text.upper()


def _positive_days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 366:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days from 1 to 366")
    return value


def _workers(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes >= 1")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 60:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds in (0, 60]")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``fcp`` and its two sub-commands."""
    parser = _Parser(
        prog="fcp",
        description="Check an FCP engine's kline cache, and diagnose one fetch (cache -> Vision -> REST).",
        epilog="Exit status: 0 healthy, 1 problems found, 2 usage error.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    health = commands.add_parser(
        "cache-health",
        help="scan a kline cache and report its health per market / symbol / interval",
        description=(
            "Scan a kline cache (ckvd's layout and the reference engine's) and report, per market / symbol / "
            "interval, the directory's state, day files, size, coverage and gaps, and every bad file."
        ),
        epilog="Exit status: 0 healthy, 1 problems found, 2 usage error.",
    )
    health.add_argument(
        "--cache-dir",
        type=pathlib.Path,
        metavar="DIR",
        help="the cache directory (default: ckvd's default cache dir, as ckvd resolves it)",
    )
    health.add_argument("--verbose", "-v", action="store_true", help="list every bad file and gap")
    health.add_argument("--json", action="store_true", help="machine-readable output (no progress bar)")
    health.add_argument("--market", type=_market, metavar="M", help=f"only this market ({', '.join(MARKETS)})")
    health.add_argument("--symbol", type=_symbol, metavar="S", help="only this symbol, e.g. BTCUSDT")
    health.add_argument("--interval", type=_interval, metavar="I", help="only this interval, e.g. 1h")
    health.add_argument("--from", dest="day_from", type=_day, metavar="D", help="first day (YYYY-MM-DD)")
    health.add_argument("--to", dest="day_to", type=_day, metavar="D", help="last day (YYYY-MM-DD)")
    health.add_argument(
        "--now", type=_now, metavar="ISO", help="judge ages against this UTC time (default: the current time)"
    )
    health.add_argument(
        "--workers", type=_workers, metavar="N", help="scan processes (default: all cores for large caches)"
    )

    diagnose = commands.add_parser(
        "diagnose",
        help="run one traced fetch through an engine and explain what happened",
        description=(
            "Run one fetch of the last --days days through an engine adapter, traced: rows per source, "
            "latency per source, the decision path and hints. Live against Binance unless --simulate."
        ),
        epilog=("Exit status: 0 the fetch went well, 1 problems found, 2 usage error or no network for a live run."),
    )
    diagnose.add_argument("symbol", type=_symbol, metavar="SYMBOL", help="e.g. BTCUSDT (COIN-M: BTCUSD_PERP)")
    diagnose.add_argument("market", type=_market, metavar="MARKET", help=", ".join(MARKETS))
    diagnose.add_argument("interval", type=_interval, metavar="INTERVAL", help="e.g. 1h")
    diagnose.add_argument(
        "--days",
        type=_positive_days,
        default=3,
        metavar="N",
        help="fetch the last N whole UTC days plus today so far (3)",
    )
    diagnose.add_argument("--engine", default="reference", metavar="NAME", help="engine adapter (reference)")
    diagnose.add_argument(
        "--simulate",
        nargs="+",
        metavar="FAULT",
        help="run offline in the simulated world with these faults (fault ids; 'none' for no fault)",
    )
    diagnose.add_argument(
        "--now",
        type=_now,
        metavar="ISO",
        help="the simulated world's UTC now (default: the current time); --simulate only",
    )
    diagnose.add_argument(
        "--warm", action="store_true", help="--simulate only: pre-fill the cache with the range's old days"
    )
    diagnose.add_argument(
        "--cache-dir",
        type=pathlib.Path,
        metavar="DIR",
        help="live only: the engine's cache dir (default: the engine's own default location)",
    )
    diagnose.add_argument(
        "--timeout",
        type=_seconds,
        default=3.0,
        metavar="S",
        help="live only: seconds to wait for the network check (3)",
    )
    diagnose.add_argument("--json", action="store_true", help="machine-readable output")
    diagnose.add_argument(
        "--html",
        type=pathlib.Path,
        metavar="PATH",
        help="also write the fetch's decision flow (cache -> Vision -> REST) as a self-contained HTML page",
    )
    diagnose.add_argument("--verbose", "-v", action="store_true", help="also print the full event trace")
    return parser
