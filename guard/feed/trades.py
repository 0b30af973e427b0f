"""The trades of each symbol, in order and without a silent hole: sequenced, holes filled, bars built.

Trades arrive from the stream in batches; each is validated and its id checked against the last
one. A missing run of ids becomes a hole in the symbol's line: the filler fetches it from REST
(holes close together share one request) while the stream goes on, and the deliverer hands
trades to the consumer in order up to the first hole not yet filled. A hole that cannot be
filled is given up, its trades counted lost and the bars they belong to marked incomplete.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import structlog

from guard.domain import MarketEvent
from guard.feed.backfill import PAGE as BACKFILL_PAGE, Backfill
from guard.feed.health import FeedStatistics, HealthBoard
from guard.feed.sequence import HOLD_TRADES, BarBuilder, Hole, TradeLine, TradeSequencer
from guard.feed.validate import trade_from_ccxt

log = structlog.get_logger(__name__)


class TradeFlow:
    """The trade lines of every symbol of one feed.

    Args:
        symbols: the symbols traded.
        sequential: the venue numbers trades one by one (Binance's aggTrade ids), so a gap in the
            ids is a hole; otherwise only a full ccxt cache says trades may be missing.
        exchange: returns the feed's ccxt exchange object.
        backfill: fetches missing trades from REST.
        max_backfill: the largest hole worth fetching (`feed.max_backfill_trades`).
        emit: hands a batch of one symbol's events to the consumer.
        refuse: records a refused trade (symbol, reason).
        health: where gaps are shown.
        stats: counts gaps, backfilled and lost trades.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        sequential: bool,
        exchange: Callable[[], Any],
        backfill: Backfill,
        max_backfill: int,
        emit: Callable[[str, list[MarketEvent]], Awaitable[None]],
        refuse: Callable[[str, str], None],
        health: HealthBoard,
        stats: FeedStatistics,
    ) -> None:
        self._sequential = sequential
        self._exchange = exchange
        self._backfill = backfill
        self._max_backfill = max_backfill
        self._emit = emit
        self._refuse = refuse
        self._health = health
        self.stats = stats
        self.seq = {s: TradeSequencer(sequential) for s in symbols}
        """Each symbol's trade-id check."""
        self._lines = {s: TradeLine() for s in symbols}
        self.builders: dict[str, BarBuilder] = {}
        """Bars built from trades, by symbol (set when the venue has no bar stream of its own)."""

    async def on_trades(self, symbol: str, trades: list[dict[str, Any]]) -> None:
        """Validate and sequence a batch of trades; holes go to the filler, order is kept."""
        seq = self.seq[symbol]
        line = self._lines[symbol]
        limit = int((getattr(self._exchange(), "options", {}) or {}).get("tradesLimit", 1000))
        if not self._sequential and len(trades) >= limit:
            # ccxt's cache was full: trades may have been overwritten unseen. Ids cannot
            # tell us how many, so count a gap and mark the open bar incomplete.
            self.stats.trade_gaps += 1
            self._health.gap_found(symbol, 0, "trades")
            self._health.gap_closed(symbol, 0, 1, "trades")
            builder = self.builders.get(symbol)
            if builder is not None:
                builder.taint()
        pending = line.pending
        missing_before = seq.missing_before
        accept = seq.accept
        for raw in trades:
            trade = trade_from_ccxt(raw, symbol)
            tid: Any = raw.get("id")  # whatever the venue sent: `missing_before` judges it
            missing = missing_before(tid)
            if missing.__class__ is str:
                self._refuse(symbol, missing)
                continue
            if missing:
                # Rare (a gap): the check above left an int, which `__class__ is` does not tell mypy.
                self._hole(symbol, line, int(tid) - cast(int, missing), int(tid) - 1)
            if trade.__class__ is str:
                # Not accepted: its id stays missing, so the next trade opens a hole for it
                # (filled from REST, or counted lost) rather than leave a silent one.
                self._refuse(symbol, trade)
                continue
            accept(tid)
            pending.append(trade)  # type: ignore[arg-type]  # a Trade: `__class__ is str` (fast) ruled out str
        line.ready.set()
        # The stream hands trades to the line and goes straight back to ccxt, so a slow
        # consumer costs latency, not trades. Only a full line makes it wait.
        while line.held > HOLD_TRADES:
            if line.holes and line.holes[0].trades is None:
                line.holes[0].give_up()  # the filler cannot keep up: stop holding for it
                line.ready.set()
            line.drained.clear()
            await line.drained.wait()

    def _hole(self, symbol: str, line: TradeLine, first: int, last: int) -> None:
        missing = last - first + 1
        hole = Hole(first, last)
        self.seq[symbol].skip_to(last)
        line.pending.append(hole)
        line.holes.append(hole)
        line.wake.set()
        self.stats.trade_gaps += 1
        self.stats.trades_missing += missing
        self._health.gap_found(symbol, missing, "trades")
        log.info("feed.trade_gap", symbol=symbol, missing=missing, first=first)

    async def _release(self, symbol: str, line: TradeLine) -> None:
        """Emit trades from the front of the line up to the first hole not yet filled."""
        async with line.lock:  # one emitter at a time per symbol: batches keep their order
            out: list[MarketEvent] = []
            builder = self.builders.get(symbol)
            pending = line.pending
            while pending:
                item = pending[0]
                if item.__class__ is Hole:
                    hole: Hole = item
                    if hole.trades is None:
                        break
                    pending.popleft()
                    self._hole_done(symbol, line, hole)
                    if builder is not None:
                        if hole.lost:
                            builder.taint()
                        for trade in hole.trades:
                            closed = builder.add(trade)
                            if closed is not None:
                                out.append(closed)
                            out.append(trade)
                    else:
                        out.extend(hole.trades)
                    continue
                pending.popleft()
                if builder is not None:
                    closed = builder.add(item)  # type: ignore[arg-type]  # a Trade: holes `continue` above
                    if closed is not None:
                        out.append(closed)
                out.append(item)  # type: ignore[arg-type]  # a Trade: holes `continue` above
            await self._emit(symbol, out)
            line.drained.set()

    def _hole_done(self, symbol: str, line: TradeLine, hole: Hole) -> None:
        if hole in line.holes:
            line.holes.remove(hole)
        got = len(hole.trades or ())
        lost = hole.size - got
        self.stats.trades_backfilled += got
        if lost:
            self.stats.trades_lost += lost
            have = {int(t.trade_id) for t in hole.trades or ()}
            run_start = None
            for i in range(hole.first, hole.last + 2):
                if i <= hole.last and i not in have:
                    run_start = i if run_start is None else run_start
                elif run_start is not None:
                    self.stats.lost_ranges.append((symbol, run_start, i - 1))
                    run_start = None
            log.warning("feed.trades_lost", symbol=symbol, lost=lost, first=hole.first)
        self._health.gap_closed(symbol, hole.size, lost, "trades")

    async def fill_loop(self, symbol: str) -> None:
        """Fill this symbol's holes from REST, oldest first, without holding up the live stream."""
        line = self._lines[symbol]
        while True:
            await line.wake.wait()
            line.wake.clear()
            while todo := [h for h in line.holes if h.trades is None]:
                hole = todo[0]
                if hole.size > self._max_backfill or not self._exchange().has.get("fetchTrades"):
                    hole.give_up()
                    line.ready.set()
                    continue
                # Holes close together share one request (each costs the same weight, however
                # few trades it brings): ask for the span and hand each hole its part.
                group = [hole, *(h for h in todo[1:] if h.last - hole.first < BACKFILL_PAGE)]
                got = await self._backfill.trades(symbol, hole.first, group[-1].last)
                by_id = {int(t.trade_id): t for t in got}
                for h in group:
                    if h.trades is None:  # not given up meanwhile
                        h.fill([by_id[i] for i in range(h.first, h.last + 1) if i in by_id])
                line.ready.set()

    async def deliver_loop(self, symbol: str) -> None:
        """Hand this symbol's trades to the consumer in order, as they become deliverable."""
        line = self._lines[symbol]
        while True:
            await line.ready.wait()
            line.ready.clear()
            await self._release(symbol, line)
