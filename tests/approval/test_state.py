"""The state folded from the journal answers the questions the risk checks ask of it."""

from __future__ import annotations

from decimal import Decimal

from guard.approval.state import THROTTLE_WINDOW_MS, GuardState
from guard.domain import OrderPurpose, OrderRequest, OrderType, Side
from guard.events import OrderSubmitted
from tests.builders import BTC, specs_for


def _submitted(at: int, n: int, purpose: OrderPurpose = OrderPurpose.CLOSE) -> OrderSubmitted:
    return OrderSubmitted(
        at,
        OrderRequest(
            client_order_id=f"c{n}",
            symbol=BTC,
            side=Side.SELL,
            qty=Decimal("0.01"),
            order_type=OrderType.MARKET,
            purpose=purpose,
        ),
    )


def test_orders_last_minute_counts_the_window_even_when_times_arrive_out_of_order() -> None:
    """The throttle counts entries and closes whose time lies within the last minute, however the clock
    stepped between them; stops and take-profits do not count."""
    state = GuardState(specs_for())
    for n, at in enumerate([1_000, 61_000, 30_000, 45_000]):
        state.apply(_submitted(at, n))
    state.apply(_submitted(50_000, 9, OrderPurpose.STOP))
    assert state.orders_last_minute(61_000) == 3  # 1_000 is exactly a minute old: out
    assert state.orders_last_minute(30_000 + THROTTLE_WINDOW_MS) == 2
    assert state.orders_last_minute(61_000 + THROTTLE_WINDOW_MS) == 0
