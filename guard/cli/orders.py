"""`guard orders [list | cancel ID | amend ID --price P --qty Q]`: the resting orders, and an operator's cancel
or amend of one. Each change is journaled with who (`--operator`) and why (`--reason`)."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from guard.api.desk_views import HEADERS, age, order_rows
from guard.cli._common import OPERATOR_HELP, operator_id, send_command, status_view
from guard.config import load_config
from guard.errors import InvalidCommand

if TYPE_CHECKING:
    from guard.api.desk_views import OrderView
    from guard.api.protocol import Reply

ID_HELP = "the order as `guard orders` lists it (P000004-E), or its proposal's id when that has one order resting"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `guard orders` with `list`, `cancel` and `amend`."""
    orders_cmd = sub.add_parser("orders", help="resting orders (limits, stops, take-profits); cancel or amend one")
    orders_cmd.set_defaults(handler=list_orders)
    verbs = orders_cmd.add_subparsers(dest="verb", metavar="VERB")
    list_cmd = verbs.add_parser("list", help="every resting order with its proposal, age and distance to the mark")
    list_cmd.set_defaults(handler=list_orders)
    cancel_cmd = verbs.add_parser("cancel", help="cancel a resting order")
    cancel_cmd.add_argument("order", metavar="ID", help=ID_HELP)
    amend_cmd = verbs.add_parser(
        "amend", help="move a resting order's price or lower its quantity (cancelled, then replaced)"
    )
    amend_cmd.add_argument("order", metavar="ID", help=ID_HELP)
    amend_cmd.add_argument("--price", type=_decimal, default=None, help="the new limit or trigger price")
    amend_cmd.add_argument("--qty", type=_decimal, default=None, help="the new quantity (at most what is left)")
    for cmd, handler in ((cancel_cmd, cancel), (amend_cmd, amend)):
        cmd.add_argument("--reason", required=True, help="why (recorded in the journal)")
        cmd.add_argument("--operator", help=OPERATOR_HELP)
        cmd.set_defaults(handler=handler)


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def list_orders(args: argparse.Namespace) -> int:
    """Print the resting orders, oldest first."""
    status = status_view(load_config(args.config))
    print(describe_orders(status.orders, status.server_time))
    return 0


def cancel(args: argparse.Namespace) -> int:
    """Cancel one resting order."""
    from guard.api.protocol import CancelOrder

    config = load_config(args.config)
    reply = send_command(
        config, operator_id(config, args.operator), lambda cid: CancelOrder(cid, args.order, args.reason)
    )
    return _answered(reply, "cancel")


def amend(args: argparse.Namespace) -> int:
    """Amend one resting order's price or quantity."""
    from guard.api.protocol import AmendOrder

    if args.price is None and args.qty is None:
        raise InvalidCommand("give --price, --qty or both")
    config = load_config(args.config)
    reply = send_command(
        config,
        operator_id(config, args.operator),
        lambda cid: AmendOrder(cid, args.order, args.price, args.qty, args.reason),
    )
    return _answered(reply, "amend")


def _answered(reply: Reply, what: str) -> int:
    if reply.ok:
        print(reply.reason)
        return 0
    print(f"{what} refused: {reply.reason}", file=sys.stderr)
    return 1


def order_line(o: OrderView, now_ms: int) -> str:
    """One order in a sentence, for `guard status`: "P000004-E limit entry buy 0.05 BTC/USDT:USDT at 99000
    (-1.02% from the mark, 1m05s old)"."""
    where = f" at {format(o.price.normalize(), 'f')}" if o.price is not None else ""
    distance = f"{o.distance_pct:+.2f}% from the mark, " if o.distance_pct is not None else ""
    return (
        f"{o.order_id} {o.kind} {o.side.value} {format(o.qty.normalize(), 'f')} {o.symbol}{where} "
        f"({distance}{age(now_ms - o.placed_at)} old)"
    )


def describe_orders(orders: tuple[OrderView, ...], now_ms: int) -> str:
    """The resting orders as a table, or a line saying there are none."""
    if not orders:
        return "no resting orders"
    rows = [HEADERS, *order_rows(orders, now_ms)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)
