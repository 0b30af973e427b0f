"""ccxt markets → MarketSpec, the built-in leverage tiers, and the simulated venue's own brackets against guard's."""

from __future__ import annotations

import ast
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import ccxt
import pytest

import guard.sim
from guard.config import SimSection
from guard.domain import MarketKind
from guard.errors import FeedError
from guard.exchanges import SIM_API_KEY, SIM_API_SECRET, make_exchange
from guard.markets import builtin_tiers
from guard.markets.venue import market_spec, tiers_from_ccxt, venue_record
from guard.sim.server import SimExchange


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
        {
            "minNotional": 5000,
            "maxNotional": 25000,
            "maintenanceMarginRate": 0.025,
            "maxLeverage": 20,
            "info": {"cum": "75.0"},
        },
    ]
    tiers = tiers_from_ccxt(rows)
    assert tiers[1].cum == Decimal("75.0") and tiers[1].max_leverage == 20


def test_market_spec_decimal_places_precision() -> None:
    """Venues that count decimals (DECIMAL_PLACES) get tick and step sizes as powers of ten."""
    market = {
        "symbol": "X/USDT",
        "base": "X",
        "quote": "USDT",
        "spot": True,
        "precision": {"price": 2, "amount": 3},
        "limits": {"amount": {"min": None}, "cost": {"min": 5}},
        "maker": 0.001,
        "taker": 0.001,
    }
    spec = market_spec(market, ccxt.DECIMAL_PLACES, builtin_tiers("X/USDT"))
    assert spec.kind is MarketKind.SPOT
    assert (spec.tick_size, spec.step_size, spec.min_qty) == (Decimal("0.01"), Decimal("0.001"), Decimal("0.001"))
    assert spec.max_leverage == 1 and spec.tiers == ()


def test_market_spec_inverse_refused() -> None:
    """Inverse (coin-margined) contracts are refused: guard trades spot and linear perpetuals."""
    with pytest.raises(FeedError, match="linear"):
        market_spec({"symbol": "BTC/USD:BTC", "swap": True, "inverse": True, "precision": {}}, ccxt.TICK_SIZE, ())


async def test_builtin_tiers_match_the_simulated_venues_own_brackets() -> None:
    """guard's built-in BTC and ETH brackets (and the maintenance amounts it derives) agree with the brackets the
    simulated venue serves from its own table, fetched as a keyed ccxt client fetches them; an altcoin's
    conservative table matches the venue's typical altcoin brackets."""
    symbols = ("BTC/USDT:USDT", "ETH/USDT:USDT", "XRP/USDT:USDT")
    async with SimExchange(SimSection(history_bars=60), symbols) as sim:
        exchange = make_exchange("sim", timeout_seconds=5.0, sim=sim, streaming=False)
        try:
            await exchange.load_markets()
            exchange.apiKey, exchange.secret = SIM_API_KEY, SIM_API_SECRET
            records = {s: await venue_record(exchange, "sim", s, 5.0) for s in symbols}
        finally:
            await exchange.close()
    for symbol, record in records.items():
        venue, ours = record.spec.tiers, builtin_tiers(symbol)
        assert record.guesses == () and len(venue) == len(ours) > 5
        assert [(t.floor, t.mmr, t.cum, t.max_leverage) for t in venue] == [
            (t.floor, t.mmr, t.cum, t.max_leverage) for t in ours
        ]
        assert [t.cap for t in venue[:-1]] == [t.cap for t in ours[:-1]]


async def test_venue_record_without_keys_says_tiers_are_guard_s() -> None:
    """Without keys the venue's brackets are not given: the record uses guard's table and says so as a guess."""
    async with SimExchange(SimSection(history_bars=60), ("SOL/USDT:USDT",)) as sim:
        exchange = make_exchange("sim", timeout_seconds=5.0, sim=sim, streaming=False)
        try:
            await exchange.load_markets()
            record = await venue_record(exchange, "sim", "SOL/USDT:USDT", 5.0)
        finally:
            await exchange.close()
    assert record.spec.tiers == builtin_tiers("SOL/USDT:USDT")
    assert any("conservative altcoin table" in g and "signed requests" in g for g in record.guesses)


def test_simulator_serves_its_own_brackets_not_guards() -> None:
    """No module of the simulated exchange imports guard.markets: its brackets can disagree with guard's, so a
    test comparing the two can catch an error in guard's table."""
    sim_dir = Path(guard.sim.__file__).parent
    for path in sim_dir.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in imported if m.startswith("guard.markets")], path.name
