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
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import msgspec

from guard.domain import (
    BUY,
    LIMIT_ORDER,
    SELL,
    STOP_MARKET_ORDER,
    Bar,
    Book,
    MarketEvent,
    MarkPrice,
    OrderRequest,
    Side,
    Ticker,
    Trade,
)
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


class Resting(msgspec.Struct, frozen=True, gc=False):
    """An order resting on the paper venue's book (a struct: one is made at every order that rests)."""

    request: OrderRequest
    remaining: Decimal


class SymbolOrders(msgspec.Struct, frozen=True, gc=False):
    """One symbol's resting orders as the venue works them: their ids in the order they came to rest, the
    prices at which they act, and the nearest of those on either side."""

    ids: tuple[str, ...]
    levels: tuple[Decimal, ...]
    """Ascending; equal prices in the order their orders came to rest."""
    falls_to: Decimal | None
    """The highest price a falling mark makes one of them act at (a sell stop, a buy take-profit or limit)."""
    rises_to: Decimal | None
    """The lowest price a rising mark makes one of them act at (a buy stop, a sell take-profit or limit)."""

    def quiet(self, quote: Quote) -> bool:
        """None of them acts at the quote's mark. Judged only for a quote without a bid or ask (limits fill
        against those): with one, this says False and every order is looked at."""
        mark = quote.mark
        if mark is None or quote.bid is not None or quote.ask is not None:
            return False
        return (self.falls_to is None or mark > self.falls_to) and (self.rises_to is None or mark < self.rises_to)

    def next_level(self, start: Decimal, end: Decimal, first: Decimal | None = None) -> Decimal | None:
        """`next_level(start, end, [first, *self.levels])` by bisection: of equal levels, `first` (the position's
        liquidation price: it acts before any order at its price), then the first order to rest, as there."""
        levels = self.levels
        if end > start:
            i = bisect_right(levels, start)
            level = levels[i] if i < len(levels) and levels[i] < end else None
            if first is not None and start < first < end and (level is None or first <= level):
                return first
            return level
        i = bisect_left(levels, start)
        level = None if i == 0 or levels[i - 1] <= end else levels[bisect_left(levels, levels[i - 1])]
        if first is not None and end < first < start and (level is None or first >= level):
            return first
        return level

    def joined(self, cid: str, request: OrderRequest) -> SymbolOrders:
        """These orders and one more, come to rest after them: what a scan of the book would find then."""
        falls_to, rises_to = self.falls_to, self.rises_to
        price, falling = acts_at(request)
        if price is None:
            return SymbolOrders((*self.ids, cid), self.levels, falls_to, rises_to)
        i = bisect_right(self.levels, price)  # after equal prices: it rested last
        if falling:
            falls_to = price if falls_to is None else max(falls_to, price)
        else:
            rises_to = price if rises_to is None else min(rises_to, price)
        return SymbolOrders((*self.ids, cid), (*self.levels[:i], price, *self.levels[i:]), falls_to, rises_to)


class RestingBook(dict[str, Resting]):
    """The resting orders by client order id, with each symbol's `SymbolOrders` (the venue looks at them at every
    price, and they change only when an order rests, fills or goes). A change forgets the view of its order's
    symbol, or, when an order comes to rest, extends it."""

    def __init__(self, orders: dict[str, Resting] | None = None) -> None:
        super().__init__(orders or {})
        self._views: dict[str, SymbolOrders] = {}

    def __setitem__(self, cid: str, resting: Resting) -> None:
        views, symbol = self._views, resting.request.symbol
        replaced = self.get(cid)
        super().__setitem__(cid, resting)
        if replaced is not None:  # keeps its place in the book, so no view can be extended
            views.pop(replaced.request.symbol, None)
            views.pop(symbol, None)
        elif (view := views.get(symbol)) is not None:
            views[symbol] = view.joined(cid, resting.request)

    def __delitem__(self, cid: str) -> None:
        self._views.pop(self[cid].request.symbol, None)
        super().__delitem__(cid)

    def pop(self, cid: str, *default: Resting | None) -> Resting | None:  # type: ignore[override]
        resting = super().pop(cid, *default)
        if resting is not None:
            self._views.pop(resting.request.symbol, None)
        return resting

    def clear(self) -> None:
        self._views.clear()
        super().clear()

    def of(self, symbol: str) -> SymbolOrders:
        """The symbol's resting orders."""
        view = self._views.get(symbol)
        if view is None:
            view = self._views[symbol] = _symbol_orders(symbol, self)
        return view


def _symbol_orders(symbol: str, book: dict[str, Resting]) -> SymbolOrders:
    ids: list[str] = []
    levels: list[Decimal] = []
    falls_to: Decimal | None = None
    rises_to: Decimal | None = None
    for cid, r in book.items():
        request = r.request
        if request.symbol != symbol:
            continue
        ids.append(cid)
        price, falling = acts_at(request)
        if price is None:
            continue
        levels.append(price)
        if falling:
            falls_to = price if falls_to is None else max(falls_to, price)
        else:
            rises_to = price if rises_to is None else min(rises_to, price)
    return SymbolOrders(tuple(ids), tuple(sorted(levels)), falls_to, rises_to)


def acts_at(request: OrderRequest) -> tuple[Decimal | None, bool]:
    """The price at which a resting order acts, and whether a falling mark reaches it (else a rising one)."""
    if request.order_type is LIMIT_ORDER:
        return request.limit_price, request.side is BUY
    return request.trigger_price, (request.order_type is STOP_MARKET_ORDER) == (request.side is SELL)


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


def limit_crossed(request: OrderRequest, quote: Quote) -> bool:
    """Whether a resting limit order's price is reached by the quote (the far side of the book, else the mark)."""
    assert request.limit_price is not None and quote.mark is not None
    if request.side is BUY:
        return (quote.ask or quote.mark) <= request.limit_price
    return (quote.bid or quote.mark) >= request.limit_price


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
