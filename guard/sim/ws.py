"""The simulated exchange's WebSocket market streams, in Binance USDⓈ-M's raw-stream dialect.

ccxt.pro's binanceusdm connects to `<ws base>/public/ws/<n>` and `<ws base>/market/ws/<n>`
and sends `{"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade", ...], "id": 1}`; every
frame after that is one raw event (`aggTrade`, `trade`, `kline`, `depthUpdate`,
`24hrTicker`, `markPriceUpdate`; their text is `guard.sim.frames`). `Streamer` advances simulated
time and fans frames out to subscribed connections; each connection has a bounded outbox and is dropped when it cannot
keep up, as the real venue drops slow consumers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field

import structlog
from aiohttp import WSMsgType, web

from guard.sim.faults import Fault, Faults
from guard.sim.frames import (
    agg_trade_format,
    book_ticker_frame,
    depth_frame,
    kline_frame,
    malformed_trade,
    mark_frame,
    nan_trade,
    raw_trade_format,
    ticker_frames,
    ws_text_frame,
)
from guard.sim.market import Kline, SimMarket
from guard.sim.process import BASE_MS
from guard.timeframes import TIMEFRAME_MS

log = structlog.get_logger(__name__)

OUTBOX_FRAMES = 50_000
"""Frames a connection may have queued before it counts as a slow consumer and is dropped."""
SIDE_CHANNEL_SIM_MS = 1_000
"""Ticker, mark price and book update once per simulated second..."""
SIDE_CHANNEL_MIN_WALL = 0.25
"""...but at most four times per real second, however fast time runs."""
KLINE_MIN_WALL = 0.25
"""An open kline is re-sent at most this often (real seconds); closes are always sent."""

_INTERVALS = dict(TIMEFRAME_MS)
_CLOSE = "\x00close"
"""Sentinel in a connection's outbox: close the socket (never a valid JSON frame)."""


@dataclass(frozen=True, slots=True)
class StreamKey:
    """One subscribable stream: a channel of one symbol (with the kline interval)."""

    channel: str
    symbol: int
    interval: str = ""


def parse_stream(name: str, index_of_id: dict[str, int]) -> StreamKey | None:
    """Parse "btcusdt@kline_1m", "btcusdt@depth@100ms", ...; None when not served."""
    parts = name.split("@")
    if len(parts) < 2:
        return None
    j = index_of_id.get(parts[0].upper())
    if j is None:
        return None
    channel = parts[1]
    if channel.startswith("kline_"):
        interval = channel[len("kline_") :]
        return StreamKey("kline", j, interval) if interval in _INTERVALS else None
    if channel in ("aggTrade", "trade", "ticker", "miniTicker", "markPrice", "depth", "bookTicker"):
        return StreamKey(channel, j)
    return None


@dataclass(eq=False)
class Connection:
    """One client WebSocket and what it subscribed to."""

    ws: web.WebSocketResponse
    opened_ms: int
    outbox: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(OUTBOX_FRAMES))
    keys: set[StreamKey] = field(default_factory=set)
    dropping: bool = False
    close_code: int = 1001
    close_reason: str = "going away"


@dataclass(slots=True)
class StreamStats:
    """Counters of the streaming side."""

    frames_sent: int = 0
    connections_opened: int = 0
    connections_dropped: int = 0
    slow_consumers: int = 0
    last_trade_id: dict[str, int] = field(default_factory=dict)
    """Id of the newest trade generated per symbol id (sent, or lost to a stall)."""


class Streamer:
    """Advances simulated time and publishes market frames to subscribers.

    Args:
        market: the simulated market.
        faults: the fault state (stalls, storms, spoiled frames).
    """

    def __init__(self, market: SimMarket, faults: Faults) -> None:
        self.market = market
        self.faults = faults
        self.stats = StreamStats()
        self._subs: dict[StreamKey, set[Connection]] = {}
        self._conns: set[Connection] = set()
        n = len(market.symbols)
        now = market.sync()
        start = market.trade_count_until(now)
        self._trade_cursor = [start] * n
        self._kline_open: dict[tuple[int, str], int] = {}
        self._kline_wall: dict[tuple[int, str], float] = {}
        self._side_sim = [0] * n
        self._side_wall = [0.0] * n
        self._malformed_variant = 0
        self._wake = asyncio.Event()

    # --- connections ---------------------------------------------------------------

    @property
    def connections(self) -> int:
        """Open WebSocket connections."""
        return len(self._conns)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The WebSocket endpoint: answer SUBSCRIBE requests, then stream until closed."""
        ws = web.WebSocketResponse(autoping=True, compress=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = Connection(ws, self.market.now_ms())
        self._conns.add(conn)
        self.stats.connections_opened += 1
        try:
            async with asyncio.TaskGroup() as tg:
                writer = tg.create_task(self._write(conn))
                await self._read(conn)
                writer.cancel()
        finally:
            self._forget(conn)
        return ws

    async def _read(self, conn: Connection) -> None:
        async for msg in conn.ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                request = json.loads(msg.data)
                method = request["method"]
                params = request.get("params", [])
                rid = request.get("id")
            except (ValueError, KeyError, TypeError):
                self._enqueue(conn, json.dumps({"error": {"code": 3, "msg": "Invalid JSON"}, "id": None}))
                continue
            if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
                keys = [parse_stream(p, self.market.index_of_id) for p in params]
                unknown = [p for p, k in zip(params, keys, strict=True) if k is None]
                if unknown:
                    error = {"code": 2, "msg": f"Invalid request: unknown stream {unknown[0]}"}
                    self._enqueue(conn, json.dumps({"error": error, "id": rid}))
                    continue
                for key in keys:
                    assert key is not None
                    if method == "SUBSCRIBE":
                        conn.keys.add(key)
                        self._subs.setdefault(key, set()).add(conn)
                    else:
                        conn.keys.discard(key)
                        self._subs.get(key, set()).discard(conn)
                self._enqueue(conn, json.dumps({"result": None, "id": rid}))
                self._wake.set()
            elif method == "LIST_SUBSCRIPTIONS":
                names = [f"{self.market.ids[k.symbol].lower()}@{k.channel}" for k in conn.keys]
                self._enqueue(conn, json.dumps({"result": names, "id": rid}))
            else:
                error = {"code": 2, "msg": f"Invalid request: unknown method {method}"}
                self._enqueue(conn, json.dumps({"error": error, "id": rid}))

    async def _write(self, conn: Connection) -> None:
        ws = conn.ws
        outbox = conn.outbox
        writer = getattr(ws, "_writer", None)
        transport = getattr(writer, "transport", None)
        protocol = getattr(writer, "protocol", None)
        # Fast path: many frames per write. aiohttp writes (and so sends) every frame on its
        # own, a system call each; at tens of thousands of frames a second that is the
        # simulator's whole budget. Unmasked, uncompressed server frames are simple to
        # build, so queued frames are framed here and written together. Falls back to
        # send_str if aiohttp's internals ever look different.
        fast = transport is not None and protocol is not None and hasattr(protocol, "_drain_helper")
        while True:
            frame = await outbox.get()
            try:
                if not fast:
                    while True:
                        if frame is _CLOSE:
                            await ws.close(code=conn.close_code, message=conn.close_reason.encode())
                            return
                        if ws.closed:
                            return
                        await ws.send_str(frame)
                        self.stats.frames_sent += 1
                        if outbox.empty():
                            break
                        frame = outbox.get_nowait()
                    continue
                chunks: list[bytes] = []
                closing = False
                while True:
                    if frame is _CLOSE:
                        closing = True
                        break
                    chunks.append(ws_text_frame(frame.encode()))
                    if outbox.empty() or len(chunks) >= 2_000:
                        break
                    frame = outbox.get_nowait()
                if chunks:
                    assert transport is not None and protocol is not None
                    if ws.closed or transport.is_closing():
                        return
                    transport.write(b"".join(chunks))
                    self.stats.frames_sent += len(chunks)
                    if protocol._paused:  # the peer reads slower than we write: wait for it
                        await protocol._drain_helper()
                if closing:
                    await ws.close(code=conn.close_code, message=conn.close_reason.encode())
                    return
            except (ConnectionError, RuntimeError):
                return

    def _enqueue(self, conn: Connection, frame: str) -> None:
        if conn.dropping:
            return
        try:
            conn.outbox.put_nowait(frame)
        except asyncio.QueueFull:
            self.stats.slow_consumers += 1
            log.warning("sim.slow_consumer_dropped", queued=conn.outbox.qsize())
            self._drop(conn, code=1008, reason="slow consumer")

    def _forget(self, conn: Connection) -> None:
        self._conns.discard(conn)
        for key in conn.keys:
            self._subs.get(key, set()).discard(conn)

    def _drop(self, conn: Connection, code: int = 1001, reason: str = "going away") -> None:
        if conn.dropping:
            return
        conn.dropping = True
        conn.close_code, conn.close_reason = code, reason
        self.stats.connections_dropped += 1
        self.faults.stats.dropped_connections += 1
        self._forget(conn)
        # The connection's own writer closes it: what was queued is dropped, as on a venue.
        while not conn.outbox.empty():
            conn.outbox.get_nowait()
        conn.outbox.put_nowait(_CLOSE)

    def drop_all(self) -> int:
        """Drop every open WebSocket; return how many."""
        conns = list(self._conns)
        for conn in conns:
            self._drop(conn)
        return len(conns)

    async def close_all(self) -> None:
        """Close every socket cleanly (server shutdown)."""
        for conn in list(self._conns):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=1001, message=b"server shutdown"), 1.0)

    # --- the pump ------------------------------------------------------------------

    def wake(self) -> None:
        """Run the next step now (after a scenario or fault change)."""
        self._wake.set()

    async def run(self) -> None:
        """Advance simulated time and publish frames until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            delay = self.step(loop.time())
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def step(self, wall: float) -> float:
        """Publish everything due up to the simulated now; return seconds until the next."""
        market = self.market
        now = market.sync()
        if self.faults.take_drop_now():
            self.drop_all()
        drop_after = self.faults.storm_drop_after_ms(now)
        if drop_after is not None:
            for conn in list(self._conns):
                if now - conn.opened_ms >= drop_after:
                    self._drop(conn)
        for j in range(len(market.symbols)):
            stalled = self.faults.stalled(j, now)
            self._publish_trades(j, now, stalled)
            self._publish_klines(j, now, wall, stalled)
            self._publish_side(j, now, wall, stalled)
        if market.exhausted:
            return 0.2
        nxt = market.trade_count_until(now)
        next_ts = self._trade_time(nxt)
        return min(0.05, max(0.002, market.clock.wall_seconds(max(1, next_ts - now))))

    def _trade_time(self, g: int) -> int:
        m = self.market.trades_per_tick
        tick, mm = divmod(g, m)
        return self.market.origin_ms + tick * (BASE_MS // 12) + (mm * (BASE_MS // 12)) // m

    def _publish_trades(self, j: int, now: int, stalled: bool) -> None:
        market = self.market
        end = market.trade_count_until(now)
        start = self._trade_cursor[j]
        if end <= start:
            return
        self._trade_cursor[j] = end
        mid = market.ids[j]
        self.stats.last_trade_id[mid] = end
        agg = self._subs.get(StreamKey("aggTrade", j))
        raw = self._subs.get(StreamKey("trade", j))
        if stalled:
            self.faults.stats.stalled_frames += end - start
            return
        if not agg and not raw:
            return
        batch = market.trades(j, start, end)
        agg_fmt = agg_trade_format(market, j)
        raw_fmt = raw_trade_format(market, j)
        for tid, ts, price, amount, maker in batch.rows():
            flag = "true" if maker else "false"
            spoiled = self._spoil_trade(j, mid, tid, ts, amount)
            if agg:
                frame = spoiled or agg_fmt % (ts, tid, price, amount, tid, tid, ts, flag)
                for conn in tuple(agg):
                    self._enqueue(conn, frame)
            if raw:
                frame = spoiled or raw_fmt % (ts, ts, tid, price, amount, flag)
                for conn in tuple(raw):
                    self._enqueue(conn, frame)

    def _spoil_trade(self, j: int, mid: str, tid: int, ts: int, amount: float) -> str | None:
        faults = self.faults
        if faults.take(Fault.NAN_PRICE, j):
            faults.stats.nan_sent += 1
            return nan_trade(mid, tid, ts, amount)
        if faults.take(Fault.MALFORMED, j):
            faults.stats.malformed_sent += 1
            self._malformed_variant += 1
            return malformed_trade(self._malformed_variant - 1, mid, tid, ts, amount)
        return None

    def _publish_klines(self, j: int, now: int, wall: float, stalled: bool) -> None:
        market = self.market
        for key in [k for k in self._subs if k.symbol == j and k.channel == "kline" and self._subs[k]]:
            interval_ms = _INTERVALS[key.interval]
            state = (j, key.interval)
            current = min(now, market.open_time(market.end_index) - 1) // interval_ms * interval_ms
            last = self._kline_open.get(state)
            self._kline_open[state] = current
            if stalled:
                continue
            conns = self._subs[key]
            new_bucket = last is not None and current > last
            if new_bucket:
                assert last is not None
                final = market.kline_at(j, interval_ms, last, now)
                if final is not None:
                    self._send(conns, self._kline_frame(j, key.interval, final, now))
            if new_bucket or last is None or wall - self._kline_wall.get(state, 0.0) >= KLINE_MIN_WALL:
                partial = market.kline_at(j, interval_ms, current, now)
                if partial is not None:
                    self._kline_wall[state] = wall
                    spoil_nan = self.faults.take(Fault.NAN_PRICE, j)
                    self._send(conns, self._kline_frame(j, key.interval, partial, now, nan=spoil_nan))
            if new_bucket and last is not None:
                if self.faults.take(Fault.DUPLICATE_BARS, j):
                    again = market.kline_at(j, interval_ms, last, now)
                    if again is not None:
                        self.faults.stats.duplicates_sent += 1
                        self._send(conns, self._kline_frame(j, key.interval, again, now))
                if self.faults.take(Fault.OUT_OF_ORDER, j):
                    older = market.kline_at(j, interval_ms, last - interval_ms, now)
                    if older is not None:
                        self.faults.stats.out_of_order_sent += 1
                        self._send(conns, self._kline_frame(j, key.interval, older, now))

    def _kline_frame(self, j: int, interval: str, k: Kline, now: int, nan: bool = False) -> str:
        if nan:
            self.faults.stats.nan_sent += 1
        return kline_frame(self.market, j, interval, k, now, nan=nan)

    def _publish_side(self, j: int, now: int, wall: float, stalled: bool) -> None:
        if now - self._side_sim[j] < SIDE_CHANNEL_SIM_MS or wall - self._side_wall[j] < SIDE_CHANNEL_MIN_WALL:
            return
        self._side_sim[j] = now
        self._side_wall[j] = wall
        if stalled:
            return
        market = self.market
        ticker_subs = self._subs.get(StreamKey("ticker", j))
        mini_subs = self._subs.get(StreamKey("miniTicker", j))
        if ticker_subs or mini_subs:
            ticker, mini = ticker_frames(market, j, now)
            if ticker_subs:
                self._send(ticker_subs, ticker)
            if mini_subs:
                self._send(mini_subs, mini)
        mark_subs = self._subs.get(StreamKey("markPrice", j))
        if mark_subs:
            self._send(mark_subs, mark_frame(market, j, now, nan=self.faults.take(Fault.NAN_PRICE, j)))
        depth_subs = self._subs.get(StreamKey("depth", j))
        book_ticker = self._subs.get(StreamKey("bookTicker", j))
        if depth_subs or book_ticker:
            state, previous = market.book(j, now)
            if depth_subs:
                self._send(depth_subs, depth_frame(market.ids[j], state, previous, now))
            if book_ticker:
                self._send(book_ticker, book_ticker_frame(market.ids[j], state, now))

    def _send(self, conns: set[Connection], frame: str) -> None:
        for conn in tuple(conns):
            self._enqueue(conn, frame)
