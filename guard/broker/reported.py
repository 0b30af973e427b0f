"""What the sandbox broker has reported about each order, and the reports a venue's record adds, once each.

A poll, a lookup and a restart may all look at the same order: `TrackedOrder` remembers what was
already said (accepted, the quantity filled, ended), and `settle` turns what the venue says now
into only the reports not yet made. It is synchronous on purpose: what is reported and what is
remembered change together, with no await between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from guard.broker.base import BrokerReport
from guard.broker.venue_records import VenueOrder
from guard.domain import ZERO, Fill, OrderRequest
from guard.events import OrderAccepted, OrderCancelled, OrderFilled, OrderRejected

_ENDED = ("closed", "canceled", "expired", "rejected")


@dataclass(slots=True)
class TrackedOrder:
    """What the broker has reported about one order (so nothing is reported twice)."""

    request: OrderRequest
    accepted: bool = False
    executed: Decimal = ZERO
    """Quantity already reported as filled."""
    final: bool = False
    in_flight: bool = False
    deadline: float = 0.0
    """time.monotonic() after which a venue that does not know the order never will."""


def settle(
    tracked: TrackedOrder,
    order: VenueOrder,
    fills_from: VenueOrder,
    new_fills: Sequence[Fill],
    *,
    now: int,
    venue: str,
    cancel_reason: str = "",
) -> list[BrokerReport]:
    """The reports the venue's record of an order adds to what was reported, remembered as reported.

    Args:
        order: the order as the venue reports it.
        fills_from: the order that holds its fills (a triggered conditional order's market order,
            else `order` itself).
        new_fills: the venue's trades of it not yet reported.
        venue: names the venue in the reasons given.
        cancel_reason: why an order that ended unfilled was cancelled, when guard cancelled it.
    """
    request = tracked.request
    cid = request.client_order_id
    reports: list[BrokerReport] = []
    if order.status == "rejected" and not tracked.accepted and order.executed == 0:
        tracked.final = True
        return [OrderRejected(now, cid, f"rejected by {venue}")]
    if not tracked.accepted:
        tracked.accepted = True
        reports.append(OrderAccepted(now, cid, order.venue_id))
    for fill in new_fills:
        tracked.executed += fill.qty
        reports.append(OrderFilled(now, fill, request.qty - tracked.executed))
    if tracked.final:
        return reports
    if fills_from.status in _ENDED and tracked.executed >= fills_from.executed:
        tracked.final = True
        if tracked.executed < request.qty:
            why = cancel_reason or f"{fills_from.status} at {venue}"
            reports.append(OrderCancelled(now, cid, f"{why}: {request.qty - tracked.executed} not filled"))
    return reports
