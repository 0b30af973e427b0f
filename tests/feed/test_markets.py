"""ccxt markets → MarketSpec, and the built-in leverage tiers."""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise

import ccxt
import pytest

from guard.domain import MarketKind
from guard.errors import FeedError
from guard.feed.markets import builtin_tiers, market_spec, tiers_from_ccxt


def test_builtin_tiers_cum_consistent() -> None:
    """Each tier's maintenance amount is floor·(mmr − previous mmr) + previous amount, caps chain up."""
    for symbol in ("BTC/USDT:USDT", "ETH/USDT:USDT", "DOGE/USDT:USDT"):
        tiers = builtin_tiers(symbol)
        assert tiers[0].floor == 0 and tiers[0].cum == 0
        for prev, tier in pairwise(tiers):
            assert tier.floor == prev.cap
            assert tier.cum == tier.floor * (tier.mmr - prev.mmr) + prev.cum
            assert tier.max_leverage < prev.max_leverage


def test_builtin_btc_tier_liquidation_example() -> None:
    """BTC tier 1 (MMR 0.4 %) reproduces REFERENCE.md's 10x long liquidation near 90,361."""
    tier = builtin_tiers("BTC/USDT:USDT")[0]
    q, ep = Decimal("0.1"), Decimal(100_000)
    wb = q * ep / 10
    lp = (q * ep - wb - tier.cum) / (q * (1 - tier.mmr))
    assert round(lp) == 90_361


def test_tiers_from_ccxt_keep_venue_cum() -> None:
    """Tiers fetched through ccxt keep the venue's maintenance amount when it gives one."""
    rows = [
        {"minNotional": 0, "maxNotional": 5000, "maintenanceMarginRate": 0.01, "maxLeverage": 50, "info": {"cum": "0"}},
        {"minNotional": 5000, "maxNotional": 25000, "maintenanceMarginRate": 0.025, "maxLeverage": 20,
         "info": {"cum": "75.0"}},
    ]
    tiers = tiers_from_ccxt(rows)
    assert tiers[1].cum == Decimal("75.0") and tiers[1].max_leverage == 20


def test_market_spec_decimal_places_precision() -> None:
    """Venues that count decimals (DECIMAL_PLACES) get tick and step sizes as powers of ten."""
    market = {"symbol": "X/USDT", "base": "X", "quote": "USDT", "spot": True,
              "precision": {"price": 2, "amount": 3}, "limits": {"amount": {"min": None}, "cost": {"min": 5}},
              "maker": 0.001, "taker": 0.001}
    spec = market_spec(market, ccxt.DECIMAL_PLACES, builtin_tiers("X/USDT"))
    assert spec.kind is MarketKind.SPOT
    assert (spec.tick_size, spec.step_size, spec.min_qty) == (Decimal("0.01"), Decimal("0.001"), Decimal("0.001"))
    assert spec.max_leverage == 1 and spec.tiers == ()


def test_market_spec_inverse_refused() -> None:
    """Inverse (coin-margined) contracts are refused: guard trades spot and linear perpetuals."""
    with pytest.raises(FeedError, match="linear"):
        market_spec({"symbol": "BTC/USD:BTC", "swap": True, "inverse": True, "precision": {}}, ccxt.TICK_SIZE, ())
