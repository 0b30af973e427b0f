"""Bad input: a command's arguments checked before anything is recorded.

Each check raises `InvalidCommand` naming what was wrong and what is allowed; a business refusal
(trading HALTED, a risk block) is not bad input and comes back as a `CommandResult` instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal

from msgspec.structs import fields

from guard.domain import HARD_LEVERAGE_CAP, ONE, MarketSpec, OrderType, OverrideEdits, ProposalRequest
from guard.errors import InvalidCommand

PRICE_SANITY_MULTIPLE = 10
"""A proposal's limit, stop or take-profit lies within this factor of the market price, either way."""


def validate_request(r: ProposalRequest, specs: Mapping[str, MarketSpec]) -> None:
    """A proposal request as the desk takes it: a known symbol, positive sizes and prices, sane odds.

    Raises:
        InvalidCommand: naming the field, what it was and what is allowed.
    """
    if r.symbol not in specs:
        raise InvalidCommand(f"unknown symbol {r.symbol!r}; known: {', '.join(specs)}")
    validate_positive("qty", r.qty)
    _leverage(r.leverage)
    for name in ("stop", "take_profit", "limit_price"):
        value = getattr(r, name)
        if value is not None:
            validate_positive(name, value)
    if r.order_type is OrderType.LIMIT and r.limit_price is None:
        raise InvalidCommand("a limit proposal needs a limit price")
    if r.order_type not in (OrderType.MARKET, OrderType.LIMIT):
        raise InvalidCommand(f"a proposal is a market or limit order, not {r.order_type}")
    for name in ("confidence", "novelty"):
        value = getattr(r, name)
        if not (math.isfinite(value) and 0 <= value <= 1):
            raise InvalidCommand(f"{name} must be between 0 and 1, got {value!r}")
    if not (math.isfinite(r.sigma) and r.sigma >= 0):
        raise InvalidCommand(f"sigma must be a non-negative number, got {r.sigma!r}")
    if not (math.isfinite(r.horizon_seconds) and r.horizon_seconds > 0):
        raise InvalidCommand(f"horizon_seconds must be positive, got {r.horizon_seconds!r}")


def validate_edits(edits: OverrideEdits) -> None:
    """An override that changes something, each change a positive number (leverage within the hard cap).

    Raises:
        InvalidCommand: naming the field, what it was and what is allowed.
    """
    if edits.qty is not None:
        validate_positive("qty", edits.qty)
    if edits.leverage is not None:
        _leverage(edits.leverage)
    for name in ("stop", "take_profit", "limit_price"):
        value = getattr(edits, name)
        if value is not None:
            validate_positive(name, value)
    if all(getattr(edits, f.name) is None for f in fields(edits)):
        raise InvalidCommand("the override changes nothing: approve instead")


def check_prices(symbol: str, mark: Decimal | None, **prices: Decimal | None) -> None:
    """A limit, stop or take-profit within PRICE_SANITY_MULTIPLE of the market price (once there is one):
    anything further is a typo or an attack, and its arithmetic (a re-price, a collar) can overflow.

    Raises:
        InvalidCommand: naming the price, the market price and the range allowed.
    """
    if mark is None or mark <= 0:
        return
    low, high = mark / PRICE_SANITY_MULTIPLE, mark * PRICE_SANITY_MULTIPLE
    for name, value in prices.items():
        if value is not None and not low <= value <= high:
            raise InvalidCommand(
                f"{name} {value} is more than {PRICE_SANITY_MULTIPLE}x away from the market price {mark} "
                f"of {symbol}: allowed {low:.6g} to {high:.6g}"
            )


def validate_positive(name: str, value: Decimal) -> None:
    """A size or price: finite and above zero."""
    if not value.is_finite() or value <= 0:
        raise InvalidCommand(f"{name} must be a positive number, got {value}")


def _leverage(value: Decimal) -> None:
    if not value.is_finite() or value < ONE or value > HARD_LEVERAGE_CAP:
        raise InvalidCommand(f"leverage must be between 1x and the hard cap of {HARD_LEVERAGE_CAP}x, got {value}x")


def validate_operator(operator: str) -> None:
    """Every command carries who gave it."""
    if not operator or not operator.strip() or len(operator) > 64:
        raise InvalidCommand("every command needs an operator id (1 to 64 characters)")
