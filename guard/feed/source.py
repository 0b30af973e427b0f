"""`CcxtFeed`: validated market events from any ccxt exchange (or the simulator).

One task per (stream, symbol) watches ccxt.pro (`watch_trades`, `watch_ohlcv`,
`watch_ticker`, `watch_mark_price`, `watch_order_book`), or polls REST where the venue has
no stream. Each result is validated and sequenced; good events go into one bounded queue
the consumer reads with `events()`. When the queue is full the stream tasks wait, ccxt's
own bounded caches overflow, and the resulting trade-id gaps are found and filled from REST:
nothing buffers without bound and no loss goes unnoticed.

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
import random
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import ccxt
import structlog

from guard.clock import Clock
from guard.config import ExchangeSection, FeedSection
from guard.domain import Bar, Book, FeedHealth, MarketEvent, MarketSpec, MarkPrice
from guard.errors import ConfigError, ExchangeUnavailable, FeedError
from guard.exchanges import (
    BINANCE_FAMILY,
    SimEndpoint,
    classify,
    make_exchange,
    retry_after,
    translate,
)
from guard.feed.backfill import PAGE as BACKFILL_PAGE
from guard.feed.backfill import Backfill
from guard.feed.frames import FrameGuard
from guard.feed.health import HealthBoard, HealthListener
from guard.feed.pacing import Backoff, RateGate
from guard.feed.sequence import HOLD_TRADES, BarBuilder, BarTracker, Hole, TradeLine, TradeSequencer
from guard.feed.validate import (
    bar_from_row,
    book_from_ccxt,
    mark_from_ccxt,
    ticker_from_ccxt,
    trade_from_ccxt,
)
from guard.markets import venue as market_specs
from guard.timeframes import timeframe_ms

log = structlog.get_logger(__name__)

STREAMS = ("bars", "trades", "ticker", "mark", "book")
WATCHDOG_MAX_DOUBLINGS = 2
"""A silent stream is reset after stale_after, then after 2x and at most 4x that, until a frame comes."""
_WATCH_METHOD = {
    "bars": "watchOHLCV",
    "trades": "watchTrades",
    "ticker": "watchTicker",
    "mark": "watchMarkPrice",
    "book": "watchOrderBook",
}
_FETCH_METHOD = {
    "bars": "fetchOHLCV",
    "trades": "fetchTrades",
    "ticker": "fetchTicker",
    "mark": "fetchMarkPrice",
    "book": "fetchOrderBook",
}
_BOOK_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
_HASH_PREFIX = {"bars": "ohlcv", "trades": "trade", "ticker": "ticker", "mark": "markPrice", "book": "orderbook"}
"""How ccxt.pro names a stream's subscription (to find the socket of a silent stream)."""


@dataclass(slots=True)
class FeedStatistics:
    """Counters since the feed started (for status, tests and benchmarks)."""

    events: Counter[str] = field(default_factory=Counter)
    """Events delivered, by type name."""
    rejected: Counter[str] = field(default_factory=Counter)
    """Events and frames refused, by reason."""
    trade_gaps: int = 0
    trades_missing: int = 0
    """Trades found missing by id (gaps), whether later recovered or not."""
    trades_backfilled: int = 0
    trades_lost: int = 0
    """Missing trades that could not be recovered (their bars are marked incomplete)."""
    lost_ranges: deque[tuple[str, int, int]] = field(default_factory=lambda: deque(maxlen=10_000))
    """(symbol, first id, last id) of the most recent runs of lost trades, for audits."""
    bar_gaps: int = 0
    bars_backfilled: int = 0
    bars_lost: int = 0
    stream_errors: Counter[str] = field(default_factory=Counter)
    """Stream failures, by reason ("disconnected", "rate limited", ...)."""
    watchdog_resets: int = 0
    queue_high_water: int = 0


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
        # Events travel in batches (one per ccxt update): a queue hop per trade would cost as
        # much as all of guard's checks. The bound counts events, not batches.
        self._queue: asyncio.Queue[tuple[MarketEvent, ...]] = asyncio.Queue()
        self._pending: deque[MarketEvent] = deque()
        self._queued = 0
        """Events handed over and not yet read (at most queue_size plus one batch)."""
        self._room = asyncio.Event()
        self._room.set()
        self._gate = RateGate(clock)
        self._health = HealthBoard(
            self.symbols, clock, stale_after=feed.stale_after_seconds, hold=feed.invalid_hold_seconds,
            rate_limited=self._gate.remaining,
        )
        self._rng = random.Random()
        self._markets: dict[str, MarketSpec] | None = None
        self._markets_lock = asyncio.Lock()
        self._sequential = exchange.id in BINANCE_FAMILY
        self._seq = {s: TradeSequencer(self._sequential) for s in self.symbols}
        self._lines = {s: TradeLine() for s in self.symbols}
        self._bars = {s: BarTracker(s, self.timeframe, self._tf_ms) for s in self.symbols}
        self._builders: dict[str, BarBuilder] = {}
        self._frame_guard: FrameGuard | None = None
        self._refusal_log: dict[tuple[str | None, str], tuple[float, int]] = {}
        self.stats = FeedStatistics()
        self._backfill = Backfill(
            lambda: self.exchange, self.exchange_id, self.timeframe, gate=self._gate,
            timeout_seconds=exchange.timeout_seconds, retry_delay=feed.min_reconnect_delay_seconds,
            retry_after=self._retry_after_seconds, refuse=self._refuse,
        )

    # --- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> CcxtFeed:
        if self._ex is None:
            self._ex = make_exchange(
                self._xs.id, timeout_seconds=self._xs.timeout_seconds, sim=self._sim,
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

    async def events(self) -> AsyncIterator[MarketEvent]:
        """Validated events, in order per symbol and stream, for as long as the feed runs."""
        pending = self._pending
        while True:
            while pending:
                yield pending.popleft()
            self._took(await self._queue.get())

    async def get(self) -> MarketEvent:
        """The next event (waits)."""
        while not self._pending:
            self._took(await self._queue.get())
        return self._pending.popleft()

    def get_nowait(self) -> MarketEvent:
        """The next event, or raise `asyncio.QueueEmpty`."""
        while not self._pending:
            self._took(self._queue.get_nowait())
        return self._pending.popleft()

    def _took(self, batch: tuple[MarketEvent, ...]) -> None:
        self._pending.extend(batch)
        self._queued -= len(batch)
        if self._queued < self._fs.queue_size:
            self._room.set()

    def qsize(self) -> int:
        """Events handed over and not yet read."""
        return self._queued + len(self._pending)

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
            "feed.started", exchange=self.exchange_id, symbols=list(self.symbols),
            streams={f"{kind}:{how}" for kind, _, how in plan},
        )
        async with asyncio.TaskGroup() as tg:
            for kind, symbol, how in plan:
                loop = self._watch_loop if how == "ws" else self._poll_loop
                tg.create_task(loop(kind, symbol), name=f"feed-{kind}-{symbol}")
                if kind == "trades":
                    tg.create_task(self._fill_loop(symbol), name=f"feed-backfill-{symbol}")
                    tg.create_task(self._deliver_loop(symbol), name=f"feed-deliver-{symbol}")
            tg.create_task(self._monitor(), name="feed-health")

    def _plan(self) -> list[tuple[str, str, str]]:
        has = self.exchange.has
        ws = self._has_ws()
        kinds = list(self._fs.streams)
        bars_from_trades = "bars" in kinds and (
            self._fs.bars_from_trades or not (has.get(_WATCH_METHOD["bars"]) if ws else has.get("fetchOHLCV"))
        )
        if bars_from_trades:
            kinds.remove("bars")
            if "trades" not in kinds:
                kinds.append("trades")
            self._builders = {s: BarBuilder(s, self.timeframe, self._tf_ms) for s in self.symbols}
            log.info("feed.bars_from_trades", exchange=self.exchange_id)
        plan = []
        for kind in kinds:
            for symbol in self.symbols:
                if kind == "mark" and not self._markets_linear(symbol):
                    continue  # spot: the mark is the ticker's last price (see _on_ticker)
                if ws and has.get(_WATCH_METHOD[kind]):
                    plan.append((kind, symbol, "ws"))
                elif has.get(_FETCH_METHOD[kind]):
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

    async def _watch_loop(self, kind: str, symbol: str) -> None:
        watch = self._watcher(kind, symbol)
        handle = self._handler(kind)
        backoff = self._backoff()
        silent_resets = 0
        while True:
            # A (re)connect is a request too: wait out any Retry-After first.
            await self._gate.wait()
            # Each reset in a row doubles the wait (up to 4x): a stream slower than the
            # staleness period, or a reconnect slowed by a busy machine, must not become a
            # reconnect storm that never lets the first frame arrive.
            watchdog = self._fs.stale_after_seconds * (1 << min(silent_resets, WATCHDOG_MAX_DOUBLINGS))
            try:
                # asyncio.timeout, not wait_for: no extra task per call on the hot path.
                async with asyncio.timeout(watchdog):
                    result = await watch()
            except TimeoutError:
                # No frame for a whole staleness period: the socket may be alive but deaf (a
                # frame that broke ccxt's parser stops its receive loop). Start it afresh.
                silent_resets += 1
                self.stats.watchdog_resets += 1
                log.warning("feed.stream_silent", stream=kind, symbol=symbol, seconds=watchdog)
                await self._reset_socket(kind, symbol)
                continue
            except Exception as e:
                await asyncio.sleep(self._failed(kind, symbol, e, backoff))
                continue
            silent_resets = 0
            backoff.reset()
            self._health.stream_ok(symbol, kind)
            try:
                await handle(symbol, result)
            except Exception as e:
                # A bug of ours, not the venue's: fail closed (unhealthy), keep the stream.
                log.exception("feed.handler_failed", stream=kind, symbol=symbol)
                await asyncio.sleep(self._failed(kind, symbol, e, backoff))

    async def _poll_loop(self, kind: str, symbol: str) -> None:
        fetch = self._fetcher(kind, symbol)
        handle = self._handler(kind)
        backoff = self._backoff()
        while True:
            await self._gate.wait()
            try:
                result = await asyncio.wait_for(fetch(), self._xs.timeout_seconds)
            except Exception as e:
                await asyncio.sleep(self._failed(kind, symbol, e, backoff))
                continue
            backoff.reset()
            self._health.stream_ok(symbol, kind)
            try:
                await handle(symbol, result)
            except Exception as e:
                log.exception("feed.handler_failed", stream=kind, symbol=symbol)
                await asyncio.sleep(self._failed(kind, symbol, e, backoff))
                continue
            await asyncio.sleep(self._fs.poll_interval_seconds)

    def _backoff(self) -> Backoff:
        floor = (getattr(self._ex, "rateLimit", 0) or 0) / 1000.0
        return Backoff(
            self._fs.min_reconnect_delay_seconds, self._fs.max_reconnect_delay_seconds,
            min(floor, self._fs.max_reconnect_delay_seconds), self._rng,
        )

    def _failed(self, kind: str, symbol: str, error: BaseException, backoff: Backoff) -> float:
        """Record a stream failure; return how long to wait before trying again."""
        if isinstance(error, TimeoutError):
            reason = "timed out"
            rate_limited = False
        else:
            failure = classify(error, self.exchange_id)
            reason, rate_limited = failure.reason, failure.rate_limited
        if rate_limited:
            self._gate.close_for(self._retry_after_seconds())
        delay = max(backoff.next_delay(), self._gate.remaining())
        self.stats.stream_errors[reason] += 1
        self._health.stream_failed(symbol, kind, reason)
        log.warning(
            "feed.stream_failed", stream=kind, symbol=symbol, reason=reason, retry_in=round(delay, 3),
            error=" ".join(str(error).split())[:200] or type(error).__name__,
        )
        return delay

    def _retry_after_seconds(self) -> float:
        ex = self.exchange
        seconds = retry_after(ex)
        # A refused WebSocket handshake leaves its Retry-After in ccxt's dial backoff.
        dial = getattr(ex, "ws_dial_backoff", None) or {}
        now = ex.milliseconds()
        for state in dial.values():
            left = (state.get("until", 0) - now) / 1000.0
            if left > 0:
                seconds = max(seconds or 0.0, left)
        return seconds if seconds else 1.0

    async def _reset_socket(self, kind: str, symbol: str) -> None:
        ex = self.exchange
        prefix = _HASH_PREFIX[kind]
        for url, client in list((getattr(ex, "clients", None) or {}).items()):
            keys = [*client.subscriptions, *client.futures]
            if any(isinstance(k, str) and k.startswith(prefix) and symbol in k for k in keys):
                ex.clients.pop(url, None)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.close(), 2.0)

    # --- ccxt calls ----------------------------------------------------------------

    def _watcher(self, kind: str, symbol: str) -> Callable[[], Awaitable[Any]]:
        ex = self.exchange
        if kind == "trades":
            params = {"name": "aggTrade"} if self._sequential else {}
            return lambda: ex.watch_trades(symbol, params=dict(params))
        if kind == "bars":
            return lambda: ex.watch_ohlcv(symbol, self.timeframe)
        if kind == "ticker":
            return lambda: ex.watch_ticker(symbol)
        if kind == "mark":
            return lambda: ex.watch_mark_price(symbol)
        # The snapshot behind a diff stream costs by depth (Binance: 2 up to 50 levels, 20 for
        # 1,000, ccxt's default): ask for no more than we keep.
        limit = next((n for n in _BOOK_LIMITS if n >= self._fs.book_depth), None)
        return lambda: ex.watch_order_book(symbol, limit)

    def _fetcher(self, kind: str, symbol: str) -> Callable[[], Awaitable[Any]]:
        ex = self.exchange
        if kind == "trades":
            async def trades() -> Any:
                seq = self._seq[symbol]
                if self._sequential and seq.last_id is not None:
                    return await ex.fetch_trades(symbol, limit=1000, params={"fromId": seq.last_id + 1})
                return await ex.fetch_trades(symbol, limit=100)
            return trades
        if kind == "bars":
            async def bars() -> Any:
                current = self._bars[symbol].current
                since = current[0] if current else None
                return await ex.fetch_ohlcv(symbol, self.timeframe, since=since, limit=1000 if since else 2)
            return bars
        if kind == "ticker":
            return lambda: ex.fetch_ticker(symbol)
        if kind == "mark":
            return lambda: ex.fetch_mark_price(symbol)
        return lambda: ex.fetch_order_book(symbol, self._fs.book_depth)

    def _handler(self, kind: str) -> Callable[[str, Any], Awaitable[None]]:
        return {
            "trades": self._on_trades,
            "bars": self._on_candles,
            "ticker": self._on_ticker,
            "mark": self._on_mark,
            "book": self._on_book,
        }[kind]

    # --- events --------------------------------------------------------------------

    async def _emit(self, symbol: str, event: MarketEvent) -> None:
        await self._emit_many(symbol, (event,))

    async def _emit_many(self, symbol: str, events: tuple[MarketEvent, ...] | list[MarketEvent]) -> None:
        """Hand a batch of one symbol's events to the consumer, waiting while the queue is full."""
        if not events:
            return
        limit = self._fs.queue_size
        items = tuple(events)
        # Never more than one queue's worth in a batch, so the queue holds at most twice its size.
        for start in range(0, len(items), limit):
            batch = items[start : start + limit] if len(items) > limit else items
            while self._queued >= limit:
                # The consumer is behind: wait (ccxt's bounded caches take up the slack, and
                # the trade-id checks find whatever they drop).
                self._room.clear()
                await self._room.wait()
            self._queued += len(batch)
            self._queue.put_nowait(batch)
            if self._queued > self.stats.queue_high_water:
                self.stats.queue_high_water = self._queued
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
        if symbol in self._seq:
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

    async def _on_trades(self, symbol: str, trades: list[dict[str, Any]]) -> None:
        """Validate and sequence a batch of trades; holes go to the filler, order is kept."""
        seq = self._seq[symbol]
        line = self._lines[symbol]
        limit = int((getattr(self._ex, "options", {}) or {}).get("tradesLimit", 1000))
        if not self._sequential and len(trades) >= limit:
            # ccxt's cache was full: trades may have been overwritten unseen. Ids cannot
            # tell us how many, so count a gap and mark the open bar incomplete.
            self.stats.trade_gaps += 1
            self._health.gap_found(symbol, 0, "trades")
            self._health.gap_closed(symbol, 0, 1, "trades")
            builder = self._builders.get(symbol)
            if builder is not None:
                builder.taint()
        pending = line.pending
        missing_before = seq.missing_before
        accept = seq.accept
        for raw in trades:
            trade = trade_from_ccxt(raw, symbol)
            tid = raw.get("id")
            missing = missing_before(tid)
            if missing.__class__ is str:
                self._refuse(symbol, missing)  # type: ignore[arg-type]
                continue
            if missing:
                self._hole(symbol, line, int(tid) - missing, int(tid) - 1)  # type: ignore[operator]
            if trade.__class__ is str:
                # Not accepted: its id stays missing, so the next trade opens a hole for it
                # (filled from REST, or counted lost) rather than leave a silent one.
                self._refuse(symbol, trade)  # type: ignore[arg-type]
                continue
            accept(tid)
            pending.append(trade)  # type: ignore[arg-type]
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
        self._seq[symbol].skip_to(last)
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
            builder = self._builders.get(symbol)
            pending = line.pending
            while pending:
                item = pending[0]
                if item.__class__ is Hole:
                    hole: Hole = item  # type: ignore[assignment]
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
                    closed = builder.add(item)  # type: ignore[arg-type]
                    if closed is not None:
                        out.append(closed)
                out.append(item)  # type: ignore[arg-type]
            await self._emit_many(symbol, out)
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

    async def _fill_loop(self, symbol: str) -> None:
        """Fill this symbol's holes from REST, oldest first, without holding up the live stream."""
        line = self._lines[symbol]
        while True:
            await line.wake.wait()
            line.wake.clear()
            while todo := [h for h in line.holes if h.trades is None]:
                hole = todo[0]
                if hole.size > self._fs.max_backfill_trades or not self.exchange.has.get("fetchTrades"):
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

    async def _deliver_loop(self, symbol: str) -> None:
        """Hand this symbol's trades to the consumer in order, as they become deliverable."""
        line = self._lines[symbol]
        while True:
            await line.ready.wait()
            line.ready.clear()
            await self._release(symbol, line)

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
