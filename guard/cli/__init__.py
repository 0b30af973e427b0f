"""The `guard` command line: the top-level parser, and `main`, which runs a command and turns errors into exit codes.

Each command group is one module here that registers its subcommands and holds their handlers; handlers parse
and print, and call into the package that owns the work. Building the parser, `guard kill` and `guard status`
must never wait on torch, ccxt or textual: a group module imports at its top nothing that pulls in a heavy
library (torch, ccxt, textual, aiohttp, numpy, pyarrow); a handler that needs one imports it when it runs.

Exit codes: 0 success, 1 failure, 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from guard.cli import (
    config,
    credentials,
    daemon,
    drill,
    history,
    journal,
    limits,
    mcp as mcp_command,  # `guard mcp`: LLM agents propose over MCP
    model,
    orders,
    replay,
    sim,
    tui,
)
from guard.errors import BadInput, GuardError


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: global options, then each group's subcommands, in the order `--help` lists them."""
    parser = argparse.ArgumentParser(
        prog="guard",
        description="A human-in-the-loop trade approval daemon for crypto paper trading.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="PATH",
        help="config file (default ./config.toml; defaults apply when it does not exist)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in (config, journal, sim, history, model, daemon, tui, orders, limits, drill, replay, credentials):
        group.register(sub)
    mcp_command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code (0 success, 1 failure, 2 bad input)."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
        if sys.stdout is not None:  # None when started with stdout closed (`guard kill >&-`): print() is a no-op
            sys.stdout.flush()  # a reader that went away shows up here, while the error can still be handled
        return code
    except BrokenPipeError:
        # `guard status | head`: the reader has what it wanted. End quietly, as a CLI killed by SIGPIPE would.
        _discard_stdout()
        return 1
    except BadInput as e:
        print(f"guard: {e}", file=sys.stderr)
        return 2
    except GuardError as e:
        print(f"guard: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of what is still buffered cannot fail again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (replaced by a test, or closed)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
