"""`FeedProcess`: the ccxt feed in a process of its own, behind the same interface as `CcxtFeed`.

Parsing a busy trade stream costs tens of microseconds a message in ccxt: at a few thousand
messages a second that is a whole core. In the daemon's own event loop it would queue the kill
switch behind market data. So the daemon runs the feed in a child process, which parses,
validates, sequences and health-checks everything, and forwards only what the daemon uses:
bars, mark prices, tickers, books and health. Trades stay in the child (they build bars and
reveal gaps there). If the child dies, every symbol turns unhealthy at once (no proposals,
approvals blocked) and the child is restarted with backoff.

A child that cannot start (an exchange ccxt does not know, a symbol the venue does not list, the
venue unreachable) sends the reason, and the start fails with it at once; a child that dies before
listing the markets fails the start with its exit code as soon as it is gone, not at a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

import structlog

from guard import collector
from guard.clock import SystemClock
from guard.config import ExchangeSection, FeedSection
from guard.domain import Bar, FeedHealth, MarketEvent, MarketSpec, Trade
from guard.errors import ExchangeUnavailable, FeedError, GuardError

log = structlog.get_logger(__name__)

BATCH_SECONDS = 0.01
"""How long the child gathers events before sending them: one pipe write per batch, not per event."""
BATCH_MAX = 512
QUEUE_BATCHES = 256
"""Batches the daemon may fall behind by; past that the pipe pushes back on the child."""
REQUEST_TIMEOUT = 30.0
START_GRACE_SECONDS = 20.0
"""Time a fresh child needs to start an interpreter and import ccxt on a busy machine. On top of it the
child gets the time its own markets request may take (`_start_timeout`), and reports that failure
itself: this bound only catches a child that hangs without saying anything."""
RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

CHILD_EXIT_WAIT = 2.0
"""How long the reader waits for a child whose connection ended before the markets to exit (for its code)."""

HealthListener = Callable[[FeedHealth], None]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A simulated exchange's addresses, picklable for the child."""

    url: str
    ws_url: str


# --- the child ----------------------------------------------------------------------------


FEED_NICENESS = 5
"""On a busy machine the daemon's kill switch and operators' commands come before the next trade
parsed: the feed process runs at a lower CPU priority (it catches up; its queue is bounded and gaps are
detected, see REFERENCE.md)."""


def _child(
    conn: Connection, exchange: ExchangeSection, feed: FeedSection, sim: Endpoint | None, log_level: str
) -> None:
    from guard.logs import configure

    configure(log_level, "json")
    with contextlib.suppress(OSError):
        os.nice(FEED_NICENESS)
    try:
        asyncio.run(_child_main(conn, exchange, feed, sim))
    except KeyboardInterrupt:
        pass


async def _child_main(conn: Connection, exchange: ExchangeSection, feed: FeedSection, sim: Endpoint | None) -> None:
    from guard.feed.source import CcxtFeed

    loop = asyncio.get_running_loop()
    lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with lock:
            conn.send(message)

    async def send_async(message: tuple[Any, ...]) -> None:
        await asyncio.to_thread(send, message)  # a full pipe must not stall the child's event loop

    async with contextlib.AsyncExitStack() as stack:
        try:
            source = await stack.enter_async_context(CcxtFeed(exchange, feed, SystemClock(), sim=sim))
            markets = await source.markets()
        except Exception as e:  # whatever stops the feed starting is sent to the daemon, which says why and stops
            log.debug("feed_start_failed", exc_info=True)
            send(("fatal", type(e).__name__, str(e) if isinstance(e, GuardError) else f"{type(e).__name__}: {e}"))
            return
        send(("markets", markets))
        collector.freeze_long_lived()  # ccxt and the markets live as long as the child
        source.add_health_listener(lambda health: loop.call_soon(send, ("health", health)))
        send(("health_all", source.health()))
        requests: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        threading.Thread(target=_read_requests, args=(conn, loop, requests), daemon=True).start()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(source.run())
                tg.create_task(_forward(source, send_async))
                while True:
                    request = await requests.get()
                    if request[0] == "stop":
                        raise _Stop
                    if request[0] == "recent_bars":
                        tg.create_task(_answer_bars(source, request, send_async))
        except* _Stop:
            pass


class _Stop(Exception):
    """The daemon asked the feed to end."""


def _read_requests(conn: Connection, loop: asyncio.AbstractEventLoop, requests: asyncio.Queue[Any]) -> None:
    try:
        while True:
            loop.call_soon_threadsafe(requests.put_nowait, conn.recv())
    except (EOFError, OSError):
        loop.call_soon_threadsafe(requests.put_nowait, ("stop",))  # the daemon is gone: so is its feed


async def _forward(source: Any, send: Callable[[tuple[Any, ...]], Any]) -> None:
    """Batch what the daemon needs; count trades, which stay here."""
    while True:
        events = [await source.get()]
        await asyncio.sleep(BATCH_SECONDS)  # let a batch gather: one pipe write per batch, not per event
        with contextlib.suppress(asyncio.QueueEmpty):
            while len(events) < BATCH_MAX:
                events.append(source.get_nowait())
        trades = sum(isinstance(e, Trade) for e in events)
        await send(("events", [e for e in events if not isinstance(e, Trade)], trades))


async def _answer_bars(source: Any, request: tuple[Any, ...], send: Callable[[tuple[Any, ...]], Any]) -> None:
    _, request_id, symbol, count, before = request
    try:
        bars = await source.recent_bars(symbol, count, before)
    except GuardError as e:
        await send(("bars", request_id, None, f"{type(e).__name__}: {e}"))
        return
    await send(("bars", request_id, bars, ""))


# --- the daemon's side --------------------------------------------------------------------


class FeedProcess:
    """Like `CcxtFeed`, with the work done in a child process.

    Args:
        exchange: the `[exchange]` section.
        feed: the `[feed]` section.
        sim: the simulated exchange to read from when `exchange.id` is "sim".
    """

    def __init__(self, exchange: ExchangeSection, feed: FeedSection, *, sim: Any = None) -> None:
        self._exchange = exchange
        self._feed = feed
        self._sim = Endpoint(sim.url, sim.ws_url) if sim is not None else None
        self.symbols = tuple(exchange.symbols)
        self._events: asyncio.Queue[list[MarketEvent]] = asyncio.Queue(QUEUE_BATCHES)
        self._health: dict[str, FeedHealth] = {}
        self._listeners: list[HealthListener] = []
        self._markets: dict[str, MarketSpec] | None = None
        self._waiting: dict[int, asyncio.Future[list[Bar]]] = {}
        self._ids = 0
        self._conn: Connection | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._ended: asyncio.Event | None = None
        self._started: asyncio.Future[dict[str, MarketSpec]] | None = None
        self.trades = 0
        """Trades the child parsed (they stay there)."""
        self.restarts = 0

    async def __aenter__(self) -> FeedProcess:
        try:
            await self._start()
        except BaseException:
            await self.close()  # no __aexit__ follows a failed __aenter__: the child must not outlive this
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        conn, process = self._conn, self._process
        self._conn = self._process = None
        if conn is not None:
            with contextlib.suppress(OSError, ValueError):
                conn.send(("stop",))
            conn.close()
        if process is not None:
            try:
                await asyncio.to_thread(process.wait, 5)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait, 5)

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        # A fresh interpreter (not fork: the daemon runs threads; not multiprocessing's spawn: that
        # re-imports whatever script embedded the daemon) talking over an inherited socket.
        parent, child = multiprocessing.Pipe()
        process = await asyncio.to_thread(
            subprocess.Popen,
            [sys.executable, "-m", "guard.feed.process", str(child.fileno())],
            pass_fds=(child.fileno(),),
        )
        child.close()
        # The child shares this process's stderr: it logs at this process's level, never below warning (a drill
        # shows only errors while it runs; the child's reconnect warnings must not land on its report).
        level = max(logging.getLogger().getEffectiveLevel(), logging.WARNING)
        parent.send((self._exchange, self._feed, self._sim, logging.getLevelName(level)))
        self._conn, self._process = parent, process
        self._ended = asyncio.Event()
        self._started = loop.create_future()
        threading.Thread(
            target=self._read, args=(parent, process, loop, self._ended, self._started), daemon=True
        ).start()
        timeout = self._start_timeout()
        try:
            self._markets = await asyncio.wait_for(asyncio.shield(self._started), timeout)
        except TimeoutError:
            self._started.cancel()  # nobody waits for it now: a late answer must not be left unretrieved
            raise ExchangeUnavailable(
                f"{self._exchange.id}: the feed process listed no markets within {timeout:g} s"
            ) from None
        log.info("feed_process_started", pid=process.pid, exchange=self._exchange.id)

    def _start_timeout(self) -> float:
        """The child's own worst case (markets: 3 timeouts; leverage tiers: 1) plus its start-up."""
        return START_GRACE_SECONDS + 4 * self._exchange.timeout_seconds

    def _read(
        self,
        conn: Connection,
        process: subprocess.Popen[bytes],
        loop: asyncio.AbstractEventLoop,
        ended: asyncio.Event,
        started: asyncio.Future[dict[str, MarketSpec]],
    ) -> None:
        """The reader thread: unpickle on this thread, deliver on the loop, push back when the daemon lags."""
        try:
            while True:
                message = conn.recv()
                if message[0] == "events":
                    asyncio.run_coroutine_threadsafe(self._deliver(message[1], message[2]), loop).result()
                else:
                    loop.call_soon_threadsafe(self._control, message, started)
        except (EOFError, OSError, RuntimeError, TypeError):
            pass  # the child ended, or close() shut the connection under this thread (TypeError)
        code = None
        if not started.done():  # read without the loop: at worst a stale False, and the loop checks again
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = process.wait(CHILD_EXIT_WAIT)
        with contextlib.suppress(RuntimeError):  # the loop may be closed already at shutdown
            loop.call_soon_threadsafe(self._gone, started, code)
            loop.call_soon_threadsafe(ended.set)

    def _gone(self, started: asyncio.Future[dict[str, MarketSpec]], code: int | None) -> None:
        """The child's connection ended: if it never listed the markets (nor said why), say so now, not at a timeout."""
        if not started.done():
            what = f"ended (exit code {code})" if code is not None else "closed its connection"
            started.set_exception(
                FeedError(f"{self._exchange.id}: the feed process {what} before it listed the markets")
            )

    async def _deliver(self, batch: list[MarketEvent], trades: int) -> None:
        self.trades += trades
        if batch:
            await self._events.put(batch)

    def _control(self, message: tuple[Any, ...], started: asyncio.Future[dict[str, MarketSpec]]) -> None:
        kind = message[0]
        if kind == "markets" and not started.done():
            started.set_result(message[1])
        elif kind == "fatal" and not started.done():
            error = ExchangeUnavailable if message[1] == "ExchangeUnavailable" else FeedError
            started.set_exception(error(message[2]))
        elif kind == "health":
            self._set_health(message[1])
        elif kind == "health_all":
            for health in message[1].values():
                self._set_health(health)
        elif kind == "bars":
            future = self._waiting.pop(message[1], None)
            if future is not None and not future.done():
                if message[2] is None:
                    future.set_exception(ExchangeUnavailable(message[3]))
                else:
                    future.set_result(message[2])

    def _set_health(self, health: FeedHealth) -> None:
        self._health[health.symbol] = health
        for listener in list(self._listeners):
            listener(health)

    # --- the CcxtFeed interface ------------------------------------------------------

    async def markets(self) -> dict[str, MarketSpec]:
        if self._markets is None:
            await self._start()
        assert self._markets is not None
        return self._markets

    async def events(self) -> AsyncIterator[MarketEvent]:
        while True:
            for event in await self._events.get():
                yield event

    async def batches(self) -> AsyncIterator[list[MarketEvent]]:
        """Everything the child has sent since the last call, in order (at least one batch: ~10 ms).

        A consumer that falls behind gets bigger batches rather than a growing backlog.
        """
        while True:
            batch = await self._events.get()
            with contextlib.suppress(asyncio.QueueEmpty):
                while True:
                    batch = batch + self._events.get_nowait()
            yield batch

    def health(self) -> dict[str, FeedHealth]:
        return dict(self._health)

    def add_health_listener(self, listener: HealthListener) -> None:
        self._listeners.append(listener)

    def remove_health_listener(self, listener: HealthListener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    async def recent_bars(self, symbol: str, count: int, before: int | None = None) -> list[Bar]:
        if self._conn is None:
            raise ExchangeUnavailable("the feed process is not running")
        self._ids += 1
        request_id = self._ids
        future: asyncio.Future[list[Bar]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        self._conn.send(("recent_bars", request_id, symbol, count, before))
        try:
            return await asyncio.wait_for(future, REQUEST_TIMEOUT)
        except TimeoutError as e:
            raise ExchangeUnavailable(f"no bars for {symbol} within {REQUEST_TIMEOUT:g} s") from e
        finally:
            self._waiting.pop(request_id, None)

    async def run(self) -> None:
        """Supervise the child: when it dies, say so in health at once, then start it again."""
        attempt = 0
        while True:
            assert self._ended is not None
            await self._ended.wait()
            process = self._process
            code = process.poll() if process is not None else None
            reason = f"feed process ended (exit code {code}); restarting"
            log.error("feed_process_died", exit_code=code)
            for symbol in self.symbols:
                self._set_health(FeedHealth(symbol, False, reason))
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ExchangeUnavailable(reason))
            await self.close()
            await asyncio.sleep(RESTART_DELAYS[min(attempt, len(RESTART_DELAYS) - 1)])
            attempt += 1
            try:
                await self._start()
            except (GuardError, TimeoutError, OSError) as e:
                log.error("feed_process_restart_failed", error=str(e))
                self._ended = asyncio.Event()
                self._ended.set()
                continue
            self.restarts += 1
            attempt = 0


if __name__ == "__main__":
    _connection = Connection(int(sys.argv[1]))
    _child(_connection, *_connection.recv())
