"""The console's one connection to the daemon: it reconnects with backoff and posts what it hears.

One reader (run as a Textual worker) turns the daemon's pushed views into typed Textual
messages for the app; price batches collapse when the screen falls behind. Commands go out on
the same WebSocket. The kill switch has two more ways out when the WebSocket is down: the REST
API, then SIGUSR1 to the daemon's pid (as `guard kill` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import structlog
from textual.message import Message
from textual.message_pump import MessagePump

from guard.api.client import ApiClient, Session
from guard.api.protocol import Command, EventsLogged, Kill, Message as DaemonMessage, Prices, Reply, Snapshot
from guard.errors import DaemonError
from guard.paths import StatePaths

log = structlog.get_logger(__name__)

MIN_BACKOFF = 0.25
MAX_BACKOFF = 5.0
REPLY_WITHIN = 10.0
"""A command's reply comes after the daemon journals it; this long is a daemon in trouble."""
KILL_REPLY_WITHIN = 2.0
KILL_REST_WITHIN = 1.0
SESSION_ENDED = "SessionEnded"
"""The journal event a daemon writes as it stops: the end of this connection's usefulness."""
SESSION_END_DRAIN = 0.2
"""How long to take the messages a stopping daemon sends with its last event."""

_LINK_ERRORS = (DaemonError, OSError, TimeoutError, aiohttp.ClientError)


@dataclass(frozen=True, slots=True)
class KillOutcome:
    """How a kill left this console: the daemon's reply, or which fallback carried it."""

    ok: bool
    text: str


class DaemonLink:
    """Connects as one operator, forever: snapshot, pushed views, reconnect on loss."""

    class Connected(Message):
        """The daemon answered: here is its whole picture."""

        def __init__(self, snapshot: Snapshot) -> None:
            super().__init__()
            self.snapshot = snapshot

    class Disconnected(Message):
        """The connection is gone (or never came); the next attempt is `retry_in` seconds away."""

        def __init__(self, reason: str, attempt: int, retry_in: float) -> None:
            super().__init__()
            self.reason = reason
            self.attempt = attempt
            self.retry_in = retry_in

    class Pushed(Message):
        """Views the daemon pushed (status, proposals, positions, events, alerts), in order.

        Everything that arrives before the app gets to this message joins it: a kill's thousand
        journal events are one message to handle and one redraw, not a thousand.
        """

        def __init__(self, first: DaemonMessage) -> None:
            super().__init__()
            self._messages = [first]
            self.taken = False
            """Set once the app has taken the batch; later arrivals start a new one."""

        def add(self, message: DaemonMessage) -> None:
            self._messages.append(message)

        def take(self) -> list[DaemonMessage]:
            """The batch, in arrival order; nothing more joins it after this."""
            self.taken = True
            return self._messages

    class PricesPushed(Message):
        """A batch of marks. A newer batch supersedes one still queued: the screen skips, never lags."""

        def __init__(self, prices: Prices) -> None:
            super().__init__()
            self.prices = prices

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, DaemonLink.PricesPushed)

    def __init__(
        self,
        client: ApiClient,
        operator: str,
        target: MessagePump,
        *,
        kill_client: ApiClient | None = None,
        paths: StatePaths | None = None,
    ) -> None:
        self._client = client
        self._kill_client = kill_client or client
        self._paths = paths
        self.operator = operator
        self._target = target
        self._session: Session | None = None
        self._kills = 0
        self._batch: DaemonLink.Pushed | None = None

    @property
    def connected(self) -> bool:
        """True while a WebSocket session is up."""
        return self._session is not None

    async def run(self) -> None:
        """Connect, relay, reconnect with backoff; until cancelled (the app quitting)."""
        attempt = 0
        while True:
            attempt += 1
            was_up, reason = await self._session_once()
            if was_up:
                attempt = 1  # it worked until now: retry at once-ish, then back off again
            delay = min(MAX_BACKOFF, MIN_BACKOFF * 2 ** max(0, attempt - 1))
            log.info("daemon_link_down", reason=reason, attempt=attempt, retry_in=delay)
            self._target.post_message(self.Disconnected(reason, attempt, delay))
            await asyncio.sleep(delay)

    async def _session_once(self) -> tuple[bool, str]:
        """One connection from hello to its end. Returns whether it was up, and why it ended."""
        was_up = False
        reason = "the daemon closed the connection"
        try:
            async with self._client.connect(self.operator, client="tui") as session:
                assert session.snapshot is not None
                self._session = session
                was_up = True
                log.info("daemon_link_up", operator=self.operator)
                self._target.post_message(self.Connected(session.snapshot))
                try:
                    ended = await self._relay(session)
                finally:
                    self._session = None
                reason = ended or session.closed_reason or reason
        except* _LINK_ERRORS as group:
            reason = _describe(group.exceptions[0])
        return was_up, reason

    async def _relay(self, session: Session) -> str:
        """Post what the daemon pushes until the connection ends; returns why, if the daemon said."""
        messages = session.messages()
        async for message in messages:
            self._post(message)
            ended = _session_ended(message)
            if ended is not None:
                # The daemon is stopping and will serve nothing more. Take what it sent with the news (the
                # proposals it expired), then let go, rather than show its last state as live until its
                # server gets round to closing this connection.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(SESSION_END_DRAIN):
                        async for rest in messages:
                            self._post(rest)
                return ended
        return ""

    def _post(self, message: DaemonMessage) -> None:
        if isinstance(message, Prices):
            self._target.post_message(self.PricesPushed(message))
        elif isinstance(message, (Reply, Snapshot)):
            return  # replies go to their senders; a snapshot only comes on connect
        elif self._batch is not None and not self._batch.taken:
            self._batch.add(message)
        else:
            self._batch = self.Pushed(message)
            self._target.post_message(self._batch)

    def next_id(self) -> str:
        """A fresh command id on the current session."""
        if self._session is None:
            raise DaemonError("not connected to the daemon")
        return self._session.next_id()

    async def send(self, make: Callable[[str], Command], within: float = REPLY_WITHIN) -> Reply:
        """Send a command built around a fresh id; the reply comes once the daemon journaled it.

        Raises:
            DaemonError: not connected, or the connection dropped before the reply.
        """
        session = self._session
        if session is None:
            raise DaemonError("not connected to the daemon: nothing was sent")
        try:
            return await session.send(make(session.next_id()), reply_within=within)
        except TimeoutError:
            raise DaemonError(f"no reply from the daemon within {within:g} s: the outcome is unknown") from None
        except (aiohttp.ClientError, ConnectionError) as e:
            raise DaemonError(f"the connection dropped while sending ({e.__class__.__name__})") from e

    async def kill(self, reason: str) -> KillOutcome:
        """The kill switch, by whatever way reaches the daemon: WebSocket, REST, then a signal."""
        self._kills += 1
        failures = []
        if self._session is not None:
            try:
                reply = await self.send(lambda cid: Kill(cid, reason), within=KILL_REPLY_WITHIN)
                return KillOutcome(reply.ok, reply.reason)
            except DaemonError as e:
                failures.append(str(e))
        try:
            command = Kill(f"tui-kill-{os.getpid()}-{self._kills}", reason)
            reply = await asyncio.wait_for(self._kill_client.command(command, self.operator), KILL_REST_WITHIN)
            return KillOutcome(reply.ok, reply.reason + " (sent over REST)")
        except (DaemonError, TimeoutError) as e:
            failures.append(str(e) or "REST timed out")
        pid = signal_daemon(self._paths) if self._paths is not None else None
        if pid is not None:
            return KillOutcome(True, f"the API did not answer; sent SIGUSR1 to the daemon (pid {pid})")
        log.error("kill_not_delivered", failures=failures)
        return KillOutcome(False, "; ".join(failures) + " — no daemon process to signal: run `guard kill`")


def signal_daemon(paths: StatePaths) -> int | None:
    """SIGUSR1 (the kill switch) to the daemon holding the state lock; its pid, or None if none does.

    The lock proves the pid in the pidfile is a live daemon, not a reused pid from a crash.
    """
    try:
        fd = os.open(paths.lock, os.O_RDWR)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # held: a daemon is alive
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        with contextlib.suppress(OSError, ValueError):
            pid = int(paths.pidfile.read_text(encoding="utf-8").strip())
            if pid != os.getpid():  # a daemon hosted in this very process (tests) has no handler
                os.kill(pid, signal.SIGUSR1)
                return pid
        return None
    finally:
        os.close(fd)


def _session_ended(message: DaemonMessage) -> str | None:
    """Why the daemon ended the session, when this message says it did."""
    if isinstance(message, EventsLogged):
        for event in message.events:
            if event.type == SESSION_ENDED:
                return event.text
    return None


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "the daemon did not answer in time"
    text = str(error)
    return text if text else error.__class__.__name__
