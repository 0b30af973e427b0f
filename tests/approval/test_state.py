"""The state folded from the journal answers the questions the risk checks ask of it."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from msgspec.structs import replace

from guard.approval.state import THROTTLE_WINDOW_MS, GuardState
from guard.config import RiskSection
from guard.domain import ZERO, Fill, Liquidity, OrderPurpose, OrderRequest, OrderStatus, OrderType, Side
from guard.errors import JournalCorrupt
from guard.events import (
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    OrderUnknown,
    RiskLimitChanged,
)
from tests.builders import BTC, ETH, specs_for


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


def test_reduce_only_resting_and_the_live_book_agree_with_a_walk_of_every_order() -> None:
    """The indexes the fold keeps (what reduce-only orders rest for per symbol and purpose, the live book) say
    what walking every order ever sent says, at every step of a long random life of orders: submitted,
    accepted, filled in parts, cancelled, rejected, in doubt, and reported on by a venue after they ended."""
    rng = random.Random(16)
    state = GuardState(specs_for())
    working = (OrderStatus.SENDING, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)
    purposes = (OrderPurpose.STOP, OrderPurpose.TAKE_PROFIT, OrderPurpose.CLOSE, OrderPurpose.FLATTEN)
    sent: list[OrderRequest] = []
    for at in range(1, 3_000):
        if not sent or rng.random() < 0.3:
            cid = f"c{len(sent)}"
            symbol, purpose = rng.choice((BTC, ETH)), rng.choice(purposes)
            qty = Decimal(rng.randint(1, 9)) / 100
            reduce_only = purpose is not OrderPurpose.CLOSE or rng.random() < 0.5
            sent.append(OrderRequest(cid, symbol, Side.SELL, qty, OrderType.MARKET, purpose, reduce_only=reduce_only))
            state.apply(OrderSubmitted(at, sent[-1]))
        else:
            request = rng.choice(sent)
            order = state.orders[request.client_order_id]
            cid, kind = request.client_order_id, rng.randrange(5)
            if kind == 0:
                state.apply(OrderAccepted(at, cid, f"v{cid}"))
            elif kind == 1 and order.remaining > 0:
                qty = min(order.remaining, Decimal(rng.randint(1, 5)) / 100)
                fill = Fill(cid, f"f{at}", request.symbol, Side.SELL, qty, Decimal(100), ZERO, Liquidity.TAKER, at)
                state.apply(OrderFilled(at, fill, order.remaining - qty))
            elif kind == 2:
                state.apply(OrderCancelled(at, cid, "operator"))
            elif kind == 3:
                state.apply(OrderRejected(at, cid, "venue said no"))
            else:
                state.apply(OrderUnknown(at, cid, "no answer"))
        every = list(state.orders.values())
        assert state.live_orders() == [o for o in every if not o.status.is_final]
        for symbol in (BTC, ETH):
            for purpose in purposes:
                walked = sum(
                    (
                        o.remaining
                        for o in every
                        if o.status in working
                        and o.request.reduce_only
                        and (o.request.symbol, o.request.purpose) == (symbol, purpose)
                    ),
                    ZERO,
                )
                assert state.live.resting(symbol, purpose) == walked
