"""`CcxtFeed`: validated market events from any ccxt exchange (or the simulator).

One task per (stream, symbol) watches ccxt.pro (`watch_trades`, `watch_ohlcv`,
`watch_ticker`, `watch_mark_price`, `watch_order_book`), or polls REST where the venue has
no stream. Each result is validated and sequenced; good events go into one bounded queue
the consumer reads with `events()`. When the queue is full the stream tasks wait, ccxt's
own bounded caches overflow, and the resulting trade-id gaps are found and filled from REST:
nothing buffers without bound and no loss goes unnoticed. The parts: `streams.py` keeps each
stream alive, `trades.py` sequences trades and fills their holes, `outlet.py` is the queue.

Usage:

    async with CcxtFeed(config.exchange, config.feed, clock, sim=sim) as feed:
        markets = await feed.markets()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(feed.run())
            async for event in feed.events():
                ...
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Any

import ccxt
import structlog

from guard.clock import Clock
from guard.config import ExchangeSection, FeedSection
from guard.domain import Bar, Book, FeedHealth, MarketEvent, MarketSpec, MarkPrice
from guard.errors import ConfigError, ExchangeUnavailable, FeedError
from guard.exchanges import BINANCE_FAMILY, SimEndpoint, make_exchange, translate
from guard.feed.backfill import Backfill
from guard.feed.frames import FrameGuard
from guard.feed.health import FeedStatistics, HealthBoard, HealthListener
from guard.feed.outlet import EventOutlet
from guard.feed.pacing import RateGate
from guard.feed.sequence import BarBuilder, BarTracker
from guard.feed.streams import FETCH_METHOD, WATCH_METHOD, Handler, StreamKeeper, fetcher, watcher
from guard.feed.trades import TradeFlow
from guard.feed.validate import bar_from_row, book_from_ccxt, mark_from_ccxt, ticker_from_ccxt
from guard.markets import venue as market_specs
from guard.timeframes import timeframe_ms

log = structlog.get_logger(__name__)

STREAMS = ("bars", "trades", "ticker", "mark", "book")
"""The streams a feed can run (`feed.streams`)."""


class CcxtFeed:
    """Market data from a ccxt exchange: markets once, then validated events and health.

    Args:
        exchange: the `[exchange]` config (id, symbols, timeframe, timeout).
        feed: the `[feed]` config (staleness, reconnects, streams, queue bound).
        clock: measures event age and backoff; a `TestClock` works too.
        sim: the simulated exchange to talk to when `exchange.id` is "sim".
        client: a ccxt exchange object to use instead of building one (the feed then does
            not close it).
    """

    def __init__(
        self,
        exchange: ExchangeSection,
        feed: FeedSection,
        clock: Clock,
        *,
        sim: SimEndpoint | None = None,
        client: Any = None,
    ) -> None:
        unknown = [s for s in feed.streams if s not in STREAMS]
        if unknown:
            raise ConfigError("feed.streams", list(feed.streams), f"each must be one of {', '.join(STREAMS)}")
        self._xs = exchange
        self._fs = feed
        self._clock = clock
        self._sim = sim
        self._client = client
        self._owns_client = client is None
        self._ex: Any = client
        self.exchange_id = exchange.id
        self.symbols = tuple(exchange.symbols)
        self.timeframe = exchange.timeframe
        self._tf_ms = timeframe_ms(exchange.timeframe)
        self._outlet = EventOutlet(feed.queue_size)
        self._gate = RateGate(clock)
        self._health = HealthBoard(
            self.symbols,
            clock,
            stale_after=feed.stale_after_seconds,
            hold=feed.invalid_hold_seconds,
            rate_limited=self._gate.remaining,
        )
        self._markets: dict[str, MarketSpec] | None = None
        self._markets_lock = asyncio.Lock()
        self._sequential = exchange.id in BINANCE_FAMILY
        self._bars = {s: BarTracker(s, self.timeframe, self._tf_ms) for s in self.symbols}
        self._frame_guard: FrameGuard | None = None
        self._refusal_log: dict[tuple[str | None, str], tuple[float, int]] = {}
        self.stats = FeedStatistics()
        self._streams = StreamKeeper(lambda: self.exchange, exchange, feed, self._gate, self._health, self.stats)
        self._backfill = Backfill(
            lambda: self.exchange,
            self.exchange_id,
            self.timeframe,
            gate=self._gate,
            timeout_seconds=exchange.timeout_seconds,
            retry_delay=feed.min_reconnect_delay_seconds,
            retry_after=self._streams.retry_after_seconds,
            refuse=self._refuse,
        )
        self._trades = TradeFlow(
            self.symbols,
            sequential=self._sequential,
            exchange=lambda: self.exchange,
            backfill=self._backfill,
            max_backfill=feed.max_backfill_trades,
            emit=self._emit_many,
            refuse=self._refuse,
            health=self._health,
            stats=self.stats,
        )

    # --- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> CcxtFeed:
        if self._ex is None:
            self._ex = make_exchange(
                self._xs.id,
                timeout_seconds=self._xs.timeout_seconds,
                sim=self._sim,
                streaming=self._fs.transport != "rest",
            )
        # Read when ccxt creates a symbol's trade cache, so it must be set before any watch.
        self._ex.options["tradesLimit"] = self._fs.trades_cache
        if self._has_ws():
            self._frame_guard = FrameGuard(self._ex, self._refuse_frame, kline_order=self._sequential)
            # ccxt re-requests a failed order-book snapshot at once, up to 3 times, whatever
            # Retry-After said (a 429 then becomes a 418 ban). One try: the failure comes
            # back to us, and we wait as told.
            book_options = dict(self._ex.options.get("watchOrderBook") or {})
            book_options["maxRetries"] = 1
            self._ex.options["watchOrderBook"] = book_options
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close sockets and sessions (only of an exchange object the feed built)."""
        if self._frame_guard is not None:
            self._frame_guard.uninstall()
            self._frame_guard = None
        if self._ex is not None and self._owns_client:
            ex, self._ex = self._ex, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ex.close(), 5.0)

    @property
    def exchange(self) -> Any:
        """The ccxt exchange object (for the broker to share; the feed owns its lifetime)."""
        if self._ex is None:
            raise FeedError("the feed is not open: use `async with CcxtFeed(...)`")
        return self._ex

    def _has_ws(self) -> bool:
        return bool(self._ex is not None and self._ex.has.get("ws")) and self._fs.transport != "rest"

    # --- markets -------------------------------------------------------------------

    async def markets(self) -> dict[str, MarketSpec]:
        """Load markets once: precision, limits, fees, contract size, leverage tiers.

        Raises:
            ExchangeUnavailable: the venue could not be reached (network, 5xx, rate limit).
            FeedError: a configured symbol is not listed, or the market is not tradable by guard.
        """
        async with self._markets_lock:
            if self._markets is None:
                await self._gate.wait()
                self._markets = await market_specs.load_specs(
                    self.exchange, self.exchange_id, self.symbols, self._xs.timeout_seconds
                )
            return self._markets

    # --- consuming -----------------------------------------------------------------

    def events(self) -> AsyncIterator[MarketEvent]:
        """Validated events, in order per symbol and stream, for as long as the feed runs."""
        return self._outlet.events()

    async def get(self) -> MarketEvent:
        """The next event (waits)."""
        return await self._outlet.get()

    def get_nowait(self) -> MarketEvent:
        """The next event, or raise `asyncio.QueueEmpty`."""
        return self._outlet.get_nowait()

    def qsize(self) -> int:
        """Events handed over and not yet read."""
        return self._outlet.qsize()

    def health(self) -> dict[str, FeedHealth]:
        """Health of every symbol now."""
        return self._health.all()

    def add_health_listener(self, listener: HealthListener) -> None:
        """Call `listener(FeedHealth)` whenever a symbol turns unhealthy, healthy, or changes reason."""
        self._health.add_listener(listener)

    def remove_health_listener(self, listener: HealthListener) -> None:
        """Stop calling a listener added with `add_health_listener`."""
        self._health.remove_listener(listener)

    async def wait_health(
        self, predicate: Callable[[dict[str, FeedHealth]], bool], seconds: float
    ) -> dict[str, FeedHealth]:
        """Wait until `predicate(health)` is true; TimeoutError after `seconds`."""
        return await self._health.wait_until(predicate, seconds)

    # --- running -------------------------------------------------------------------

    async def run(self) -> None:
        """Watch every configured stream of every symbol until cancelled.

        Stream failures never escape: they are retried with backoff and shown in `health()`.

        Raises:
            ExchangeUnavailable, FeedError: markets could not be loaded (before any stream).
        """
        await self.markets()
        plan = self._plan()
        log.info(
            "feed.started",
            exchange=self.exchange_id,
            symbols=list(self.symbols),
            streams={f"{kind}:{how}" for kind, _, how in plan},
        )
        async with asyncio.TaskGroup() as tg:
            for kind, symbol, how in plan:
                tg.create_task(self._stream(kind, symbol, how), name=f"feed-{kind}-{symbol}")
                if kind == "trades":
                    tg.create_task(self._trades.fill_loop(symbol), name=f"feed-backfill-{symbol}")
                    tg.create_task(self._trades.deliver_loop(symbol), name=f"feed-deliver-{symbol}")
            tg.create_task(self._monitor(), name="feed-health")

    def _plan(self) -> list[tuple[str, str, str]]:
        has = self.exchange.has
        ws = self._has_ws()
        kinds = list(self._fs.streams)
        bars_from_trades = "bars" in kinds and (
            self._fs.bars_from_trades or not (has.get(WATCH_METHOD["bars"]) if ws else has.get("fetchOHLCV"))
        )
        if bars_from_trades:
            kinds.remove("bars")
            if "trades" not in kinds:
                kinds.append("trades")
            self._trades.builders = {s: BarBuilder(s, self.timeframe, self._tf_ms) for s in self.symbols}
            log.info("feed.bars_from_trades", exchange=self.exchange_id)
        plan: list[tuple[str, str, str]] = []
        for kind in kinds:
            for symbol in self.symbols:
                if kind == "mark" and not self._markets_linear(symbol):
                    continue  # spot: the mark is the ticker's last price (see _on_ticker)
                if ws and has.get(WATCH_METHOD[kind]):
                    plan.append((kind, symbol, "ws"))
                elif has.get(FETCH_METHOD[kind]):
                    plan.append((kind, symbol, "rest"))
                else:
                    log.warning("feed.stream_unavailable", exchange=self.exchange_id, stream=kind, symbol=symbol)
        return plan

    def _markets_linear(self, symbol: str) -> bool:
        return bool(self._markets and self._markets[symbol].kind.value == "linear")

    async def _monitor(self) -> None:
        interval = min(0.25, self._fs.stale_after_seconds / 4)
        while True:
            await asyncio.sleep(interval)
            self._health.check()

    async def _stream(self, kind: str, symbol: str, how: str) -> None:
        """Keep one stream going (`guard.feed.streams`), its results handed to the handler of its kind."""
        ex = self.exchange
        depth = self._fs.book_depth
        handle = self._handler(kind)
        if how == "ws":
            watch = watcher(ex, kind, symbol, sequential=self._sequential, timeframe=self.timeframe, book_depth=depth)
            await self._streams.watch_loop(kind, symbol, watch, handle)
        else:
            fetch = fetcher(
                ex,
                kind,
                symbol,
                sequential=self._sequential,
                seq=self._trades.seq[symbol],
                bars=self._bars[symbol],
                timeframe=self.timeframe,
                book_depth=depth,
            )
            await self._streams.poll_loop(kind, symbol, fetch, handle)

    def _handler(self, kind: str) -> Handler:
        handlers: dict[str, Handler] = {
            "trades": self._trades.on_trades,
            "bars": self._on_candles,
            "ticker": self._on_ticker,
            "mark": self._on_mark,
            "book": self._on_book,
        }
        return handlers[kind]

    # --- events --------------------------------------------------------------------

    async def _emit(self, symbol: str, event: MarketEvent) -> None:
        await self._emit_many(symbol, (event,))

    async def _emit_many(self, symbol: str, events: Sequence[MarketEvent]) -> None:
        """Hand a batch of one symbol's events to the consumer, waiting while the queue is full."""
        if not events:
            return
        items = tuple(events)
        await self._outlet.put(items)
        self.stats.queue_high_water = self._outlet.high_water
        counts = self.stats.events
        first = items[0].__class__
        if len(items) == 1 or all(e.__class__ is first for e in items):
            counts[first.__name__] += len(items)
        else:
            for e in items:
                counts[e.__class__.__name__] += 1
        if first is not Book:
            # Books do not count as fresh data: after a reconnect ccxt re-serves one from a
            # REST snapshot even while the market's streams are silent.
            self._health.event(symbol)

    def _refuse(self, symbol: str, reason: str) -> None:
        self.stats.rejected[reason] += 1
        self._health.rejected(symbol, reason)
        self._log_refusal("feed.event_refused", symbol, reason)

    def _refuse_frame(self, symbol: str | None, reason: str) -> None:
        if symbol in self._bars:
            assert symbol is not None
            self._refuse(symbol, reason)
        else:
            self.stats.rejected[reason] += 1
            self._log_refusal("feed.frame_refused", symbol, reason)

    def _log_refusal(self, event: str, symbol: str | None, reason: str) -> None:
        # At most one line per second per (symbol, reason): a flood of bad frames must not
        # turn into a flood of log lines that slows the loop further. Every one is counted.
        key = (symbol, reason)
        now = self._clock.monotonic()
        last, suppressed = self._refusal_log.get(key, (-1e18, 0))
        if now - last >= 1.0:
            log.warning(event, symbol=symbol, reason=reason, repeats=suppressed)
            self._refusal_log[key] = (now, 0)
        else:
            self._refusal_log[key] = (last, suppressed + 1)

    async def _on_candles(self, symbol: str, rows: list[list[Any]]) -> None:
        tracker = self._bars[symbol]
        for row in rows:
            step = tracker.feed(list(row))
            if step.reject is not None:
                self._refuse(symbol, step.reject)
                continue
            if step.update is not None:
                self._health.event(symbol)  # the open bar moved: fresh data, nothing to emit yet
            if step.closed is not None:
                await self._emit(symbol, step.closed)
            elif step.refetch is not None:
                await self._fill_bar_gap(symbol, *step.refetch, fallback=step.fallback)

    async def _fill_bar_gap(self, symbol: str, first: int, last: int, fallback: Bar | None) -> None:
        """Fetch closed bars first..last (open times, inclusive) from REST and emit them in order."""
        missing = (last - first) // self._tf_ms  # the first one we held, partially
        self.stats.bar_gaps += 1 if missing else 0
        if missing:
            self._health.gap_found(symbol, missing, "bars")
            log.info("feed.bar_gap", symbol=symbol, missing=missing, since=first)
        got = await self._backfill.bars(symbol, first, last)
        expect = first + len(got) * self._tf_ms
        if not got and fallback is not None:
            # Not even the bar we held could be confirmed: pass it on, marked incomplete.
            got = [fallback]
            expect = first + self._tf_ms
        await self._emit_many(symbol, got)
        lost = max(0, (last - expect) // self._tf_ms + 1)
        self.stats.bars_backfilled += max(0, len(got) - 1)
        if lost:
            self.stats.bars_lost += lost
        if missing:
            self._health.gap_closed(symbol, missing, lost, "bars")

    async def _on_ticker(self, symbol: str, raw: dict[str, Any]) -> None:
        ticker = ticker_from_ccxt(raw, symbol, self._clock.now_ms())
        if isinstance(ticker, str):
            self._refuse(symbol, ticker)
            return
        await self._emit(symbol, ticker)
        if "mark" in self._fs.streams and not self._markets_linear(symbol):
            await self._emit(symbol, MarkPrice(symbol, ticker.timestamp, ticker.last))

    async def _on_mark(self, symbol: str, raw: dict[str, Any]) -> None:
        mark = mark_from_ccxt(raw, symbol, self._clock.now_ms())
        if isinstance(mark, str):
            self._refuse(symbol, mark)
            return
        await self._emit(symbol, mark)

    async def _on_book(self, symbol: str, raw: dict[str, Any]) -> None:
        book = book_from_ccxt(raw, symbol, self._fs.book_depth, self._clock.now_ms())
        if isinstance(book, str):
            self._refuse(symbol, book)
            return
        await self._emit(symbol, book)

    # --- warm-up -------------------------------------------------------------------

    async def recent_bars(self, symbol: str, count: int, before: int | None = None) -> list[Bar]:
        """The last `count` closed bars from REST (to warm up feature windows at start).

        Args:
            before: keep only bars that open before this time (ms). A caller that has just seen
                a live bar knows every earlier bar is closed, whatever the local clock says (the
                simulated exchange's clock can run faster than ours).
        """
        ex = self.exchange
        await self._gate.wait()
        try:
            # With `before`, ask for exactly the bars that end there; without, the newest ones.
            since = before - count * self._tf_ms if before is not None else None
            rows = await asyncio.wait_for(
                ex.fetch_ohlcv(symbol, self.timeframe, since=since, limit=min(1000, count + 1)),
                self._xs.timeout_seconds,
            )
        except TimeoutError as e:
            raise ExchangeUnavailable(f"{self.exchange_id}: fetching bars timed out") from e
        except ccxt.BaseError as e:
            raise translate(e, self.exchange_id) from e
        if before is None:
            # The newest kline is the one still open (Binance and most venues include it). The
            # venue's clock decides that, not ours: a simulator may run faster than real time.
            rows = rows[:-1]
        bars = []
        for row in rows:
            if before is not None and row[0] >= before:
                continue  # still open
            bar = bar_from_row(row, symbol, self.timeframe, self._tf_ms, closed=True)
            if not isinstance(bar, str):
                bars.append(bar)
        return bars[-count:]
