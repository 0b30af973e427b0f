"""The proposal policy: sizing, leverage, barriers and the reasons for no proposal."""

from __future__ import annotations

import math
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings, strategies as st

from guard.config import ModelSection, ProposalsSection
from guard.domain import HARD_LEVERAGE_CAP, MarketKind, MarketSpec, Side, Signal
from guard.proposals.policy import ProposalPolicy, RiskLimits

SPEC = MarketSpec(
    symbol="BTC/USDT:USDT",
    base="BTC",
    quote="USDT",
    kind=MarketKind.LINEAR,
    tick_size=Decimal("0.1"),
    step_size=Decimal("0.001"),
    min_qty=Decimal("0.001"),
    min_notional=Decimal(5),
    maker_fee=Decimal("0.0002"),
    taker_fee=Decimal("0.0005"),
    max_leverage=Decimal(20),
)
LIMITS = RiskLimits(max_order_notional=Decimal(25_000), max_leverage=Decimal(3))
PRICE = Decimal(100_000)
EQUITY = Decimal(10_000)


def _signal(confidence: float = 0.75, side: Side | None = Side.BUY, t: int = 0, novel: bool = False) -> Signal:
    sigma = 0.001
    return Signal(
        symbol="BTC/USDT:USDT",
        timestamp=t,
        price=100_000.0,
        probabilities=(0.1, 0.15, 0.75),
        side=side,
        confidence=confidence,
        novelty=0.99 if novel else 0.4,
        novel=novel,
        sigma=sigma,
        horizon_seconds=1800,
        model_id="m-1",
        model_age_days=2.0,
        why="up: the 15-bar return (for)",
        barrier=sigma * math.sqrt(30),
        bar_seconds=60,
    )


def _policy(limits: RiskLimits = LIMITS, **overrides: object) -> ProposalPolicy:
    return ProposalPolicy(ProposalsSection(**overrides), ModelSection(), limits)  # type: ignore[arg-type]


def test_policy_full_confidence_buy_is_full_size_with_barriers() -> None:
    """At full-size confidence a buy commits 5 % of equity at 3x, with stop and take-profit on the barriers."""
    request = _policy().propose(_signal(0.75), EQUITY, SPEC, PRICE)
    assert request is not None
    assert request.side is Side.BUY and request.leverage == Decimal(3)
    assert request.qty == Decimal("0.015")  # 10,000 × 5 % × 3 / 100,000
    width = 0.001 * math.sqrt(30)
    assert request.stop == SPEC.round_price(PRICE * Decimal(str(math.exp(-width))))
    assert request.take_profit == SPEC.round_price(PRICE * Decimal(str(math.exp(width))))
    assert request.stop < PRICE < request.take_profit
    assert request.sigma == pytest.approx(0.001 / math.sqrt(60))
    assert request.horizon_seconds == 1800 and request.model_id == "m-1" and request.source == "model"
    assert request.why.startswith("buy 75% — up: the 15-bar return")


def test_policy_marginal_confidence_is_half_size_at_min_leverage() -> None:
    """Just above the threshold the proposal is half size at the minimum leverage."""
    request = _policy().propose(_signal(0.55), EQUITY, SPEC, PRICE)
    assert request is not None
    assert request.leverage == Decimal(1)
    assert request.qty == Decimal("0.002")  # 10,000 × 5 % × 0.5 × 1 / 100,000 = 0.0025, rounded down


def test_policy_sell_puts_stop_above_and_target_below() -> None:
    """A sell's stop sits above the price and its take-profit below."""
    request = _policy().propose(_signal(0.7, Side.SELL), EQUITY, SPEC, PRICE)
    assert request is not None and request.side is Side.SELL
    assert request.take_profit < PRICE < request.stop


def test_policy_below_min_confidence_proposes_nothing() -> None:
    """A signal below proposals.min_confidence gives no proposal, and says so."""
    outcome = _policy().decide(_signal(0.54), EQUITY, SPEC, PRICE)
    assert outcome.request is None and "below proposals.min_confidence" in outcome.reason


def test_policy_no_side_proposes_nothing() -> None:
    """A signal with no side gives no proposal."""
    assert _policy().propose(_signal(0.8, side=None), EQUITY, SPEC, PRICE) is None


def test_policy_novel_signal_suppressed_or_flagged_by_policy() -> None:
    """A novel signal is dropped under "suppress" and flagged for confirmation under "confirm"."""
    suppress = ProposalPolicy(ProposalsSection(), ModelSection(novelty_policy="suppress"), LIMITS)
    outcome = suppress.decide(_signal(0.8, novel=True), EQUITY, SPEC, PRICE)
    assert outcome.request is None and "guessing" in outcome.reason
    request = _policy().propose(_signal(0.8, novel=True), EQUITY, SPEC, PRICE)
    assert request is not None and request.novel and "NOVEL — the model is guessing" in request.why


def test_policy_cooldown_blocks_repeat_proposals_on_a_symbol() -> None:
    """After a proposal, the same symbol waits cooldown_bars bars before the next."""
    policy = _policy(cooldown_bars=5)
    assert policy.propose(_signal(t=0), EQUITY, SPEC, PRICE) is not None
    outcome = policy.decide(_signal(t=4 * 60_000), EQUITY, SPEC, PRICE)
    assert outcome.request is None and "cooldown" in outcome.reason
    assert policy.propose(_signal(t=5 * 60_000), EQUITY, SPEC, PRICE) is not None


def test_policy_caps_notional_at_the_risk_limit() -> None:
    """A large account is still capped at max_order_notional."""
    limits = RiskLimits(max_order_notional=Decimal(1_000), max_leverage=Decimal(3))
    request = _policy(limits).propose(_signal(0.9), Decimal(10_000_000), SPEC, PRICE)
    assert request is not None and request.qty * PRICE <= Decimal(1_000)


def test_policy_leverage_respects_risk_and_market_caps() -> None:
    """Leverage never exceeds the risk limit, the market's maximum or the hard cap."""
    spec = msgspec.structs.replace(SPEC, max_leverage=Decimal(2))
    policy = _policy(RiskLimits(Decimal(25_000), Decimal(20)), max_leverage=20)
    request = policy.propose(_signal(0.9), EQUITY, spec, PRICE)
    assert request is not None and request.leverage == Decimal(2)


def test_policy_too_small_to_trade_proposes_nothing() -> None:
    """A size that rounds below the market minimum gives no proposal."""
    outcome = _policy().decide(_signal(0.6), Decimal(100), SPEC, PRICE)
    assert outcome.request is None and "below the market minimum" in outcome.reason


@settings(max_examples=200, deadline=None)
@given(
    confidence=st.floats(0.0, 1.0),
    equity=st.decimals(1, 10**9, places=2),
    max_notional=st.decimals(10, 10**6, places=0),
    risk_leverage=st.decimals(1, 20, places=1),
    side=st.sampled_from([Side.BUY, Side.SELL]),
)
def test_policy_never_exceeds_limits(
    confidence: float, equity: Decimal, max_notional: Decimal, risk_leverage: Decimal, side: Side
) -> None:
    """Whatever the inputs, a proposal's notional and leverage stay within every limit."""
    limits = RiskLimits(max_order_notional=max_notional, max_leverage=risk_leverage)
    request = _policy(limits, max_leverage=20).propose(_signal(confidence, side), equity, SPEC, PRICE)
    if request is None:
        return
    assert confidence >= 0.55
    assert request.qty * PRICE <= max_notional
    assert Decimal(1) <= request.leverage <= min(risk_leverage, HARD_LEVERAGE_CAP)
    assert request.qty % SPEC.step_size == 0
