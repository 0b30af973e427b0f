"""Each pre-trade check is a pure function: pass, warn or block, with a reason a person can act on."""

from __future__ import annotations

from decimal import Decimal as D

import msgspec
import pytest

from guard.config import RiskSection
from guard.domain import (
    FeedHealth,
    MarketKind,
    OrderType,
    Position,
    Proposal,
    Side,
    TradingState,
    Verdict,
)
from guard.markets import default_spec
from guard.risk import checks
from guard.risk.checks import RiskContext, increases_risk, run_checks

SPEC = default_spec("BTC/USDT:USDT")
LIMITS = RiskSection()


def proposal(**changes: object) -> Proposal:
    base = Proposal(
        id="P000001",
        version=1,
        symbol="BTC/USDT:USDT",
        side=Side.BUY,
        qty=D("0.05"),
        leverage=D(3),
        order_type=OrderType.MARKET,
        limit_price=None,
        stop=D(97_000),
        take_profit=D(104_000),
        price=D(100_000),
        liquidation_price=D("66934.4"),
        p_liquidation=0.0001,
        liquidation_distance_sigma=30.0,
        confidence=0.7,
        novelty=0.2,
        novel=False,
        sigma=0.0002,
        horizon_seconds=3600,
        model_id="m",
        why="",
        source="model",
        created_at=0,
        expires_at=30_000,
        checks=(),
    )
    return msgspec.structs.replace(base, **changes)


def context(**changes: object) -> RiskContext:
    base = RiskContext(
        trading_state=TradingState.ACTIVE,
        positions={},
        marks={"BTC/USDT:USDT": D(100_000)},
        pending=[],
        leverage_acknowledged=False,
        throttle_latched=False,
        orders_last_minute=0,
        daily_pnl=D(0),
        feed=None,
        spec=SPEC,
    )
    return msgspec.structs.replace(base, **changes)


def long_position(qty: str) -> Position:
    return Position("BTC/USDT:USDT", MarketKind.LINEAR, D(qty), D(100_000), D(3), D(1000), D(70_000))


def test_run_checks_clean_proposal_passes_everything() -> None:
    """A modest, stopped, confident proposal passes every check."""
    verdicts = {c.name: c.verdict for c in run_checks(proposal(), context(), LIMITS)}
    assert set(verdicts.values()) == {Verdict.PASS}
    assert len(verdicts) == len(checks.ALL_CHECKS)


@pytest.mark.parametrize(
    ("leverage", "acknowledged", "verdict", "reason"),
    [
        ("3", False, Verdict.PASS, "3x"),
        ("4", False, Verdict.BLOCK, "needs a leverage acknowledgment"),
        ("4", True, Verdict.WARN, "above the conservative 3x"),
        ("10", False, Verdict.BLOCK, "needs a leverage acknowledgment"),
        ("20", True, Verdict.WARN, "acknowledged"),
        ("21", True, Verdict.BLOCK, "hard cap of 20x"),
    ],
)
def test_check_leverage_conservative_limit_acknowledgment_and_hard_cap(
    leverage: str, acknowledged: bool, verdict: Verdict, reason: str
) -> None:
    """Above the conservative limit needs an acknowledgment; nothing passes the 20x hard cap."""
    result = checks.check_leverage(proposal(leverage=D(leverage)), context(leverage_acknowledged=acknowledged), LIMITS)
    assert result.verdict is verdict
    assert reason in result.reason


def test_check_leverage_above_5x_needs_ack_even_when_config_allows_more() -> None:
    """A config conservative limit of 10x still cannot let 6x through without an acknowledgment."""
    limits = msgspec.structs.replace(LIMITS, max_leverage=10.0)
    assert checks.check_leverage(proposal(leverage=D(6)), context(), limits).verdict is Verdict.BLOCK
    assert checks.check_leverage(proposal(leverage=D(5)), context(), limits).verdict is Verdict.PASS


def test_check_order_notional_blocks_above_limit() -> None:
    """An order above max_order_notional is blocked."""
    assert checks.check_order_notional(proposal(qty=D("0.3")), context(), LIMITS).verdict is Verdict.BLOCK


def test_check_position_notional_counts_existing_position() -> None:
    """Adding to a position is judged on the position it would make."""
    ctx = context(positions={"BTC/USDT:USDT": long_position("0.45")})
    result = checks.check_position_notional(proposal(qty=D("0.1")), ctx, LIMITS)
    assert result.verdict is Verdict.BLOCK
    assert "55,000.00 USDT" in result.reason


def test_check_position_notional_reducing_order_passes() -> None:
    """An order that shrinks an oversized position is never blocked by size."""
    ctx = context(positions={"BTC/USDT:USDT": long_position("0.9")})
    assert checks.check_position_notional(proposal(side=Side.SELL, qty=D("0.1")), ctx, LIMITS).verdict is Verdict.PASS


def test_check_gross_exposure_sums_all_symbols() -> None:
    """Gross exposure adds every symbol's absolute notional at its mark."""
    eth = Position("ETH/USDT:USDT", MarketKind.LINEAR, D(-24), D(4000), D(2), D(48000), None)
    ctx = context(positions={"ETH/USDT:USDT": eth}, marks={"ETH/USDT:USDT": D(4000)})
    assert checks.check_gross_exposure(proposal(qty=D("0.05")), ctx, LIMITS).verdict is Verdict.BLOCK
    assert checks.check_gross_exposure(proposal(qty=D("0.03")), ctx, LIMITS).verdict is Verdict.PASS


def test_check_daily_loss_blocks_new_risk_after_limit() -> None:
    """After the daily loss limit only risk-reducing orders pass; near it, a warning."""
    assert checks.check_daily_loss(proposal(), context(daily_pnl=D(-1000)), LIMITS).verdict is Verdict.BLOCK
    assert checks.check_daily_loss(proposal(), context(daily_pnl=D(-850)), LIMITS).verdict is Verdict.WARN
    reducing = context(daily_pnl=D(-5000), positions={"BTC/USDT:USDT": long_position("0.05")})
    assert checks.check_daily_loss(proposal(side=Side.SELL), reducing, LIMITS).verdict is not Verdict.BLOCK


def test_check_throttle_blocks_when_latched_or_full() -> None:
    """The throttle blocks once latched, and at the per-minute limit."""
    assert checks.check_throttle(proposal(), context(throttle_latched=True), LIMITS).verdict is Verdict.BLOCK
    assert checks.check_throttle(proposal(), context(orders_last_minute=20), LIMITS).verdict is Verdict.BLOCK
    assert checks.check_throttle(proposal(), context(orders_last_minute=19), LIMITS).verdict is Verdict.PASS


def test_check_confidence_applies_to_model_proposals_only() -> None:
    """Low confidence blocks a model's proposal, not a person's own."""
    assert checks.check_confidence(proposal(confidence=0.5), context(), LIMITS).verdict is Verdict.BLOCK
    assert (
        checks.check_confidence(proposal(confidence=0.5, source="operator"), context(), LIMITS).verdict is Verdict.PASS
    )


def test_check_duplicate_blocks_the_newer_pending_proposal_for_the_same_symbol_and_side() -> None:
    """A second pending proposal for the same symbol and side is blocked; the first, and the other side, are not."""
    first, second = proposal(id="P000001", created_at=0), proposal(id="P000002", created_at=1_000)
    pending = [first, second]
    result = checks.check_duplicate(second, context(pending=pending), LIMITS)
    assert result.verdict is Verdict.BLOCK and "P000001" in result.reason
    assert checks.check_duplicate(first, context(pending=pending), LIMITS).verdict is Verdict.PASS
    sell = proposal(id="P000003", side=Side.SELL, created_at=2_000)
    assert checks.check_duplicate(sell, context(pending=pending), LIMITS).verdict is Verdict.PASS


@pytest.mark.parametrize(
    ("side", "stop", "liquidation", "verdict", "reason"),
    [
        (Side.BUY, "97000", "66934.4", Verdict.PASS, "stop 97000"),
        (Side.BUY, "66000", "66934.4", Verdict.BLOCK, "beyond the liquidation price"),
        (Side.BUY, "68000", "66934.4", Verdict.WARN, "within"),
        (Side.BUY, "101000", "66934.4", Verdict.BLOCK, "wrong side"),
        (Side.SELL, "140000", "133000", Verdict.BLOCK, "beyond the liquidation price"),
        (Side.BUY, None, "66934.4", Verdict.WARN, "no stop"),
    ],
)
def test_check_stop_against_liquidation(
    side: Side, stop: str | None, liquidation: str, verdict: Verdict, reason: str
) -> None:
    """A stop beyond the liquidation price is blocked: the position would be liquidated first."""
    p = proposal(side=side, stop=D(stop) if stop else None, liquidation_price=D(liquidation))
    result = checks.check_stop(p, context(), LIMITS)
    assert result.verdict is verdict
    assert reason in result.reason


def test_check_trading_state_and_feed() -> None:
    """HALTED blocks all; REDUCING blocks new risk; an unhealthy feed blocks with its reason."""
    assert (
        checks.check_trading_state(proposal(), context(trading_state=TradingState.HALTED), LIMITS).verdict
        is Verdict.BLOCK
    )
    reducing = context(trading_state=TradingState.REDUCING, positions={"BTC/USDT:USDT": long_position("0.1")})
    assert checks.check_trading_state(proposal(), reducing, LIMITS).verdict is Verdict.BLOCK
    assert checks.check_trading_state(proposal(side=Side.SELL), reducing, LIMITS).verdict is Verdict.PASS
    stale = FeedHealth("BTC/USDT:USDT", False, "stale: no data for 12.0 s")
    result = checks.check_feed(proposal(), context(feed=stale), LIMITS)
    assert result.verdict is Verdict.BLOCK and "stale" in result.reason


def test_increases_risk_only_false_for_partial_or_full_reduction() -> None:
    """Reducing or closing is not a risk increase; flipping through zero is."""
    pos = long_position("0.1")
    assert not increases_risk(Side.SELL, D("0.1"), pos)
    assert increases_risk(Side.SELL, D("0.2"), pos)
    assert increases_risk(Side.BUY, D("0.01"), pos)
    assert increases_risk(Side.SELL, D("0.01"), None)


SPOT = default_spec("BTC/USDT")


def _spot(side: Side, qty: str, held: str | None) -> tuple[Proposal, RiskContext]:
    p = proposal(
        symbol="BTC/USDT", side=side, qty=D(qty), leverage=D(1), stop=None, take_profit=None, liquidation_price=None
    )
    positions = (
        {}
        if held is None
        else {"BTC/USDT": Position("BTC/USDT", MarketKind.SPOT, D(held), D(100_000), D(1), D(held) * 100_000, None)}
    )
    return p, context(spec=SPOT, positions=positions)


def test_spot_sell_without_holdings_is_blocked_before_anyone_approves() -> None:
    """A spot sell of more than is held is blocked by its own named check; selling what is held passes."""
    p, c = _spot(Side.SELL, "0.05", None)
    result = checks.check_spot_holdings(p, c, LIMITS)
    assert result.verdict is Verdict.BLOCK and "spot cannot go short" in result.reason
    assert checks.check_spot_holdings(*_spot(Side.SELL, "0.05", "0.02"), LIMITS).verdict is Verdict.BLOCK
    assert checks.check_spot_holdings(*_spot(Side.SELL, "0.05", "0.05"), LIMITS).verdict is Verdict.PASS
    assert checks.check_spot_holdings(*_spot(Side.BUY, "0.05", None), LIMITS).verdict is Verdict.PASS


def test_spot_check_passes_every_perpetual_order() -> None:
    """On a perpetual a sell opens a short: the spot check has nothing to say."""
    assert checks.check_spot_holdings(proposal(side=Side.SELL), context(), LIMITS).verdict is Verdict.PASS


def test_notional_checks_name_the_quote_currency_and_keep_a_coin_s_decimals() -> None:
    """On ETH/BTC the order check speaks BTC to 8 decimals: 267 BTC is not passed as "267.08" against USDT."""
    eth_btc = msgspec.structs.replace(SPOT, symbol="ETH/BTC", base="ETH", quote="BTC", tick_size=D("0.00001"))
    p = proposal(
        symbol="ETH/BTC",
        qty=D("5341.6"),
        price=D("0.05"),
        leverage=D(1),
        stop=None,
        take_profit=None,
        liquidation_price=None,
    )
    limits = msgspec.structs.replace(LIMITS, max_order_notional=D("0.24983511"))
    result = checks.check_order_notional(p, context(spec=eth_btc), limits)
    assert result.verdict is Verdict.BLOCK
    assert result.reason == "order 267.08 BTC exceeds the 0.24983511 BTC limit"
