"""Ordering of one symbol's stream: trade ids, closed bars exactly once, bars from trades.

Pure and synchronous, so every rule here is tested without a socket: the async feed asks
these objects what a new trade or candle means and does the REST backfill they call for.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from guard.domain import Bar, Trade
from guard.feed.validate import check_bar

SEEN_MEMORY = 4_096
"""Trade ids remembered per symbol to tell a duplicate from a late (out-of-order) trade."""


class TradeSequencer:
    """Finds duplicates and holes in one symbol's trades.

    Args:
        sequential: the venue numbers trades 1, 2, 3, ... per symbol (Binance), so a jump in
            ids is a lost trade. Otherwise only duplicates can be recognised.
    """

    def __init__(self, sequential: bool) -> None:
        self.sequential = sequential
        self.last_id: int | None = None
        self._seen: set[Any] = set()
        self._order: deque[Any] = deque()

    def missing_before(self, trade_id: Any) -> int | str:
        """0 when the trade is next, n > 0 when n trades are missing before it, or a refusal."""
        if not self.sequential:
            return "duplicate trade" if trade_id in self._seen else 0
        try:
            i = int(trade_id)
        except (TypeError, ValueError):
            return "malformed: trade id"
        last = self.last_id
        if last is None or i == last + 1:
            return 0
        if i > last:
            return i - last - 1
        return "duplicate trade" if i in self._seen else "out-of-order trade"

    def accept(self, trade_id: Any) -> None:
        """Record a trade as delivered."""
        key: Any = trade_id
        if self.sequential:
            key = int(trade_id)
            last = self.last_id
            if last is None or key > last:
                self.last_id = key
        self._seen.add(key)
        order = self._order
        order.append(key)
        if len(order) > SEEN_MEMORY:
            self._seen.discard(order.popleft())

    def skip_to(self, trade_id: int) -> None:
        """Give up on everything up to `trade_id` (counted as lost by the caller)."""
        if self.last_id is None or trade_id > self.last_id:
            self.last_id = trade_id


@dataclass(frozen=True, slots=True)
class BarStep:
    """What one candle from the OHLCV stream means."""

    closed: Bar | None = None
    """A bar that just closed and can be emitted (None when `refetch` is set)."""
    refetch: tuple[int, int] | None = None
    """Open times (inclusive) to fetch from REST: bars missed, and the last one we held
    partially. `closed` is then None and `fallback` is our partial copy."""
    fallback: Bar | None = None
    reject: str | None = None
    update: Bar | None = None
    """The bar still open, updated (for callers that show partial bars)."""


class BarTracker:
    """Turns a stream of (repeatedly updated) candles into closed bars, each exactly once, in order.

    A candle's bar is closed when a candle of a later interval arrives. A candle older than
    the last closed bar is refused ("out-of-order bar"), one equal to it ("duplicate bar").
    """

    def __init__(self, symbol: str, timeframe: str, tf_ms: int) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self.tf_ms = tf_ms
        self.current: tuple[int, float, float, float, float, float] | None = None
        self.last_closed: int | None = None

    def feed(self, row: Any) -> BarStep:
        """What one candle (`[t, o, h, l, c, v]`) means for the bar stream."""
        if len(row) < 6:
            return BarStep(reject="malformed: short OHLCV row")
        t, o, h, lo, c, v = row[:6]
        if not isinstance(t, int) or t <= 0:
            return BarStep(reject="malformed: bar time")
        if t % self.tf_ms:
            return BarStep(reject=f"bar time not aligned to {self.timeframe}")
        reason = check_bar(o, h, lo, c, v)
        if reason:
            return BarStep(reject=reason)
        if self.last_closed is not None and t <= self.last_closed:
            return BarStep(reject="duplicate bar" if t == self.last_closed else "out-of-order bar")
        values = (t, float(o), float(h), float(lo), float(c), float(v))
        cur = self.current
        if cur is None or t == cur[0]:
            self.current = values
            return BarStep(update=self._bar(values, closed=False))
        if t < cur[0]:
            return BarStep(reject="out-of-order bar")
        self.current = values
        if t == cur[0] + self.tf_ms:
            self.last_closed = cur[0]
            return BarStep(closed=self._bar(cur, closed=True), update=self._bar(values, closed=False))
        # Bars were missed, and our copy of `cur` may predate its last update: fetch them all.
        self.last_closed = t - self.tf_ms
        return BarStep(
            refetch=(cur[0], t - self.tf_ms),
            fallback=self._bar(cur, closed=True, complete=False),
            update=self._bar(values, closed=False),
        )

    def _bar(self, v: tuple[int, float, float, float, float, float], closed: bool, complete: bool = True) -> Bar:
        return Bar(self.symbol, self.timeframe, v[0], v[1], v[2], v[3], v[4], v[5], closed, complete)


class BarBuilder:
    """Builds bars from trades, for venues without a kline stream.

    A bar closes when the first trade of a later interval arrives; intervals with no trade
    make no bar. A bar whose interval had a hole in its trades that could not be filled is
    marked `complete=False`: never a bar from a stream with a hole in it presented as whole.
    """

    def __init__(self, symbol: str, timeframe: str, tf_ms: int) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self.tf_ms = tf_ms
        self._start: int | None = None
        self._o = self._h = self._l = self._c = self._v = 0.0
        self._complete = True

    def add(self, trade: Trade) -> Bar | None:
        """Add a trade; return the bar it closed, if any."""
        start = trade.timestamp - trade.timestamp % self.tf_ms
        closed = None
        if self._start is None or start > self._start:
            if self._start is not None:
                closed = self._bar()
            self._start = start
            self._o = self._h = self._l = self._c = trade.price
            self._v = 0.0
            self._complete = True
        elif start < self._start:
            return None  # a late trade of a bar already closed: it cannot be amended
        p = trade.price
        if p > self._h:
            self._h = p
        elif p < self._l:
            self._l = p
        self._c = p
        self._v += trade.amount
        return closed

    def taint(self) -> None:
        """The trades of the open bar have a hole that was not filled."""
        self._complete = False

    def _bar(self, closed: bool = True) -> Bar:
        assert self._start is not None
        return Bar(
            self.symbol,
            self.timeframe,
            self._start,
            self._o,
            self._h,
            self._l,
            self._c,
            round(self._v, 12),
            closed,
            self._complete,
        )


HOLD_TRADES = 50_000
"""Trades held per symbol, behind a hole being filled or for a slow consumer. Beyond this the
oldest unfilled hole is given up (counted lost), or the stream waits (and ccxt's cache, then
its trade ids, take over): memory stays bounded either way."""


@dataclass(eq=False, slots=True)
class Hole:
    """Trade ids missing between two received trades, until filled from REST or given up."""

    first: int
    last: int
    trades: list[Trade] | None = None
    lost: bool = False

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def fill(self, trades: list[Trade]) -> None:
        """The hole's trades arrived (fewer than asked: the rest are lost)."""
        self.trades = trades
        self.lost = len(trades) < self.size

    def give_up(self) -> None:
        """Count the hole lost."""
        self.trades = []
        self.lost = True


@dataclass(slots=True)
class TradeLine:
    """One symbol's trades between the stream and the consumer: in order, holes included."""

    pending: deque[Trade | Hole] = field(default_factory=deque)
    holes: deque[Hole] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a hole needs filling."""
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when something may be deliverable."""
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    """Set after each delivery, for a stream waiting for room."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def held(self) -> int:
        """Trades waiting (behind a hole, or for the consumer)."""
        return len(self.pending) - len(self.holes)
