"""What a history file's name says: market, kind and timeframe, in every form people's tools write."""

from __future__ import annotations

import pytest

from guard.domain import MarketKind
from guard.errors import BadInput
from guard.feed.names import parse_symbol, symbol_from_name


@pytest.mark.parametrize(
    ("name", "symbol", "kind", "timeframe"),
    [
        ("ETH_BTC-5m.csv", "ETH/BTC", MarketKind.SPOT, "5m"),
        ("XRP_USDT_USDT-5m-futures.csv", "XRP/USDT:USDT", MarketKind.LINEAR, "5m"),
        ("BTCUSDT-1m.csv", "BTC/USDT:USDT", MarketKind.LINEAR, "1m"),
        ("BTCUSDT-1m-2024-01.csv", "BTC/USDT:USDT", MarketKind.LINEAR, "1m"),
        ("BTC-USDT.csv", "BTC/USDT", MarketKind.SPOT, None),
        ("BTC-USDT-SWAP-1h.csv", "BTC/USDT:USDT", MarketKind.LINEAR, "1h"),
        ("ETHBTC-5m.csv", "ETH/BTC", MarketKind.SPOT, "5m"),
        ("ETH_BTC-5m-spot.csv", "ETH/BTC", MarketKind.SPOT, "5m"),
        ("btc_usdt_15m.csv", "BTC/USDT", MarketKind.SPOT, "15m"),
        ("SOLUSDC-4h-futures.csv", "SOL/USDC:USDC", MarketKind.LINEAR, "4h"),
        ("1000PEPEUSDT-1m.csv", "1000PEPE/USDT:USDT", MarketKind.LINEAR, "1m"),
        ("BTCUSD.csv", "BTC/USD", MarketKind.SPOT, None),
        ("BTCUSDT-1M.csv", "BTC/USDT:USDT", MarketKind.LINEAR, None),
    ],
)
def test_symbol_from_name_every_form_reads_market(
    name: str, symbol: str, kind: MarketKind, timeframe: str | None
) -> None:
    """Each common file-name form gives its ccxt symbol, its kind and the timeframe it mentions (only known ones)."""
    guess = symbol_from_name(name)
    assert (guess.symbol, guess.kind, guess.timeframe) == (symbol, kind, timeframe)


def test_symbol_from_name_guesses_are_said() -> None:
    """A run-together or separator-only name's kind is a guess, and the guess says how to correct it."""
    assert any("--kind spot" in g for g in symbol_from_name("BTCUSDT-1m.csv").guesses)
    assert any("--kind linear" in g for g in symbol_from_name("ETH_BTC-5m.csv").guesses)
    assert symbol_from_name("XRP_USDT_USDT-5m-futures.csv").guesses == ()


def test_symbol_from_name_kind_and_quote_options_settle_it() -> None:
    """--kind overrides the name's reading; --quote splits a run-together name at an unusual quote."""
    assert symbol_from_name("BTCUSDT-1m.csv", kind=MarketKind.SPOT).symbol == "BTC/USDT"
    assert symbol_from_name("ETH_BTC-5m.csv", kind=MarketKind.LINEAR).symbol == "ETH/BTC:BTC"
    assert symbol_from_name("XRPMXN-1h.csv", quote="MXN").symbol == "XRP/MXN"
    with pytest.raises(BadInput, match="--quote says EUR"):
        symbol_from_name("ETH_BTC-5m.csv", quote="EUR")


@pytest.mark.parametrize("name", ["data.csv", "GOOG.csv", "bars-1m.csv", "XRPMXN.csv"])
def test_symbol_from_name_unclear_asks_for_symbol(name: str) -> None:
    """A name that does not say the market is refused with what to pass."""
    with pytest.raises(BadInput, match="--symbol"):
        symbol_from_name(name)


@pytest.mark.parametrize("text", ["BTCUSDT", "BTC/", "/USDT", "BTC/USDT:", ""])
def test_parse_symbol_refuses_non_unified(text: str) -> None:
    """Only ccxt unified symbols are symbols."""
    with pytest.raises(BadInput, match="unified symbol"):
        parse_symbol(text)
