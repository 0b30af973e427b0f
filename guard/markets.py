"""Built-in market specifications, used when a venue cannot tell us (and by the paper broker's tests).

The maintenance brackets mirror Binance USDⓈ-M's published BTCUSDT brackets at the time of
writing; live venues replace them with `fetch_leverage_tiers` where the venue allows it.
"""

from __future__ import annotations

from decimal import Decimal

from guard.domain import LeverageTier, MarketKind, MarketSpec
from guard.risk.liquidation import tiers_from_brackets

D = Decimal

DEFAULT_BRACKETS: tuple[tuple[Decimal, Decimal, Decimal], ...] = (
    (D(0), D("0.004"), D(125)),
    (D(50_000), D("0.005"), D(100)),
    (D(600_000), D("0.01"), D(75)),
    (D(3_000_000), D("0.025"), D(50)),
    (D(12_000_000), D("0.05"), D(25)),
    (D(70_000_000), D("0.1"), D(20)),
    (D(100_000_000), D("0.125"), D(10)),
    (D(230_000_000), D("0.15"), D(5)),
    (D(480_000_000), D("0.25"), D(2)),
    (D(600_000_000), D("0.5"), D(1)),
)
"""(floor notional, maintenance margin rate, max leverage) per bracket."""

DEFAULT_TIERS: tuple[LeverageTier, ...] = tiers_from_brackets(DEFAULT_BRACKETS)

_PRECISION = {
    # base: (tick size, step size, min qty)
    "BTC": (D("0.1"), D("0.001"), D("0.001")),
    "ETH": (D("0.01"), D("0.001"), D("0.001")),
    "SOL": (D("0.01"), D("0.01"), D("0.01")),
}


def default_spec(symbol: str) -> MarketSpec:
    """A reasonable spec for a ccxt unified symbol: "BTC/USDT:USDT" (linear) or "BTC/USDT" (spot)."""
    pair, _, settle = symbol.partition(":")
    base, _, quote = pair.partition("/")
    kind = MarketKind.LINEAR if settle else MarketKind.SPOT
    tick, step, min_qty = _PRECISION.get(base, (D("0.0001"), D("0.001"), D("0.001")))
    return MarketSpec(
        symbol=symbol,
        base=base,
        quote=quote or "USDT",
        kind=kind,
        tick_size=tick,
        step_size=step,
        min_qty=min_qty,
        min_notional=D(5),
        maker_fee=D("0.0002"),
        taker_fee=D("0.0005"),
        max_leverage=D(125) if kind is MarketKind.LINEAR else D(1),
        tiers=DEFAULT_TIERS if kind is MarketKind.LINEAR else (),
    )
