"""The control API: aiohttp on a unix socket (default) or loopback TCP, behind bearer tokens.

Identity is the token (see `guard.api.credentials`): an operator's own token names them, and a header or
Hello naming someone else is refused; holders of the single shared token (a one-person setup) name
themselves and count as one credential, "shared". A source's token may only propose (`POST /v1/commands`,
its own WebSocket, or its webhook `POST /v1/sources/NAME/proposals`), read the market (`GET /v1/market`) and
read its own proposals; anything else it tries is refused and journaled. Tokens are checked on every request
and every WebSocket command, so a revoked one stops at once.

WebSocket `/v1/ws`: a Snapshot on connect, then pushed views (for an operator; a source gets only the
replies to its own commands); commands answered with a Reply after they are journaled. REST
`POST /v1/commands` takes the same commands (with the shared token, the operator in the `X-Guard-Operator`
header). `/health` needs no token and says only whether the daemon is
up; everything else does.

Each command fails alone. A frame that cannot be parsed gets a refusal naming what was wrong (over
REST: HTTP 400) and changes nothing; the connection stays open. A command runs as a task of the
server, not of the connection it came on: a client that disconnects, or a frame that breaks its
connection, cannot cancel an approval between its durable decision and its order. At shutdown,
`drain()` lets commands in flight finish before the desk closes its session.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import typing
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import WSMessage, WSMsgType, web

from guard.api.access import not_yours, operator_problem, source_may
from guard.api.clients import Presence, Subscription
from guard.api.credentials import SHARED, CredentialStore, Identity, Scope
from guard.api.dispatch import CommandHandler
from guard.api.fates import Fates
from guard.api.hub import Hub
from guard.api.protocol import (
    MAX_FRAME_BYTES,
    OPERATOR_HEADER,
    PROTOCOL_VERSION,
    Command,
    Heartbeat,
    Hello,
    Kill,
    Reply,
    command_id,
    decode_command,
    encode,
)
from guard.api.webhook import post_alert
from guard.config import ApiSection, is_loopback
from guard.errors import BadInput, DaemonError, DecodeError
from guard.paths import StatePaths
from guard.redaction import Scrubber

log = structlog.get_logger(__name__)

SEND_TIMEOUT = 2.0
"""A client that cannot take one message for this long has stopped reading: it is dropped."""
DRAIN_SECONDS = 10.0
"""At shutdown, how long commands in flight get to finish (an order already decided reaches its broker)."""
MAX_WS_MESSAGE_BYTES = 1024 * 1024
"""The WebSocket transport's own limit. Frames above MAX_FRAME_BYTES but below this are refused with a
reply and the connection stays; only a frame beyond this closes it (aiohttp would have to buffer it)."""
_PUBLIC = frozenset({"/health"})


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
        credentials: CredentialStore | None = None,
        scrub: Scrubber | None = None,
    ) -> None:
        if settings.transport == "tcp" and not is_loopback(settings.host):
            raise DaemonError(f"refusing to serve the control API on {settings.host}: only loopback addresses")
        self._settings = settings
        self._paths = paths
        self._token = token.encode()
        self._credentials = credentials or CredentialStore(paths.root)
        self._scrub = scrub or Scrubber([token])
        self._hub = hub
        self._presence = presence
        self._health = health
        self._metrics = metrics
        self._model_card = model_card
        self._performance = performance
        self._fates = Fates(hub)
        self._ids = itertools.count(1)
        self._tasks: asyncio.TaskGroup | None = None
        self._handler: CommandHandler | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._accepting = True
        self.address = ""

    async def serve(self, ready: asyncio.Event | None = None) -> None:
        """Serve until cancelled. Commands, and their follow-up work (a kill's clean-up), run in this task group."""
        app = web.Application(middlewares=[self._errors, self._auth], client_max_size=MAX_FRAME_BYTES)
        app.router.add_get("/health", self._get_health)
        app.router.add_get("/metrics", self._get_metrics)
        app.router.add_get("/v1/snapshot", self._get_snapshot)
        app.router.add_get("/v1/model/card", self._get_card)
        app.router.add_get("/v1/model/performance", self._get_performance)
        app.router.add_post("/v1/commands", self._post_command)
        app.router.add_get("/v1/market", self._get_market)
        app.router.add_post("/v1/sources/{name}/proposals", self._post_source_proposal)
        app.router.add_get("/v1/ws", self._ws)
        # What a source reads: its own proposals' fate, and the account (an operator may read them too).
        app.router.add_get("/v1/proposals", self._get_proposals)
        app.router.add_get("/v1/proposals/{proposal_id}", self._get_proposal)
        app.router.add_get("/v1/account", self._get_account)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            async with asyncio.TaskGroup() as tg:
                self._tasks = tg
                self._handler = CommandHandler(self._hub.desk, tg.create_task, self._scrub)
                await self._start_site(runner)
                if ready is not None:
                    ready.set()
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    # Cancelled without a drain (the daemon failing elsewhere): commands past their
                    # durable decision still get to reach their broker before the group cancels them.
                    await self.drain()
                    raise
        finally:
            await runner.cleanup()
            if self._settings.transport == "unix":
                self._paths.socket.unlink(missing_ok=True)
            self._paths.endpoint.unlink(missing_ok=True)

    async def drain(self) -> None:
        """Take no more commands (but a kill), and wait up to DRAIN_SECONDS for those in flight to finish."""
        self._accepting = False
        if self._in_flight:
            log.info("api_draining", commands=len(self._in_flight))
            _, pending = await asyncio.wait(set(self._in_flight), timeout=DRAIN_SECONDS)
            if pending:
                log.error("api_drain_timed_out", commands=len(pending), seconds=DRAIN_SECONDS)

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
            # aiohttp exposes the bound port only here; typed as the abstract server, it is an asyncio.Server
            server = typing.cast("asyncio.Server | None", site._server)
            port = server.sockets[0].getsockname()[1] if server and server.sockets else self._settings.port
            self.address = f"http://{self._settings.host}:{port}"
            self._paths.endpoint.write_text(f"{self._settings.host}:{port}\n", encoding="utf-8")
        log.info("api_listening", address=self.address)

    # --- middlewares ---------------------------------------------------------------

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """No input answers 500: bad input is a 400 naming what was wrong. A 500 is our own bug, logged as one."""
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except BadInput as e:
            return web.json_response({"error": str(e)}, status=400)
        except Exception as e:
            log.exception("api_request_failed", path=request.path, method=request.method)
            text = f"internal error ({type(e).__name__}): see the daemon's log"
            return web.json_response({"error": text}, status=500)

    @web.middleware
    async def _auth(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path in _PUBLIC:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        identity = self._identify(presented.strip()) if scheme == "Bearer" else None
        if identity is None:
            log.warning("api_unauthorized", path=request.path, remote=request.remote)
            return web.json_response({"error": "missing, wrong or revoked token"}, status=401)
        if identity.scope is not Scope.OPERATOR and not source_may(request.path):
            log.warning("api_out_of_scope", path=request.path, credential=identity.credential)
            why = (
                f"{identity.name} holds a {identity.scope.value} credential: it may propose, read the market "
                "(/v1/market) and read its own proposals, nothing else"
            )
            await self._hub.desk.refuse(identity.name, f"{request.method} {request.path[:100]}", why)
            return web.json_response({"error": why}, status=403)
        request[_TOKEN] = presented.strip()
        request[_IDENTITY] = identity
        return await handler(request)

    def _identify(self, presented: str) -> Identity | None:
        """Whose token this is: the shared token (its holders name themselves), an active credential, or nobody."""
        # Header text that is not UTF-8 arrives with surrogate escapes: compare its bytes, never fail on it.
        raw = presented.encode("utf-8", "surrogateescape")
        if hmac.compare_digest(raw, self._token):
            return Identity("", SHARED, Scope.OPERATOR)
        try:
            identity = self._credentials.identify(raw.decode("utf-8", "replace"))
        except BadInput as e:  # an unreadable registry: nobody is let in on it, and the log says why
            log.error("credential_registry_unreadable", error=str(e))
            return None
        if identity is not None:
            self._scrub.add(presented)  # a token in use is a secret the record must never hold
        return identity

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
        body = await request.read()  # bytes: text that is not UTF-8 is refused by the decoder, with a reason
        try:
            command = decode_command(body)
        except DecodeError as e:
            return _json(Reply(command_id(body), False, str(e)), status=400)
        identity: Identity = request[_IDENTITY]
        claimed = request.headers.get(OPERATOR_HEADER, "").strip()
        if identity.shared:
            problem = operator_problem(claimed)
            if problem:
                return _json(
                    Reply(command.id, False, f"say who you are in the {OPERATOR_HEADER} header: {problem}"), 400
                )
            identity = Identity(claimed, SHARED, Scope.OPERATOR)
        elif claimed and claimed != identity.name:
            return _json(Reply(command.id, False, not_yours(identity, claimed)), 400)
        if identity.scope is Scope.OPERATOR:
            self._presence.heard_from(identity.name)
        reply, failed, answered = await self._answer(command, identity)
        response = _json(reply, status=500 if failed else 200)
        answered.set_result(None)  # aiohttp writes the response as this handler returns, before any await
        return response

    async def _answer(self, command: Command, identity: Identity) -> tuple[Reply, bool, asyncio.Future[None]]:
        """Run a REST command; its reply, whether it failed by our own fault, and the future to resolve once the
        response is on its way."""
        answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        outcome: asyncio.Future[tuple[Reply, bool]] = asyncio.get_running_loop().create_future()

        def deliver(reply: Reply, failed: bool) -> None:
            if not outcome.done():  # cancelled when the client hung up: the command ran all the same
                outcome.set_result((reply, failed))

        self._start(command, identity, answered, deliver)
        # A client that hangs up (or the server closing its connections) cancels this wait, never the
        # command: that runs in the server's task group.
        reply, failed = await outcome
        return reply, failed, answered

    async def _get_market(self, request: web.Request) -> web.Response:
        """Market status: trading state, each symbol's price and feed health, and the caller's own standing if it
        is a source. What a source may read besides its own proposals."""
        identity: Identity = request[_IDENTITY]
        return web.json_response(self._hub.market(identity.name if identity.scope is Scope.SOURCE else None))

    async def _post_source_proposal(self, request: web.Request) -> web.Response:
        """A webhook: an alert's JSON as a proposal from the source NAME (see `guard.api.webhook`)."""
        return await post_alert(request, request[_IDENTITY], self._hub.desk, self._answer)

    # --- what a source reads: its own proposals' fate, the account (guard.api.fates) ----

    async def _get_proposal(self, request: web.Request) -> web.Response:
        return await self._fates.answer_fate(request.match_info["proposal_id"], request[_IDENTITY])

    async def _get_proposals(self, request: web.Request) -> web.Response:
        return await self._fates.answer_list(request.query.get("limit", "50"), request[_IDENTITY])

    async def _get_account(self, request: web.Request) -> web.Response:
        return self._fates.answer_account()

    # --- running commands --------------------------------------------------------------

    def _start(
        self,
        command: Command,
        identity: Identity,
        answered: asyncio.Future[None],
        deliver: Callable[[Reply, bool], None],
    ) -> None:
        """Run a command in the server's task group and hand `deliver` its reply, and whether it failed by our
        own fault (an internal error rather than a refusal). `deliver` must not raise."""
        assert self._tasks is not None
        if not self._accepting and not isinstance(command, Kill):
            deliver(Reply(command.id, False, "the daemon is stopping: only a kill is taken now"), False)
            return
        task = self._tasks.create_task(self._run(command, identity, answered, deliver))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _run(
        self,
        command: Command,
        identity: Identity,
        answered: asyncio.Future[None],
        deliver: Callable[[Reply, bool], None],
    ) -> None:
        assert self._handler is not None
        operator = identity.name
        log.info(
            "command_received",
            command=type(command).__name__,
            operator=operator,
            credential=identity.credential,
            id=command.id,
        )
        try:
            reply = await self._handler.handle(command, identity, answered)
        except Exception as e:  # our bug, not the operator's: logged as one, answered, and nothing else is touched
            log.exception("command_crashed", command=type(command).__name__, operator=operator, id=command.id)
            text = f"internal error ({type(e).__name__}): see the daemon's log, then check the journal"
            deliver(Reply(command.id, False, text), True)
            return
        deliver(reply, False)

    # --- WebSocket -------------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        # A short close timeout: dropping a client that stopped reading must not wait on its full buffers.
        # Text arrives as bytes (decode_text=False): a frame that is not UTF-8 is refused with a reply by the
        # decoder, where aiohttp would close the connection.
        ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=MAX_WS_MESSAGE_BYTES, timeout=1.0, decode_text=False)
        await ws.prepare(request)
        connection = next(self._ids)
        if request[_IDENTITY].scope is Scope.OPERATOR:
            subscription, snapshot = self._hub.attach()
            subscription.offer(snapshot)
        else:  # a source sees its own commands' replies, never the operators' views
            subscription = Subscription()
        token: str = request[_TOKEN]
        operator: Identity | None = None
        try:
            async with asyncio.TaskGroup() as tg:
                pump = tg.create_task(self._pump(request, ws, subscription))
                async for frame in ws:
                    if self._identify(token) is None:  # revoked or rotated while connected: stop at once
                        subscription.offer(Reply("", False, "this token was revoked: reconnect with a valid one"))
                        break
                    operator = self._on_frame(frame, subscription, connection, operator, request[_IDENTITY])
                pump.cancel()
        except* (TimeoutError, ConnectionResetError):
            pass
        finally:
            self._hub.detach(subscription)
            if operator is not None and operator.scope is Scope.OPERATOR:
                self._presence.goodbye(connection)
                log.info("operator_detached", operator=operator.name, connection=connection)
                self._hub.publish_status()
        return ws

    def _on_frame(
        self,
        frame: WSMessage,
        subscription: Subscription,
        connection: int,
        operator: Identity | None,
        token_identity: Identity,
    ) -> Identity | None:
        """Answer one frame; returns the connection's operator (set by a Hello, checked against the token).
        Never raises for any input."""
        if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return operator
        data: bytes | str = frame.data
        try:
            command = decode_command(data)
        except DecodeError as e:
            subscription.offer(Reply(command_id(data), False, str(e)))
            return operator
        if frame.type is WSMsgType.BINARY:
            subscription.offer(Reply(command.id, False, "binary frames are not part of the protocol: send text"))
            return operator
        if isinstance(command, Hello):
            name = command.operator.strip()
            problem = operator_problem(name)
            if not problem and not token_identity.shared and name != token_identity.name:
                problem = not_yours(token_identity, name)
            if problem:  # refused like any other frame: the connection keeps the operator it had
                subscription.offer(Reply(command.id, False, problem))
                return operator
            identity = Identity(name, token_identity.credential, token_identity.scope)
            if identity.scope is not Scope.OPERATOR:  # a program is no operator: it keeps no dead-man switch alive
                log.info("source_attached", source=name, client=command.client, connection=connection)
                subscription.offer(Reply(command.id, True, f"hello {name}"))
                return identity
            self._presence.hello(connection, name)
            log.info(
                "operator_attached",
                operator=name,
                credential=identity.credential,
                client=command.client,
                connection=connection,
            )
            subscription.offer(Reply(command.id, True, f"hello {name}"))
            self._hub.publish_status()
            return identity
        if operator is None:
            subscription.offer(Reply(command.id, False, "say hello first: every command needs an operator"))
            return operator
        if operator.scope is Scope.OPERATOR:
            self._presence.heartbeat(connection)
        if isinstance(command, Heartbeat):
            subscription.offer(Reply(command.id, True))
            return operator
        answered = asyncio.get_running_loop().create_future()
        self._start(command, operator, answered, lambda reply, _: subscription.offer(reply, on_sent=answered))
        return operator

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


_TOKEN = web.RequestKey("token", str)
_IDENTITY = web.RequestKey("identity", Identity)


def _json(reply: Reply, status: int = 200) -> web.Response:
    return web.Response(text=encode(reply), status=status, content_type="application/json")
