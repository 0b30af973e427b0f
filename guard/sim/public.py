"""The simulated exchange's public REST API, in Binance USDⓈ-M's dialect (`/fapi/v1/...`).

Enough of it for ccxt's binanceusdm to load markets and fetch klines, trades, tickers,
depth, mark prices and funding: the shapes follow Binance's documentation and the parsers
in ccxt/binance.py. Errors use Binance's `{"code": -1121, "msg": "Invalid symbol."}` form so
ccxt raises the same exception classes it raises against the real venue.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from guard.sim.market import FUNDING_INTERVAL_MS, SimMarket
from guard.timeframes import TIMEFRAME_MS

Handler = Callable[[web.Request], Coroutine[Any, Any, web.StreamResponse]]

_ONBOARD_MS = 1_569_398_400_000
_PERPETUAL_DELIVERY_MS = 4_133_404_800_000


class ApiError(Exception):
    """A Binance-style error answer."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg


def error_response(status: int, code: int, msg: str, retry_after: float | None = None) -> web.Response:
    """A Binance-style JSON error, with Retry-After (whole seconds, rounded up) when given."""
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, int(-(-retry_after // 1))))
    return web.json_response({"code": code, "msg": msg}, status=status, headers=headers)


class PublicApi:
    """Route handlers over one simulated market.

    Args:
        market: the simulated market answering every request.
    """

    def __init__(self, market: SimMarket) -> None:
        self.market = market
        self.requests = 0

    def routes(self) -> list[web.RouteDef]:
        """Every public route, under /fapi/v1 (and the v2 ticker price)."""
        get = web.get
        handlers: dict[str, Handler] = {
            "/fapi/v1/ping": self.ping,
            "/fapi/v1/time": self.time,
            "/fapi/v1/exchangeInfo": self.exchange_info,
            "/fapi/v1/klines": self.klines,
            "/fapi/v1/aggTrades": self.agg_trades,
            "/fapi/v1/trades": self.trades,
            "/fapi/v1/depth": self.depth,
            "/fapi/v1/ticker/24hr": self.ticker_24hr,
            "/fapi/v1/ticker/price": self.ticker_price,
            "/fapi/v2/ticker/price": self.ticker_price,
            "/fapi/v1/ticker/bookTicker": self.book_ticker,
            "/fapi/v1/premiumIndex": self.premium_index,
            "/fapi/v1/fundingRate": self.funding_rate,
        }
        return [get(path, self._wrap(handler)) for path, handler in handlers.items()]

    def _wrap(self, handler: Handler) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            self.requests += 1
            try:
                return await handler(request)
            except ApiError as e:
                return error_response(e.status, e.code, e.msg)

        return run

    # --- helpers -------------------------------------------------------------------

    def _now(self) -> int:
        return self.market.sync()

    def _symbol(self, request: web.Request, required: bool = True) -> int | None:
        mid = request.query.get("symbol")
        if mid is None:
            if required:
                raise ApiError(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
            return None
        j = self.market.index_of_id.get(mid.upper())
        if j is None:
            raise ApiError(400, -1121, "Invalid symbol.")
        return j

    @staticmethod
    def _int(request: web.Request, name: str, default: int | None = None) -> int | None:
        raw = request.query.get(name)
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError:
            raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'.") from None

    def _limit(self, request: web.Request, default: int, maximum: int) -> int:
        limit = self._int(request, "limit", default)
        assert limit is not None
        if limit <= 0:
            raise ApiError(400, -1100, "Illegal characters found in parameter 'limit'.")
        return min(limit, maximum)

    def _p(self, j: int, price: float) -> str:
        return f"{price:.{self.market.price_decimals[j]}f}"

    def _q(self, j: int, amount: float) -> str:
        return f"{amount:.{self.market.amount_decimals[j]}f}"

    # --- endpoints -----------------------------------------------------------------

    async def ping(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/ping."""
        return web.json_response({})

    async def time(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/time."""
        return web.json_response({"serverTime": self._now()})

    async def exchange_info(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/exchangeInfo: the listed perpetuals with their filters."""
        now = self._now()
        m = self.market
        symbols: list[dict[str, Any]] = []
        for j, (symbol, mid, p) in enumerate(zip(m.symbols, m.ids, m.params, strict=True)):
            base, rest = symbol.split("/", 1)
            quote = rest.split(":", 1)[0]
            min_notional = "100" if base in ("BTC", "ETH") else "5"
            symbols.append(
                {
                    "symbol": mid,
                    "pair": mid,
                    "contractType": "PERPETUAL",
                    "deliveryDate": _PERPETUAL_DELIVERY_MS,
                    "onboardDate": _ONBOARD_MS,
                    "status": "TRADING",
                    "maintMarginPercent": "2.5000",
                    "requiredMarginPercent": "5.0000",
                    "baseAsset": base,
                    "quoteAsset": quote,
                    "marginAsset": quote,
                    "pricePrecision": m.price_decimals[j],
                    "quantityPrecision": m.amount_decimals[j],
                    "baseAssetPrecision": 8,
                    "quotePrecision": 8,
                    "underlyingType": "COIN",
                    "underlyingSubType": [],
                    "settlePlan": 0,
                    "triggerProtect": "0.0500",
                    "liquidationFee": "0.012500",
                    "marketTakeBound": "0.05",
                    "maxMoveOrderLimit": 10000,
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": self._p(j, p.tick_size),
                            "maxPrice": self._p(j, p.start_price * 100),
                            "tickSize": self._p(j, p.tick_size),
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": self._q(j, p.step_size),
                            "maxQty": "1000000",
                            "stepSize": self._q(j, p.step_size),
                        },
                        {
                            "filterType": "MARKET_LOT_SIZE",
                            "minQty": self._q(j, p.step_size),
                            "maxQty": "1000000",
                            "stepSize": self._q(j, p.step_size),
                        },
                        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                        {"filterType": "MIN_NOTIONAL", "notional": min_notional},
                        {
                            "filterType": "PERCENT_PRICE",
                            "multiplierUp": "1.0500",
                            "multiplierDown": "0.9500",
                            "multiplierDecimal": "4",
                        },
                    ],
                    "orderTypes": [
                        "LIMIT",
                        "MARKET",
                        "STOP",
                        "STOP_MARKET",
                        "TAKE_PROFIT",
                        "TAKE_PROFIT_MARKET",
                        "TRAILING_STOP_MARKET",
                    ],
                    "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
                }
            )
        quotes = sorted({s["marginAsset"] for s in symbols})
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": now,
                "futuresType": "U_MARGINED",
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
                    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
                ],
                "exchangeFilters": [],
                "assets": [{"asset": q, "marginAvailable": True, "autoAssetExchange": "-10000"} for q in quotes],
                "symbols": symbols,
            }
        )

    async def klines(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/klines: candles, the open one last."""
        j = self._symbol(request)
        assert j is not None
        interval = request.query.get("interval", "")
        if interval not in TIMEFRAME_MS:
            raise ApiError(400, -1120, "Invalid interval.")
        limit = self._limit(request, 500, 1500)
        start = self._int(request, "startTime")
        end = self._int(request, "endTime")
        now = self._now()
        rows = self.market.klines(j, TIMEFRAME_MS[interval], start, end, limit, now)
        return web.json_response(
            [
                [
                    k.open_time,
                    self._p(j, k.open),
                    self._p(j, k.high),
                    self._p(j, k.low),
                    self._p(j, k.close),
                    self._q(j, k.volume),
                    k.close_time,
                    f"{k.quote_volume:.4f}",
                    k.trades,
                    "0",
                    "0",
                    "0",
                ]
                for k in rows
            ]
        )

    async def agg_trades(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/aggTrades: by fromId, by time window, or the latest."""
        j = self._symbol(request)
        assert j is not None
        limit = self._limit(request, 500, 1000)
        now = self._now()
        m = self.market
        newest = m.trade_count_until(now)
        from_id = self._int(request, "fromId")
        start = self._int(request, "startTime")
        end = self._int(request, "endTime")
        if from_id is not None:
            g0 = max(from_id - 1, 0)
            g1 = min(g0 + limit, newest)
        elif start is not None or end is not None:
            g0 = m.trade_number_at_or_after(start) if start is not None else 0
            g1 = m.trade_count_until(min(end, now)) if end is not None else newest
            g1 = min(g1, g0 + limit)
        else:
            g1 = newest
            g0 = max(0, g1 - limit)
        batch = m.trades(j, g0, g1)
        return web.json_response(
            [
                {"a": tid, "p": self._p(j, p), "q": self._q(j, q), "f": tid, "l": tid, "T": ts, "m": maker}
                for tid, ts, p, q, maker in batch.rows()
            ]
        )

    async def trades(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/trades: the latest trades."""
        j = self._symbol(request)
        assert j is not None
        limit = self._limit(request, 500, 1000)
        newest = self.market.trade_count_until(self._now())
        batch = self.market.trades(j, max(0, newest - limit), newest)
        return web.json_response(
            [
                {
                    "id": tid,
                    "price": self._p(j, p),
                    "qty": self._q(j, q),
                    "quoteQty": f"{p * q:.4f}",
                    "time": ts,
                    "isBuyerMaker": maker,
                }
                for tid, ts, p, q, maker in batch.rows()
            ]
        )

    async def depth(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/depth: the current book with its lastUpdateId."""
        j = self._symbol(request)
        assert j is not None
        limit = self._limit(request, 500, 1000)
        now = self._now()
        book = self.market.current_book(j, now)
        return web.json_response(
            {
                "lastUpdateId": book.update_id,
                "E": now,
                "T": now,
                "bids": [[self._p(j, p), self._q(j, q)] for p, q in book.bids[:limit]],
                "asks": [[self._p(j, p), self._q(j, q)] for p, q in book.asks[:limit]],
            }
        )

    def _ticker(self, j: int, now: int) -> dict[str, Any]:
        t = self.market.ticker_24h(j, now)
        last, open_ = float(t["last"]), float(t["open"])
        vwap = float(t["quote_volume"]) / float(t["volume"]) if t["volume"] else last
        return {
            "symbol": self.market.ids[j],
            "priceChange": self._p(j, last - open_),
            "priceChangePercent": f"{(last - open_) / open_ * 100 if open_ else 0.0:.3f}",
            "weightedAvgPrice": self._p(j, vwap),
            "lastPrice": self._p(j, last),
            "lastQty": "0",
            "openPrice": self._p(j, open_),
            "highPrice": self._p(j, float(t["high"])),
            "lowPrice": self._p(j, float(t["low"])),
            "volume": self._q(j, float(t["volume"])),
            "quoteVolume": f"{float(t['quote_volume']):.2f}",
            "openTime": t["open_time"],
            "closeTime": t["close_time"],
            "firstId": t["first_id"],
            "lastId": t["last_id"],
            "count": t["count"],
        }

    async def ticker_24hr(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/ticker/24hr."""
        now = self._now()
        j = self._symbol(request, required=False)
        if j is not None:
            return web.json_response(self._ticker(j, now))
        return web.json_response([self._ticker(i, now) for i in range(len(self.market.ids))])

    async def ticker_price(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/ticker/price."""
        now = self._now()
        j = self._symbol(request, required=False)
        indices = [j] if j is not None else list(range(len(self.market.ids)))
        rows = [
            {"symbol": self.market.ids[i], "price": self._p(i, self.market.last_price(i, now)), "time": now}
            for i in indices
        ]
        return web.json_response(rows[0] if j is not None else rows)

    async def book_ticker(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/ticker/bookTicker."""
        now = self._now()
        j = self._symbol(request, required=False)
        indices = [j] if j is not None else list(range(len(self.market.ids)))
        rows = []
        for i in indices:
            book = self.market.current_book(i, now)
            (bid, bq), (ask, aq) = book.bids[0], book.asks[0]
            rows.append(
                {
                    "symbol": self.market.ids[i],
                    "bidPrice": self._p(i, bid),
                    "bidQty": self._q(i, bq),
                    "askPrice": self._p(i, ask),
                    "askQty": self._q(i, aq),
                    "time": now,
                    "lastUpdateId": book.update_id,
                }
            )
        return web.json_response(rows[0] if j is not None else rows)

    def _premium(self, j: int, now: int) -> dict[str, Any]:
        mark, index, funding, next_funding = self.market.mark(j, now)
        return {
            "symbol": self.market.ids[j],
            "markPrice": self._p(j, mark),
            "indexPrice": self._p(j, index),
            "estimatedSettlePrice": self._p(j, mark),
            "lastFundingRate": f"{funding:.8f}",
            "interestRate": "0.00010000",
            "nextFundingTime": next_funding,
            "time": now,
        }

    async def premium_index(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/premiumIndex: mark, index and funding."""
        now = self._now()
        j = self._symbol(request, required=False)
        if j is not None:
            return web.json_response(self._premium(j, now))
        return web.json_response([self._premium(i, now) for i in range(len(self.market.ids))])

    async def funding_rate(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/fundingRate: funding history."""
        now = self._now()
        j = self._symbol(request)
        assert j is not None
        limit = self._limit(request, 100, 1000)
        first = self.market.open_time(self.market.first_index)
        t = -(-first // FUNDING_INTERVAL_MS) * FUNDING_INTERVAL_MS
        rows = []
        while t <= now:
            rows.append(
                {
                    "symbol": self.market.ids[j],
                    "fundingTime": t,
                    "fundingRate": "0.00010000",
                    "markPrice": self._p(j, self.market.last_price(j, t)),
                }
            )
            t += FUNDING_INTERVAL_MS
        return web.json_response(rows[-limit:])
