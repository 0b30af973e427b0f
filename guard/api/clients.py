"""Who is attached to the control API: each client's outbox of frames, and which operators are present.

The hub fills the outboxes and the server empties them onto each connection; presence is what the
dead-man switch reads. Kept apart from the hub, which turns what was committed into views and fans them out.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from guard.api.protocol import Message, encode

CLIENT_QUEUE = 2_000
"""Messages a client may fall behind by before it is dropped and must resync."""


@dataclass(eq=False)
class Subscription:
    """One client's outbox of encoded frames."""

    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE))
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)
    queued: int = 0
    sent: int = 0
    _on_sent: deque[tuple[int, asyncio.Future[None]]] = field(default_factory=deque)
    """(frame number, future resolved once that frame is written)."""

    def offer(self, message: Message, on_sent: asyncio.Future[None] | None = None) -> None:
        """Queue a message; `on_sent` resolves once it (and all before it) has been written."""
        self.offer_frame(encode(message))
        if on_sent is not None:
            self._on_sent.append((self.queued, on_sent))

    def offer_frame(self, frame: str) -> None:
        """Queue an already encoded frame (a view shared by every client is encoded once)."""
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed.set()
            return
        self.queued += 1

    def frame_sent(self) -> None:
        """The sender wrote the next frame."""
        self.sent += 1
        while self._on_sent and self._on_sent[0][0] <= self.sent:
            future = self._on_sent.popleft()[1]
            if not future.done():
                future.set_result(None)


class Presence:
    """Which operators are attached, and when each was last heard from."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._connections: dict[int, tuple[str, float]] = {}
        self.last_heard: float | None = None
        self.on_heard: Callable[[], None] = lambda: None
        """Called whenever an operator is heard from (the daemon marks operators present at once)."""

    def hello(self, connection: int, operator: str) -> None:
        self._connections[connection] = (operator, self._clock())
        self._heard()

    def heartbeat(self, connection: int) -> None:
        if connection in self._connections:
            operator, _ = self._connections[connection]
            self._connections[connection] = (operator, self._clock())
            self._heard()

    def heard_from(self, operator: str) -> None:
        """A REST command counts as presence at that moment."""
        self._heard()

    def _heard(self) -> None:
        self.last_heard = self._clock()
        self.on_heard()

    def goodbye(self, connection: int) -> None:
        self._connections.pop(connection, None)

    def operators(self) -> tuple[str, ...]:
        return tuple(sorted({op for op, _ in self._connections.values()}))

    def silent_for(self) -> float | None:
        """Seconds since any operator was heard from; None if none ever was."""
        return None if self.last_heard is None else self._clock() - self.last_heard
