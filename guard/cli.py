"""The `guard` command line: parses arguments and calls in. No logic lives here.

Exit codes: 0 success, 1 failure, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from guard.errors import BadInput, GuardError

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="guard",
        description="A human-in-the-loop trade approval daemon for crypto paper trading.",
    )
    parser.add_argument(
        "--config", type=Path, default=None, metavar="PATH",
        help="config file (default ./config.toml; defaults apply when it does not exist)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # >>> config
    config = sub.add_parser("config", help="validate a config file")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="exit 0 when valid, 2 naming the offending key when not")
    check.add_argument("path", nargs="?", type=Path, default=None)
    check.set_defaults(handler=_lazy("guard.commands", "config_check"))
    # <<< config

    # >>> journal
    journal = sub.add_parser("journal", help="verify, export or follow the audit journal")
    journal_sub = journal.add_subparsers(dest="journal_command", required=True)
    verify = journal_sub.add_parser("verify", help="check the hash chain of every event")
    verify.set_defaults(handler=_lazy("guard.journal.commands", "verify"))
    export = journal_sub.add_parser("export", help="write every event as CSV or Parquet")
    export.add_argument("--format", choices=("csv", "parquet"), default="csv")
    export.add_argument("--out", type=Path, default=None, help="file to write (default: stdout for CSV)")
    export.set_defaults(handler=_lazy("guard.journal.commands", "export"))
    tail = journal_sub.add_parser("tail", help="print the last events, and follow new ones")
    tail.add_argument("-n", type=int, default=20, help="how many past events to print")
    tail.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    tail.set_defaults(handler=_lazy("guard.journal.commands", "tail"))
    # <<< journal

    # >>> sim (feed and simulated exchange)
    # <<< sim

    # >>> history
    # <<< history

    # >>> model
    # <<< model

    # >>> daemon
    # <<< daemon

    # >>> tui
    # <<< tui

    # >>> drill
    # <<< drill

    return parser


def _lazy(module: str, name: str) -> Handler:
    """Import a command's module only when it runs, so `guard kill` never waits on torch."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        handler: Handler = getattr(importlib.import_module(module), name)
        return handler(args)

    return run


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except BadInput as e:
        print(f"guard: {e}", file=sys.stderr)
        return 2
    except GuardError as e:
        print(f"guard: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
