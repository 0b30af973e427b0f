"""`SimExchange`: the simulated exchange as an aiohttp server on loopback.

It speaks Binance USDⓈ-M's public REST (`public.py`) and WebSocket streams (`ws.py`) well
enough that ccxt's own `ccxt.pro.binanceusdm`, with only its URLs pointed here, loads
markets and streams bars, trades, tickers, books and mark prices. A small admin API under
`/_sim/` lets another process script scenarios and faults, with the simulator's bearer token
(`admin_token`; `guard sim` writes it to `sim.token` in the state directory); in-process callers
use the methods below. The private (signed) order API lives beside the public one (`private.py`, its
books in `books.py`), added to the app in `_build_app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog
from aiohttp import web

from guard.clock import Clock, SystemClock
from guard.config import SimSection
from guard.domain import Bar
from guard.errors import BadInput
from guard.sim.faults import ALL_SCENARIOS, FAULT_SCENARIOS, Fault, Faults, FaultStats
from guard.sim.market import SimMarket
from guard.sim.private import PrivateApi
from guard.sim.process import BASE_MS, SCENARIOS
from guard.sim.public import PublicApi, error_response
from guard.sim.ticks import SimClock, build_source
from guard.sim.venue_store import VenueStore
from guard.sim.ws import Streamer, StreamStats

log = structlog.get_logger(__name__)

HISTORY_WARMUP_BARS = 60
"""When serving a history file, simulated time starts this many bars into it."""
BOOKS_SAVE_SECONDS = 0.5
"""How often a venue file is brought up to date with what the market did between requests."""
FAULT_LEAD_IN_SECONDS = 30.0
FAULT_REPEAT_SECONDS = 120.0
"""A fault scenario plays after the lead-in (simulated seconds). `guard sim --scenario <fault>` plays it again
every repeat period, for watching a client recover; a daemon's embedded simulator (`sim.scenario`) plays it
once, so the desk stays usable after it."""


@dataclass(frozen=True, slots=True)
class SimStatistics:
    """A snapshot of what the simulated exchange has done."""

    now_ms: int
    scenario: str
    rest_requests: int
    connections: int
    stream: StreamStats
    faults: FaultStats

    def to_plain(self) -> dict[str, Any]:
        """JSON-ready values (the admin API's /_sim/state)."""
        return asdict(self)


class SimExchange:
    """The simulated exchange: `async with SimExchange(section, symbols) as sim: sim.url`.

    Args:
        section: the `[sim]` config (seed, scenario, speed, port, history file, ...).
        symbols: ccxt unified symbols to list, e.g. ("BTC/USDT:USDT", "ETH/USDT:USDT"). Ignored
            when `section.history` (or `history`) supplies recorded bars: their symbols are listed.
        clock: real time by default; a `TestClock` makes simulated time move only when told.
        host: loopback address to bind.
        history: recorded 1-minute bars per symbol to serve instead of the price process.
    """

    def __init__(
        self,
        section: SimSection,
        symbols: Sequence[str],
        clock: Clock | None = None,
        *,
        host: str = "127.0.0.1",
        history: dict[str, list[Bar]] | None = None,
        admin_token: str | None = None,
        repeat_faults: bool = False,
        venue_file: Path | None = None,
    ) -> None:
        """
        Args:
            venue_file: keep the private books (accounts, orders, positions) in this file across a restart of
                the process (`guard.sim.venue_store`); None keeps them in memory only.
            repeat_faults: play a fault `section.scenario` every FAULT_REPEAT_SECONDS after the first (`guard
                sim`), instead of once.
            admin_token: the bearer token the `/_sim/` control API demands (made up when not given): any
                process on the machine can reach loopback, and a flash crash is not theirs to start.
        """
        if section.scenario not in ALL_SCENARIOS:
            raise BadInput(f"sim.scenario = {section.scenario!r}: must be one of {', '.join(ALL_SCENARIOS)}")
        self.section = section
        self._clock = clock or SystemClock()
        self._host = host
        self._symbols = tuple(symbols)
        self._history = history
        self.admin_token = admin_token or secrets.token_urlsafe(24)
        self._repeat_faults = repeat_faults
        self._venue_file = venue_file
        self.faults_played = 0
        """How many times the fault `section.scenario` has played."""
        self.fault_task: asyncio.Task[None] | None = None
        """The task that plays the fault `section.scenario` (done once it has played, unless `repeat_faults`)."""
        self._port = 0
        self._runner: web.AppRunner | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self.market: SimMarket
        self.faults: Faults
        self.streamer: Streamer
        self.api: PublicApi
        self.private: PrivateApi

    # --- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> SimExchange:
        history = self._history
        if history is None and self.section.history:
            history = _load_history(self.section.history)
        price_scenario = self.section.scenario if self.section.scenario in SCENARIOS else "calm"
        now = self._clock.now_ms()
        if history is not None:
            first = min(b.open_time for rows in history.values() for b in rows)
            start = first + HISTORY_WARMUP_BARS * BASE_MS
            origin = first
        else:
            start = now
            origin = now - now % BASE_MS - self.section.history_bars * BASE_MS
        source = build_source(
            self._symbols,
            seed=self.section.seed,
            scenario=price_scenario,
            origin_ms=origin,
            onset_ms=start + BASE_MS,
            history=history,
        )
        sim_clock = SimClock(self._clock, self.section.speed, start)
        self.market = SimMarket(source, sim_clock, trades_per_tick=self.section.trades_per_tick)
        self.faults = Faults(sim_clock, len(self.market.symbols))
        self.streamer = Streamer(self.market, self.faults)
        self.api = PublicApi(self.market)
        self.private = PrivateApi(self.market)
        self._store = VenueStore(self._venue_file) if self._venue_file is not None else None
        if self._store is not None:
            self._store.load(self.private.books)
        app = self._build_app()
        stack = contextlib.AsyncExitStack()
        try:
            # Handlers are WebSocket streams that end when their socket closes; do not wait the
            # default minute for one whose peer vanished.
            runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            site = web.TCPSite(runner, self._host, self.section.port, reuse_address=True)
            await site.start()
            self._port = _bound_port(runner)
            tg = await stack.enter_async_context(asyncio.TaskGroup())
            pump = tg.create_task(self.streamer.run(), name="sim-pump")
            tasks = [pump, tg.create_task(self.private.run(), name="sim-private")]
            if self._store is not None:
                tasks.append(tg.create_task(self._save_books(self._store), name="sim-books"))
            if self.section.scenario in FAULT_SCENARIOS:
                self.fault_task = tg.create_task(self._play_fault(self.section.scenario), name="sim-faults")
                tasks.append(self.fault_task)
            stack.push_async_callback(self._stop, tasks)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        log.info(
            "sim.started",
            url=self.url,
            ws_url=self.ws_url,
            symbols=list(self.market.symbols),
            scenario=self.section.scenario,
            speed=self.section.speed,
            seed=self.section.seed,
            history=bool(history),
        )
        return self

    async def _stop(self, tasks: list[asyncio.Task[None]]) -> None:
        self.private.close()
        await self.streamer.close_all()
        for task in tasks:
            task.cancel()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()
            log.info("sim.stopped", port=self._port)

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._fault_middleware, self._keep_books])
        app.add_routes(self.api.routes())
        app.add_routes(self.private.routes())
        # ccxt rewrites ".../ws" into ".../public/ws/<n>" and ".../market/ws/<n>"; serve them all.
        for path in ("/ws", "/ws/{stream}", "/{category}/ws", "/{category}/ws/{stream}", "/stream"):
            app.router.add_get(path, self.streamer.handle)
        app.add_routes(self._admin_routes())
        return app

    @web.middleware
    async def _keep_books(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """With a venue file, the books are on disk before an answer leaves: whatever a client was told (an order
        placed, a fill read back) survives the process. Between requests, `_save_books` catches what the market did."""
        try:
            return await handler(request)
        finally:
            if self._store is not None and request.path.startswith("/fapi/"):
                if request.method == "GET":
                    self._store.save_if_changed(self.private.books)
                else:
                    self._store.save(self.private.books)

    async def _save_books(self, store: VenueStore) -> None:
        """Write the books when resting orders filled or triggered, or the dead-man countdown cancelled some."""
        while True:
            await asyncio.sleep(BOOKS_SAVE_SECONDS)
            store.save_if_changed(self.private.books)

    @web.middleware
    async def _fault_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith("/_sim/"):
            header = request.headers.get("Authorization", "")
            if not hmac.compare_digest(header.encode(), f"Bearer {self.admin_token}".encode()):
                log.warning("sim.admin_unauthorized", path=request.path, remote=request.remote)
                return web.json_response({"error": "the control API needs the simulator's token"}, status=401)
        else:
            fault = self.faults.http_fault(self.market.now_ms(), asyncio.get_running_loop().time())
            if fault is not None:
                if fault.status == 418:
                    log.warning("sim.banned", path=request.path, retry_after=fault.retry_after)
                return error_response(fault.status, fault.code, fault.msg, fault.retry_after)
        return await handler(request)

    # --- addresses -----------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound loopback port."""
        return self._port

    @property
    def url(self) -> str:
        """HTTP base, e.g. http://127.0.0.1:8123 (REST lives under /fapi/v1)."""
        return f"http://{self._host}:{self._port}"

    @property
    def ws_url(self) -> str:
        """WebSocket base, e.g. ws://127.0.0.1:8123 (streams live under /ws)."""
        return f"ws://{self._host}:{self._port}"

    # --- scripting -----------------------------------------------------------------

    def now_ms(self) -> int:
        """Simulated time."""
        return self.market.now_ms()

    def set_scenario(self, name: str, symbols: Iterable[str] | None = None) -> None:
        """Switch the price scenario, or play a fault scenario now with its default size."""
        if name in SCENARIOS:
            self.market.set_scenario(name)
        elif name in FAULT_SCENARIOS:
            self.faults.play(name, self._indices(symbols))
        else:
            raise BadInput(f"scenario {name!r}: must be one of {', '.join(ALL_SCENARIOS)}")
        self.streamer.wake()
        log.info("sim.scenario", scenario=name, symbols=list(symbols) if symbols else "all")

    def flash_crash(self) -> None:
        """Drop every symbol 30 % within the next minute, then recover over 30 minutes."""
        self.set_scenario("flash-crash")

    def stall(self, seconds: float = 10.0, symbols: Iterable[str] | None = None) -> None:
        """Stop streaming (simulated seconds); the market trades on, unseen, meanwhile."""
        self.faults.stall(seconds, self._indices(symbols))
        log.info("sim.fault", fault=Fault.STALL, seconds=seconds)

    def disconnect_storm(self, seconds: float = 30.0, drop_after: float = 1.0) -> None:
        """Drop every WebSocket now and each new one `drop_after` simulated seconds after it opens."""
        self.faults.disconnect_storm(seconds, drop_after)
        self.streamer.wake()
        log.info("sim.fault", fault=Fault.DISCONNECT_STORM, seconds=seconds)

    def rate_limit_storm(self, seconds: float = 20.0, retry_after: float = 2.0) -> None:
        """Answer 429 + Retry-After (real seconds) to everything; 418 to whoever ignores it."""
        self.faults.rate_limit_storm(seconds, retry_after)
        self.streamer.wake()
        log.info("sim.fault", fault=Fault.RATE_LIMIT_STORM, seconds=seconds, retry_after=retry_after)

    def server_errors(self, seconds: float = 10.0, status: int = 503) -> None:
        """Answer 5xx to every request and handshake for a while; drop open sockets."""
        self.faults.server_errors(seconds, status)
        self.streamer.wake()
        log.info("sim.fault", fault=Fault.SERVER_ERRORS, seconds=seconds, status=status)

    def malformed(self, count: int = 5, symbols: Iterable[str] | None = None) -> None:
        """Spoil the next `count` trade frames per symbol (bad types, missing fields)."""
        self.faults.frames(Fault.MALFORMED, count, self._indices(symbols))

    def nan_price(self, count: int = 3, symbols: Iterable[str] | None = None) -> None:
        """Send "NaN" as the price of the next `count` frames per symbol."""
        self.faults.frames(Fault.NAN_PRICE, count, self._indices(symbols))

    def out_of_order(self, count: int = 1, symbols: Iterable[str] | None = None) -> None:
        """After the next `count` bar closes, re-send an older closed bar."""
        self.faults.frames(Fault.OUT_OF_ORDER, count, self._indices(symbols))

    def duplicate_bars(self, count: int = 1, symbols: Iterable[str] | None = None) -> None:
        """After the next `count` bar closes, send the closed bar again."""
        self.faults.frames(Fault.DUPLICATE_BARS, count, self._indices(symbols))

    def clear_faults(self) -> None:
        """End every fault now."""
        self.faults.clear()

    def statistics(self) -> SimStatistics:
        """Counters of requests, frames, connections and faults so far."""
        return SimStatistics(
            now_ms=self.market.now_ms(),
            scenario=self.market.scenario,
            rest_requests=self.api.requests,
            connections=self.streamer.connections,
            stream=self.streamer.stats,
            faults=self.faults.stats,
        )

    def _indices(self, symbols: Iterable[str] | None) -> list[int] | None:
        if symbols is None:
            return None
        out = []
        for symbol in symbols:
            try:
                out.append(self.market.symbols.index(symbol))
            except ValueError:
                raise BadInput(f"symbol {symbol!r}: the simulator lists {', '.join(self.market.symbols)}") from None
        return out

    async def _play_fault(self, name: str) -> None:
        """Play a fault scenario after the lead-in: once, or then periodically (`repeat_faults`)."""
        wait = self.market.clock.wall_seconds(FAULT_LEAD_IN_SECONDS * 1000)
        while True:
            await asyncio.sleep(wait)
            self.set_scenario(name)
            self.faults_played += 1
            log.info("sim.fault_scenario_played", scenario=name, times=self.faults_played, again=self._repeat_faults)
            if not self._repeat_faults:
                return
            wait = self.market.clock.wall_seconds(FAULT_REPEAT_SECONDS * 1000)

    # --- admin API -----------------------------------------------------------------

    def _admin_routes(self) -> list[web.RouteDef]:
        return [
            web.get("/_sim/state", self._admin_state),
            web.post("/_sim/scenario", self._admin_scenario),
            web.post("/_sim/fault", self._admin_fault),
        ]

    async def _admin_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.statistics().to_plain())

    async def _admin_scenario(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            self.set_scenario(str(body["name"]), body.get("symbols"))
        except (ValueError, KeyError, TypeError, BadInput) as e:
            return web.json_response({"error": str(e)}, status=400)
        return web.json_response({"ok": True})

    async def _admin_fault(self, request: web.Request) -> web.Response:
        """POST {"name": "feed-stall", "seconds": 10, "count": 3, "symbols": [...], ...}."""
        try:
            body = await request.json()
            name = Fault(body["name"])
            symbols = body.get("symbols")
            seconds = float(body.get("seconds", 10.0))
            count = int(body.get("count", 1))
            match name:
                case Fault.STALL:
                    self.stall(seconds, symbols)
                case Fault.DISCONNECT_STORM:
                    self.disconnect_storm(seconds, float(body.get("drop_after", 1.0)))
                case Fault.RATE_LIMIT_STORM:
                    self.rate_limit_storm(seconds, float(body.get("retry_after", 2.0)))
                case Fault.SERVER_ERRORS:
                    self.server_errors(seconds, int(body.get("status", 503)))
                case _:
                    self.faults.frames(name, count, self._indices(symbols))
        except (ValueError, KeyError, TypeError, BadInput) as e:
            return web.json_response({"error": str(e)}, status=400)
        return web.json_response({"ok": True})


def _bound_port(runner: web.AppRunner) -> int:
    for site in runner.sites:
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            return int(server.sockets[0].getsockname()[1])
    raise RuntimeError("the simulated exchange is not listening")


def _load_history(path: str) -> dict[str, list[Bar]]:
    from guard.feed.history import read_bars

    by_symbol: dict[str, list[Bar]] = {}
    for bar in read_bars(Path(path)):
        by_symbol.setdefault(bar.symbol, []).append(bar)
    return by_symbol
