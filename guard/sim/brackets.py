"""The simulated venue's own maintenance-margin brackets, as its `/fapi/v1/leverageBracket` serves them.

This is the venue's data, not guard's: guard keeps its own built-in table (`guard.markets.builtin`)
for venues that will not say. The two are written and computed separately on purpose, so that a
test fetching the simulator's brackets through ccxt can catch a mistake in guard's table or in
guard's maintenance-amount arithmetic instead of agreeing with it by construction.

The rows copy Binance USDⓈ-M's published brackets for BTCUSDT and ETHUSDT and a typical
altcoin's, at the time of writing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class SimBracket:
    """One bracket as the venue serves it."""

    bracket: int
    """1-based bracket number."""
    initial_leverage: int
    notional_floor: int
    notional_cap: int
    maint_margin_ratio: Decimal
    cum: Decimal
    """Maintenance amount: what the venue subtracts from notional × ratio in this bracket."""


# (notional cap, maintenance margin ratio, initial leverage), lowest bracket first; each floor is
# the previous cap.
_TABLES: dict[str, tuple[tuple[int, str, int], ...]] = {
    "BTCUSDT": (
        (50_000, "0.004", 125),
        (600_000, "0.005", 100),
        (3_000_000, "0.0065", 75),
        (12_000_000, "0.01", 50),
        (70_000_000, "0.02", 25),
        (100_000_000, "0.025", 20),
        (230_000_000, "0.05", 10),
        (480_000_000, "0.1", 5),
        (600_000_000, "0.125", 4),
        (800_000_000, "0.15", 3),
        (1_200_000_000, "0.25", 2),
        (1_800_000_000, "0.5", 1),
    ),
    "ETHUSDT": (
        (50_000, "0.005", 100),
        (600_000, "0.0065", 75),
        (3_000_000, "0.01", 50),
        (12_000_000, "0.02", 25),
        (50_000_000, "0.025", 20),
        (65_000_000, "0.05", 10),
        (150_000_000, "0.1", 5),
        (320_000_000, "0.125", 4),
        (400_000_000, "0.15", 3),
        (530_000_000, "0.25", 2),
        (800_000_000, "0.5", 1),
    ),
}
_ALTCOIN: tuple[tuple[int, str, int], ...] = (
    (25_000, "0.01", 50),
    (100_000, "0.02", 25),
    (500_000, "0.025", 20),
    (1_000_000, "0.05", 10),
    (2_000_000, "0.1", 5),
    (5_000_000, "0.125", 4),
    (10_000_000, "0.15", 3),
    (20_000_000, "0.25", 2),
    (50_000_000, "0.5", 1),
)


def sim_brackets(market_id: str) -> tuple[SimBracket, ...]:
    """The brackets the simulated venue serves for a market id such as "BTCUSDT"."""
    rows = _TABLES.get(market_id.upper(), _ALTCOIN)
    out: list[SimBracket] = []
    floor, cum, ratio_below = 0, Decimal(0), Decimal(0)
    for n, (cap, ratio_text, leverage) in enumerate(rows, start=1):
        ratio = Decimal(ratio_text)
        # Binance's rule: what the lower brackets charged less than this ratio would, at this floor.
        cum += (ratio - ratio_below) * floor
        out.append(SimBracket(n, leverage, floor, cap, ratio, cum))
        floor, ratio_below = cap, ratio
    return tuple(out)
