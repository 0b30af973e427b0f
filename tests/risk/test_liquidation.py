"""Liquidation math matches the exchange's published worked examples and a Monte Carlo check."""

from __future__ import annotations

import math
from decimal import Decimal as D

import numpy as np
import pytest

from guard.domain import MarketKind, Side
from guard.markets import builtin_tiers, default_spec
from guard.risk.liquidation import (
    P_LIQUIDATION_FLOOR,
    isolated_liquidation_price,
    liquidation_distance_sigma,
    liquidation_price_formula,
    p_liquidation,
    tiers_from_brackets,
)

# Binance's worked example (FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures
# Contracts"): one cross-margin account with WB = 1,535,443.01 USDT holding
#   BTCUSDT long 109.488 @ 32,481.98 (mark 31,967.27), MMR 2.5 %, cum 16,300
#   ETHUSDT long 3,683.979 @ 1,456.84 (mark 1,335.18), MMR 10 %,  cum 135,365
# and the published liquidation prices 26,316.89 (BTC) and 1,153.26 (ETH).
WB = D("1535443.01")
BTC = {"qty": D("109.488"), "ep": D("32481.98"), "mark": D("31967.27"), "mmr": D("0.025"), "cum": D("16300")}
ETH = {"qty": D("3683.979"), "ep": D("1456.84"), "mark": D("1335.18"), "mmr": D("0.10"), "cum": D("135365")}


def _maintenance(p: dict) -> D:
    return p["qty"] * p["mark"] * p["mmr"] - p["cum"]


def _unrealized(p: dict) -> D:
    return (p["mark"] - p["ep"]) * p["qty"]


def _close(actual: D, published: str) -> bool:
    return abs(actual - D(published)) / D(published) <= D("0.0001")  # within 0.01 %


def test_liquidation_price_binance_published_cross_example_btc() -> None:
    """BTCUSDT liquidates at Binance's published 26,316.89 (within 0.01 %)."""
    lp = liquidation_price_formula(
        Side.BUY, BTC["qty"], BTC["ep"], WB, BTC["mmr"], BTC["cum"], _maintenance(ETH), _unrealized(ETH)
    )
    assert _close(lp, "26316.89")


def test_liquidation_price_binance_published_cross_example_eth() -> None:
    """ETHUSDT liquidates at Binance's published 1,153.26 (within 0.01 %)."""
    lp = liquidation_price_formula(
        Side.BUY, ETH["qty"], ETH["ep"], WB, ETH["mmr"], ETH["cum"], _maintenance(BTC), _unrealized(BTC)
    )
    assert _close(lp, "1153.26")


@pytest.mark.parametrize(
    ("p", "published"),
    [(ETH, "1114.78"), (BTC, "18778.73")],
)
def test_liquidation_price_same_positions_isolated(p: dict, published: str) -> None:
    """With the example's wallet as an isolated balance (TMM = UPNL = 0) the formula gives the isolated figures."""
    assert _close(liquidation_price_formula(Side.BUY, p["qty"], p["ep"], WB, p["mmr"], p["cum"]), published)


def test_tiers_from_brackets_maintenance_amount_follows_exchange_rule() -> None:
    """cum_n = floor_n · (mmr_n − mmr_{n−1}) + cum_{n−1}, the rule behind Binance's worked maintenance amounts."""
    # Binance's example: level 5 = 50 BTC · (5 % − 2.5 %) + 0.56 BTC = 1.81 BTC.
    tiers = tiers_from_brackets([(D(0), D("0.011"), D(125)), (D(40), D("0.025"), D(50)), (D(50), D("0.05"), D(20))])
    assert tiers[1].cum == D("0.56")
    assert tiers[2].cum == tiers[1].cum + D(50) * (D("0.05") - D("0.025")) == D("1.81")
    # Binance BTCUSDT: 0.4 % to 50k, 0.5 % to 600k, 0.65 % to 3M, 1 % to 12M, 2 % to 70M.
    assert [t.cum for t in builtin_tiers("BTC/USDT:USDT")[:5]] == [D(0), D(50), D(950), D(11450), D(131450)]


@pytest.mark.parametrize(
    ("leverage", "expected", "move"), [(10, "90361.4", -9.6), (20, "95381.5", -4.6), (50, "98393.6", -1.6)]
)
def test_isolated_liquidation_price_long_by_leverage(leverage: int, expected: str, move: float) -> None:
    """0.1 BTC long at 100,000 in tier 1 liquidates ~9.6 % lower at 10x, ~4.6 % at 20x, ~1.6 % at 50x."""
    spec = default_spec("BTC/USDT:USDT")
    lp = isolated_liquidation_price(spec, Side.BUY, D("0.1"), D(100_000), D(10_000) / leverage)
    assert lp == D(expected)
    assert round(float(lp / 1000 - 100), 1) == move


def test_isolated_liquidation_price_short_is_above_entry() -> None:
    """A 10x short liquidates above its entry, by the short formula."""
    spec = default_spec("BTC/USDT:USDT")
    lp = isolated_liquidation_price(spec, Side.SELL, D("0.1"), D(100_000), D(1000))
    assert lp == spec.round_price(D(11_000) / (D("0.1") * D("1.004")))


def test_isolated_liquidation_price_uses_bracket_at_liquidation_notional() -> None:
    """When the notional at the liquidation price sits in a lower bracket, that bracket is used."""
    spec = default_spec("BTC/USDT:USDT")
    # 0.55 BTC at 100,000 is 55,000 notional (bracket 2); at 1x its liquidation is near zero (bracket 1).
    lp = isolated_liquidation_price(spec, Side.SELL, D("0.55"), D(100_000), D(27_500))
    expected = liquidation_price_formula(Side.SELL, D("0.55"), D(100_000), D(27_500), D("0.005"), D(50))
    assert lp == spec.round_price(expected)


def test_isolated_liquidation_price_spot_and_fully_margined_long_have_none() -> None:
    """Spot is never liquidated; a 1x long with no maintenance left has no positive liquidation price."""
    assert isolated_liquidation_price(default_spec("BTC/USDT"), Side.BUY, D(1), D(100), D(100)) is None
    spec = default_spec("BTC/USDT:USDT")
    assert spec.kind is MarketKind.LINEAR
    assert isolated_liquidation_price(spec, Side.BUY, D("0.1"), D(100_000), D(10_000)) is None


def test_p_liquidation_matches_monte_carlo() -> None:
    """The GBM barrier formula (with the discrete-monitoring shift) agrees with simulated paths."""
    rng = np.random.default_rng(7)
    sigma, seconds, steps = 0.0005, 3600.0, 3600
    spot, barrier = 100.0, 97.0
    hits = 0
    chunks, paths = 6, 2_000
    for _ in range(chunks):
        increments = rng.normal(-0.5 * sigma**2, sigma, size=(paths, steps)).astype(np.float32)
        lows = np.cumsum(increments, axis=1).min(axis=1)
        hits += int(np.sum(lows <= math.log(barrier / spot)))
    simulated = hits / (chunks * paths)
    formula = p_liquidation(Side.BUY, D(spot), D(barrier), sigma, seconds, sample_seconds=1.0)
    assert 0.05 < simulated < 0.5
    assert abs(formula - simulated) < 0.02  # ~4 standard errors of 12,000 paths


def test_p_liquidation_is_floored_and_bounded() -> None:
    """A far liquidation is shown as the floor, never as zero; a crossed one as certain."""
    assert p_liquidation(Side.BUY, D(100), D(50), 0.0001, 60) == P_LIQUIDATION_FLOOR
    assert p_liquidation(Side.BUY, D(100), D(101), 0.0001, 60) == 1.0
    assert p_liquidation(Side.SELL, D(100), None, 0.0001, 60) == 0.0


def test_liquidation_distance_sigma_counts_horizon_standard_deviations() -> None:
    """Distance is |ln(LP/S)| over σ·√T."""
    d = liquidation_distance_sigma(D(100), D(90), 0.001, 100.0)
    assert d == pytest.approx(abs(math.log(0.9)) / 0.01)
