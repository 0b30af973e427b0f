"""What the desk knows of the market: a mark per symbol, the feed's health per symbol, PnL at the marks.

Marks and feed health live in memory only: they are what the feed says now, not part of the
record (a change of feed health is journaled by the desk, the marks are not).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from decimal import Decimal

from guard.approval.records import DAY_MS
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
        self._price: dict[str, float] = {}
        """The price each mark was made from."""
        self._marks_set = 0
        """How many times a mark was set: with the state's events applied and the day, what today's PnL depends on."""
        self._daily: tuple[tuple[int, int, int], Decimal] = ((-1, -1, -1), ZERO)
        """Today's PnL as last worked out, and the (events applied, marks set, day) it was worked out at."""
        self._closes: dict[str, deque[float]] = {}
        self._bar_seconds: dict[str, float] = {}

    def update(self, event: MarketEvent) -> None:
        """Take an event's price as the mark, unless a better source already gives this symbol's mark."""
        # A mark price beats a last trade price beats a bar close. Bars first: most events are.
        if isinstance(event, Bar):
            rank, price = 1, event.close
            if event.closed and event.complete and price > 0:
                self._remember_close(event)
        elif isinstance(event, MarkPrice):
            rank, price = 3, event.mark
        elif isinstance(event, Ticker):
            rank, price = 2, event.last
        else:
            return
        symbol = event.symbol
        known = self._rank.get(symbol, 0)
        if rank > known or (rank == known and not _same_text(price, self._price[symbol])):
            self._rank[symbol] = rank
            self._price[symbol] = price
            self.marks[symbol] = Decimal(str(price))
            self._marks_set += 1
        # Else the same source repeats the price (a third of the replay's marks): the mark it made stands.

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
        total = ZERO
        for symbol, position in self._state.account.positions.items():
            if symbol in marks:
                total += position.unrealized_pnl(marks[symbol])
        return total

    def daily_pnl(self) -> Decimal:
        """Realized and unrealized PnL since 00:00 UTC.

        Worked out once per state version, set of marks and day: the daily loss limit reads it on every market
        event and the risk checks on every pricing and decision, mostly with nothing changed in between (the
        positions and what was booked today change only with an event applied, the marks only in `update`).
        """
        now = self._clock.now_ms()
        at = (self._state.events_applied, self._marks_set, now // DAY_MS)
        known_at, pnl = self._daily
        if at != known_at:
            pnl = self._state.daily.today(now) + self.unrealized_pnl()
            self._daily = (at, pnl)
        return pnl


def _same_text(price: float, known: float) -> bool:
    """Whether `price` reads as `known` does, so its mark would be the same Decimal, written the same way (equal
    numbers of one type, not zero: 0.0 and -0.0 are equal but read otherwise, as do 5 and 5.0)."""
    return price == known and type(price) is type(known) and price != 0
