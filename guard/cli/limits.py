"""`guard limits [set KEY VALUE --reason TEXT]`: the limits that can change at run time, and a change of one.

A change that adds risk (more leverage, a larger notional or daily loss, a lower confidence floor) is refused
unless `--confirm-risk-increase` says it was meant, as an override that adds risk is.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from guard.cli._common import OPERATOR_HELP, operator_id, send_command, status_view
from guard.config import load_config

if TYPE_CHECKING:
    from guard.api.desk_views import LimitView


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `guard limits` and `guard limits set`."""
    limits_cmd = sub.add_parser("limits", help="the limits that can change at run time; change one")
    limits_cmd.set_defaults(handler=list_limits)
    verbs = limits_cmd.add_subparsers(dest="verb", metavar="VERB")
    verbs.add_parser("list", help="every limit: its value, what it allows, who changed it last").set_defaults(
        handler=list_limits
    )
    set_cmd = verbs.add_parser("set", help="change one limit (validated like config.toml, journaled)")
    set_cmd.add_argument("key", metavar="KEY", help="as `guard limits` lists it, e.g. risk.max_leverage")
    set_cmd.add_argument("value", metavar="VALUE")
    set_cmd.add_argument("--reason", required=True, help="why (recorded in the journal)")
    set_cmd.add_argument(
        "--confirm-risk-increase",
        action="store_true",
        help="required for a change that adds risk (a higher leverage, notional or daily loss limit)",
    )
    set_cmd.add_argument("--operator", help=OPERATOR_HELP)
    set_cmd.set_defaults(handler=set_limit)


def list_limits(args: argparse.Namespace) -> int:
    """Print every run-time limit."""
    print(describe_limits(status_view(load_config(args.config)).limits))
    return 0


def set_limit(args: argparse.Namespace) -> int:
    """Change one limit; say what changed, or why not."""
    from guard.api.protocol import SetRiskLimit

    config = load_config(args.config)
    reply = send_command(
        config,
        operator_id(config, args.operator),
        lambda cid: SetRiskLimit(cid, args.key, args.value, args.reason, args.confirm_risk_increase),
    )
    if reply.ok:
        print(reply.reason)
        return 0
    print(f"not changed: {reply.reason}", file=sys.stderr)
    if "confirm the increase" in reply.reason:
        print("add --confirm-risk-increase to make this change", file=sys.stderr)
    return 1


def last_change(limit: LimitView) -> str:
    """ "alice, 2026-12-06 03:50 UTC: calmer", or "—" for a limit still as configured."""
    if limit.changed_at is None:
        return "— (as configured)"
    when = datetime.fromtimestamp(limit.changed_at / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{limit.changed_by}, {when}" + (f": {limit.reason}" if limit.reason else "")


HEADERS = ("LIMIT", "VALUE", "ALLOWED", "RISKIER", "LAST CHANGED")


def describe_limits(limits: tuple[LimitView, ...]) -> str:
    """The limits as a table."""
    rows = [HEADERS, *((v.key, v.value, v.allowed, v.riskier, last_change(v)) for v in limits)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)
