"""What the status says of the operator's desk beyond the queue: resting orders, and the limits that can change
at run time. Part of the wire protocol (`StatusView.orders`, `StatusView.limits`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from msgspec import Meta

from guard.domain import Side, Value

__all__ = ["HEADERS", "LimitView", "OrderName", "OrderView", "age", "order_rows"]

OrderName = Annotated[str, Meta(max_length=64)]
"""A resting order in a command: as `OrderView.order_id` names it, its client order id, or its proposal's id."""


class OrderView(Value, frozen=True):
    """A resting order (limit entry, stop, take-profit) as an operator should see it."""

    order_id: str
    """What `guard orders cancel` takes: the client order id without the journal's prefix ("P000004-E")."""
    client_order_id: str
    proposal_id: str | None
    symbol: str
    kind: str
    """"limit entry", "stop", "take-profit", ..."""
    side: Side
    qty: Decimal
    """Still to fill."""
    filled: Decimal
    price: Decimal | None
    placed_at: int
    """When it was sent (ms, the daemon's clock): its age is `StatusView.server_time` minus this."""
    distance_pct: float | None
    """How far its price is from the mark, in % of the mark (positive: above)."""
    reduce_only: bool


class LimitView(Value, frozen=True):
    """A limit that can change at run time (`SetRiskLimit`), as it stands."""

    key: str
    """As `guard limits set` and config.toml name it: "risk.max_leverage"."""
    value: str
    allowed: str
    riskier: str
    """Which way adds risk ("higher" or "lower"): a change that way must be confirmed."""
    changed_by: str = ""
    changed_at: int | None = None
    reason: str = ""


def age(ms: int) -> str:
    """ "45s", "3m05s", "2h04m": how long an order has rested."""
    s = max(0, ms // 1000)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


HEADERS = ("ORDER", "PROPOSAL", "KIND", "SIDE", "QTY", "PRICE", "AGE", "FROM MARK", "SYMBOL")


def order_rows(orders: tuple[OrderView, ...], now_ms: int) -> list[tuple[str, ...]]:
    """One row of text per order, in HEADERS' order: `guard orders` and the console's orders screen."""
    return [
        (
            o.order_id,
            o.proposal_id or "—",
            o.kind,
            o.side.value,
            format(o.qty.normalize(), "f"),
            format(o.price.normalize(), "f") if o.price is not None else "market",
            age(now_ms - o.placed_at),
            f"{o.distance_pct:+.2f}%" if o.distance_pct is not None else "—",
            o.symbol,
        )
        for o in orders
    ]
