"""Helpers for talking to a real daemon the way clients do."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from guard.api.client import Session
from guard.api.protocol import Message
from guard.daemon import Daemon
from tests.builders import request


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
