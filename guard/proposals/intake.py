"""A trade idea from outside the model, sized: a quantity, a notional or a fraction of equity becomes contracts.

A person's or a source's `Propose` names its size one of three ways. guard turns a notional (account
currency) or a fraction of equity (the margin committed; the notional is that margin times the leverage)
into a quantity at the current mark, rounded down to the market's step, never more than was asked for.

A source's idea is also capped by the risk limits: its leverage at the conservative limit (a program cannot
take the leverage acknowledgment a person types) and its notional at `risk.max_order_notional`, each cap
named in the proposal's "why" for the operator to see. A person's own idea keeps what they typed: the risk
checks say what blocks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from guard.config import RiskSection
from guard.domain import HARD_LEVERAGE_CAP, ONE, MarketSpec
from guard.errors import InvalidCommand


@dataclass(frozen=True, slots=True)
class Size:
    """What was asked for: exactly one of the three is set."""

    qty: Decimal | None = None
    notional: Decimal | None = None
    equity_fraction: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Sized:
    """The quantity and leverage guard will propose, and what it changed on the way."""

    qty: Decimal
    leverage: Decimal
    notes: tuple[str, ...]
    """Each conversion and cap, in words ("notional 500 USDT = 0.0071 at 70,012.5")."""


def size_order(
    size: Size,
    leverage: Decimal,
    *,
    spec: MarketSpec,
    price: Decimal | None,
    equity: Decimal,
    limits: RiskSection,
    cap: bool,
) -> Sized:
    """The quantity for `size` at `price` (the limit price or the mark), with the leverage, capped when `cap`.

    Raises:
        InvalidCommand: no price yet for a size that needs one, no equity for a fraction of it, or a size
            that rounds to nothing at this market's step.
    """
    notes: list[str] = []
    if cap:
        ceiling = min(Decimal(str(limits.max_leverage)), spec.max_leverage, HARD_LEVERAGE_CAP)
        if leverage > ceiling:
            notes.append(f"leverage {leverage}x capped at {ceiling}x (risk.max_leverage)")
            leverage = ceiling
    leverage = max(leverage, ONE) if cap else leverage
    if size.qty is not None:
        qty = size.qty
        if cap and price is not None:
            qty = _capped(qty, price, spec, limits, notes)
        return Sized(qty, leverage, tuple(notes))
    if price is None or price <= 0:
        raise InvalidCommand(f"no market price for {spec.symbol} yet: a notional or a fraction needs one, or give qty")
    if size.notional is not None:
        notional = size.notional
        what = f"notional {notional}"
    else:
        assert size.equity_fraction is not None
        if equity <= 0:
            raise InvalidCommand("the account has no equity: give qty or notional instead of equity_fraction")
        notional = equity * size.equity_fraction * leverage
        what = f"{size.equity_fraction:%} of equity {equity:.2f} at {leverage}x = notional {notional:.2f}"
    qty = spec.round_qty(notional / (price * spec.contract_size))
    notes.append(f"{what} = {qty} at {price}")
    if cap:
        qty = _capped(qty, price, spec, limits, notes)
    if qty <= 0 or qty < spec.min_qty:
        raise InvalidCommand(
            f"{what} is {qty} {spec.symbol} at {price}: below the market minimum {spec.min_qty}; propose more"
        )
    return Sized(qty, leverage, tuple(notes))


def _capped(qty: Decimal, price: Decimal, spec: MarketSpec, limits: RiskSection, notes: list[str]) -> Decimal:
    """`qty`, or the most that stays within risk.max_order_notional at `price`."""
    most = spec.round_qty(limits.max_order_notional / (price * spec.contract_size))
    if qty > most:
        notes.append(f"qty {qty} capped at {most} (risk.max_order_notional {limits.max_order_notional})")
        return most
    return qty
