"""Leverage and liquidation math: where a position dies, and how likely it is to get there.

Liquidation prices follow Binance USDⓈ-M's published formula (FAQ "How to Calculate
Liquidation Price of USDⓈ-M Futures Contracts"); for an isolated position TMM and UPNL are 0
and WB is the position's isolated wallet balance. The maintenance bracket is chosen by
position notional; when the notional at the liquidation price falls in a different bracket,
the price is recomputed with that bracket, as the exchange's notes say to do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal

from guard.domain import BUY, ONE, SELL, SPOT, ZERO, LeverageTier, MarketSpec, Side

P_LIQUIDATION_FLOOR = 1e-4
"""GBM has thin tails: short-horizon estimates come out absurdly small, so never show less."""

_MINUS_ONE = Decimal(-1)

_BGK = 0.5826
"""Broadie–Glasserman–Kou continuity correction for a barrier watched at discrete times."""


def tiers_from_brackets(
    brackets: Sequence[tuple[Decimal, Decimal, Decimal]],
) -> tuple[LeverageTier, ...]:
    """Build tiers from (floor notional, maintenance margin rate, max leverage) rows.

    The maintenance amount of each tier follows the exchange's rule:
    cum_n = floor_n · (mmr_n − mmr_{n−1}) + cum_{n−1}.
    """
    tiers: list[LeverageTier] = []
    cum = ZERO
    prev_mmr = ZERO
    for i, (floor, mmr, max_leverage) in enumerate(brackets):
        cap = brackets[i + 1][0] if i + 1 < len(brackets) else Decimal("Infinity")
        cum = floor * (mmr - prev_mmr) + cum
        tiers.append(LeverageTier(floor, cap, mmr, cum, max_leverage))
        prev_mmr = mmr
    return tuple(tiers)


def liquidation_price_formula(
    side: Side,
    qty: Decimal,
    entry_price: Decimal,
    wallet_balance: Decimal,
    mmr: Decimal,
    cum: Decimal,
    other_maintenance: Decimal = ZERO,
    other_unrealized: Decimal = ZERO,
) -> Decimal:
    """Binance USDⓈ-M one-way liquidation price for one tier.

    LP = (WB − TMM1 + UPNL1 + cum − side·Q·EP) / (Q·MMR − side·Q)

    Args:
        qty: absolute position size.
        wallet_balance: isolated wallet balance (isolated) or account wallet balance (cross).
        other_maintenance: TMM1, maintenance margin of other positions (cross only).
        other_unrealized: UPNL1, unrealized PnL of other positions (cross only).
    """
    s = ONE if side is BUY else _MINUS_ONE  # Decimal(side.sign), without building it each time
    numerator = wallet_balance - other_maintenance + other_unrealized + cum - s * qty * entry_price
    denominator = qty * mmr - s * qty
    return numerator / denominator


def isolated_liquidation_price(
    spec: MarketSpec, side: Side, qty: Decimal, entry_price: Decimal, margin: Decimal
) -> Decimal | None:
    """Liquidation price of an isolated linear position, or None when it cannot be liquidated.

    Spot holdings are never liquidated; a position whose margin covers the whole move to
    zero (long at 1x with no maintenance) has no positive liquidation price.
    """
    if spec.kind is SPOT or qty <= 0:
        return None
    tier = spec.tier_for(qty * entry_price)
    for _ in range(len(spec.tiers) + 1):
        price = liquidation_price_formula(side, qty, entry_price, margin, tier.mmr, tier.cum)
        if price <= 0:
            return None
        at_liquidation = spec.tier_for(qty * price)
        if at_liquidation is tier or at_liquidation == tier:
            break
        tier = at_liquidation
    return spec.round_price(price)


def p_liquidation(
    side: Side,
    price: Decimal,
    liquidation_price: Decimal | None,
    sigma_per_second: float,
    horizon_seconds: float,
    sample_seconds: float = 1.0,
) -> float:
    """Probability the price touches the liquidation price within the horizon (GBM, zero drift).

    A model estimate: the barrier is shifted away from spot by exp(0.5826·σ·√Δt) because the
    mark is sampled, and the result is floored at P_LIQUIDATION_FLOOR because GBM's thin tails
    make short-horizon numbers absurdly small.
    """
    if liquidation_price is None or liquidation_price <= 0:
        return 0.0
    if sigma_per_second <= 0 or horizon_seconds <= 0:
        return P_LIQUIDATION_FLOOR
    spot = float(price)
    barrier = float(liquidation_price)
    shift = math.exp(_BGK * sigma_per_second * math.sqrt(sample_seconds))
    barrier = barrier / shift if side is BUY else barrier * shift
    b = math.log(barrier / spot)
    if (side is BUY and b >= 0) or (side is SELL and b <= 0):
        return 1.0
    sig = sigma_per_second
    t = horizon_seconds
    nu = -0.5 * sig * sig
    sd = sig * math.sqrt(t)
    if side is BUY:
        p = _phi((b - nu * t) / sd) + math.exp(2 * nu * b / (sig * sig)) * _phi((b + nu * t) / sd)
    else:
        p = _phi((-b + nu * t) / sd) + math.exp(2 * nu * b / (sig * sig)) * _phi((-b - nu * t) / sd)
    return min(1.0, max(P_LIQUIDATION_FLOOR, p))


def liquidation_distance_sigma(
    price: Decimal, liquidation_price: Decimal | None, sigma_per_second: float, horizon_seconds: float
) -> float | None:
    """How many standard deviations of the horizon's move lie between the price and liquidation."""
    if liquidation_price is None or liquidation_price <= 0 or sigma_per_second <= 0 or horizon_seconds <= 0:
        return None
    return abs(math.log(float(liquidation_price) / float(price))) / (sigma_per_second * math.sqrt(horizon_seconds))


def initial_margin(notional: Decimal, leverage: Decimal) -> Decimal:
    return notional / max(leverage, ONE)


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))
