"""Validation of ccxt structures: bad values are refused with a reason, never passed on."""

from __future__ import annotations

import math

from guard.domain import Book, MarkPrice, Side, Ticker, Trade
from guard.feed.validate import book_from_ccxt, mark_from_ccxt, ticker_from_ccxt, trade_from_ccxt

SYM = "BTC/USDT:USDT"


def _trade(**changes: object) -> dict[str, object]:
    raw: dict[str, object] = {"id": "7", "timestamp": 1_767_225_600_000, "price": 100.5, "amount": 0.2, "side": "sell"}
    raw.update(changes)
    return raw


def test_trade_valid_becomes_trade() -> None:
    """A good ccxt trade becomes a Trade with the same values."""
    trade = trade_from_ccxt(_trade(), SYM)
    assert trade == Trade(SYM, "7", 1_767_225_600_000, 100.5, 0.2, Side.SELL)


def test_trade_bad_values_refused_with_reason() -> None:
    """NaN, zero, negative, infinite, missing and mistyped fields each get their own reason."""
    assert trade_from_ccxt(_trade(price=math.nan), SYM) == "nan price"
    assert trade_from_ccxt(_trade(price=0.0), SYM) == "non-positive price"
    assert trade_from_ccxt(_trade(price=-1.0), SYM) == "non-positive price"
    assert trade_from_ccxt(_trade(price=math.inf), SYM) == "infinite price"
    assert trade_from_ccxt(_trade(price=None), SYM) == "malformed: no price"
    assert trade_from_ccxt(_trade(price="1"), SYM) == "malformed: price is str"
    assert trade_from_ccxt(_trade(amount=None), SYM) == "malformed: no amount"
    assert trade_from_ccxt(_trade(timestamp=None), SYM) == "malformed: no timestamp"
    assert trade_from_ccxt(_trade(side=None), SYM) == "malformed: no side"


def test_ticker_crossed_refused() -> None:
    """A ticker whose bid is above its ask is refused; a good one passes."""
    assert ticker_from_ccxt({"last": 10.0, "bid": 11.0, "ask": 10.5}, SYM, 1) == "crossed ticker (bid > ask)"
    ticker = ticker_from_ccxt({"last": 10.0, "bid": 9.9, "ask": 10.1, "timestamp": 5}, SYM, 1)
    assert ticker == Ticker(SYM, 5, 10.0, 9.9, 10.1)


def test_mark_carries_binance_funding() -> None:
    """The mark price carries the funding rate and next funding time from Binance's raw fields."""
    raw = {"markPrice": 100.0, "indexPrice": 99.9, "timestamp": 5, "info": {"r": "0.0001", "T": 28_800_000}}
    assert mark_from_ccxt(raw, SYM, 1) == MarkPrice(SYM, 5, 100.0, 99.9, 0.0001, 28_800_000)
    assert mark_from_ccxt({"markPrice": math.nan}, SYM, 1) == "nan mark price"


def test_book_crossed_or_unsorted_refused() -> None:
    """A crossed or unsorted book is refused; a good one keeps the requested depth."""
    good = {"bids": [[10.0, 1.0], [9.9, 2.0]], "asks": [[10.1, 1.0], [10.2, 1.0]], "timestamp": 3}
    assert book_from_ccxt(good, SYM, 1, 0) == Book(SYM, 3, ((10.0, 1.0),), ((10.1, 1.0),))
    assert book_from_ccxt({"bids": [[10.2, 1.0]], "asks": [[10.1, 1.0]]}, SYM, 5, 0) == "crossed book"
    assert book_from_ccxt({"bids": [[9.0, 1.0], [9.5, 1.0]], "asks": [[10.1, 1.0]]}, SYM, 5, 0) == "bids not descending"
    assert book_from_ccxt({"bids": [], "asks": []}, SYM, 5, 0) == "empty book"
