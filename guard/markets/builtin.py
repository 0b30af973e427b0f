"""guard's built-in market specifications: BTC, ETH and SOL against USDT, perpetual and spot.

Used only for the symbols they describe, when nothing better is known (no spec file beside the
history, no venue to ask). Any other symbol has no built-in spec: `default_spec` refuses it
rather than invent a tick size, because a wrong tick makes every price guard shows wrong.

The maintenance brackets follow Binance USDⓈ-M's published brackets at the time of writing;
live venues replace them with `fetch_leverage_tiers` where the venue allows it. The table for
other linear perpetuals ("*") is the conservative fallback when a venue will not publish its
brackets: it is a guess, and every place that uses it says so.
"""

from __future__ import annotations

from decimal import Decimal

from guard.domain import LeverageTier, MarketKind, MarketSpec
from guard.errors import BadInput
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
    """guard's built-in maintenance brackets for a linear perpetual (when the venue will not say).

    BTC and ETH get Binance's published brackets; any other base the conservative altcoin table
    (see `tiers_are_guessed`).
    """
    base = symbol.split("/", 1)[0].upper()
    rows = _BRACKETS.get(base, _BRACKETS["*"])
    return tiers_from_brackets([(D(floor), D(mmr), D(leverage)) for floor, mmr, leverage in rows])


def tiers_are_guessed(symbol: str) -> bool:
    """True when `builtin_tiers(symbol)` is the conservative altcoin table, not brackets published for it."""
    return symbol.split("/", 1)[0].upper() not in _BRACKETS


BUILTIN_BASES = ("BTC", "ETH", "SOL")
BUILTIN_QUOTE = "USDT"

_PRECISION = {
    # base: (tick size, step size, min qty)
    "BTC": (D("0.1"), D("0.001"), D("0.001")),
    "ETH": (D("0.01"), D("0.001"), D("0.001")),
    "SOL": (D("0.01"), D("0.01"), D("0.01")),
}


def builtin_spec(symbol: str) -> MarketSpec | None:
    """guard's built-in spec for "BTC/USDT:USDT" (linear) or "BTC/USDT" (spot), ETH and SOL alike; else None."""
    pair, colon, settle = symbol.partition(":")
    base, _, quote = pair.partition("/")
    if base not in _PRECISION or quote != BUILTIN_QUOTE or (colon and settle != BUILTIN_QUOTE):
        return None
    kind = MarketKind.LINEAR if colon else MarketKind.SPOT
    tick, step, min_qty = _PRECISION[base]
    tiers = builtin_tiers(symbol) if kind is MarketKind.LINEAR else ()
    return MarketSpec(
        symbol=symbol,
        base=base,
        quote=quote,
        kind=kind,
        tick_size=tick,
        step_size=step,
        min_qty=min_qty,
        min_notional=D(5),
        maker_fee=D("0.0002"),
        taker_fee=D("0.0005"),
        max_leverage=tiers[0].max_leverage if tiers else D(1),
        tiers=tiers,
    )


def default_spec(symbol: str) -> MarketSpec:
    """guard's built-in spec for a symbol it describes (see `builtin_spec`).

    Raises:
        BadInput: for any other symbol, saying what guard describes and how to give a spec.
    """
    spec = builtin_spec(symbol)
    if spec is None:
        described = ", ".join(f"{b}/{BUILTIN_QUOTE}:{BUILTIN_QUOTE}" for b in BUILTIN_BASES)
        raise BadInput(
            f"{symbol}: guard has no built-in market spec for it (it has them for {described} and their spot "
            "pairs); give the venue's spec: `guard history fetch` saves it beside the bars, `guard history "
            "import --tick T --step S` writes one, or pass a spec file"
        )
    return spec
