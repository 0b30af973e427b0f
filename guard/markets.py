"""Built-in market specifications, used when a venue cannot tell us (and by the paper broker's tests).

The maintenance brackets follow Binance USDⓈ-M's published brackets at the time of writing;
live venues replace them with `fetch_leverage_tiers` where the venue allows it.
"""

from __future__ import annotations

from decimal import Decimal

from guard.domain import LeverageTier, MarketKind, MarketSpec
from guard.risk.liquidation import tiers_from_brackets

D = Decimal

# (floor notional, maintenance margin rate, max leverage) per bracket, after Binance USDⓈ-M's
# published brackets for BTCUSDT, ETHUSDT and a typical altcoin; each cap is the next floor and
# each maintenance amount is derived, so the two always agree.
_BRACKETS: dict[str, tuple[tuple[int, str, int], ...]] = {
    "BTC": (
        (0, "0.004", 125),
        (50_000, "0.005", 100),
        (600_000, "0.0065", 75),
        (3_000_000, "0.01", 50),
        (12_000_000, "0.02", 25),
        (70_000_000, "0.025", 20),
        (100_000_000, "0.05", 10),
        (230_000_000, "0.1", 5),
        (480_000_000, "0.125", 4),
        (600_000_000, "0.15", 3),
        (800_000_000, "0.25", 2),
        (1_200_000_000, "0.5", 1),
    ),
    "ETH": (
        (0, "0.005", 100),
        (50_000, "0.0065", 75),
        (600_000, "0.01", 50),
        (3_000_000, "0.02", 25),
        (12_000_000, "0.025", 20),
        (50_000_000, "0.05", 10),
        (65_000_000, "0.1", 5),
        (150_000_000, "0.125", 4),
        (320_000_000, "0.15", 3),
        (400_000_000, "0.25", 2),
        (530_000_000, "0.5", 1),
    ),
    "*": (
        (0, "0.01", 50),
        (25_000, "0.02", 25),
        (100_000, "0.025", 20),
        (500_000, "0.05", 10),
        (1_000_000, "0.1", 5),
        (2_000_000, "0.125", 4),
        (5_000_000, "0.15", 3),
        (10_000_000, "0.25", 2),
        (20_000_000, "0.5", 1),
    ),
}


def builtin_tiers(symbol: str) -> tuple[LeverageTier, ...]:
    """guard's built-in maintenance brackets for a linear perpetual (when the venue will not say)."""
    base = symbol.split("/", 1)[0].upper()
    rows = _BRACKETS.get(base, _BRACKETS["*"])
    return tiers_from_brackets([(D(floor), D(mmr), D(leverage)) for floor, mmr, leverage in rows])


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
        tiers=builtin_tiers(symbol) if kind is MarketKind.LINEAR else (),
    )
