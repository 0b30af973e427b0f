"""Pre-trade risk checks: each a pure function of a proposal and a snapshot of the world.

Every check returns a RiskCheck (pass / warn / block, with a reason a person can act on).
They run when a proposal is queued and again when someone decides on it, because the world
may have changed in between.
Cancels and the kill switch's flattening never pass through here: a check must never be able to block
the way out.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

import msgspec

from guard.config import RiskSection
from guard.domain import (
    BLOCK,
    BUY,
    HALTED,
    HARD_LEVERAGE_CAP,
    PASS,
    REDUCING,
    SELL,
    SPOT,
    WARN,
    ZERO,
    FeedHealth,
    MarketSpec,
    Position,
    Proposal,
    RiskCheck,
    Side,
    TradingState,
)
from guard.risk.liquidation import isolated_liquidation_price

FIAT_LIKE = frozenset({"USDT", "USDC", "USD", "BUSD", "FDUSD", "DAI", "EUR", "TUSD"})
"""Quote currencies whose amounts read in cents; any other (BTC, ETH) keeps 8 decimals."""
LEVERAGE_ACK_ABOVE = Decimal(5)
"""Leverage above this always needs a leverage acknowledgment on record, whatever the config says."""
_NEAR_DAILY_LIMIT = Decimal("0.8")
"""Today's loss past this share of the daily limit warns."""


class RiskContext(msgspec.Struct, frozen=True):
    """What the checks may look at: a snapshot, so the checks stay pure. (A struct, not a dataclass: one is
    built each time a proposal is judged, and a frozen dataclass's `__init__` costs three times as much.)"""

    trading_state: TradingState
    positions: Mapping[str, Position]
    marks: Mapping[str, Decimal]
    pending: Sequence[Proposal]
    """Proposals still waiting for a decision (at least those for the same symbol and side)."""
    leverage_acknowledged: bool
    throttle_latched: bool
    orders_last_minute: int
    daily_pnl: Decimal
    """Realized and unrealized PnL since 00:00 UTC."""
    feed: FeedHealth | None
    spec: MarketSpec


Check = Callable[[Proposal, RiskContext, RiskSection], RiskCheck]


def _ok(name: str, reason: str = "ok") -> RiskCheck:
    return RiskCheck(name, PASS, reason)


# Passes whose wording never changes, made once (RiskCheck is immutable).
_TRADING_STATE_OK = {state: _ok("trading_state", state.value) for state in TradingState}
_FEED_OK = _ok("feed")
_DUPLICATE_OK = _ok("duplicate")
_NOT_SPOT = _ok("spot_holdings", "not spot")
_SPOT_BUY = _ok("spot_holdings", "a spot buy")
_NO_STOP = _ok("stop", "no stop")


def increases_risk(side: Side, qty: Decimal, position: Position | None) -> bool:
    """False only for an order that shrinks an opposite position without flipping it."""
    if position is None or position.side is side:
        return True
    return qty > abs(position.qty)


def check_trading_state(p: Proposal, ctx: RiskContext, limits: RiskSection) -> RiskCheck:
    name = "trading_state"
    if ctx.trading_state is HALTED:
        return RiskCheck(name, BLOCK, "trading is HALTED; a person must re-arm first")
    if ctx.trading_state is REDUCING and increases_risk(p.side, p.qty, ctx.positions.get(p.symbol)):
        return RiskCheck(name, BLOCK, "trading is REDUCING: only orders that reduce a position pass")
    return _TRADING_STATE_OK[ctx.trading_state]


def check_feed(p: Proposal, ctx: RiskContext, limits: RiskSection) -> RiskCheck:
    name = "feed"
    if ctx.feed is not None and not ctx.feed.healthy:
        return RiskCheck(name, BLOCK, f"market data for {p.symbol} is not healthy: {ctx.feed.reason}")
    return _FEED_OK


def leverage_acknowledgment_above(limits: RiskSection) -> Decimal:
    """Leverage above this needs the leverage acknowledgment: the conservative limit, and never above 5x."""
    return _leverage_limits(limits.max_leverage)[1]


@functools.lru_cache(maxsize=64, typed=True)
def _leverage_limits(max_leverage: float) -> tuple[Decimal, Decimal]:
    """The conservative leverage limit as the operator reads it (3, not 3.0), and the leverage above which an
    acknowledgment is needed: worked out once per config value, not twice a proposal."""
    conservative = _decimal(max_leverage)
    return conservative.normalize(), min(conservative, LEVERAGE_ACK_ABOVE).normalize()


@functools.lru_cache(maxsize=64, typed=True)
def _decimal(value: float) -> Decimal:
    """A config float as the Decimal its text reads (the checks run twice a proposal: converted once)."""
    return Decimal(str(value))


def check_leverage(p: Proposal, ctx: RiskContext, limits: RiskSection) -> RiskCheck:
    name = "leverage"
    conservative, ack_above = _leverage_limits(limits.max_leverage)
    if p.leverage > HARD_LEVERAGE_CAP:
        return RiskCheck(name, BLOCK, f"{p.leverage}x is above the hard cap of {HARD_LEVERAGE_CAP}x")
    if p.leverage > ctx.spec.max_leverage:
        return RiskCheck(name, BLOCK, f"{p.leverage}x is above the market's maximum {ctx.spec.max_leverage}x")
    if p.leverage > ack_above and not ctx.leverage_acknowledged:
        return RiskCheck(
            name,
            BLOCK,
            f"{p.leverage}x is above the conservative limit of {ack_above:f}x: "
            "it needs a leverage acknowledgment on record",
        )
    if p.leverage > conservative:
        why = f"{p.leverage}x is above the conservative {conservative:f}x (acknowledged)"
        return RiskCheck(name, WARN, why)
    return RiskCheck(name, PASS, f"{p.leverage!s}x")


def money_text(amount: Decimal, spec: MarketSpec) -> str:
    """An amount of the market's quote currency, with its code: "267.08 USDT", "0.24983511 BTC" (a coin quote
    keeps 8 decimals: 0.25 BTC is not 0.2498 BTC)."""
    return _money_text(amount, spec.quote)


def _money_text(amount: Decimal, quote: str) -> str:
    if quote in FIAT_LIKE or amount.copy_abs() >= 100:
        return f"{amount:,.2f} {quote}"
    return f"{format(amount.quantize(_SATOSHI).normalize(), ',f')} {quote}"


_SATOSHI = Decimal("1e-8")
_limit_text = functools.lru_cache(maxsize=64)(_money_text)
"""A limit's text, made once per limit: the limits change rarely, and each proposal is checked twice. (The text
depends on the value alone, never on how it is written: "25000" and "2.5E+4" read "25,000.00"; limits are
positive, so no "-0" to tell from "0".)"""


def check_order_notional(p: Proposal, ctx: RiskContext, limits: RiskSection) -> RiskCheck:
    name = "order_notional"
    notional, quote = p.notional, ctx.spec.quote
    order, limit = _money_text(notional, quote), _limit_text(limits.max_order_notional, quote)
    if notional > limits.max_order_notional:
        return RiskCheck(name, BLOCK, f"order {order} exceeds the {limit} limit")
    return RiskCheck(name, PASS, f"{order} of {limit}")


def _position_after(p: Proposal, pos: Position | None) -> Decimal:
    """The signed position in `p`'s symbol once `p` fills, from the position held now (None: flat)."""
    return (pos.qty if pos else ZERO) + p.qty * p.side.sign


def check_position_notional(p: Proposal, ctx: RiskContext, limits: RiskSection) -> RiskCheck:
    name = "position_notional"
    pos = ctx.positions.get(p.symbol)
    after = abs(_position_after(p, pos)) * p.price
    quote = ctx.spec.quote
    text, limit = _money_text(after, quote), _limit_text(limits.max_position_notional, quote)
    if after > limits.max_position_notional and increases_risk(p.side, p.qty, pos):
        return RiskCheck(name, BLOCK, f"{p.symbol} position would be {text}, above the {limit} limit")
    return RiskCheck(name, PASS, f"{text} of {limit}")


def check_gross_exposure(p: Proposal, ctx: RiskContext, limits: RiskSection) -> RiskCheck:
    name = "gross_exposure"
    symbol = p.symbol
    gross = ZERO
    marks = ctx.marks
    held = None  # the position in p's symbol, found by the same loop
    for other, pos in ctx.positions.items():
        if other != symbol:
            gross += abs(pos.qty) * marks.get(other, pos.entry_price)
        else:
            held = pos
    gross += abs(_position_after(p, held)) * p.price
    # `!s`: a Decimal's text as `format(x, "")` gives it, without the format machinery.
    if gross > limits.max_gross_exposure and increases_risk(p.side, p.qty, held):
        return RiskCheck(name, BLOCK, f"gross exposure would be {gross:.2f}, above {limits.max_gross_exposure!s}")
    return RiskCheck(name, PASS, f"{gross:.2f} of {limits.max_gross_exposure!s}")


def check_daily_loss(p: Proposal, ctx: RiskContext, limits: RiskSection) -> RiskCheck:
    name = "daily_loss"
    loss = -ctx.daily_pnl
    if loss >= limits.daily_loss_limit and increases_risk(p.side, p.qty, ctx.positions.get(p.symbol)):
        return RiskCheck(name, BLOCK, f"today's loss {loss:.2f} reached the {limits.daily_loss_limit} limit")
    if loss >= limits.daily_loss_limit * _NEAR_DAILY_LIMIT:
        return RiskCheck(name, WARN, f"today's loss {loss:.2f} is near the {limits.daily_loss_limit} limit")
    return RiskCheck(name, PASS, f"today's PnL {ctx.daily_pnl:.2f}")


def check_throttle(p: Proposal, ctx: RiskContext, limits: RiskSection) -> RiskCheck:
    name = "throttle"
    if ctx.throttle_latched:
        return RiskCheck(name, BLOCK, "the order throttle tripped; a person must re-enable it")
    if ctx.orders_last_minute >= limits.max_orders_per_minute:
        return RiskCheck(
            name,
            BLOCK,
            f"{ctx.orders_last_minute} orders in the last minute: the limit is {limits.max_orders_per_minute}",
        )
    return RiskCheck(name, PASS, f"{ctx.orders_last_minute} of {limits.max_orders_per_minute} per minute")


def check_confidence(p: Proposal, ctx: RiskContext, limits: RiskSection) -> RiskCheck:
    name = "confidence"
    if p.source == "model" and p.confidence < limits.min_confidence:
        return RiskCheck(name, BLOCK, f"confidence {p.confidence:.0%} is below {limits.min_confidence:.0%}")
    return RiskCheck(name, PASS, f"{p.confidence:.0%}")


def check_duplicate(p: Proposal, ctx: RiskContext, limits: RiskSection) -> RiskCheck:
    """Only the newer of two pending proposals for one symbol and side is blocked: the older stays approvable."""
    name = "duplicate"
    for other in ctx.pending:
        older = (other.created_at, other.id) < (p.created_at, p.id)
        if older and other.symbol == p.symbol and other.side is p.side:
            return RiskCheck(name, BLOCK, f"duplicates {other.id} ({p.symbol} {p.side}), still pending")
    return _DUPLICATE_OK


def check_spot_holdings(p: Proposal, ctx: RiskContext, limits: RiskSection) -> RiskCheck:
    """On spot a sell can only sell what is held: nothing is borrowed, so there is no short."""
    name = "spot_holdings"
    if ctx.spec.kind is not SPOT:
        return _NOT_SPOT
    if p.leverage != 1:
        return RiskCheck(name, BLOCK, f"{p.leverage}x on spot: spot orders are 1x, nothing is borrowed")
    if p.side is not SELL:
        return _SPOT_BUY
    pos = ctx.positions.get(p.symbol)
    held = pos.qty if pos is not None and pos.qty > 0 else ZERO
    if p.qty > held:
        return RiskCheck(
            name,
            BLOCK,
            f"selling {p.qty} {ctx.spec.base} with {held} held: spot cannot go short (nothing is borrowed)",
        )
    return _ok(name, f"selling {p.qty} of {held} {ctx.spec.base} held")


def check_stop(p: Proposal, ctx: RiskContext, limits: RiskSection) -> RiskCheck:
    """The stop must sit between the entry and the liquidation price, with room to spare."""
    name = "stop"
    liquidation = p.liquidation_price
    stop = p.stop
    if stop is None:
        if liquidation is not None:
            return RiskCheck(name, WARN, "no stop: only liquidation limits the loss")
        return _NO_STOP
    price = p.price
    long = p.side is BUY
    if (long and stop >= price) or (not long and stop <= price):
        return RiskCheck(name, BLOCK, f"stop {stop!s} is on the wrong side of the price {price!s}")
    if liquidation is None:
        return RiskCheck(name, PASS, f"stop {stop!s}")
    if (long and stop <= liquidation) or (not long and stop >= liquidation):
        return RiskCheck(
            name,
            BLOCK,
            f"stop {stop!s} is beyond the liquidation price {liquidation!s}: liquidation would come first",
        )
    room = abs(stop - liquidation) / abs(price - liquidation)
    if room < _decimal(limits.liquidation_buffer):
        return RiskCheck(name, WARN, f"stop {stop!s} is within {room:.1%} of liquidation at {liquidation!s}")
    return RiskCheck(name, PASS, f"stop {stop!s}, liquidation {liquidation!s}")


ALL_CHECKS: tuple[Check, ...] = (
    check_trading_state,
    check_feed,
    check_leverage,
    check_order_notional,
    check_position_notional,
    check_gross_exposure,
    check_daily_loss,
    check_throttle,
    check_confidence,
    check_duplicate,
    check_spot_holdings,
    check_stop,
)


def run_checks(p: Proposal, ctx: RiskContext, limits: RiskSection) -> tuple[RiskCheck, ...]:
    """Every check's verdict on `p` in `ctx` (at the pricing and again, all of them, at the decision)."""
    return tuple([check(p, ctx, limits) for check in ALL_CHECKS])


def proposal_liquidation_price(
    spec: MarketSpec, side: Side, qty: Decimal, price: Decimal, leverage: Decimal
) -> Decimal | None:
    """Liquidation price of the proposal as a fresh isolated position."""
    if qty <= 0 or price <= 0:
        return None
    return isolated_liquidation_price(spec, side, qty, price, qty * price / leverage)
