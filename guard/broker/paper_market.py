"""The paper venue's view of one market: its quote, how market events update it, and the path a price takes.

The path: within a bar the price travels continuously, so every level between the last mark and the
next (a liquidation price, a stop's or take-profit's trigger, a limit) is reached in turn, nearest
first, and acted on at its own price. Only the first price after a bar closed may jump (a bar that
opens beyond a level gaps through it): then everything it passed acts at once, at that price.
`bar_path` is the order a recorded bar's prices are visited in: open, the extreme nearer the open,
the other extreme, the close.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from guard.domain import BUY, Bar, Book, MarketEvent, MarkPrice, Side, Ticker, Trade
from guard.errors import InvalidMarketData

VOL_ALPHA = 0.06
"""EWMA weight of each new bar's squared log return in the volatility estimate."""


@dataclass(slots=True)
class Quote:
    """What the paper venue knows of one market now."""

    mark: Decimal | None = None
    bid: Decimal | None = None
    ask: Decimal | None = None
    bids: tuple[tuple[Decimal, Decimal], ...] = ()
    asks: tuple[tuple[Decimal, Decimal], ...] = ()
    last_close: float | None = None
    variance: float = 0.0
    """EWMA of squared per-bar log returns."""
    funding_rate: Decimal | None = None
    next_funding_ms: int | None = None
    gap: bool = True
    """The next price may jump from the mark (none yet, or a bar just closed); else the price travels to it."""


def update_quote(quote: Quote, event: MarketEvent) -> None:
    """Take a market event into the quote (the mark, book, funding and volatility), checking its values.

    Raises:
        InvalidMarketData: a price, amount or funding rate that is not a finite, positive number.
    """
    if isinstance(event, MarkPrice):
        mark = price_of(event.mark, "mark")
        if event.funding_rate is not None and not math.isfinite(event.funding_rate):
            raise InvalidMarketData(f"funding rate {event.funding_rate!r} is not a number")
        quote.mark = mark
        if event.funding_rate is not None:
            quote.funding_rate = Decimal(str(event.funding_rate))
        if event.next_funding_time:
            quote.next_funding_ms = event.next_funding_time
    elif isinstance(event, Ticker):
        last = price_of(event.last, "last")
        quote.bid = price_of(event.bid, "bid") if event.bid is not None else None
        quote.ask = price_of(event.ask, "ask") if event.ask is not None else None
        quote.mark = quote.mark or last
    elif isinstance(event, Book):
        bids = tuple((price_of(p, "bid"), amount_of(a)) for p, a in event.bids)
        asks = tuple((price_of(p, "ask"), amount_of(a)) for p, a in event.asks)
        quote.bids, quote.asks = bids, asks
        quote.bid = bids[0][0] if bids else None
        quote.ask = asks[0][0] if asks else None
        if quote.mark is None and bids and asks:
            quote.mark = (bids[0][0] + asks[0][0]) / 2
    elif isinstance(event, Bar):
        close = price_of(event.close, "close")
        if quote.last_close is not None:
            r = math.log(event.close / quote.last_close)
            quote.variance = (1 - VOL_ALPHA) * quote.variance + VOL_ALPHA * r * r
        quote.last_close = event.close
        quote.mark = close
    elif isinstance(event, Trade):
        price_of(event.price, "trade price")


def next_level(start: Decimal, end: Decimal, levels: Iterable[Decimal | None]) -> Decimal | None:
    """The first level a price travelling from `start` to `end` reaches strictly between them (None: none)."""
    if end > start:
        ahead = [x for x in levels if x is not None and start < x < end]
        return min(ahead, default=None)
    ahead = [x for x in levels if x is not None and end < x < start]
    return max(ahead, default=None)


def bar_path(o: float, h: float, lo: float, c: float) -> tuple[float, float, float, float]:
    """The prices a recorded bar visits, in order: its open, the extreme nearer the open, the other, its close.

    When both extremes are as near, the bar's direction decides (an up bar dips first, a down bar rallies).
    """
    low_first = (o - lo < h - o) or (o - lo == h - o and c >= o)
    return (o, lo, h, c) if low_first else (o, h, lo, c)


def book_walk(
    levels: Sequence[tuple[Decimal, Decimal]], qty: Decimal, side: Side, limit: Decimal | None
) -> list[tuple[Decimal, Decimal]]:
    """Take liquidity level by level; stop at the limit price or when the book runs out."""
    slices = []
    remaining = qty
    for price, available in levels:
        if remaining <= 0:
            break
        if limit is not None and (price > limit if side is BUY else price < limit):
            break
        take = min(available, remaining)
        if take > 0:
            slices.append((take, price))
            remaining -= take
    return slices


def price_of(value: float | None, what: str) -> Decimal:
    if value is None or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise InvalidMarketData(f"{what} {value!r} is not a positive, finite price")
    return Decimal(str(value))


def amount_of(value: float) -> Decimal:
    if not math.isfinite(value) or value < 0:
        raise InvalidMarketData(f"book amount {value!r} is not a non-negative, finite number")
    return Decimal(str(value))
