"""Prices on the market's tick grid: how far apart two prices really are once rounded.

A price guard shows or sends is a multiple of the market's tick. Barriers are rounded before they
are compared with the entry (a stop a fraction of a tick away rounds onto the entry), and a move is
judged between rounded prices, allowing the one tick that rounding two prices can add between them.
"""

from __future__ import annotations

from decimal import Decimal

from guard.domain import MarketSpec

MIN_BARRIER_TICKS = 2
"""A stop or take-profit must sit more than this many ticks from the entry: closer, a tick of slippage or
rounding puts it on the entry, and the order would fill and exit at one price."""


def ticks_between(spec: MarketSpec, a: Decimal, b: Decimal) -> Decimal:
    """How many ticks separate two prices once each is rounded to the tick."""
    return abs(spec.round_price(a) - spec.round_price(b)) / spec.tick_size


def barrier_refusal(spec: MarketSpec, entry: Decimal, stop: Decimal | None, take_profit: Decimal | None) -> str:
    """Why these barriers make no proposal at this entry ("" when both are far enough from it), on rounded prices."""
    rounded = spec.round_price(entry)  # once: every proposal the model makes asks
    for name, level in (("stop", stop), ("take-profit", take_profit)):
        if level is None:
            continue
        n = abs(spec.round_price(level) - rounded) / spec.tick_size  # `ticks_between`, the entry rounded once
        if n <= MIN_BARRIER_TICKS:
            return (
                f"{name} {spec.round_price(level)} is {n:f} tick{'' if n == 1 else 's'} from the entry "
                f"{rounded} (tick {spec.tick_size}): barriers within {MIN_BARRIER_TICKS} ticks "
                "of the entry make no proposal"
            )
    return ""


def beyond_collar(spec: MarketSpec, price: Decimal, mark: Decimal, collar_bps: float) -> bool:
    """Whether the mark, rounded, is past the collar around a (rounded) price by more than rounding explains.

    Rounding the price and the mark each moves it by at most half a tick, so a true move within the collar
    shows as at most the collar plus one tick: only a rounded move beyond that is a move.
    """
    # The unrounded price was within half a tick of `price`: the collar measured from it is this wide at most.
    allowed = (price + spec.tick_size) * Decimal(str(collar_bps)) / 10_000 + spec.tick_size
    return abs(spec.round_price(mark) - price) > allowed
