"""The paper broker's intrabar path: within a bar the price travels, so a stop between the entry and the
liquidation price always fires before the liquidation; only a bar opening beyond both gaps through them."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given, settings, strategies as st

from guard.broker.paper import PaperBroker
from guard.broker.paper_market import bar_path, next_level
from guard.clock import TestClock
from guard.config import PaperSection
from guard.domain import Bar, MarkPrice, OrderPurpose, OrderRequest, OrderType, Side
from guard.events import OrderFilled, PositionLiquidated
from guard.markets import default_spec

BTC = "BTC/USDT:USDT"
SPEC = default_spec(BTC)
ENTRY = 100_000.0


def _opened(side: Side, stop_at: float) -> tuple[PaperBroker, D, D]:
    """A 10x position at 100,000 with a reduce-only stop `stop_at` of the way from the entry to liquidation."""
    b = PaperBroker({BTC: SPEC}, PaperSection(), TestClock())
    b.account.deposit(D(10_000))
    b.on_market(Bar(BTC, "1m", 0, ENTRY, ENTRY, ENTRY, ENTRY, 1.0))
    b.submit_nowait(OrderRequest("e", BTC, side, D("0.5"), OrderType.MARKET, OrderPurpose.ENTRY, leverage=D(10)))
    pos = b.account.position(BTC)
    assert pos is not None and pos.liquidation_price is not None
    liquidation = pos.liquidation_price
    stop = SPEC.round_price(pos.entry_price + (liquidation - pos.entry_price) * D(str(stop_at)))
    b.submit_nowait(
        OrderRequest(
            "s",
            BTC,
            side.opposite,
            D("0.5"),
            OrderType.STOP_MARKET,
            OrderPurpose.STOP,
            leverage=D(10),
            trigger_price=stop,
            reduce_only=True,
        )
    )
    return b, stop, liquidation


def _walk(b: PaperBroker, o: float, h: float, lo: float, c: float, open_ms: int = 60_000) -> list[object]:
    reports: list[object] = []
    for k, price in enumerate(bar_path(o, h, lo, c)):
        reports += b.on_market(MarkPrice(BTC, open_ms + k * 20_000, price))
    reports += b.on_market(Bar(BTC, "1m", open_ms, o, h, lo, c, 1.0))
    return reports


@settings(max_examples=300, deadline=None)
@given(
    side=st.sampled_from([Side.BUY, Side.SELL]),
    stop_at=st.floats(0.05, 0.95),
    opening=st.floats(-0.004, 0.004),
    wick=st.floats(0.0, 0.5),
    rally=st.floats(0.0, 0.05),
    closing=st.floats(0.0, 1.0),
)
def test_a_stop_between_entry_and_liquidation_fires_before_the_liquidation(
    side: Side, stop_at: float, opening: float, wick: float, rally: float, closing: float
) -> None:
    """Whatever the bar — a wick far past the liquidation price included — a bar that opens on the entry's side
    of the stop stops the position out and never liquidates it."""
    b, stop, _liquidation = _opened(side, stop_at)
    s = 1 if side is Side.BUY else -1
    o = ENTRY * (1 + s * opening)
    if (o <= float(stop)) if side is Side.BUY else (o >= float(stop)):
        return  # opens beyond the stop: a gap, the other test
    adverse = o * (1 - s * wick)  # toward (and maybe far past) the liquidation price
    favourable = o * (1 + s * rally)
    h, lo = max(adverse, favourable, o), min(adverse, favourable, o)
    c = lo + (h - lo) * closing
    reports = _walk(b, o, h, lo, c)
    liquidations = [r for r in reports if isinstance(r, PositionLiquidated)]
    stopped = [r for r in reports if isinstance(r, OrderFilled) and r.fill.client_order_id == "s"]
    reached = (adverse <= float(stop)) if side is Side.BUY else (adverse >= float(stop))
    assert liquidations == []
    assert bool(stopped) == reached
    if reached:
        assert b.account.position(BTC) is None


def test_a_bar_that_opens_beyond_stop_and_liquidation_gaps_through_both() -> None:
    """A long whose next bar opens below its liquidation price is liquidated at the open: a gap, not a path."""
    b, _stop, liquidation = _opened(Side.BUY, 0.5)
    o = float(liquidation) * 0.99
    reports = _walk(b, o, o * 1.001, o * 0.99, o)
    (liquidated,) = [r for r in reports if isinstance(r, PositionLiquidated)]
    assert liquidated.price == D(str(o))
    assert not [r for r in reports if isinstance(r, OrderFilled)]


def test_the_path_visits_the_nearer_extreme_first() -> None:
    """Open, the extreme nearer the open, the other extreme, the close."""
    assert bar_path(100, 110, 99, 105) == (100, 99, 110, 105)
    assert bar_path(100, 101, 90, 95) == (100, 101, 90, 95)
    assert bar_path(100, 105, 95, 101) == (100, 95, 105, 101)  # as near: an up bar dips first


def test_next_level_is_the_nearest_strictly_between() -> None:
    """Travelling down from 100 to 90, 97 comes before 95; levels at either end are not between."""
    levels = [D(95), None, D(97), D(100), D(90), D(120)]
    assert next_level(D(100), D(90), levels) == D(97)
    assert next_level(D(90), D(100), levels) == D(95)
    assert next_level(D(96), D(96), levels) is None
