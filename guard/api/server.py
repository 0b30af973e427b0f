"""The control API: aiohttp on a unix socket (default) or loopback TCP, behind a bearer token.

WebSocket `/v1/ws`: a Snapshot on connect, then pushed views; commands answered with a Reply
after they are journaled. REST `POST /v1/commands` takes the same commands (the operator in the
`X-Guard-Operator` header). `/health` needs no token and says only whether the daemon is up;
everything else does. A malformed frame gets an error reply and changes nothing; the connection
stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import os
import secrets
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from guard.api.commands import CommandHandler
from guard.api.hub import Hub, Presence, Subscription
from guard.api.protocol import (
    MAX_FRAME_BYTES,
    OPERATOR_HEADER,
    PROTOCOL_VERSION,
    Command,
    Heartbeat,
    Hello,
    Reply,
    command_id,
    decode_command,
    encode,
)
from guard.config import ApiSection, is_loopback
from guard.errors import DaemonError, DecodeError
from guard.paths import StatePaths

log = structlog.get_logger(__name__)

SEND_TIMEOUT = 2.0
"""A client that cannot take one message for this long has stopped reading: it is dropped."""
_PUBLIC = frozenset({"/health"})


def load_or_create_token(path: Path) -> str:
    """The bearer token, created with mode 0600 on first start; a looser file is tightened, loudly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode != 0o600:
            log.warning("token_file_permissions_tightened", path=str(path), mode=oct(mode))
            path.chmod(0o600)
        token = path.read_text(encoding="utf-8").strip()
        if len(token) < 32:
            raise DaemonError(f"the token in {path} is too short; delete the file to have a new one made") from None
        return token
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token


class ApiServer:
    def __init__(
        self,
        settings: ApiSection,
        paths: StatePaths,
        token: str,
        hub: Hub,
        presence: Presence,
        health: Callable[[], dict[str, Any]],
        metrics: Callable[[], str],
        model_card: Callable[[], str],
        performance: Callable[[], Any],
    ) -> None:
        if settings.transport == "tcp" and not is_loopback(settings.host):
            raise DaemonError(f"refusing to serve the control API on {settings.host}: only loopback addresses")
        self._settings = settings
        self._paths = paths
        self._token = token.encode()
        self._hub = hub
        self._presence = presence
        self._health = health
        self._metrics = metrics
        self._model_card = model_card
        self._performance = performance
        self._ids = itertools.count(1)
        self._tasks: asyncio.TaskGroup | None = None
        self._handler: CommandHandler | None = None
        self.address = ""

    async def serve(self, ready: asyncio.Event | None = None) -> None:
        """Serve until cancelled. Commands' follow-up work (a kill's clean-up) runs in this task group."""
        app = web.Application(middlewares=[self._auth], client_max_size=MAX_FRAME_BYTES)
        app.router.add_get("/health", self._get_health)
        app.router.add_get("/metrics", self._get_metrics)
        app.router.add_get("/v1/snapshot", self._get_snapshot)
        app.router.add_get("/v1/model/card", self._get_card)
        app.router.add_get("/v1/model/performance", self._get_performance)
        app.router.add_post("/v1/commands", self._post_command)
        app.router.add_get("/v1/ws", self._ws)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            async with asyncio.TaskGroup() as tg:
                self._tasks = tg
                self._handler = CommandHandler(self._hub.desk, tg.create_task)
                await self._start_site(runner)
                if ready is not None:
                    ready.set()
                await asyncio.Event().wait()
        finally:
            await runner.cleanup()
            if self._settings.transport == "unix":
                self._paths.socket.unlink(missing_ok=True)
            self._paths.endpoint.unlink(missing_ok=True)

    async def _start_site(self, runner: web.AppRunner) -> None:
        if self._settings.transport == "unix":
            path = self._paths.socket
            if len(str(path)) > 100:
                raise DaemonError(f"socket path {path} is too long for a unix socket; set GUARD_HOME to a shorter path")
            path.unlink(missing_ok=True)  # a stale socket from a crashed daemon: we hold the lock, so it is ours
            site: web.BaseSite = web.UnixSite(runner, str(path))
            await site.start()
            path.chmod(0o600)
            self.address = f"unix:{path}"
        else:
            site = web.TCPSite(runner, self._settings.host, self._settings.port)
            await site.start()
            server = site._server  # aiohttp exposes the bound port only here
            port = server.sockets[0].getsockname()[1] if server and server.sockets else self._settings.port
            self.address = f"http://{self._settings.host}:{port}"
            self._paths.endpoint.write_text(f"{self._settings.host}:{port}\n", encoding="utf-8")
        log.info("api_listening", address=self.address)

    # --- auth ------------------------------------------------------------------------

    @web.middleware
    async def _auth(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path in _PUBLIC:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme != "Bearer" or not hmac.compare_digest(presented.strip().encode(), self._token):
            log.warning("api_unauthorized", path=request.path, remote=request.remote)
            return web.json_response({"error": "missing or wrong token"}, status=401)
        return await handler(request)

    # --- REST ------------------------------------------------------------------------

    async def _get_health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "protocol": PROTOCOL_VERSION, **self._health()})

    async def _get_metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=self._metrics(), content_type="text/plain", charset="utf-8")

    async def _get_snapshot(self, request: web.Request) -> web.Response:
        return web.Response(text=encode(self._hub.snapshot()), content_type="application/json")

    async def _get_card(self, request: web.Request) -> web.Response:
        return web.Response(text=self._model_card(), content_type="text/markdown", charset="utf-8")

    async def _get_performance(self, request: web.Request) -> web.Response:
        return web.Response(text=encode(self._performance()), content_type="application/json")

    async def _post_command(self, request: web.Request) -> web.Response:
        operator = request.headers.get(OPERATOR_HEADER, "").strip()
        body = await request.text()
        try:
            command = decode_command(body)
        except DecodeError as e:
            return web.Response(
                text=encode(Reply(command_id(body), False, str(e))), status=400, content_type="application/json"
            )
        if not operator:
            reply = Reply(command.id, False, f"say who you are: the {OPERATOR_HEADER} header is required")
            return web.Response(text=encode(reply), status=400, content_type="application/json")
        self._presence.heard_from(operator)
        answered = asyncio.get_running_loop().create_future()
        reply = await self._run(command, operator, answered)
        response = web.Response(text=encode(reply), content_type="application/json")
        answered.set_result(None)  # aiohttp writes the response as this handler returns, before any await
        return response

    async def _run(self, command: Command, operator: str, answered: asyncio.Future[None]) -> Reply:
        assert self._handler is not None
        log.info("command_received", command=type(command).__name__, operator=operator, id=command.id)
        return await self._handler.handle(command, operator, answered)

    # --- WebSocket -------------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        # A short close timeout: dropping a client that stopped reading must not wait on its full buffers.
        ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=MAX_FRAME_BYTES, timeout=1.0)
        await ws.prepare(request)
        connection = next(self._ids)
        subscription, snapshot = self._hub.attach()
        subscription.offer(snapshot)
        operator: str | None = None
        try:
            async with asyncio.TaskGroup() as tg:
                pump = tg.create_task(self._pump(request, ws, subscription))
                async for frame in ws:
                    if frame.type is not WSMsgType.TEXT:
                        if frame.type is WSMsgType.BINARY:
                            subscription.offer(Reply("", False, "binary frames are not part of the protocol"))
                        continue
                    try:
                        command = decode_command(frame.data)
                    except DecodeError as e:
                        subscription.offer(Reply(command_id(frame.data), False, str(e)))
                        continue
                    if isinstance(command, Hello):
                        operator = command.operator.strip()
                        if not operator or len(operator) > 64:
                            operator = None
                            subscription.offer(Reply(command.id, False, "an operator id is 1 to 64 characters"))
                            continue
                        self._presence.hello(connection, operator)
                        log.info("operator_attached", operator=operator, client=command.client, connection=connection)
                        subscription.offer(Reply(command.id, True, f"hello {operator}"))
                        self._hub.publish_status()
                        continue
                    if operator is None:
                        subscription.offer(Reply(command.id, False, "say hello first: every command needs an operator"))
                        continue
                    if isinstance(command, Heartbeat):
                        self._presence.heartbeat(connection)
                        subscription.offer(Reply(command.id, True))
                        continue
                    self._presence.heartbeat(connection)
                    tg.create_task(self._answer(subscription, command, operator))
                pump.cancel()
        except* (TimeoutError, ConnectionResetError):
            pass
        finally:
            self._hub.detach(subscription)
            if operator is not None:
                self._presence.goodbye(connection)
                log.info("operator_detached", operator=operator, connection=connection)
                self._hub.publish_status()
        return ws

    async def _answer(self, subscription: Subscription, command: Command, operator: str) -> None:
        answered = asyncio.get_running_loop().create_future()
        subscription.offer(await self._run(command, operator, answered), on_sent=answered)

    async def _pump(self, request: web.Request, ws: web.WebSocketResponse, subscription: Subscription) -> None:
        """Send this client's messages in order; drop the client if it cannot keep up."""
        while not ws.closed:
            frame = await subscription.queue.get()
            if subscription.overflowed.is_set():
                await self._drop(request, ws, "too slow: reconnect for a fresh snapshot")
                return
            try:
                await asyncio.wait_for(ws.send_str(frame), SEND_TIMEOUT)
                subscription.frame_sent()
            except (TimeoutError, ConnectionResetError):
                await self._drop(request, ws, "not reading: reconnect for a fresh snapshot")
                return

    async def _drop(self, request: web.Request, ws: web.WebSocketResponse, why: str) -> None:
        """Cut a client off. One that stopped reading cannot take a close frame either: abort its connection."""
        log.warning("client_dropped", reason=why)
        if request.transport is not None:
            request.transport.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(code=1013, message=why.encode()), 0.5)
