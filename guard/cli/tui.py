"""`guard tui`: attach the operator console to the running daemon."""

from __future__ import annotations

import argparse
import asyncio

from guard.cli._common import OPERATOR_HELP, operator_id
from guard.config import load_config
from guard.errors import DaemonError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `guard tui`."""
    tui = sub.add_parser("tui", help="attach the operator console to the running daemon (quitting leaves it running)")
    tui.add_argument("--operator", help=OPERATOR_HELP)
    tui.set_defaults(handler=attach)


def attach(args: argparse.Namespace) -> int:
    """guard tui [--operator ID]: refuse at once when no daemon answers, rather than open an empty console."""
    from guard.api.client import ApiClient
    from guard.tui.app import run_tui  # textual: only when a console opens

    config = load_config(args.config)
    client = ApiClient.from_config(config, timeout=2.0, operator=operator_id(config, args.operator))
    if asyncio.run(client.health()) is None:
        raise DaemonError(f"no guard daemon answers in {config.state_dir}: start one with `guard up`")
    return run_tui(config, operator_id(config, args.operator))
