"""The ``fcp`` command: ``fcp cache-health`` checks a real kline cache, ``fcp diagnose`` explains one fetch.

See ``docs/cli.md``. Exit status: 0 healthy / fetch fine, 1 problems found, 2 usage error (or no network for a
live diagnose).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence

from pytest_fcp.cli.args import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, UsageError, build_parser
from pytest_fcp.cli.live import NoNetwork, check_network

__all__ = ["EXIT_OK", "EXIT_PROBLEMS", "EXIT_USAGE", "NoNetwork", "UsageError", "build_parser", "check_network", "main"]


def _diagnose(args: argparse.Namespace) -> int:
    """``fcp diagnose``: the simulated or the live run, its hints, the report."""
    from pytest_fcp.cli.diagnose import diagnose_simulated, prepare, show
    from pytest_fcp.cli.diagnose_html import check_html_path, write_html
    from pytest_fcp.cli.hints import add_hints
    from pytest_fcp.cli.live import diagnose_live

    html = check_html_path(args.html)
    factory, faults = prepare(args)
    diagnosis = diagnose_simulated(args, factory, faults) if args.simulate is not None else diagnose_live(args, factory)
    add_hints(diagnosis)
    status = show(diagnosis, args)
    if html is not None:
        write_html(diagnosis, html)
        print(f"fcp diagnose: HTML written to {html}", file=sys.stderr if args.json else sys.stdout)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fcp`` with ``argv`` (default: the command line); the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # --help (0) or a usage error already printed (2)
        return int(exc.code or 0)
    command = f"fcp {args.command}"
    try:
        if args.command == "cache-health":
            from pytest_fcp.cli.cache_health import cmd_cache_health

            return cmd_cache_health(args)
        return _diagnose(args)
    except UsageError as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NoNetwork as exc:
        print(f"{command}: error: no network: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `fcp cache-health | head`
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the interpreter's final flush
        return EXIT_OK
