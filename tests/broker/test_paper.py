"""The paper broker, by worked example: fees, slippage, partial fills, funding, liquidation, restarts."""

from __future__ import annotations

import math
from decimal import Decimal as D

import pytest
from hypothesis import given, settings, strategies as st
from msgspec.structs import replace

from guard.approval.state import GuardState
from guard.broker.paper import PaperBroker
from guard.clock import TestClock
from guard.config import PaperSection
from guard.domain import (
    Bar,
    Book,
    Liquidity,
    MarkPrice,
    OrderPurpose,
    OrderRequest,
    OrderType,
    Side,
    Ticker,
)
from guard.errors import InvalidCommand, InvalidMarketData
from guard.events import (
    AccountFunded,
    FundingPaid,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    PositionLiquidated,
)
from guard.markets import default_spec

BTC = "BTC/USDT:USDT"
SPOT = "BTC/USDT"
NO_SLIPPAGE = PaperSection(slippage_bps=0, slippage_size_bps_per_million=0, slippage_vol_multiplier=0)


def broker(settings: PaperSection = NO_SLIPPAGE, balance: str = "10000", clock: TestClock | None = None) -> PaperBroker:
    clock = clock or TestClock()
    b = PaperBroker({BTC: default_spec(BTC), SPOT: default_spec(SPOT)}, settings, clock)
    b.account.deposit(D(balance))
    return b


def order(cid: str = "c1", side: Side = Side.BUY, qty: str = "0.1", leverage: str = "10", **kw: object) -> OrderRequest:
    return OrderRequest(
        client_order_id=cid,
        symbol=kw.pop("symbol", BTC),
        side=side,
        qty=D(qty),
        order_type=kw.pop("order_type", OrderType.MARKET),
        purpose=kw.pop("purpose", OrderPurpose.ENTRY),
        leverage=D(leverage),
        **kw,
    )


def mark(b: PaperBroker, price: float, symbol: str = BTC, ts: int = 0, rate: float | None = None) -> list:
    return b.on_market(MarkPrice(symbol, ts, price, funding_rate=rate))


def fills(reports: list) -> list:
    return [r.fill for r in reports if isinstance(r, OrderFilled)]


def test_market_order_taker_fee_and_margin_worked_example() -> None:
    """0.1 BTC at 100,000, 10x: fee 5 bps = 5 USDT, margin 1,000, the rest free."""
    b = broker()
    mark(b, 100_000)
    reports = b.submit_nowait(order())
    assert isinstance(reports[0], OrderAccepted)
    (fill,) = fills(reports)
    assert (fill.price, fill.fee, fill.liquidity) == (D("100000.0"), D("5.00000000"), Liquidity.TAKER)
    balance = b.account.balance()
    assert (balance.total, balance.used, balance.free) == (D("9995"), D("1000"), D("8995"))
    assert b.account.position(BTC).liquidation_price == D("90361.4")


def test_market_order_slippage_grows_with_size_and_volatility() -> None:
    """Slippage is base bps + size bps per million + a multiple of per-bar σ."""
    settings = PaperSection(slippage_bps=1, slippage_size_bps_per_million=10, slippage_vol_multiplier=0.1)
    b = broker(settings, balance="10000000")
    mark(b, 100_000)
    small = fills(b.submit_nowait(order("s", qty="0.01", leverage="1")))[0].price
    large = fills(b.submit_nowait(order("l", qty="50", leverage="1")))[0].price
    assert small == D("100010.1")  # 1 bps + 10 bps × 0.001 M = 1.01 bps
    assert large == D("100510.0")  # 1 bps + 10 bps × 5 M = 51 bps
    for i, close in enumerate([100_000, 101_000, 99_000, 101_500, 98_500]):
        b.on_market(Bar(BTC, "1m", i * 60_000, close, close, close, close, 1.0))
    b.on_market(MarkPrice(BTC, 0, 100_000))
    volatile = fills(b.submit_nowait(order("v", qty="0.01", leverage="1")))[0].price
    assert volatile > small


def test_market_order_walks_book_and_partially_fills_beyond_depth() -> None:
    """With a known book, a buy takes level by level; what the book cannot fill is cancelled."""
    b = broker()
    b.on_market(Book(BTC, 0, bids=((99_990.0, 1.0),), asks=((100_000.0, 0.05), (100_010.0, 0.05))))
    reports = b.submit_nowait(order(qty="0.2", leverage="5"))
    assert [(f.qty, f.price) for f in fills(reports)] == [(D("0.05"), D("100000.0")), (D("0.05"), D("100010.0"))]
    assert isinstance(reports[-1], OrderCancelled) and "book depth exhausted: 0.1" in reports[-1].reason
    assert b.account.position(BTC).qty == D("0.1")
    b.account.check()


def test_funding_paid_by_long_at_funding_time() -> None:
    """At 08:00 UTC a long pays mark × qty × rate; its isolated margin, and so its liquidation price, move."""
    b = broker()
    mark(b, 100_000, ts=7 * 3_600_000)
    b.submit_nowait(order())
    before = b.account.position(BTC)
    reports = mark(b, 100_000, ts=8 * 3_600_000, rate=0.0001)
    (funding,) = [r for r in reports if isinstance(r, FundingPaid)]
    assert funding.amount == D("-1.00000000")
    after = b.account.position(BTC)
    assert after.margin == before.margin - 1
    assert after.liquidation_price > before.liquidation_price
    assert b.account.balance().total == D("9994")
    b.account.check()


def test_funding_received_by_short() -> None:
    """A short receives funding when the rate is positive."""
    b = broker()
    mark(b, 100_000, ts=7 * 3_600_000)
    b.submit_nowait(order(side=Side.SELL))
    (funding,) = [r for r in mark(b, 100_000, ts=8 * 3_600_000, rate=0.0001) if isinstance(r, FundingPaid)]
    assert funding.amount == D("1.00000000")


def test_liquidation_when_mark_crosses_liquidation_price() -> None:
    """A 10x long liquidates when the mark reaches 90,361.4; its whole isolated margin is lost."""
    b = broker()
    mark(b, 100_000)
    b.submit_nowait(order())
    assert mark(b, 90_400) == []
    (liquidated,) = mark(b, 90_361.4)
    assert isinstance(liquidated, PositionLiquidated)
    assert (liquidated.loss, liquidated.qty) == (D(1000), D("0.1"))
    assert b.account.position(BTC) is None
    assert b.account.balance() == b.account.balance().__class__(D("8995"), D("8995"), D(0))
    b.account.check()


def test_liquidation_cancels_protective_orders() -> None:
    """A stop left on a liquidated position is cancelled: it protects nothing."""
    b = broker()
    mark(b, 100_000)
    b.submit_nowait(order())
    stop = order("stop", side=Side.SELL, order_type=OrderType.STOP_MARKET, trigger_price=D(80_000), reduce_only=True)
    b.submit_nowait(stop)
    reports = mark(b, 90_000)
    assert any(isinstance(r, OrderCancelled) and r.client_order_id == "stop" for r in reports)


def test_limit_order_rests_reserves_margin_and_fills_as_maker() -> None:
    """A buy limit below the market rests with its margin reserved, then fills at its price with the maker fee."""
    b = broker()
    mark(b, 100_000)
    reports = b.submit_nowait(order(order_type=OrderType.LIMIT, limit_price=D(99_000)))
    assert [type(r) for r in reports] == [OrderAccepted]
    assert b.account.balance().used == D(990)
    b.account.check()
    (filled,) = mark(b, 98_990)
    assert (filled.fill.price, filled.fill.liquidity, filled.fill.fee) == (D(99_000), Liquidity.MAKER, D("1.98000000"))
    assert b.account.balance().used == D(990)
    b.account.check()


def test_stop_market_triggers_on_mark_and_closes_position() -> None:
    """A reduce-only stop sells the position when the mark falls to its trigger: the price travels through the
    trigger on its way to 96,990, so the stop fills there (at 97,000, no slippage configured)."""
    b = broker()
    mark(b, 100_000)
    b.submit_nowait(order())
    b.submit_nowait(
        order("s", side=Side.SELL, order_type=OrderType.STOP_MARKET, trigger_price=D(97_000), reduce_only=True)
    )
    assert mark(b, 97_500) == []
    (closed,) = [r for r in mark(b, 96_990) if isinstance(r, OrderFilled)]
    assert closed.fill.qty == D("0.1") and closed.fill.price == D(97_000)
    assert b.account.position(BTC) is None
    assert b.account.realized_pnl == D("-300.00000000")


def test_stop_market_after_a_closed_bar_fills_at_the_gap() -> None:
    """After a bar closed, the next price may open beyond the trigger: the stop fills at that price, not its trigger."""
    b = broker()
    mark(b, 100_000)
    b.submit_nowait(order())
    b.submit_nowait(
        order("s", side=Side.SELL, order_type=OrderType.STOP_MARKET, trigger_price=D(97_000), reduce_only=True)
    )
    b.on_market(Bar(BTC, "1m", 0, 100_000, 100_100, 99_900, 99_000, 1.0))
    (closed,) = [r for r in mark(b, 96_500, ts=60_000) if isinstance(r, OrderFilled)]
    assert closed.fill.price == D(96_500)


def test_reduce_only_is_capped_to_position_and_refused_without_one() -> None:
    """A reduce-only order never opens or flips a position."""
    b = broker()
    mark(b, 100_000)
    assert isinstance(b.submit_nowait(order("r0", side=Side.SELL, reduce_only=True))[0], OrderRejected)
    b.submit_nowait(order())
    (fill,) = fills(b.submit_nowait(order("r1", side=Side.SELL, qty="5", reduce_only=True)))
    assert fill.qty == D("0.1")
    assert b.account.position(BTC) is None


def test_duplicate_client_order_id_never_fills_twice() -> None:
    """A resent order with the same client order id is rejected: a retry can never fill twice."""
    b = broker()
    mark(b, 100_000)
    assert fills(b.submit_nowait(order()))
    second = b.submit_nowait(order())
    assert [type(r) for r in second] == [OrderRejected]
    assert b.account.position(BTC).qty == D("0.1")


def test_insufficient_margin_is_rejected_before_acceptance() -> None:
    """An order the account cannot margin is rejected with the numbers."""
    b = broker(balance="100")
    mark(b, 100_000)
    (rejected,) = b.submit_nowait(order(leverage="2"))
    assert isinstance(rejected, OrderRejected) and "insufficient margin" in rejected.reason


def test_spot_buy_costs_notional_and_cannot_go_short() -> None:
    """Spot holds the asset at full cost; selling more than held is refused."""
    b = broker()
    mark(b, 50_000, symbol=SPOT)
    b.submit_nowait(order(symbol=SPOT, leverage="1"))
    assert b.account.balance().used == D(5000)
    assert b.account.position(SPOT).liquidation_price is None
    assert isinstance(
        b.submit_nowait(order("x", symbol=SPOT, side=Side.SELL, qty="0.2", leverage="1"))[0], OrderRejected
    )
    assert isinstance(b.submit_nowait(order("y", symbol=SPOT, leverage="2"))[0], OrderRejected)


@pytest.mark.parametrize("bad", [math.nan, -1.0, 0.0, math.inf])
def test_bad_prices_are_refused_and_change_nothing(bad: float) -> None:
    """NaN, negative, zero and infinite prices raise a clear error and leave the books untouched."""
    b = broker()
    mark(b, 100_000)
    b.submit_nowait(order())
    before = b.account.snapshot()
    with pytest.raises(InvalidMarketData, match="not a positive, finite price"):
        mark(b, bad)
    with pytest.raises(InvalidMarketData):
        b.on_market(Ticker(BTC, 0, 100_000.0, bid=bad, ask=100_001.0))
    with pytest.raises(InvalidMarketData):
        b.on_market(Book(BTC, 0, bids=((bad, 1.0),), asks=((100_001.0, 1.0),)))
    assert b.mark(BTC) == D(100_000)
    assert b.account.snapshot() == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"qty": D(0)}, "quantity must be a positive number"),
        ({"qty": D(-1)}, "quantity must be a positive number"),
        ({"leverage": D(0)}, "leverage must be at least 1"),
        ({"order_type": OrderType.LIMIT, "limit_price": D(-5)}, "limit price must be a positive number"),
        ({"order_type": OrderType.LIMIT}, "needs a limit price"),
        ({"symbol": "DOGE/USDT:USDT"}, "unknown symbol"),
    ],
)
def test_bad_orders_raise_and_are_not_remembered(change: dict, message: str) -> None:
    """Malformed orders raise InvalidCommand; the client order id stays unused."""
    b = broker()
    mark(b, 100_000)
    with pytest.raises(InvalidCommand, match=message):
        b.submit_nowait(replace(order(), **change))
    assert fills(b.submit_nowait(order()))


async def test_recover_restores_books_and_settles_orders_in_doubt() -> None:
    """After a restart the paper venue takes the journal's books; an order in doubt was never executed."""
    b = broker()
    mark(b, 100_000)
    b.submit_nowait(order())
    account = b.account.copy()
    fresh = broker()
    reports = await fresh.recover(account, [], {"c1", "c2"}, [order("c2")])
    assert [type(r) for r in reports] == [OrderRejected]
    assert fresh.account.snapshot() == b.account.snapshot()
    mark(fresh, 100_000)
    assert isinstance(fresh.submit_nowait(order("c2"))[0], OrderRejected)


ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("mark"), st.floats(min_value=80_000, max_value=120_000)),
        st.tuples(
            st.just("order"),
            st.sampled_from([Side.BUY, Side.SELL]),
            st.sampled_from(["0.01", "0.05", "0.2"]),
            st.sampled_from(["1", "3", "10", "20"]),
            st.booleans(),
            st.sampled_from([None, 95_000, 105_000]),
        ),
        st.tuples(st.just("funding"), st.floats(min_value=-0.003, max_value=0.003)),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(ACTIONS)
def test_ledger_invariant_holds_after_every_step(actions: list) -> None:
    """free + used == total after every order, fill, funding payment and liquidation; and the journal's
    fold of the same orders and reports reproduces the venue's books exactly."""
    clock = TestClock()
    b = broker(PaperSection(), clock=clock)
    folded = GuardState(b.account.specs)
    folded.apply(AccountFunded(0, "USDT", D(10_000)))
    ts = 0
    mark(b, 100_000)
    for n, action in enumerate(actions):
        if action[0] == "mark":
            reports = mark(b, round(action[1], 1), ts=ts)
        elif action[0] == "funding":
            ts += 8 * 3_600_000
            reports = mark(b, float(b.mark(BTC)), ts=ts, rate=action[1])
        else:
            _, side, qty, lev, reduce_only, limit = action
            request = order(f"c{n}", side, qty, lev, reduce_only=reduce_only)
            if limit is not None:
                request = replace(request, order_type=OrderType.LIMIT, limit_price=D(limit))
            folded.apply(OrderSubmitted(0, request))
            reports = b.submit_nowait(request)
        for report in reports:
            folded.apply(report)
        b.account.check()
        folded.account.check()
        assert folded.account.snapshot() == b.account.snapshot()
