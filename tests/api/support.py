"""Helpers for talking to a real daemon the way clients do."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from guard.api.client import ApiClient, Endpoint, Session
from guard.api.protocol import Message
from guard.config import Config
from guard.daemon import Daemon
from tests.builders import request

T = TypeVar("T")


async def wait_for(session: Session, predicate: Callable[[Message], bool], within: float = 10.0) -> Message:
    """The first pushed message that satisfies `predicate` (earlier ones are skipped)."""

    async def scan() -> Message:
        async for message in session.messages():
            if predicate(message):
                return message
        raise AssertionError(f"connection ended: {session.closed_reason}")

    return await asyncio.wait_for(scan(), within)


async def wait_until(condition: Callable[[], bool], within: float = 10.0, every: float = 0.02) -> None:
    """Poll a condition on live state until it holds."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - polls state owned by the code under test, which has no event
            await asyncio.sleep(every)


async def queue_proposal(daemon: Daemon, **kw: Any) -> str:
    """Put a proposal in the daemon's real queue, as the model would (once marks are in, with an operator around)."""
    assert daemon.desk is not None and daemon.hub is not None
    daemon.hub.presence.heard_from("tester")
    symbol = kw.get("symbol", "BTC/USDT:USDT")
    await wait_until(lambda: symbol in daemon.desk.marks)
    result = await daemon.desk.propose(request(**kw))
    assert result.ok and result.proposal is not None, result.reason
    return result.proposal.id


class ThreadedDaemon:
    """A real daemon on its own thread and event loop, so a test (or hypothesis) can drive it from outside."""

    def __init__(self, config: Config) -> None:
        self.daemon = Daemon(config, handle_signals=False)
        self.loop = asyncio.new_event_loop()
        self.endpoint: Endpoint | None = None
        self._config = config
        self._thread = threading.Thread(target=self.loop.run_until_complete, args=(self.daemon.run(),), daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.call(asyncio.wait_for(self.daemon.ready.wait(), 30))
        self.endpoint = ApiClient.from_config(self._config).endpoint()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the daemon's loop and wait for its result (from any other thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    async def call_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the daemon's loop, awaited from another loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.daemon.stop)
        self._thread.join(30)


@contextlib.contextmanager
def threaded_daemon(config: Config) -> Iterator[ThreadedDaemon]:
    running = ThreadedDaemon(config)
    running.start()
    try:
        yield running
    finally:
        running.stop()
