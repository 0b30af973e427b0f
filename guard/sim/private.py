"""The simulated exchange's private (signed) REST API, in Binance USDⓈ-M's dialect, with fault injection.

Enough of it for ccxt's own binanceusdm to trade: new, query and cancel orders (by order id or
by client order id), open orders, conditional (algo) orders, the account's trades, positions
(`positionRisk`), the account and balance, leverage, margin type, position mode, leverage
brackets, and the venue's dead-man switch (`countdownCancelAll`). Every request must carry
`X-MBX-APIKEY` and an HMAC-SHA256 `signature` of its query string or body made with the key's
secret, and a `timestamp` within its `recvWindow` of the server's clock, checked when the
request is processed — exactly what ccxt's `binanceusdm.sign()` produces and Binance checks.

Fault injection (`inject`) breaks what a careful client has to survive: an order accepted but
its answer lost to a timeout, a request held before it is processed (accepted late, or refused
for a stale timestamp), a 5xx before or after the order was accepted, a duplicate-client-id
error for an order that was in fact accepted, a partial fill, order queries that fail, and a
position query that fails (the rules are `private_faults.py`). The books themselves live in
`books.py`; the JSON bodies the routes answer with, in `private_json.py`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web

from guard.exchanges import SIM_API_KEY, SIM_API_SECRET
from guard.sim.books import MAX_LEVERAGE, SimAccount, SimBooks, SimOrder
from guard.sim.market import SimMarket
from guard.sim.private_faults import ORDER_FAULTS, PrivateFault, PrivateFaults
from guard.sim.private_json import (
    account_json,
    algo_json,
    balance_json,
    brackets_json,
    decimal_param,
    int_param,
    order_json,
    position_json,
    trade_json,
)
from guard.sim.public import ApiError, error_response

log = structlog.get_logger(__name__)

DEFAULT_RECV_WINDOW_MS = 5_000
MAX_RECV_WINDOW_MS = 60_000
AHEAD_TOLERANCE_MS = 1_000
"""Binance refuses a timestamp more than a second ahead of its clock."""
SWEEP_SECONDS = 0.05
"""How often resting orders are matched and conditional orders checked (real seconds)."""

Handler = Callable[[web.Request], Coroutine[Any, Any, web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class DeadmanFired:
    """The dead-man countdown of one symbol ran out and the venue cancelled its orders."""

    api_key: str
    symbol: str
    at_ms: int
    """Wall-clock time it fired."""
    cancelled: int


@dataclass(slots=True)
class PrivateStats:
    """What the private API has done (read by tests and benchmarks)."""

    signed_requests: int = 0
    refused_signatures: int = 0
    stale_timestamps: int = 0
    orders_created: int = 0
    faults_fired: dict[str, int] = field(default_factory=dict)
    deadman_fired: list[DeadmanFired] = field(default_factory=list)


class PrivateApi:
    """Signed route handlers over the simulated venue's books.

    Args:
        market: the simulated market the books are priced and filled against.
        keys: API key -> secret accepted besides the built-in test key.
        wall_ms: the wall clock that request timestamps and the dead-man countdown use (the
            client's clock, not simulated time).
    """

    def __init__(
        self,
        market: SimMarket,
        *,
        keys: dict[str, str] | None = None,
        wall_ms: Callable[[], int] | None = None,
    ) -> None:
        self.books = SimBooks(market)
        self._keys = {SIM_API_KEY: SIM_API_SECRET, **(keys or {})}
        self._wall_ms = wall_ms or (lambda: int(time.time() * 1000))
        self._timers: dict[tuple[str, int], asyncio.TimerHandle] = {}
        self.countdowns: dict[tuple[str, int], int] = {}
        """(api key, symbol index) -> armed dead-man countdown in ms."""
        self.stats = PrivateStats()
        self._faults = PrivateFaults(self.stats.faults_fired)
        self.matching = True
        """False holds resting and conditional orders where they are (a script decides when they fill)."""

    # --- scripting -------------------------------------------------------------------

    def register(self, api_key: str, secret: str) -> None:
        """Accept another key pair (each key has an account of its own)."""
        self._keys[api_key] = secret

    def inject(
        self,
        fault: PrivateFault | str,
        client_order_id: str | None = None,
        *,
        count: int = 1,
        hold_seconds: float = 3.0,
    ) -> None:
        """Break the next `count` matching requests.

        Args:
            fault: what to break.
            client_order_id: only requests about this client order id (None: any).
            count: how many requests the fault applies to.
            hold_seconds: how long timeout faults hold a request (real seconds).
        """
        self._faults.inject(fault, client_order_id, count, hold_seconds)

    def clear_faults(self) -> None:
        self._faults.clear()

    def account(self, api_key: str = SIM_API_KEY) -> SimAccount:
        """The account of a key (created with the starting balance on first use)."""
        return self.books.account(api_key)

    def close(self) -> None:
        """Disarm every dead-man timer (the server is stopping)."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    async def run(self) -> None:
        """Match resting orders and trigger conditional ones as the market moves."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            self._sweep()

    def _sweep(self) -> None:
        if self.matching:
            self.books.sweep()

    # --- routing ---------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """Every private route, plus the private admin routes under /_sim/private."""
        signed: list[tuple[str, str, Handler]] = [
            ("POST", "/fapi/v1/order", self.new_order),
            ("GET", "/fapi/v1/order", self.query_order),
            ("DELETE", "/fapi/v1/order", self.cancel_order),
            ("GET", "/fapi/v1/openOrders", self.open_orders),
            ("DELETE", "/fapi/v1/allOpenOrders", self.cancel_all),
            ("POST", "/fapi/v1/algoOrder", self.new_algo_order),
            ("GET", "/fapi/v1/algoOrder", self.query_algo_order),
            ("DELETE", "/fapi/v1/algoOrder", self.cancel_algo_order),
            ("GET", "/fapi/v1/openAlgoOrders", self.open_algo_orders),
            ("GET", "/fapi/v1/userTrades", self.user_trades),
            ("GET", "/fapi/v2/positionRisk", self.position_risk),
            ("GET", "/fapi/v3/positionRisk", self.position_risk),
            ("GET", "/fapi/v2/account", self.account_info),
            ("GET", "/fapi/v3/account", self.account_info),
            ("GET", "/fapi/v2/balance", self.balance),
            ("GET", "/fapi/v1/leverageBracket", self.leverage_bracket),
            ("POST", "/fapi/v1/leverage", self.set_leverage),
            ("POST", "/fapi/v1/marginType", self.set_margin_type),
            ("GET", "/fapi/v1/positionSide/dual", self.position_mode),
            ("POST", "/fapi/v1/countdownCancelAll", self.countdown_cancel_all),
        ]
        routes = [web.route(method, path, self._wrap(handler)) for method, path, handler in signed]
        routes += [
            web.post("/_sim/private/fault", self._admin_fault),
            web.post("/_sim/private/keys", self._admin_keys),
        ]
        return routes

    def _wrap(self, handler: Handler) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                self._sweep()
                return await handler(request)
            except ApiError as e:
                return error_response(e.status, e.code, e.msg)

        return run

    # --- authentication --------------------------------------------------------------

    async def _authenticate(self, request: web.Request) -> tuple[SimAccount, dict[str, str]]:
        """Check the key and the signature; return the account and the signed parameters."""
        self.stats.signed_requests += 1
        raw = request.query_string if request.method in ("GET", "DELETE") else await request.text()
        payload, sep, signature = raw.rpartition("&signature=")
        if not sep:
            raise ApiError(400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        secret = self._keys.get(request.headers.get("X-MBX-APIKEY", ""))
        if secret is None:
            self.stats.refused_signatures += 1
            raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            self.stats.refused_signatures += 1
            raise ApiError(400, -1022, "Signature for this request is not valid.")
        params = dict(urllib.parse.parse_qsl(payload, keep_blank_values=True))
        return self.books.account(request.headers["X-MBX-APIKEY"]), params

    def _check_timestamp(self, params: dict[str, str]) -> None:
        """Binance's rule, applied when the request is processed: within recvWindow, not ahead."""
        try:
            stamp = int(params["timestamp"])
            window = int(params.get("recvWindow", DEFAULT_RECV_WINDOW_MS))
        except (KeyError, ValueError):
            raise ApiError(
                400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
            ) from None
        if not 0 < window <= MAX_RECV_WINDOW_MS:
            raise ApiError(400, -1131, "recvWindow must be less than 60000")
        now = self._wall_ms()
        if stamp > now + AHEAD_TOLERANCE_MS or now - stamp > window:
            self.stats.stale_timestamps += 1
            raise ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")

    async def _signed(self, request: web.Request) -> tuple[SimAccount, dict[str, str]]:
        acct, params = await self._authenticate(request)
        self._check_timestamp(params)
        return acct, params

    # --- orders ----------------------------------------------------------------------

    async def new_order(self, request: web.Request) -> web.StreamResponse:
        """POST /fapi/v1/order."""
        return await self._new(request, algo=False)

    async def new_algo_order(self, request: web.Request) -> web.StreamResponse:
        """POST /fapi/v1/algoOrder: a conditional (stop / take-profit) order."""
        return await self._new(request, algo=True)

    async def _new(self, request: web.Request, *, algo: bool) -> web.StreamResponse:
        acct, params = await self._authenticate(request)
        client_id = params.get("clientAlgoId" if algo else "newClientOrderId") or f"sim-{self.books.now()}"
        rule = self._faults.take(ORDER_FAULTS, client_id)
        fault = rule.fault if rule else None
        if rule is not None and fault is PrivateFault.TIMEOUT_BEFORE_ACCEPT:
            await asyncio.sleep(rule.hold_seconds)
        self._check_timestamp(params)
        if fault is PrivateFault.ERROR_BEFORE_ACCEPT:
            raise ApiError(503, -1001, "Internal error; unable to process your request. Please try again.")
        order = self.books.place(
            acct,
            j=self._symbol(params),
            side=params.get("side", ""),
            kind=params.get("type", ""),
            qty=decimal_param(params, "quantity"),
            price=decimal_param(params, "price", required=False),
            trigger=decimal_param(params, "triggerPrice" if algo else "stopPrice", required=False),
            reduce_only=params.get("reduceOnly", "false").lower() == "true",
            time_in_force=params.get("timeInForce", "GTC"),
            client_id=client_id,
            algo=algo,
            partial=fault is PrivateFault.PARTIAL_FILL,
        )
        self.stats.orders_created += 1
        log.debug("sim.order_created", client_order_id=client_id, order_id=order.order_id, status=order.status)
        if fault is PrivateFault.ERROR_AFTER_ACCEPT:
            raise ApiError(503, -1001, "Internal error; unable to process your request. Please try again.")
        if fault is PrivateFault.DUPLICATE_ID:
            raise ApiError(400, -4116, "ClientOrderId is duplicated.")
        if rule is not None and fault is PrivateFault.TIMEOUT_AFTER_ACCEPT:
            await asyncio.sleep(rule.hold_seconds)  # the client has given up by now
        return web.json_response(algo_json(self.books.market, order) if algo else order_json(self.books.market, order))

    async def query_order(self, request: web.Request) -> web.StreamResponse:
        """GET /fapi/v1/order: by orderId or origClientOrderId."""
        return await self._query(request, algo=False)

    async def query_algo_order(self, request: web.Request) -> web.StreamResponse:
        """GET /fapi/v1/algoOrder: by algoId or clientAlgoId."""
        return await self._query(request, algo=True)

    async def _query(self, request: web.Request, *, algo: bool) -> web.StreamResponse:
        acct, params = await self._signed(request)
        order = self._find(acct, params, algo=algo)
        if self._faults.take(
            frozenset({PrivateFault.LOOKUP_ERRORS}),
            order.client_id if order else params.get("clientAlgoId" if algo else "origClientOrderId"),
        ):
            raise ApiError(503, -1001, "Internal error; unable to process your request. Please try again.")
        if order is None:
            raise ApiError(400, -2013, "Order does not exist.")
        return web.json_response(algo_json(self.books.market, order) if algo else order_json(self.books.market, order))

    async def cancel_order(self, request: web.Request) -> web.StreamResponse:
        """DELETE /fapi/v1/order."""
        acct, params = await self._signed(request)
        order = self._find(acct, params, algo=False)
        if order is None:
            raise ApiError(400, -2011, "Unknown order sent.")
        return web.json_response(order_json(self.books.market, self.books.cancel(acct, order)))

    async def cancel_algo_order(self, request: web.Request) -> web.StreamResponse:
        """DELETE /fapi/v1/algoOrder."""
        acct, params = await self._signed(request)
        order = self._find(acct, params, algo=True)
        if order is None:
            raise ApiError(400, -2011, "Unknown order sent.")
        self.books.cancel(acct, order)
        return web.json_response(
            {"algoId": order.order_id, "clientAlgoId": order.client_id, "code": "200", "msg": "success"}
        )

    async def cancel_all(self, request: web.Request) -> web.StreamResponse:
        """DELETE /fapi/v1/allOpenOrders: every open order of a symbol."""
        acct, params = await self._signed(request)
        j = self._symbol(params)
        for order in acct.open_orders(algo=False, j=j):
            self.books.cancel(acct, order)
        return web.json_response({"code": 200, "msg": "The operation of cancel all open order is done."})

    async def open_orders(self, request: web.Request) -> web.StreamResponse:
        """GET /fapi/v1/openOrders (one symbol, or all)."""
        acct, params = await self._signed(request)
        j = self._symbol(params) if "symbol" in params else None
        return web.json_response([order_json(self.books.market, o) for o in acct.open_orders(algo=False, j=j)])

    async def open_algo_orders(self, request: web.Request) -> web.StreamResponse:
        """GET /fapi/v1/openAlgoOrders (one symbol, or all)."""
        acct, params = await self._signed(request)
        j = self._symbol(params) if "symbol" in params else None
        return web.json_response([algo_json(self.books.market, o) for o in acct.open_orders(algo=True, j=j)])

    async def user_trades(self, request: web.Request) -> web.StreamResponse:
        """GET /fapi/v1/userTrades: the account's trades of a symbol (optionally of one order)."""
        acct, params = await self._signed(request)
        j = self._symbol(params)
        order_id = int_param(params, "orderId")
        from_id = int_param(params, "fromId")
        limit = min(int_param(params, "limit") or 500, 1000)
        rows = [
            t
            for t in acct.trades
            if t.j == j and (order_id is None or t.order_id == order_id) and (from_id is None or t.trade_id >= from_id)
        ]
        mid = self.books.market.ids[j]
        return web.json_response([trade_json(mid, t) for t in rows[:limit]])

    # --- account -----------------------------------------------------------------------

    async def position_risk(self, request: web.Request) -> web.StreamResponse:
        """GET /fapi/v3/positionRisk (and v2): open positions with mark and unrealized PnL."""
        acct, params = await self._signed(request)
        if self._faults.take(frozenset({PrivateFault.POSITIONS_FAIL}), None):
            raise ApiError(503, -1001, "Internal error; unable to process your request. Please try again.")
        wanted = self._symbol(params) if "symbol" in params else None
        return web.json_response(
            [
                position_json(self.books, acct, j)
                for j, p in sorted(acct.positions.items())
                if p.qty != 0 and wanted in (None, j)
            ]
        )

    async def account_info(self, request: web.Request) -> web.StreamResponse:
        """GET /fapi/v3/account (and v2): the USDT asset and open positions."""
        acct, _ = await self._signed(request)
        return web.json_response(account_json(self.books, acct))

    async def balance(self, request: web.Request) -> web.StreamResponse:
        """GET /fapi/v2/balance."""
        acct, _ = await self._signed(request)
        return web.json_response([balance_json(self.books, acct)])

    async def leverage_bracket(self, request: web.Request) -> web.StreamResponse:
        """GET /fapi/v1/leverageBracket: the venue's own brackets (`guard.sim.brackets`), not guard's table."""
        _, params = await self._signed(request)
        m = self.books.market
        indices = [self._symbol(params)] if "symbol" in params else list(range(len(m.ids)))
        rows = [brackets_json(m.ids[j]) for j in indices]
        return web.json_response(rows[0] if "symbol" in params else rows)

    async def set_leverage(self, request: web.Request) -> web.StreamResponse:
        """POST /fapi/v1/leverage."""
        acct, params = await self._signed(request)
        j = self._symbol(params)
        leverage = int_param(params, "leverage")
        if leverage is None or not 1 <= leverage <= MAX_LEVERAGE:
            raise ApiError(400, -4028, "Leverage is not valid")
        acct.leverage[j] = leverage
        mid = self.books.market.ids[j]
        return web.json_response({"leverage": leverage, "maxNotionalValue": "1000000", "symbol": mid})

    async def set_margin_type(self, request: web.Request) -> web.StreamResponse:
        """POST /fapi/v1/marginType: ISOLATED or CROSSED."""
        acct, params = await self._signed(request)
        j = self._symbol(params)
        wanted = params.get("marginType", "").upper()
        if wanted not in ("ISOLATED", "CROSSED"):
            raise ApiError(400, -4044, "The margin type is invalid.")
        if acct.margin_type.get(j, "CROSSED") == wanted:
            raise ApiError(400, -4046, "No need to change margin type.")
        if acct.position(j).qty != 0 or acct.open_orders(algo=False, j=j):
            raise ApiError(400, -4048, "Margin type cannot be changed if there exists position.")
        acct.margin_type[j] = wanted
        return web.json_response({"code": 200, "msg": "success"})

    async def position_mode(self, request: web.Request) -> web.StreamResponse:
        """GET /fapi/v1/positionSide/dual: the simulator is one-way only."""
        await self._signed(request)
        return web.json_response({"dualSidePosition": False})

    async def countdown_cancel_all(self, request: web.Request) -> web.StreamResponse:
        """POST /fapi/v1/countdownCancelAll: cancel the symbol's open orders unless refreshed in time.

        A countdown of 0 disarms it. Real seconds: it exists for a client that died.
        """
        acct, params = await self._signed(request)
        j = self._symbol(params)
        countdown = int_param(params, "countdownTime")
        if countdown is None or countdown < 0:
            raise ApiError(400, -1102, "Mandatory parameter 'countdownTime' was not sent or malformed.")
        key = (acct.api_key, j)
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        if countdown == 0:
            self.countdowns.pop(key, None)
        else:
            self.countdowns[key] = countdown
            self._timers[key] = asyncio.get_running_loop().call_later(countdown / 1000, self._deadman, acct, j)
        return web.json_response({"symbol": self.books.market.ids[j], "countdownTime": str(countdown)})

    def _deadman(self, acct: SimAccount, j: int) -> None:
        key = (acct.api_key, j)
        self._timers.pop(key, None)
        self.countdowns.pop(key, None)
        cancelled = self.books.cancel_all(acct, j)
        symbol = self.books.market.symbols[j]
        self.stats.deadman_fired.append(DeadmanFired(acct.api_key, symbol, self._wall_ms(), cancelled))
        log.warning("sim.deadman_fired", symbol=symbol, cancelled=cancelled)

    # --- admin -----------------------------------------------------------------------

    async def _admin_fault(self, request: web.Request) -> web.Response:
        """POST {"name": "5xx-after-accept", "client_order_id": "...", "count": 1, "hold_seconds": 3}."""
        try:
            body = await request.json()
            self.inject(
                PrivateFault(body["name"]),
                body.get("client_order_id"),
                count=int(body.get("count", 1)),
                hold_seconds=float(body.get("hold_seconds", 3.0)),
            )
        except (ValueError, KeyError, TypeError) as e:
            return web.json_response({"error": str(e)}, status=400)
        return web.json_response({"ok": True})

    async def _admin_keys(self, request: web.Request) -> web.Response:
        """POST {"api_key": "...", "secret": "..."}: accept another test key pair."""
        try:
            body = await request.json()
            self.register(str(body["api_key"]), str(body["secret"]))
        except (ValueError, KeyError, TypeError) as e:
            return web.json_response({"error": str(e)}, status=400)
        return web.json_response({"ok": True})

    # --- shapes ------------------------------------------------------------------------

    def _symbol(self, params: dict[str, str]) -> int:
        mid = params.get("symbol")
        if not mid:
            raise ApiError(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        j = self.books.market.index_of_id.get(mid.upper())
        if j is None:
            raise ApiError(400, -1121, "Invalid symbol.")
        return j

    def _find(self, acct: SimAccount, params: dict[str, str], *, algo: bool) -> SimOrder | None:
        order_id = int_param(params, "algoId" if algo else "orderId")
        client_id = params.get("clientAlgoId" if algo else "origClientOrderId")
        if order_id is None and not client_id:
            raise ApiError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        order = acct.find(algo=algo, order_id=order_id, client_id=client_id)
        if order is not None and "symbol" in params and order.j != self._symbol(params):
            return None
        return order
