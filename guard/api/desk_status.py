"""The desk's resting orders and run-time limits as the status shows them (built by the hub)."""

from __future__ import annotations

from guard.api.desk_views import LimitView, OrderView
from guard.approval.desk import ApprovalDesk
from guard.approval.limits import runtime_limits
from guard.approval.orders import order_kind, order_price, short_id


def order_views(desk: ApprovalDesk) -> tuple[OrderView, ...]:
    """Every resting order, oldest first, with how far its price is from the mark."""
    views = []
    journal_id = desk.state.journal_id
    for record in desk.resting_orders():
        request = record.request
        price = order_price(request)
        mark = desk.marks.get(request.symbol)
        distance = float((price - mark) / mark * 100) if price is not None and mark else None
        views.append(
            OrderView(
                order_id=short_id(request.client_order_id, journal_id),
                client_order_id=request.client_order_id,
                proposal_id=request.proposal_id,
                symbol=request.symbol,
                kind=order_kind(request),
                side=request.side,
                qty=record.remaining,
                filled=record.filled,
                price=price,
                placed_at=record.submitted_at,
                distance_pct=distance,
                reduce_only=request.reduce_only,
            )
        )
    return tuple(views)


def limit_views(desk: ApprovalDesk) -> tuple[LimitView, ...]:
    """Every limit that can change at run time: its value, what it allows, and who changed it last."""
    return tuple(
        LimitView(
            key=info.key,
            value=info.value,
            allowed=info.allowed,
            riskier=info.riskier,
            changed_by=info.last_change.operator if info.last_change else "",
            changed_at=info.last_change.at if info.last_change else None,
            reason=info.last_change.reason if info.last_change else "",
        )
        for info in runtime_limits(desk.limits(), desk.state.limit_changes)
    )
