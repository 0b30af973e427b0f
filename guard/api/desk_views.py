"""What the status says of the operator's desk beyond the queue: resting orders, and the limits that can change
at run time. Part of the wire protocol (`StatusView.orders`, `StatusView.limits`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from msgspec import Meta

from guard.domain import Side, Value

__all__ = ["LimitView", "OrderName", "OrderView"]

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
