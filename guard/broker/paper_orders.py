"""The paper venue's order arithmetic: what it accepts, the quantity it works, and a taker's price and fee.

Pure functions of the order, the market's spec, the quote and the position, so the broker reads its
state once per order and hands it here. The broker sets its fee rates and slippage figures once
(`Pricing`), not at every order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal

from guard.broker.ledger import MONEY_QUANTUM
from guard.broker.paper_market import Quote
from guard.config import PaperSection
from guard.domain import (
    BUY,
    LIMIT_ORDER,
    ONE,
    SELL,
    SPOT,
    STOP_MARKET_ORDER,
    TAKE_PROFIT_ORDER,
    ZERO,
    MarketSpec,
    OrderRequest,
    Position,
    Side,
)
from guard.errors import InvalidCommand

_BPS = Decimal("0.0001")
_SIGNS = {BUY: Decimal(1), SELL: Decimal(-1)}
"""`Decimal(side.sign)`, made once."""


class Pricing:
    """A paper broker's fee rates and slippage figures, read from its settings once."""

    __slots__ = ("_base_bps", "_size_bps", "_vol_multiplier", "maker_rate", "taker_rate")

    def __init__(self, settings: PaperSection) -> None:
        self.maker_rate = bps(settings.maker_fee_bps)
        self.taker_rate = bps(settings.taker_fee_bps)
        self._base_bps = settings.slippage_bps
        self._size_bps = settings.slippage_size_bps_per_million
        self._vol_multiplier = settings.slippage_vol_multiplier

    def slipped_price(self, side: Side, spec: MarketSpec, quote: Quote, qty: Decimal, limit: Decimal | None) -> Decimal:
        """A taker's price with no book known: the touch (else the mark) moved against it by slippage that grows
        with size and volatility, on the tick grid, never beyond `limit`."""
        reference = (quote.ask if side is BUY else quote.bid) or quote.mark
        assert reference is not None
        notional = float(qty * reference)
        slip = (
            self._base_bps
            + self._size_bps * notional / 1_000_000
            + self._vol_multiplier * math.sqrt(quote.variance) * 10_000
        )
        price = spec.round_price(reference * (ONE + _SIGNS[side] * _six_places(slip) * _BPS))
        if limit is not None:
            price = min(price, limit) if side is BUY else max(price, limit)
        return price

    def taker_fee(self, spec: MarketSpec, qty: Decimal, price: Decimal) -> Decimal:
        """The fee of taking `qty` at `price` (to the ledger's precision)."""
        return (qty * price * spec.contract_size * self.taker_rate).quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)

    def maker_fee(self, spec: MarketSpec, qty: Decimal, price: Decimal) -> Decimal:
        """The fee of a resting order's fill of `qty` at `price` (to the ledger's precision)."""
        return (qty * price * spec.contract_size * self.maker_rate).quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)


def _six_places(value: float) -> Decimal:
    """`Decimal(str(round(value, 6)))` in value, at a third of the cost (both round the float's exact value half
    to even; below 1e8 both strings have at most 14 digits, so they name the same number, perhaps with trailing
    zeros; the price made from it is then the same to the last digit)."""
    if value < 1e8:
        return Decimal(f"{value:.6f}")
    return Decimal(str(round(value, 6)))


def bps(value: float) -> Decimal:
    """A rate given in basis points, as a fraction."""
    return Decimal(str(value)) * _BPS


def validate(request: OrderRequest, known: Mapping[str, MarketSpec]) -> None:
    """Refuse an order the venue cannot even consider (`known`: the venue's specs, by symbol).

    Raises:
        InvalidCommand: an unknown symbol, a quantity, leverage or price that is not a positive number, a limit
            order without a limit price, a stop or take-profit without a trigger price.
    """
    if request.symbol not in known:
        raise InvalidCommand(f"unknown symbol {request.symbol!r}; known: {', '.join(known)}")
    qty, leverage, limit, trigger = request.qty, request.leverage, request.limit_price, request.trigger_price
    if not qty.is_finite() or qty <= 0:
        raise InvalidCommand(f"order quantity must be a positive number, got {qty}")
    if not leverage.is_finite() or leverage < ONE:
        raise InvalidCommand(f"leverage must be at least 1, got {leverage}")
    if limit is not None and (not limit.is_finite() or limit <= 0):
        raise InvalidCommand(f"limit price must be a positive number, got {limit}")
    if trigger is not None and (not trigger.is_finite() or trigger <= 0):
        raise InvalidCommand(f"trigger price must be a positive number, got {trigger}")
    order_type = request.order_type
    if order_type is LIMIT_ORDER and limit is None:
        raise InvalidCommand("a limit order needs a limit price")
    if (order_type is STOP_MARKET_ORDER or order_type is TAKE_PROFIT_ORDER) and trigger is None:
        raise InvalidCommand(f"a {order_type} order needs a trigger price")


def effective_qty(request: OrderRequest, spec: MarketSpec, pos: Position | None) -> tuple[Decimal, str]:
    """The quantity the venue will work, or a reason to reject the order (`pos`: the symbol's position)."""
    qty = spec.round_qty(request.qty)
    if request.reduce_only:
        if pos is None or (pos.qty > 0) == (request.side is BUY):
            return ZERO, "reduce-only order would not reduce a position"
        return min(qty, abs(pos.qty)), ""
    if request.leverage > spec.max_leverage:
        return ZERO, f"leverage {request.leverage}x is above the market's maximum {spec.max_leverage}x"
    if spec.kind is SPOT:
        if request.leverage != ONE:
            return ZERO, "spot orders cannot use leverage"
        held = pos.qty if pos else ZERO
        if request.side is SELL and qty > held:
            return ZERO, f"spot sell of {qty} is more than the {held} held; spot cannot go short"
    if qty < spec.min_qty:
        return ZERO, f"quantity {request.qty} is below the market minimum {spec.min_qty}"
    return qty, ""


def closing_qty(pos: Position | None, side: Side, qty: Decimal) -> Decimal:
    """How much of `qty` on `side` reduces `pos` (the rest opens or adds)."""
    if pos is None or (pos.qty > 0) == (side is BUY):  # `pos.side is side`, without the property call
        return ZERO
    return min(qty, abs(pos.qty))


def marketable(request: OrderRequest, quote: Quote) -> bool:
    """Whether a limit order takes liquidity at once: the far side of the book (else the mark) is at its limit."""
    limit = request.limit_price
    assert limit is not None
    if request.side is BUY:
        ask = quote.ask or quote.mark
        return ask is not None and ask <= limit
    bid = quote.bid or quote.mark
    return bid is not None and bid >= limit
