"""Prices on the tick grid: barriers too close to the entry make no proposal, and the collar judges rounded
prices without ever tripping on rounding alone (a 0.002 token at two ticks, and ETH/BTC)."""

from __future__ import annotations

import math
from decimal import Decimal as D

from hypothesis import given, strategies as st
from msgspec.structs import replace

from guard.approval.pricing import moved, price_proposal
from guard.config import ModelSection, ProposalsSection, RiskSection
from guard.domain import ZERO, MarketKind, MarketSpec, Proposal, ProposalRequest, Side, Signal, TradingState
from guard.markets.ticks import MIN_BARRIER_TICKS, barrier_refusal, beyond_collar, ticks_between
from guard.proposals.policy import ProposalPolicy, RiskLimits
from guard.risk.checks import RiskContext


def spec(symbol: str, tick: str, step: str = "1", quote: str = "USDT") -> MarketSpec:
    base = symbol.split("/")[0]
    return MarketSpec(
        symbol=symbol,
        base=base,
        quote=quote,
        kind=MarketKind.LINEAR if ":" in symbol else MarketKind.SPOT,
        tick_size=D(tick),
        step_size=D(step),
        min_qty=D(step),
        min_notional=ZERO,
        maker_fee=D("0.0002"),
        taker_fee=D("0.0005"),
        max_leverage=D(20) if ":" in symbol else D(1),
    )


COARSE = spec("TOKEN/USDT:USDT", "0.0001")
FINE = spec("TOKEN/USDT:USDT", "0.000001")
ETHBTC = spec("ETH/BTC", "0.00001", step="0.0001", quote="BTC")


def signal(symbol: str, price: float, side: Side = Side.BUY, sigma: float = 0.001) -> Signal:
    return Signal(
        symbol=symbol,
        timestamp=0,
        price=price,
        probabilities=(0.1, 0.15, 0.75),
        side=side,
        confidence=0.75,
        novelty=0.4,
        novel=False,
        sigma=sigma,
        horizon_seconds=1800,
        model_id="m-1",
        model_age_days=2.0,
        why="",
        barrier=sigma * math.sqrt(30),
        bar_seconds=60,
    )


def policy() -> ProposalPolicy:
    return ProposalPolicy(ProposalsSection(), ModelSection(), RiskLimits(D(25_000), D(3)))


def on_grid(s: MarketSpec, price: D) -> bool:
    return price % s.tick_size == 0


def test_policy_on_a_token_at_0_002_with_a_coarse_tick_makes_no_proposal_and_says_why() -> None:
    """At 0.002 a 0.55 % barrier is a fraction of a 0.0001 tick: the stop rounds onto the entry, so no proposal."""
    outcome = policy().decide(signal(COARSE.symbol, 0.002), D(10_000), COARSE, D("0.00197"))
    assert outcome.request is None
    assert "tick" in outcome.reason and "within 2 ticks of the entry" in outcome.reason
    assert "0.0020" in outcome.reason


def test_policy_on_a_token_at_0_002_with_a_fine_tick_prices_on_the_grid() -> None:
    """With the venue's 0.000001 tick the same signal is a proposal whose every price is on the grid, with
    stop and take-profit more than two ticks from the entry."""
    request = policy().propose(signal(FINE.symbol, 0.002), D(10_000), FINE, D("0.0019734"))
    assert request is not None and request.stop is not None and request.take_profit is not None
    entry = FINE.round_price(D("0.0019734"))
    assert all(on_grid(FINE, p) for p in (request.stop, request.take_profit))
    assert request.stop < entry < request.take_profit
    assert ticks_between(FINE, entry, request.stop) > MIN_BARRIER_TICKS
    assert ticks_between(FINE, entry, request.take_profit) > MIN_BARRIER_TICKS


def test_policy_on_eth_btc_prices_a_sell_on_its_0_00001_tick() -> None:
    """ETH/BTC at 0.05123 (tick 0.00001): a sell's stop above and take-profit below, on the grid, apart."""
    request = policy().propose(signal(ETHBTC.symbol, 0.05123, Side.SELL), D(10_000), ETHBTC, D("0.051234"))
    assert request is not None and request.stop is not None and request.take_profit is not None
    assert request.take_profit < D("0.05123") < request.stop
    assert on_grid(ETHBTC, request.stop) and on_grid(ETHBTC, request.take_profit)
    assert ticks_between(ETHBTC, D("0.05123"), request.take_profit) > MIN_BARRIER_TICKS


def test_barriers_two_ticks_away_are_refused_and_three_pass() -> None:
    """Within two ticks (inclusive) of the rounded entry is too close; three ticks is a proposal."""
    entry = D("0.05123")
    assert barrier_refusal(ETHBTC, entry, D("0.05121"), D("0.05130")).startswith("stop 0.05121 is 2 ticks")
    assert barrier_refusal(ETHBTC, entry, D("0.05120"), D("0.051254")).startswith("take-profit 0.05125 is 2 ticks")
    assert barrier_refusal(ETHBTC, entry, D("0.05120"), D("0.05126")) == ""


def _proposal(s: MarketSpec, mark: D) -> Proposal:
    request = ProposalRequest(
        symbol=s.symbol,
        side=Side.BUY,
        qty=D(1000),
        leverage=D(1),
        stop=None,
        take_profit=None,
        confidence=0.7,
        sigma=0.0002,
        horizon_seconds=3600,
        source="operator",
    )
    context = RiskContext(
        trading_state=TradingState.ACTIVE,
        positions={},
        marks={},
        pending=(),
        leverage_acknowledged=False,
        throttle_latched=False,
        orders_last_minute=0,
        daily_pnl=ZERO,
        feed=None,
        spec=s,
    )
    return price_proposal(
        request,
        pid="P000001",
        version=1,
        mark=mark,
        spec=s,
        created_at=0,
        expires_at=30_000,
        ttl_seconds=30.0,
        context=context,
        limits=RiskSection(),
    )


def test_collar_on_a_coarse_tick_is_not_tripped_by_rounding() -> None:
    """Priced at 0.00197 → 0.0020: marks that round to 0.0020, or one tick away by rounding, are no move."""
    p = _proposal(COARSE, D("0.00197"))
    assert p.price == D("0.0020")
    for mark in ("0.00196", "0.00204", "0.001951", "0.00207"):
        assert moved(p, D(mark), 50, COARSE) is None, mark
    crossed = moved(p, D("0.00226"), 50, COARSE)
    assert crossed is not None and crossed.bps == D(1500)


def test_collar_on_eth_btc_trips_past_fifty_bps_of_rounded_prices() -> None:
    """ETH/BTC priced at 0.05123: 40 bps is no move, 60 bps is, and the bps reported are between rounded prices."""
    p = _proposal(ETHBTC, D("0.051234"))
    assert moved(p, p.price * D("1.004"), 50, ETHBTC) is None
    crossed = moved(p, p.price * D("1.006"), 50, ETHBTC)
    assert crossed is not None
    assert crossed.bps == abs(ETHBTC.round_price(p.price * D("1.006")) - p.price) / p.price * 10_000


@given(
    tick=st.sampled_from(["0.0001", "0.000001", "0.00001", "0.1"]),
    m0=st.decimals(min_value=D("0.0005"), max_value=D("100"), places=8),
    move_bps=st.decimals(min_value=D(-50), max_value=D(50), places=3),
)
def test_collar_never_trips_on_a_true_move_within_it(tick: str, m0: D, move_bps: D) -> None:
    """Whatever the tick and price, a true move within the 50 bps collar never counts as beyond it once rounded."""
    s = replace(COARSE, tick_size=D(tick))
    price = s.round_price(m0)
    if price <= 0:
        return
    m1 = m0 * (1 + move_bps / 10_000)
    assert not beyond_collar(s, price, m1, 50)
