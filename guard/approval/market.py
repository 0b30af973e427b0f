"""What the desk knows of the market: a mark per symbol, the feed's health per symbol, PnL at the marks.

Marks and feed health live in memory only: they are what the feed says now, not part of the
record (a change of feed health is journaled by the desk, the marks are not).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from decimal import Decimal

from guard.approval.state import GuardState
from guard.clock import Clock
from guard.domain import ZERO, Bar, FeedHealth, MarketEvent, MarkPrice, Ticker
from guard.timeframes import timeframe_ms

VOLATILITY_BARS = 60
"""Closed bars the market's own volatility is measured over (for proposals that bring none: a person's, a
source's), as the model's features measure it."""
MIN_VOLATILITY_BARS = 20


class Market:
    """Marks ranked by source (mark price > last trade > bar close), feed health, and PnL read at the marks.

    Args:
        state: the folded journal, for the positions and today's booked PnL.
    """

    def __init__(self, state: GuardState, clock: Clock) -> None:
        self._state = state
        self._clock = clock
        self.marks: dict[str, Decimal] = {}
        """The latest price per symbol from the best source seen for it."""
        self.feed_health: dict[str, FeedHealth] = {}
        """The feed's latest health report per symbol (a symbol never reported on counts as healthy)."""
        self._rank: dict[str, int] = {}
        self._closes: dict[str, deque[float]] = {}
        self._bar_seconds: dict[str, float] = {}

    def update(self, event: MarketEvent) -> None:
        """Take an event's price as the mark, unless a better source already gives this symbol's mark."""
        # A mark price beats a last trade price beats a bar close.
        if isinstance(event, MarkPrice):
            rank, price = 3, event.mark
        elif isinstance(event, Ticker):
            rank, price = 2, event.last
        elif isinstance(event, Bar):
            rank, price = 1, event.close
            if event.closed and event.complete and event.close > 0:
                self._remember_close(event)
        else:
            return
        if rank >= self._rank.get(event.symbol, 0):
            self._rank[event.symbol] = rank
            self.marks[event.symbol] = Decimal(str(price))

    def _remember_close(self, bar: Bar) -> None:
        closes = self._closes.get(bar.symbol)
        if closes is None:
            closes = self._closes[bar.symbol] = deque(maxlen=VOLATILITY_BARS + 1)
            self._bar_seconds[bar.symbol] = timeframe_ms(bar.timeframe) / 1000
        closes.append(bar.close)

    def sigma_per_second(self, symbol: str) -> float | None:
        """The symbol's own volatility (standard deviation of log returns per second) over its last closed bars,
        or None before MIN_VOLATILITY_BARS of them: what P(liquidation) uses when a proposal brings no model."""
        closes = self._closes.get(symbol)
        if closes is None or len(closes) <= MIN_VOLATILITY_BARS:
            return None
        values = list(closes)
        returns = [math.log(b / a) for a, b in itertools.pairwise(values)]
        mean = sum(returns) / len(returns)
        variance = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
        return math.sqrt(variance / self._bar_seconds[symbol])

    def set_health(self, health: FeedHealth) -> bool:
        """Take a feed health report. Returns True when the symbol changed between healthy and not (a symbol
        first reported unhealthy counts as a change)."""
        previous = self.feed_health.get(health.symbol)
        self.feed_health[health.symbol] = health
        if previous is None:
            return not health.healthy
        return previous.healthy != health.healthy

    def unhealthy(self, symbol: str) -> FeedHealth | None:
        """The symbol's health report when it says the data cannot be trusted, else None."""
        feed = self.feed_health.get(symbol)
        return feed if feed is not None and not feed.healthy else None

    def unrealized_pnl(self) -> Decimal:
        """Unrealized PnL of the positions that have a mark."""
        marks = self.marks
        return sum(
            (p.unrealized_pnl(marks[s]) for s, p in self._state.account.positions.items() if s in marks),
            ZERO,
        )

    def daily_pnl(self) -> Decimal:
        """Realized and unrealized PnL since 00:00 UTC."""
        return self._state.daily.today(self._clock.now_ms()) + self.unrealized_pnl()
