"""The feed in its own process: events and history come through; if the process dies, every symbol is
unhealthy at once and the feed comes back by itself."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import pytest

from guard.config import ExchangeSection, FeedSection, SimSection
from guard.domain import Bar, MarkPrice, Trade
from guard.errors import FeedError
from guard.feed.process import FEED_NICENESS, Endpoint, FeedProcess
from guard.sim.server import SimExchange

SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT")


async def _first(feed: FeedProcess, kind: type, within: float = 20.0) -> object:
    async def scan() -> object:
        async for event in feed.events():
            if isinstance(event, kind):
                return event
        raise AssertionError("feed ended")

    return await asyncio.wait_for(scan(), within)


async def test_feed_process_streams_markets_events_and_history() -> None:
    """Markets load, mark prices and closed bars arrive, recent bars can be asked for; trades stay in the child."""
    async with (
        SimExchange(SimSection(speed=60.0, history_bars=300), SYMBOLS) as sim,
        FeedProcess(ExchangeSection(symbols=SYMBOLS), FeedSection(), sim=sim) as feed,
        asyncio.TaskGroup() as tg,
    ):
        task = tg.create_task(feed.run())
        markets = await feed.markets()
        assert set(markets) == set(SYMBOLS)
        assert isinstance(await _first(feed, MarkPrice), MarkPrice)
        bar = await _first(feed, Bar)
        assert isinstance(bar, Bar) and bar.closed
        history = await feed.recent_bars(SYMBOLS[0], 50, bar.open_time)
        assert len(history) == 50 and history[-1].open_time < bar.open_time
        assert all(not isinstance(e, Trade) for e in [bar])
        # The feed yields the CPU to the daemon (the kill switch, operators' commands) on a busy machine.
        assert feed._process is not None
        child = os.getpriority(os.PRIO_PROCESS, feed._process.pid)
        assert child == min(os.getpriority(os.PRIO_PROCESS, 0) + FEED_NICENESS, 19)
        task.cancel()


async def test_feed_process_death_turns_every_symbol_unhealthy_then_recovers() -> None:
    """Killing the feed process marks all symbols unhealthy with the reason, and a new process takes over."""
    async with (
        SimExchange(SimSection(speed=60.0, history_bars=300), SYMBOLS) as sim,
        FeedProcess(ExchangeSection(symbols=SYMBOLS), FeedSection(), sim=sim) as feed,
        asyncio.TaskGroup() as tg,
    ):
        task = tg.create_task(feed.run())
        await _first(feed, MarkPrice)
        changes: asyncio.Queue = asyncio.Queue()
        feed.add_health_listener(changes.put_nowait)
        assert feed._process is not None
        os.kill(feed._process.pid, signal.SIGKILL)
        unhealthy = set()
        while unhealthy != set(SYMBOLS):
            health = await asyncio.wait_for(changes.get(), 10)
            if not health.healthy and "feed process ended" in health.reason:
                unhealthy.add(health.symbol)
        await asyncio.wait_for(_until_restarted(feed), 30)
        assert isinstance(await _first(feed, MarkPrice), MarkPrice)
        task.cancel()


async def _until_restarted(feed: FeedProcess) -> None:
    while feed.restarts < 1:  # noqa: ASYNC110 - the restart is the feed's own doing, with no event to wait on
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(("parent_level", "shown"), [(logging.WARNING, True), (logging.ERROR, False)])
async def test_feed_process_logs_at_its_parents_level(
    parent_level: int, shown: bool, capfd: pytest.CaptureFixture[str]
) -> None:
    """The child shares the parent's stderr, so it logs no lower than the parent: a drill shows only errors while
    it runs, and the child's reconnect warnings must not be printed over its report."""
    root = logging.getLogger()
    saved = root.level
    root.setLevel(parent_level)
    try:
        async with (
            SimExchange(SimSection(speed=60.0, history_bars=300), SYMBOLS) as sim,
            FeedProcess(ExchangeSection(symbols=SYMBOLS), FeedSection(), sim=sim) as feed,
            asyncio.TaskGroup() as tg,
        ):
            task = tg.create_task(feed.run())
            await _first(feed, MarkPrice)
            sim.disconnect_storm(seconds=1.0)  # every socket dropped now (simulated seconds: 1/60 s here)
            await asyncio.sleep(1.0)
            await _first(feed, MarkPrice)  # reconnected: the child has logged the drop by now
            task.cancel()
    finally:
        root.setLevel(saved)
    assert ("feed.stream_failed" in capfd.readouterr().err) is shown


async def test_feed_process_unknown_exchange_fails_at_once_naming_it() -> None:
    """An exchange id ccxt does not know ends the start with a FeedError that names it, not a 30 s timeout,
    and leaves no child behind."""
    feed = FeedProcess(ExchangeSection(id="nosuchexchange", symbols=SYMBOLS), FeedSection())
    with pytest.raises(FeedError, match="'nosuchexchange': not a ccxt exchange id"):
        async with feed:
            pass
    assert feed._process is None


async def test_feed_process_symbol_the_venue_does_not_list_fails_naming_it() -> None:
    """A symbol the venue refuses ends the start with the venue's reason."""
    async with SimExchange(SimSection(history_bars=30), SYMBOLS[:1]) as sim:
        with pytest.raises(FeedError, match=r"sim does not list ETH/USDT:USDT"):
            async with FeedProcess(ExchangeSection(symbols=SYMBOLS), FeedSection(), sim=sim):
                pass


async def test_feed_process_child_dying_before_markets_says_so_at_once() -> None:
    """A child that dies while loading markets (here: killed while the venue is silent) fails the start with
    its exit code as soon as it is gone, instead of a bare TimeoutError half a minute later."""
    asked = asyncio.Event()
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept, never answer
        asked.set()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    endpoint = Endpoint(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}")
    feed = FeedProcess(ExchangeSection(symbols=SYMBOLS), FeedSection(), sim=endpoint)
    try:
        start = asyncio.create_task(feed.__aenter__())
        await asyncio.wait_for(asked.wait(), 60)
        assert feed._process is not None
        os.kill(feed._process.pid, signal.SIGKILL)
        with pytest.raises(FeedError, match=r"the feed process ended \(exit code -9\) before it listed the markets"):
            await asyncio.wait_for(start, 30)
        assert feed._process is None
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
