"""A client of the control API, for the TUI, the command line and drill scripts.

client = ApiClient.from_config(config)
reply = await client.command(Kill(id="k1", reason="drill"), operator="alice")   # REST
async with client.connect("alice") as session:                                   # WebSocket
    snapshot = session.snapshot
    reply = await session.send(Approve(...))
    async for message in session.messages(): ...
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from guard.api.protocol import (
    OPERATOR_HEADER,
    Command,
    Heartbeat,
    Hello,
    Message,
    PerformanceView,
    Reply,
    Snapshot,
    decode_message,
    encode,
)
from guard.config import ApiSection, Config
from guard.errors import DaemonError, DecodeError
from guard.paths import StatePaths

HEARTBEAT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    base_url: str
    socket: str | None
    token: str


TOKEN_ENV = "GUARD_TOKEN"
"""An environment variable that, when set, is the token to use (a source's, or an operator's), before any file."""


class ApiClient:
    def __init__(
        self, api: ApiSection, paths: StatePaths, timeout: float = 5.0, *, operator: str | None = None
    ) -> None:
        """
        Args:
            operator: whose token to use: their own (`operators/NAME.token`, issued by `guard operator add`) when
                there is one, else the shared token of a one-person setup.
        """
        self._api = api
        self._paths = paths
        self._operator = operator
        self.timeout = timeout

    @classmethod
    def from_config(cls, config: Config, timeout: float = 5.0, *, operator: str | None = None) -> ApiClient:
        return cls(config.api, StatePaths(config.state_dir), timeout, operator=operator)

    def token_path(self) -> Path:
        """The token file this client shows the daemon: the operator's own, or the shared one."""
        if self._operator:
            own = self._paths.root / "operators" / f"{self._operator}.token"
            if own.exists():
                return own
        return self._paths.token

    def endpoint(self) -> Endpoint:
        """Where the daemon listens and the token to show it. Raises DaemonError when there is none."""
        path = self.token_path()
        token = os.environ.get(TOKEN_ENV, "").strip()
        try:
            token = token or path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise DaemonError(
                f"no daemon has run in {self._paths.root} (no token file): start one with `guard up`"
            ) from None
        except PermissionError:
            raise DaemonError(f"cannot read the token {path}: it belongs to another user") from None
        if self._api.transport == "unix":
            return Endpoint("http://guard", str(self._paths.socket), token)
        host, port = self._api.host, self._api.port
        if self._paths.endpoint.exists():
            host, _, port_text = self._paths.endpoint.read_text(encoding="utf-8").strip().rpartition(":")
            port = int(port_text)
        return Endpoint(f"http://{host}:{port}", None, token)

    @contextlib.asynccontextmanager
    async def _http(self) -> AsyncIterator[tuple[aiohttp.ClientSession, Endpoint]]:
        endpoint = self.endpoint()
        connector = aiohttp.UnixConnector(path=endpoint.socket) if endpoint.socket else aiohttp.TCPConnector()
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers={"Authorization": f"Bearer {endpoint.token}"},
        ) as session:
            yield session, endpoint

    async def health(self) -> dict[str, Any] | None:
        """The daemon's /health, or None when nothing answers."""
        try:
            async with self._http() as (http, endpoint), http.get(f"{endpoint.base_url}/health") as response:
                return dict(await response.json()) if response.status == 200 else None
        except (aiohttp.ClientError, OSError, TimeoutError, DaemonError):
            return None

    async def command(self, command: Command, operator: str) -> Reply:
        """Send one command over REST and return the daemon's reply."""
        data = await self._request("POST", "/v1/commands", encode(command), {OPERATOR_HEADER: operator})
        message = decode_message(data)
        if not isinstance(message, Reply):
            raise DaemonError(f"unexpected answer to a command: {type(message).__name__}")
        return message

    async def snapshot(self) -> Snapshot:
        message = decode_message(await self._request("GET", "/v1/snapshot"))
        if not isinstance(message, Snapshot):
            raise DaemonError(f"unexpected answer to a snapshot request: {type(message).__name__}")
        return message

    async def model_card(self) -> str:
        return await self._request("GET", "/v1/model/card")

    async def performance(self) -> PerformanceView:
        """The model's live record beside its card's claims."""
        message = decode_message(await self._request("GET", "/v1/model/performance"))
        if not isinstance(message, PerformanceView):
            raise DaemonError(f"unexpected answer to a performance request: {type(message).__name__}")
        return message

    async def metrics(self) -> str:
        return await self._request("GET", "/metrics")

    async def _request(
        self, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None
    ) -> str:
        try:
            async with (
                self._http() as (http, endpoint),
                http.request(method, f"{endpoint.base_url}{path}", data=body, headers=headers) as response,
            ):
                text = await response.text()
                if response.status == 401:
                    raise DaemonError("the daemon refused the token (is this the right GUARD_HOME?)")
                if response.status >= 500:
                    raise DaemonError(f"the daemon failed: HTTP {response.status}: {text[:200]}")
                return text
        except (aiohttp.ClientConnectionError, FileNotFoundError, ConnectionRefusedError) as e:
            raise DaemonError(f"the daemon is not answering ({e.__class__.__name__}): is it running? `guard up`") from e
        except TimeoutError as e:
            raise DaemonError(f"the daemon did not answer within {self.timeout:g} s") from e

    @contextlib.asynccontextmanager
    async def connect(self, operator: str, client: str = "tui") -> AsyncIterator[Session]:
        """A WebSocket session as `operator`: hello sent, snapshot received, heartbeats running."""
        try:
            async with (
                self._http() as (http, endpoint),
                http.ws_connect(
                    f"{endpoint.base_url}/v1/ws", heartbeat=10.0, timeout=aiohttp.ClientWSTimeout(ws_close=2.0)
                ) as ws,
            ):
                session = Session(ws)
                async with asyncio.TaskGroup() as tg:
                    reader = tg.create_task(session._read())
                    await asyncio.wait_for(session._snapshot_ready.wait(), self.timeout)
                    reply = await session.send(Hello(session.next_id(), operator, client))
                    if not reply.ok:
                        raise DaemonError(f"the daemon refused hello: {reply.reason}")
                    beat = tg.create_task(session._heartbeat())
                    try:
                        yield session
                    finally:
                        beat.cancel()
                        reader.cancel()
                        await ws.close()
        except aiohttp.WSServerHandshakeError as e:
            raise DaemonError(f"the daemon refused the connection: HTTP {e.status}") from e
        except (aiohttp.ClientConnectionError, FileNotFoundError, ConnectionRefusedError) as e:
            raise DaemonError(f"the daemon is not answering ({e.__class__.__name__}): is it running?") from e


@dataclass(eq=False)
class Session:
    """One WebSocket connection: send commands, receive pushed views."""

    ws: aiohttp.ClientWebSocketResponse
    snapshot: Snapshot | None = None
    closed_reason: str = ""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    _waiting: dict[str, asyncio.Future[Reply]] = field(default_factory=dict)
    _inbox: asyncio.Queue[Message | None] = field(default_factory=lambda: asyncio.Queue(10_000))
    _snapshot_ready: asyncio.Event = field(default_factory=asyncio.Event)

    def next_id(self) -> str:
        """A command id no other session of this client (or a reconnect) reuses: the daemon answers a repeated
        id with its first answer and does nothing."""
        return f"{self._prefix}-{next(self._ids)}"

    async def send(self, command: Command, reply_within: float = 10.0) -> Reply:
        """Send a command and wait for its reply (after the daemon journaled it)."""
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting[command.id] = future
        try:
            await self.ws.send_str(encode(command))
            return await asyncio.wait_for(future, reply_within)
        finally:
            self._waiting.pop(command.id, None)

    async def messages(self) -> AsyncIterator[Message]:
        """Everything the daemon pushes, in order, replies included; ends when the connection does."""
        while True:
            message = await self._inbox.get()
            if message is None:
                return
            yield message

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                if frame.type is not aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    message = decode_message(frame.data)
                except DecodeError as e:
                    self.closed_reason = f"the daemon sent something this client cannot read: {e}"
                    break
                if isinstance(message, Snapshot):
                    self.snapshot = message
                    self._snapshot_ready.set()
                if isinstance(message, Reply) and message.id in self._waiting:
                    future = self._waiting.pop(message.id)
                    if not future.done():
                        future.set_result(message)
                try:
                    self._inbox.put_nowait(message)
                except asyncio.QueueFull:
                    # Never drop a view silently: a reader this far behind reconnects for a fresh snapshot.
                    self.closed_reason = "this client fell too far behind the daemon"
                    break
                # Buffered frames are read without suspending: let the consumer act on this message (HALTED)
                # before the next thousand (a kill's log lines) are decoded.
                await asyncio.sleep(0)
            self.closed_reason = self.closed_reason or f"connection closed ({self.ws.close_code})"
        finally:
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(DaemonError(self.closed_reason or "connection lost"))
            with contextlib.suppress(asyncio.QueueFull):
                self._inbox.put_nowait(None)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            await self.ws.send_str(encode(Heartbeat(self.next_id())))
