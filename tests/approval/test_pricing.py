"""Pricing a proposal at a mark, re-pricing it when the market moves, and pricing an override's edits:
pure functions, tested with no journal, broker or event loop."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from msgspec.structs import replace

from guard.approval.pricing import Moved, apply_edits, moved, price_proposal, shifted, trigger_passed
from guard.config import RiskSection
from guard.domain import (
    ZERO,
    OrderType,
    OverrideEdits,
    Proposal,
    ProposalRequest,
    Side,
    TradingState,
    Verdict,
)
from guard.markets import default_spec
from guard.risk.checks import RiskContext, proposal_liquidation_price
from guard.risk.liquidation import liquidation_distance_sigma, p_liquidation

BTC = "BTC/USDT:USDT"
SPEC = default_spec(BTC)
LIMITS = RiskSection()
TTL = 30.0


def context(**changes: Any) -> RiskContext:
    base = RiskContext(
        trading_state=TradingState.ACTIVE,
        positions={},
        marks={},
        pending=(),
        leverage_acknowledged=False,
        throttle_latched=False,
        orders_last_minute=0,
        daily_pnl=ZERO,
        feed=None,
        spec=SPEC,
    )
    return replace(base, **changes)


def request(**changes: Any) -> ProposalRequest:
    base = ProposalRequest(
        symbol=BTC,
        side=Side.BUY,
        qty=D("0.05"),
        leverage=D(3),
        stop=D(97_000),
        take_profit=D(104_000),
        confidence=0.7,
        sigma=0.0002,
        horizon_seconds=3600,
        source="operator",
    )
    return replace(base, **changes)


def priced(
    r: ProposalRequest | Proposal | None = None,
    mark: str = "100000",
    *,
    version: int = 1,
    ctx: RiskContext | None = None,
    limits: RiskSection = LIMITS,
) -> Proposal:
    return price_proposal(
        r or request(),
        pid="P000001",
        version=version,
        mark=D(mark),
        spec=SPEC,
        created_at=0,
        expires_at=30_000,
        ttl_seconds=TTL,
        context=ctx or context(),
        limits=limits,
    )


def test_price_proposal_at_the_mark_gives_liquidation_and_its_odds() -> None:
    """A long 3x is priced at the mark: its liquidation price, P(liquidation) over TTL + horizon, σ distance."""
    p = priced()
    liquidation = proposal_liquidation_price(SPEC, Side.BUY, D("0.05"), D(100_000), D(3))
    assert liquidation is not None and liquidation < D(100_000)
    horizon = TTL + 3600
    assert (p.id, p.version, p.price, p.qty, p.liquidation_price) == ("P000001", 1, D(100_000), D("0.05"), liquidation)
    assert p.p_liquidation == p_liquidation(Side.BUY, D(100_000), liquidation, 0.0002, horizon)
    assert p.liquidation_distance_sigma == liquidation_distance_sigma(D(100_000), liquidation, 0.0002, horizon)
    assert [c.verdict for c in p.checks if c.verdict is Verdict.BLOCK] == []


def test_price_proposal_rounds_to_the_market_and_prices_a_limit_at_its_limit() -> None:
    """Quantity is rounded down to the step and the mark to the tick; a limit entry's liquidation is from its limit."""
    p = priced(request(qty=D("0.0519"), order_type=OrderType.LIMIT, limit_price=D(90_000)), mark="100000.04")
    assert (p.qty, p.price) == (D("0.051"), D("100000.0"))
    assert p.liquidation_price == proposal_liquidation_price(SPEC, Side.BUY, D("0.051"), D(90_000), D(3))


def test_price_proposal_checks_against_the_limits_and_the_snapshot_it_is_given() -> None:
    """The checks judge the priced proposal by the given limits and snapshot: too large, or trading HALTED."""
    small = replace(LIMITS, max_order_notional=D(1_000))
    too_large = priced(limits=small)
    assert any(c.name == "order_notional" and c.verdict is Verdict.BLOCK for c in too_large.checks)
    halted = priced(ctx=context(trading_state=TradingState.HALTED))
    assert any(c.name == "trading_state" and c.verdict is Verdict.BLOCK for c in halted.checks)


def test_price_proposal_with_a_stop_on_the_wrong_side_is_priced_and_blocked() -> None:
    """A hostile stop above a long's price is not an error in pricing: the stop check blocks it."""
    p = priced(request(stop=D(101_000)))
    assert any(c.name == "stop" and c.verdict is Verdict.BLOCK for c in p.checks)


def test_price_proposal_new_version_keeps_its_identity_and_times() -> None:
    """Re-pricing a proposal keeps its id, creation and expiry; the version is the caller's."""
    first = priced()
    again = price_proposal(
        first,
        pid=first.id,
        version=2,
        mark=D(101_000),
        spec=SPEC,
        created_at=first.created_at,
        expires_at=first.expires_at,
        ttl_seconds=TTL,
        context=context(),
        limits=LIMITS,
    )
    assert (again.id, again.version, again.price, again.created_at, again.expires_at) == (
        first.id,
        2,
        D(101_000),
        first.created_at,
        first.expires_at,
    )


def test_shifted_market_proposal_moves_stop_and_take_profit_with_the_price() -> None:
    """A 2 % move carries the stop and take-profit 2 %, rounded to the tick; a limit proposal stays as it is."""
    p = priced()
    moved_up = shifted(p, D(102_000), SPEC)
    assert (moved_up.stop, moved_up.take_profit) == (D("98940.0"), D("106080.0"))
    limit = priced(request(order_type=OrderType.LIMIT, limit_price=D(99_000)))
    assert shifted(limit, D(102_000), SPEC) is limit


def test_trigger_passed_names_the_stop_or_take_profit_the_mark_reached() -> None:
    """A long whose mark fell to its stop, or rose to its take-profit, would trigger at once; a short mirrors it."""
    p = priced()
    assert trigger_passed(p, D(97_000)) == "stop 97000"
    assert trigger_passed(p, D(104_500)) == "take-profit 104000"
    assert trigger_passed(p, D(100_500)) == ""
    short = priced(request(side=Side.SELL, stop=D(103_000), take_profit=D(96_000)))
    assert trigger_passed(short, D(103_001)) == "stop 103000"
    assert trigger_passed(short, D(95_000)) == "take-profit 96000"
    assert trigger_passed(replace(p, order_type=OrderType.LIMIT, limit_price=D(99_000)), D(90_000)) == ""


def test_moved_within_the_collar_is_none_and_beyond_it_says_by_how_much() -> None:
    """Inside the collar nothing is re-priced; past it, or past a trigger inside it, the move says why."""
    p = priced()
    assert moved(p, D(100_200), collar_bps=50, spec=SPEC) is None
    beyond = moved(p, D(101_000), collar_bps=50, spec=SPEC)
    assert beyond == Moved(D(101_000), D(100), "", 50)
    assert beyond.why == "moved 100 bps"
    tight = replace(p, stop=D(99_900))
    passed = moved(tight, D(99_850), collar_bps=50, spec=SPEC)
    assert passed is not None and passed.why == "the market passed its stop 99900"
    repriced = replace(tight, version=2, price=D(99_850))
    assert passed.refusal(tight, repriced).startswith("the price (99850) is already past P000001's stop 99900")
    assert "version 2" in beyond.refusal(p, repriced) and "collar 50 bps" in beyond.refusal(p, repriced)


def test_apply_edits_names_what_changed_and_what_adds_risk() -> None:
    """More size, more leverage and a wider stop add risk; a tighter stop and a smaller size do not."""
    p = priced()
    riskier = apply_edits(p, OverrideEdits(qty=D("0.1"), leverage=D(5), stop=D(95_000)))
    assert riskier.diff == ("qty 0.050 -> 0.1", "leverage 3 -> 5", "stop 97000 -> 95000")
    assert riskier.riskier == ("qty 0.050 -> 0.1", "leverage 3 -> 5", "wider stop 97000 -> 95000")
    assert (riskier.request.qty, riskier.request.leverage, riskier.request.stop) == (D("0.1"), D(5), D(95_000))
    safer = apply_edits(p, OverrideEdits(qty=D("0.01"), stop=D(98_000)))
    assert safer.riskier == () and len(safer.diff) == 2


def test_apply_edits_limit_price_makes_a_limit_order_and_same_values_change_nothing() -> None:
    """A limit price turns the entry into a limit order; an edit to the value it already has is no change."""
    p = priced()
    limit = apply_edits(p, OverrideEdits(limit_price=D(99_000)))
    assert (limit.request.order_type, limit.request.limit_price) == (OrderType.LIMIT, D(99_000))
    same = apply_edits(p, OverrideEdits(qty=p.qty, leverage=p.leverage))
    assert same.diff == () and same.request == p


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_price_proposal_of_an_edit_is_priced_afresh(side: Side) -> None:
    """An edited proposal priced again gets the liquidation price of its new size and leverage."""
    stop, take_profit = (D(97_000), D(104_000)) if side is Side.BUY else (D(103_000), D(96_000))
    p = priced(request(side=side, stop=stop, take_profit=take_profit))
    edit = apply_edits(p, OverrideEdits(leverage=D(10)))
    again = priced(edit.request, version=2)
    assert again.liquidation_price == proposal_liquidation_price(SPEC, side, p.qty, D(100_000), D(10))
    assert again.liquidation_price is not None and p.liquidation_price is not None
    assert abs(again.liquidation_price - again.price) < abs(p.liquidation_price - p.price)
    assert any(c.name == "leverage" and c.verdict is Verdict.BLOCK for c in again.checks)  # no acknowledgment
