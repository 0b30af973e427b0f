"""One market stream of one symbol, kept alive: watch it (ccxt.pro) or poll it (REST), forever.

A stream that fails waits with jittered backoff (and at least what the venue's Retry-After
said) and tries again; a stream silent for a staleness period gets its socket reset, waiting
longer after each reset in a row. Failures never escape: they are counted and shown in the
feed's health. What the stream's data means is its handler's business (`guard.feed.source`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from guard.config import ExchangeSection, FeedSection
from guard.exchanges import classify, retry_after
from guard.feed.health import FeedStatistics, HealthBoard
from guard.feed.pacing import Backoff, RateGate
from guard.feed.sequence import BarTracker, TradeSequencer

log = structlog.get_logger(__name__)

WATCHDOG_MAX_DOUBLINGS = 2
"""A silent stream is reset after stale_after, then after 2x and at most 4x that, until a frame comes."""
WATCH_METHOD = {
    "bars": "watchOHLCV",
    "trades": "watchTrades",
    "ticker": "watchTicker",
    "mark": "watchMarkPrice",
    "book": "watchOrderBook",
}
"""The ccxt.pro method of each stream."""
FETCH_METHOD = {
    "bars": "fetchOHLCV",
    "trades": "fetchTrades",
    "ticker": "fetchTicker",
    "mark": "fetchMarkPrice",
    "book": "fetchOrderBook",
}
"""The REST method that polls each stream."""
_BOOK_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
_HASH_PREFIX = {"bars": "ohlcv", "trades": "trade", "ticker": "ticker", "mark": "markPrice", "book": "orderbook"}
"""How ccxt.pro names a stream's subscription (to find the socket of a silent stream)."""

Handler = Callable[[str, Any], Awaitable[None]]
"""Takes (symbol, what ccxt returned) for one stream."""


class StreamKeeper:
    """Runs the streams of one exchange: the loops, their backoff, the watchdog and Retry-After.

    Args:
        exchange: returns the feed's ccxt exchange object.
        settings: the `[exchange]` config (id, timeout).
        feed: the `[feed]` config (staleness, reconnect delays, poll interval).
        gate: closed while the venue asked us to wait (shared by every request the feed makes).
        health: where a stream's failure and recovery are shown.
        stats: counts stream failures (by reason) and silent streams reset.
    """

    def __init__(
        self,
        exchange: Callable[[], Any],
        settings: ExchangeSection,
        feed: FeedSection,
        gate: RateGate,
        health: HealthBoard,
        stats: FeedStatistics,
    ) -> None:
        self._exchange = exchange
        self._xs = settings
        self._fs = feed
        self._gate = gate
        self._health = health
        self._stats = stats
        self._rng = random.Random()

    async def watch_loop(self, kind: str, symbol: str, watch: Callable[[], Awaitable[Any]], handle: Handler) -> None:
        """Watch one stream and hand each result to `handle`, until cancelled."""
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
                self._stats.watchdog_resets += 1
                log.warning("feed.stream_silent", stream=kind, symbol=symbol, seconds=watchdog)
                await self._reset_socket(kind, symbol)
                continue
            except Exception as e:
                await asyncio.sleep(self._failed(kind, symbol, e, backoff))
                continue
            silent_resets = 0
            await self._hand_over(kind, symbol, result, handle, backoff)

    async def poll_loop(self, kind: str, symbol: str, fetch: Callable[[], Awaitable[Any]], handle: Handler) -> None:
        """Poll one stream over REST and hand each result to `handle`, until cancelled."""
        backoff = self._backoff()
        while True:
            await self._gate.wait()
            try:
                result = await asyncio.wait_for(fetch(), self._xs.timeout_seconds)
            except Exception as e:
                await asyncio.sleep(self._failed(kind, symbol, e, backoff))
                continue
            if await self._hand_over(kind, symbol, result, handle, backoff):
                await asyncio.sleep(self._fs.poll_interval_seconds)

    async def _hand_over(self, kind: str, symbol: str, result: Any, handle: Handler, backoff: Backoff) -> bool:
        """The stream answered: reset its backoff, show it healthy, handle the result; False if the handler failed."""
        backoff.reset()
        self._health.stream_ok(symbol, kind)
        try:
            await handle(symbol, result)
        except Exception as e:
            # A bug of ours, not the venue's: fail closed (unhealthy), keep the stream.
            log.exception("feed.handler_failed", stream=kind, symbol=symbol)
            await asyncio.sleep(self._failed(kind, symbol, e, backoff))
            return False
        return True

    def retry_after_seconds(self) -> float:
        """How long the venue asked us to wait (its Retry-After, or a refused handshake's); 1 s when it did not say."""
        ex = self._exchange()
        seconds = retry_after(ex)
        # A refused WebSocket handshake leaves its Retry-After in ccxt's dial backoff.
        dial = getattr(ex, "ws_dial_backoff", None) or {}
        now = ex.milliseconds()
        for state in dial.values():
            left = (state.get("until", 0) - now) / 1000.0
            if left > 0:
                seconds = max(seconds or 0.0, left)
        return seconds if seconds else 1.0

    def _backoff(self) -> Backoff:
        floor = (getattr(self._exchange(), "rateLimit", 0) or 0) / 1000.0
        return Backoff(
            self._fs.min_reconnect_delay_seconds,
            self._fs.max_reconnect_delay_seconds,
            min(floor, self._fs.max_reconnect_delay_seconds),
            self._rng,
        )

    def _failed(self, kind: str, symbol: str, error: BaseException, backoff: Backoff) -> float:
        """Record a stream failure; return how long to wait before trying again."""
        if isinstance(error, TimeoutError):
            reason = "timed out"
            rate_limited = False
        else:
            failure = classify(error, self._xs.id)
            reason, rate_limited = failure.reason, failure.rate_limited
        if rate_limited:
            self._gate.close_for(self.retry_after_seconds())
        delay = max(backoff.next_delay(), self._gate.remaining())
        self._stats.stream_errors[reason] += 1
        self._health.stream_failed(symbol, kind, reason)
        log.warning(
            "feed.stream_failed",
            stream=kind,
            symbol=symbol,
            reason=reason,
            retry_in=round(delay, 3),
            error=" ".join(str(error).split())[:200] or type(error).__name__,
        )
        return delay

    async def _reset_socket(self, kind: str, symbol: str) -> None:
        ex = self._exchange()
        prefix = _HASH_PREFIX[kind]
        for url, client in list((getattr(ex, "clients", None) or {}).items()):
            keys = [*client.subscriptions, *client.futures]
            if any(isinstance(k, str) and k.startswith(prefix) and symbol in k for k in keys):
                ex.clients.pop(url, None)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.close(), 2.0)


def watcher(
    ex: Any, kind: str, symbol: str, *, sequential: bool, timeframe: str, book_depth: int
) -> Callable[[], Awaitable[Any]]:
    """The ccxt.pro call that waits for a stream's next update."""
    if kind == "trades":
        params = {"name": "aggTrade"} if sequential else {}
        return lambda: ex.watch_trades(symbol, params=dict(params))
    if kind == "bars":
        return lambda: ex.watch_ohlcv(symbol, timeframe)
    if kind == "ticker":
        return lambda: ex.watch_ticker(symbol)
    if kind == "mark":
        return lambda: ex.watch_mark_price(symbol)
    # The snapshot behind a diff stream costs by depth (Binance: 2 up to 50 levels, 20 for
    # 1,000, ccxt's default): ask for no more than we keep.
    limit = next((n for n in _BOOK_LIMITS if n >= book_depth), None)
    return lambda: ex.watch_order_book(symbol, limit)


def fetcher(
    ex: Any,
    kind: str,
    symbol: str,
    *,
    sequential: bool,
    seq: TradeSequencer,
    bars: BarTracker,
    timeframe: str,
    book_depth: int,
) -> Callable[[], Awaitable[Any]]:
    """The REST call that polls a stream (trades from the last id seen, bars from the open one)."""
    if kind == "trades":

        async def trades() -> Any:
            if sequential and seq.last_id is not None:
                return await ex.fetch_trades(symbol, limit=1000, params={"fromId": seq.last_id + 1})
            return await ex.fetch_trades(symbol, limit=100)

        return trades
    if kind == "bars":

        async def ohlcv() -> Any:
            current = bars.current
            since = current[0] if current else None
            return await ex.fetch_ohlcv(symbol, timeframe, since=since, limit=1000 if since else 2)

        return ohlcv
    if kind == "ticker":
        return lambda: ex.fetch_ticker(symbol)
    if kind == "mark":
        return lambda: ex.fetch_mark_price(symbol)
    return lambda: ex.fetch_order_book(symbol, book_depth)
