"""Where the feed hands its events to the consumer: one queue of batches, bounded by the events it holds.

Events travel in batches (one per ccxt update): a queue hop per trade would cost as much as all
of guard's checks. The bound counts events, not batches; a producer whose batch does not fit
waits until the consumer has read enough, so nothing buffers without bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence

from guard.domain import MarketEvent


class EventOutlet:
    """A queue of event batches, bounded by events.

    Args:
        size: the most events handed over and not yet taken (a batch may overshoot it once).
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._queue: asyncio.Queue[tuple[MarketEvent, ...]] = asyncio.Queue()
        self._pending: deque[MarketEvent] = deque()
        self._queued = 0
        """Events handed over and not yet read (at most `size` plus one batch)."""
        self._room = asyncio.Event()
        self._room.set()
        self.high_water = 0
        """The most events ever queued at once."""

    async def put(self, events: Sequence[MarketEvent]) -> None:
        """Hand a batch over, waiting while the queue is full (a long batch goes in queue-sized parts)."""
        limit = self._size
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
            if self._queued > self.high_water:
                self.high_water = self._queued

    async def events(self) -> AsyncIterator[MarketEvent]:
        """Every event, in the order handed over, for as long as the feed runs."""
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

    def qsize(self) -> int:
        """Events handed over and not yet read."""
        return self._queued + len(self._pending)

    def _took(self, batch: tuple[MarketEvent, ...]) -> None:
        self._pending.extend(batch)
        self._queued -= len(batch)
        if self._queued < self._size:
            self._room.set()
