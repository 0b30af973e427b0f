"""The state folded from the journal answers the questions the risk checks ask of it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from msgspec.structs import replace

from guard.approval.state import THROTTLE_WINDOW_MS, GuardState
from guard.config import RiskSection
from guard.domain import OrderPurpose, OrderRequest, OrderType, Side
from guard.errors import JournalCorrupt
from guard.events import OrderAccepted, OrderCancelled, OrderRejected, OrderSubmitted, OrderUnknown, RiskLimitChanged
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


def _limit_changed(key: str, old: str, new: str) -> RiskLimitChanged:
    return RiskLimitChanged(1_000, "alice", key, old, new, "")


def test_risk_limits_fold_each_change_once_onto_the_config() -> None:
    """Run-time limit changes, as journaled today (Decimals as strings, ints, floats), fold onto the config's
    limits; the last change of a key wins and the other keys keep the config's values."""
    base = RiskSection(max_orders_per_minute=30)
    state = GuardState(specs_for(), base)
    for change in (
        _limit_changed("max_order_notional", '"25000"', '"1000"'),
        _limit_changed("max_leverage", "3.0", "2.5"),
        _limit_changed("max_order_notional", '"1000"', '"2000"'),
        _limit_changed("max_orders_per_minute", "30", "5"),
    ):
        state.apply(change)
    assert state.limits == replace(base, max_order_notional=Decimal(2000), max_leverage=2.5, max_orders_per_minute=5)
    assert state.limits.daily_loss_limit == base.daily_loss_limit
    assert state.risk_limits == {"max_order_notional": '"2000"', "max_leverage": "2.5", "max_orders_per_minute": "5"}


@pytest.mark.parametrize(
    ("key", "new"),
    [("max_leverage", "50"), ("max_order_notional", '"-1"'), ("no_such_limit", "1"), ("max_leverage", "{not json")],
)
def test_risk_limit_change_the_config_would_refuse_is_a_corrupt_journal(key: str, new: str) -> None:
    """A journaled limit change that is out of range, unknown or not JSON is refused as a corrupt journal,
    naming the key, never folded in silently."""
    state = GuardState(specs_for())
    with pytest.raises(JournalCorrupt, match=key):
        state.apply(_limit_changed(key, "1", new))
    assert state.limits == RiskSection()


def test_live_orders_are_those_not_ended_in_submission_order_and_a_late_report_brings_one_back() -> None:
    """The live book (what protection, recovery and the kill switch read) holds every order that has not ended,
    in the order they were sent; an order a venue reports on after it had ended (an unknown outcome) is live
    again, in its place."""
    state = GuardState(specs_for())
    for n in range(4):
        state.apply(_submitted(1_000 + n, n, OrderPurpose.STOP))
    state.apply(OrderAccepted(2_000, "c1", "v1"))
    state.apply(OrderCancelled(2_001, "c0", "operator"))
    state.apply(OrderRejected(2_002, "c2", "venue said no"))
    assert [o.request.client_order_id for o in state.live_orders()] == ["c1", "c3"]
    assert [o.request.client_order_id for o in state.open_orders()] == ["c1"]
    assert [o.request.client_order_id for o in state.orders_in_doubt()] == ["c3"]
    state.apply(OrderUnknown(2_003, "c0", "the venue lost track of the cancel"))
    assert [o.request.client_order_id for o in state.live_orders()] == ["c0", "c1", "c3"]
