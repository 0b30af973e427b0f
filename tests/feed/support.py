"""A real simulated exchange and a real CcxtFeed wired together, with an event recorder."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import msgspec

from guard.clock import SystemClock
from guard.config import ExchangeSection, FeedSection, SimSection
from guard.domain import Bar, FeedHealth, MarketEvent, Trade
from guard.feed.source import CcxtFeed
from guard.sim.server import SimExchange

BTC = "BTC/USDT:USDT"

FAST_FEED = FeedSection(
    stale_after_seconds=0.6,
    min_reconnect_delay_seconds=0.05,
    max_reconnect_delay_seconds=0.4,
    invalid_hold_seconds=0.3,
    poll_interval_seconds=0.1,
)
FAST_SIM = SimSection(speed=10.0, history_bars=240, trades_per_tick=10)
"""At ×10 a symbol prints 20 trades per real second and a 1m bar closes every 6 s."""


@dataclass
class Recorder:
    """Everything the feed delivered and every health change, with waits on conditions."""

    events: list[MarketEvent] = field(default_factory=list)
    health: list[FeedHealth] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def bars(self, symbol: str = BTC) -> list[Bar]:
        return [e for e in self.events if isinstance(e, Bar) and e.symbol == symbol]

    def trades(self, symbol: str = BTC) -> list[Trade]:
        return [e for e in self.events if isinstance(e, Trade) and e.symbol == symbol]

    def reasons(self, symbol: str = BTC) -> list[str]:
        return [h.reason for h in self.health if h.symbol == symbol and not h.healthy]

    def on_health(self, health: FeedHealth) -> None:
        self.health.append(health)
        self._pulse()

    def _pulse(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, condition: Callable[[], bool], seconds: float = 10.0) -> None:
        """Wait until `condition()` holds (re-checked on every event and health change)."""
        async with asyncio.timeout(seconds):
            while not condition():
                await self._changed.wait()

    async def drain(self, feed: CcxtFeed) -> None:
        async for event in feed.events():
            self.events.append(event)
            self._pulse()


@dataclass
class Rig:
    sim: SimExchange
    feed: CcxtFeed
    rec: Recorder
    consuming: asyncio.Event

    async def wait_healthy(self, seconds: float, symbols: tuple[str, ...] = (BTC,)) -> None:
        """Wait until every symbol is healthy; on timeout, fail with what still holds it back."""
        try:
            await self.feed.wait_health(lambda h: all(h[s].healthy for s in symbols), seconds)
        except TimeoutError:
            now = self.feed.health()
            still = {s: now[s].reason for s in symbols if not now[s].healthy}
            history = [h.reason or "healthy" for h in self.rec.health][-10:]
            raise AssertionError(
                f"not healthy within {seconds} s: {still}; health changes, newest last: {history}; {self.feed.stats}"
            ) from None


@asynccontextmanager
async def rig(
    *,
    symbols: tuple[str, ...] = (BTC,),
    sim: SimSection = FAST_SIM,
    feed: FeedSection = FAST_FEED,
    consume: bool = True,
    **feed_changes: Any,
) -> AsyncIterator[Rig]:
    """Start a simulator, a feed on it and a consumer; stop them all on exit.

    The feed's own task group propagates any exception out of `run()`: a test fails if one
    escapes.
    """
    feed_section = msgspec.structs.replace(feed, **feed_changes)
    async with SimExchange(sim, symbols) as exchange:
        xs = ExchangeSection(id="sim", symbols=symbols, timeframe="1m", timeout_seconds=5.0)
        async with CcxtFeed(xs, feed_section, SystemClock(), sim=exchange) as source:
            rec = Recorder()
            source.add_health_listener(rec.on_health)
            consuming = asyncio.Event()
            if consume:
                consuming.set()

            async def consumer() -> None:
                await consuming.wait()
                await rec.drain(source)

            async with asyncio.TaskGroup() as tg:
                runner = tg.create_task(source.run())
                reader = tg.create_task(consumer())
                try:
                    yield Rig(exchange, source, rec, consuming)
                finally:
                    runner.cancel()
                    reader.cancel()


def trade_ids(trades: list[Trade]) -> list[int]:
    return [int(t.trade_id) for t in trades]


async def wait_until(condition: Callable[[], bool], seconds: float) -> None:
    """Wait for a condition on state that has no event to wait on (the simulator's counters)."""
    async with asyncio.timeout(seconds):
        # The simulator's counters have no event to wait on; re-check them every 20 ms.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def hog_event_loop(seconds: float) -> None:
    """Keep the CPU busy without yielding, as a consumer doing heavy work inline would."""
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass
