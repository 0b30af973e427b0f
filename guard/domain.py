"""The small immutable types every layer shares.

Market data arrives as floats (it is inexact anyway); anything that becomes an order or
touches the ledger is a `Decimal`, rounded with the market's precision. Timestamps are
integer milliseconds since the Unix epoch, as ccxt uses them.

Every type here is a frozen `msgspec.Struct` (see `Value`): immutable, compared by value, and
encoded and decoded by `guard.codec` without a hand-written step.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from enum import StrEnum

import msgspec

ZERO = Decimal(0)
ONE = Decimal(1)

HARD_LEVERAGE_CAP = Decimal(20)
"""Nothing in guard may exceed this leverage: not config, not an override, not an acknowledgment."""


class Value(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """Base of guard's value types: immutable, compared by value, strict when decoded.

    A decoded object with a field the type does not have is refused, not silently dropped: a
    misspelt field in a command or a damaged journal row is an error that names the field.

    `gc=False`: the garbage collector does not track these. A value is frozen and holds only
    immutable things (strings, numbers, Decimals, enum members, tuples of values), so it can never
    be part of a reference cycle; tracked, each one holding an enum member (a RiskCheck, a Fill)
    is walked by every full collection, 12 objects per queued proposal. A subclass holding a
    mutable container (a dict) must say `gc=True`. Subclasses repeat `frozen=True`: msgspec inherits
    it, type checkers do not.
    """


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is BUY else -1

    @property
    def opposite(self) -> Side:
        return SELL if self is BUY else BUY


class MarketKind(StrEnum):
    SPOT = "spot"
    LINEAR = "linear"
    """A USDT-margined perpetual swap."""


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    """Only orders that reduce risk pass."""
    HALTED = "HALTED"
    """Nothing but the kill switch's own cancels and reduce-only flattening reaches a broker."""


class ProposalStatus(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    OVERRIDDEN = "OVERRIDDEN"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    KILLED = "KILLED"
    SUBMITTED = "SUBMITTED"
    FILLED = "FILLED"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_PROPOSAL_STATUSES


_FINAL_PROPOSAL_STATUSES = frozenset(
    {
        ProposalStatus.REJECTED,
        ProposalStatus.EXPIRED,
        ProposalStatus.KILLED,
        ProposalStatus.FILLED,
        ProposalStatus.FAILED,
    }
)


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP_MARKET = "stop_market"
    TAKE_PROFIT_MARKET = "take_profit_market"


class OrderPurpose(StrEnum):
    ENTRY = "entry"
    STOP = "stop"
    TAKE_PROFIT = "take_profit"
    FLATTEN = "flatten"
    """Sent by the kill switch."""
    CLOSE = "close"
    """An operator closing or reducing a position by hand."""
    DEADMAN = "deadman"
    """Sent by the operator-presence dead-man switch."""


class OrderStatus(StrEnum):
    SENDING = "SENDING"
    """Intent journaled; the broker has not answered yet."""
    OPEN = "OPEN"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    UNKNOWN = "UNKNOWN"
    """The venue did not say whether it took the order; needs reconciliation."""

    @property
    def is_final(self) -> bool:
        return self in (
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.REJECTED,
            OrderStatus.FAILED,
        )


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class Verdict(StrEnum):
    PASS = "pass"
    WARN = "warn"
    BLOCK = "block"


# Enum members as module globals, for hot paths: on Python 3.11 every `Side.BUY` is an attribute lookup through
# EnumType's `__getattr__` hook (~0.25 µs; 3.12 drops the hook), and a replayed proposal's path made ~420 of
# them. `x is BUY` is the very test `x is Side.BUY` is.
BUY, SELL = Side.BUY, Side.SELL
SPOT, LINEAR = MarketKind.SPOT, MarketKind.LINEAR
ACTIVE, REDUCING, HALTED = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED
PENDING = ProposalStatus.PENDING
PROPOSAL_SUBMITTED, PROPOSAL_FILLED, PROPOSAL_FAILED = (
    ProposalStatus.SUBMITTED,
    ProposalStatus.FILLED,
    ProposalStatus.FAILED,
)
ORDER_SENDING, ORDER_OPEN, ORDER_PARTLY_FILLED = OrderStatus.SENDING, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED
ORDER_FILLED, ORDER_CANCELLED, ORDER_REJECTED = OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED
ORDER_UNKNOWN = OrderStatus.UNKNOWN
ENTRY_PURPOSE, CLOSE_PURPOSE, STOP_PURPOSE = OrderPurpose.ENTRY, OrderPurpose.CLOSE, OrderPurpose.STOP
DEADMAN_PURPOSE = OrderPurpose.DEADMAN
MARKET_ORDER, LIMIT_ORDER = OrderType.MARKET, OrderType.LIMIT
STOP_MARKET_ORDER, TAKE_PROFIT_ORDER = OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET
MAKER, TAKER = Liquidity.MAKER, Liquidity.TAKER
PASS, WARN, BLOCK = Verdict.PASS, Verdict.WARN, Verdict.BLOCK


# --- market data ---------------------------------------------------------------------


class Bar(Value, frozen=True):
    """One OHLCV candle. `open_time` is the start of the interval."""

    symbol: str
    timeframe: str
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    closed: bool = True
    complete: bool = True
    """False when the stream that built this bar had a hole in it."""


class Trade(Value, frozen=True):
    symbol: str
    trade_id: str
    timestamp: int
    price: float
    amount: float
    side: Side


class Book(Value, frozen=True):
    """A depth snapshot, best level first on each side, as (price, amount) pairs."""

    symbol: str
    timestamp: int
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]


class Ticker(Value, frozen=True):
    symbol: str
    timestamp: int
    last: float
    bid: float | None = None
    ask: float | None = None


class MarkPrice(Value, frozen=True):
    """The price liquidations trigger on, with the funding rate where the market has one."""

    symbol: str
    timestamp: int
    mark: float
    index: float | None = None
    funding_rate: float | None = None
    next_funding_time: int | None = None


MarketEvent = Bar | Trade | Book | Ticker | MarkPrice


# --- markets -------------------------------------------------------------------------


class LeverageTier(Value, frozen=True):
    """One maintenance-margin bracket, chosen by position notional (Binance USDⓈ-M style)."""

    floor: Decimal
    cap: Decimal
    mmr: Decimal
    """Maintenance margin rate."""
    cum: Decimal
    """Maintenance amount: floor·(mmr − previous mmr) + previous cum."""
    max_leverage: Decimal


class MarketSpec(Value, frozen=True):
    """What guard needs to know about a market to size, price and margin an order."""

    symbol: str
    base: str
    quote: str
    kind: MarketKind
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    maker_fee: Decimal
    taker_fee: Decimal
    max_leverage: Decimal
    tiers: tuple[LeverageTier, ...] = ()
    contract_size: Decimal = ONE

    def tier_for(self, notional: Decimal) -> LeverageTier:
        """Return the maintenance bracket for a position of this notional."""
        if not self.tiers:
            return LeverageTier(ZERO, Decimal("Infinity"), Decimal("0.004"), ZERO, self.max_leverage)
        for tier in self.tiers:
            if notional < tier.cap:
                return tier
        return self.tiers[-1]

    def round_price(self, price: Decimal) -> Decimal:
        tick = self.tick_size
        # Already on the grid (see `round_qty`): the very Decimal the formula gives back.
        if price.same_quantum(tick) and price.same_quantum(+price) and not price % tick:
            return price
        return (price / tick).quantize(ONE, rounding=ROUND_HALF_EVEN) * tick

    def round_qty(self, qty: Decimal) -> Decimal:
        """Round a quantity down to the step size: never more than asked for."""
        step = self.step_size
        # A whole number of steps written with the step's exponent, as most values rounded here are (stops,
        # quantities, marks), comes back from the formula as the very same Decimal, exponent and all: the division,
        # quantize and product are skipped. In order: the step's exponent; at most the context's 28 digits (`+qty`
        # rounds to them: past that the formula rounds the product); no remainder (`%` raises where the formula's
        # quantize would, for a quotient past 28 digits). Inline, not a helper: these run ~20 times a proposal.
        if qty.same_quantum(step) and qty.same_quantum(+qty) and not qty % step:
            return qty
        return (qty / step).quantize(ONE, rounding=ROUND_DOWN) * step


# --- model output --------------------------------------------------------------------


class Signal(Value, frozen=True):
    """What the model says about one symbol at one bar close."""

    symbol: str
    timestamp: int
    price: float
    """The close the model looked at."""
    probabilities: tuple[float, float, float]
    """Calibrated probabilities of (down, flat, up) over the horizon."""
    side: Side | None
    """The proposed side, or None when the model sees no trade."""
    confidence: float
    """Calibrated probability of the proposed side."""
    novelty: float
    """Percentile (0..1) of how unlike the training data this input is."""
    novel: bool
    """Above the novelty threshold: the model is guessing."""
    sigma: float
    """Per-bar standard deviation of log returns at this time."""
    horizon_seconds: float
    model_id: str
    model_age_days: float
    why: str = ""
    barrier: float = 0.0
    """Log-price distance of the take-profit and stop barriers from `price` (k·σ·√H)."""
    bar_seconds: float = 60.0
    """Length of one bar of the model's timeframe (σ is per bar of this length)."""


# --- proposals and decisions ---------------------------------------------------------


class RiskCheck(Value, frozen=True):
    name: str
    verdict: Verdict
    reason: str


class ProposalRequest(Value, frozen=True):
    """A proposed trade before the guard has priced and checked it."""

    symbol: str
    side: Side
    qty: Decimal
    leverage: Decimal
    stop: Decimal | None = None
    take_profit: Decimal | None = None
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    confidence: float = 0.0
    novelty: float = 0.0
    novel: bool = False
    sigma: float = 0.0
    """Per-second volatility of log price, for P(liquidation)."""
    horizon_seconds: float = 3600.0
    model_id: str = ""
    why: str = ""
    source: str = "model"


class Proposal(Value, frozen=True):
    """A priced, risk-checked proposal as an operator sees it. New versions on re-price or override."""

    id: str
    version: int
    symbol: str
    side: Side
    qty: Decimal
    leverage: Decimal
    order_type: OrderType
    limit_price: Decimal | None
    stop: Decimal | None
    take_profit: Decimal | None
    price: Decimal
    """The mark when this version was priced; the collar is measured from here."""
    liquidation_price: Decimal | None
    p_liquidation: float
    """Model estimate (GBM, floored) of liquidation before the horizon ends."""
    liquidation_distance_sigma: float | None
    confidence: float
    novelty: float
    novel: bool
    sigma: float
    horizon_seconds: float
    model_id: str
    why: str
    source: str
    created_at: int
    expires_at: int
    checks: tuple[RiskCheck, ...]

    @property
    def notional(self) -> Decimal:
        return self.qty * (self.limit_price or self.price)

    @property
    def blocked(self) -> bool:
        return any([c.verdict is BLOCK for c in self.checks])  # a list: one call, not a generator step per check

    def block_reasons(self) -> list[str]:
        return [f"{c.name}: {c.reason}" for c in self.checks if c.verdict is Verdict.BLOCK]


class OverrideEdits(Value, frozen=True):
    """The fields an operator may change on a proposal; None keeps the proposal's value."""

    qty: Decimal | None = None
    leverage: Decimal | None = None
    stop: Decimal | None = None
    take_profit: Decimal | None = None
    limit_price: Decimal | None = None


class DecisionKind(StrEnum):
    APPROVE = "approve"
    OVERRIDE = "override"
    REJECT = "reject"


class AcknowledgmentKind(StrEnum):
    MODEL_PROPOSALS = "model_proposals"
    """Enabling model proposals at all; bound to the config and model hashes."""
    LEVERAGE = "leverage"
    """Leverage above 5x; bound to the config hash."""


# --- orders, fills, positions --------------------------------------------------------


class OrderRequest(Value, frozen=True):
    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    order_type: OrderType
    purpose: OrderPurpose
    leverage: Decimal = ONE
    limit_price: Decimal | None = None
    trigger_price: Decimal | None = None
    reduce_only: bool = False
    proposal_id: str | None = None


class Fill(Value, frozen=True):
    client_order_id: str
    fill_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    liquidity: Liquidity
    timestamp: int


class Position(Value, frozen=True):
    """A one-way position. `qty` is signed: positive long, negative short."""

    symbol: str
    kind: MarketKind
    qty: Decimal
    entry_price: Decimal
    leverage: Decimal
    margin: Decimal
    """Isolated wallet balance of the position (for spot: its cost)."""
    liquidation_price: Decimal | None

    @property
    def side(self) -> Side:
        return BUY if self.qty > 0 else SELL

    @property
    def notional(self) -> Decimal:
        return abs(self.qty) * self.entry_price

    def unrealized_pnl(self, mark: Decimal) -> Decimal:
        return (mark - self.entry_price) * self.qty


class Balance(Value, frozen=True):
    """The quote-currency account: `free + used == total` after every step."""

    total: Decimal
    free: Decimal
    used: Decimal


# --- health --------------------------------------------------------------------------


class FeedHealth(Value, frozen=True):
    """How a symbol's market data is doing. Not healthy means: no proposals, no approvals."""

    symbol: str
    healthy: bool
    reason: str
    """Why it is not healthy ("stale: no data for 12.0 s", "gap in trades"), or ""."""
    last_event_age_seconds: float | None = None
    gaps: int = 0
    rejected: int = 0
    """Events rejected by validation so far."""
    error_rate: float = 0.0
    """Errors per minute over the last few minutes."""
