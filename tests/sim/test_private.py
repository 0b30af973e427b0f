"""The simulated exchange's private API, spoken to by ccxt's own binanceusdm over real sockets."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt
import pytest

from guard.config import SimSection
from guard.exchanges import SIM_API_KEY, SIM_API_SECRET, make_exchange
from guard.sim.private_faults import PrivateFault
from guard.sim.server import SimExchange
from tests.api.support import wait_until

BTC = "BTC/USDT:USDT"
SYMBOLS = (BTC, "ETH/USDT:USDT")


@asynccontextmanager
async def venue(answer_within: float = 2.0, recv_window_ms: int = 1_000) -> AsyncIterator[tuple[SimExchange, Any]]:
    """The simulator, and a signed ccxt client on its demo URLs."""
    async with SimExchange(SimSection(speed=10.0, history_bars=120, scenario="calm"), SYMBOLS) as sim:
        exchange = make_exchange(
            "sim",
            timeout_seconds=answer_within,
            sim=sim,
            streaming=False,
            config={
                "apiKey": SIM_API_KEY,
                "secret": SIM_API_SECRET,
                "rateLimit": 1,
                "options": {"recvWindow": recv_window_ms},
            },
        )
        exchange.enable_demo_trading(True)
        try:
            await exchange.load_markets()
            yield sim, exchange
        finally:
            await exchange.close()


def _signed(sim: SimExchange, path: str, params: dict[str, Any], secret: str = SIM_API_SECRET) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return f"{sim.url}{path}?{query}&signature={signature}"


async def test_private_bad_signature_or_key_is_refused_like_binance() -> None:
    """A wrong signature is answered -1022 and an unknown key -2015; neither reaches the books."""
    async with venue() as (sim, _), aiohttp.ClientSession() as http:
        params = {"symbol": "BTCUSDT", "timestamp": int(time.time() * 1000)}
        async with http.get(
            _signed(sim, "/fapi/v3/positionRisk", params, "wrong-secret"), headers={"X-MBX-APIKEY": SIM_API_KEY}
        ) as r:
            assert r.status == 400 and (await r.json())["code"] == -1022
        async with http.get(_signed(sim, "/fapi/v3/positionRisk", params), headers={"X-MBX-APIKEY": "nobody"}) as r:
            assert r.status == 401 and (await r.json())["code"] == -2015
        assert sim.private.stats.refused_signatures == 2


async def test_private_timestamp_outside_recv_window_is_refused_1021() -> None:
    """A request signed longer ago than its recvWindow is refused when it is processed (-1021)."""
    async with venue() as (sim, _), aiohttp.ClientSession() as http:
        stale = {"symbol": "BTCUSDT", "recvWindow": 500, "timestamp": int(time.time() * 1000) - 2_000}
        async with http.get(_signed(sim, "/fapi/v3/positionRisk", stale), headers={"X-MBX-APIKEY": SIM_API_KEY}) as r:
            assert r.status == 400 and (await r.json())["code"] == -1021


async def test_private_market_order_fills_against_book_with_trades_position_and_balance() -> None:
    """A market order walks the simulated book; its trades, the position and the balance all agree."""
    async with venue() as (_, exchange):
        await exchange.set_leverage(2, BTC)
        created = await exchange.create_order(BTC, "market", "buy", 0.05, None, {"clientOrderId": "t-1"})
        assert created["status"] == "closed" and created["filled"] == 0.05
        fetched = await exchange.fetch_order(None, BTC, {"clientOrderId": "t-1"})
        trades = await exchange.fetch_my_trades(BTC, params={"orderId": created["id"]})
        assert fetched["id"] == created["id"]
        assert sum(Decimal(t["info"]["qty"]) for t in trades) == Decimal("0.05")
        assert all(t["fee"]["currency"] == "USDT" and t["fee"]["cost"] > 0 for t in trades)
        positions = await exchange.fetch_positions()
        assert [(p["symbol"], p["contracts"], p["side"]) for p in positions] == [(BTC, 0.05, "long")]
        balance = (await exchange.fetch_balance())["USDT"]
        assert balance["free"] + balance["used"] == pytest.approx(balance["total"])
        assert balance["total"] < 10_000  # fees paid


async def test_private_client_id_unique_only_among_open_orders() -> None:
    """As on Binance: a duplicate id is refused while the first is open, taken as a new order once it has filled."""
    async with venue() as (sim, exchange):
        price = float((await exchange.fetch_ticker(BTC))["last"]) * 0.9
        await exchange.create_order(BTC, "limit", "buy", 0.002, price, {"clientOrderId": "same-open"})
        with pytest.raises(ccxt.ExchangeError, match="-4116"):
            await exchange.create_order(BTC, "limit", "buy", 0.002, price, {"clientOrderId": "same-open"})
        await exchange.create_order(BTC, "market", "buy", 0.002, None, {"clientOrderId": "same-filled"})
        await exchange.create_order(BTC, "market", "buy", 0.002, None, {"clientOrderId": "same-filled"})
        assert sim.private.books.orders_created(SIM_API_KEY, "same-open") == 1
        assert sim.private.books.orders_created(SIM_API_KEY, "same-filled") == 2


@pytest.mark.parametrize(
    ("fault", "hold", "error", "created"),
    [
        (PrivateFault.TIMEOUT_AFTER_ACCEPT, 1.5, ccxt.RequestTimeout, 1),
        (PrivateFault.TIMEOUT_BEFORE_ACCEPT, 0.8, ccxt.RequestTimeout, 1),
        (PrivateFault.TIMEOUT_BEFORE_ACCEPT, 1.3, ccxt.RequestTimeout, 0),
        (PrivateFault.ERROR_AFTER_ACCEPT, 0.0, ccxt.OperationFailed, 1),
        (PrivateFault.ERROR_BEFORE_ACCEPT, 0.0, ccxt.OperationFailed, 0),
        (PrivateFault.DUPLICATE_ID, 0.0, ccxt.ExchangeError, 1),
    ],
)
async def test_private_order_fault_fails_the_call_while_venue_may_hold_the_order(
    fault: PrivateFault, hold: float, error: type[Exception], created: int
) -> None:
    """Each injected fault fails the client's call; the venue holds the order exactly when the fault says it took it."""
    async with venue(answer_within=0.5, recv_window_ms=1_000) as (sim, exchange):
        sim.private.inject(fault, "f-1", hold_seconds=hold)
        with pytest.raises(error):
            await exchange.create_order(BTC, "market", "buy", 0.002, None, {"clientOrderId": "f-1"})
        await asyncio.sleep(max(hold - 0.5, 0) + 0.2)  # let a held request finish at the venue
        assert sim.private.books.orders_created(SIM_API_KEY, "f-1") == created
        assert sim.private.stats.faults_fired == {fault.value: 1}


async def test_private_partial_fill_fault_fills_half_and_expires_the_rest() -> None:
    """With the partial-fill fault a market order fills half; the rest expires, as a thin book does on Binance."""
    async with venue() as (sim, exchange):
        sim.private.inject(PrivateFault.PARTIAL_FILL, "p-1")
        order = await exchange.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "p-1"})
        assert order["status"] == "expired" and order["filled"] == 0.005


async def test_private_lookup_and_position_faults_answer_5xx() -> None:
    """Injected lookup and position faults answer 503 the given number of times, then recover."""
    async with venue() as (sim, exchange):
        await exchange.create_order(BTC, "market", "buy", 0.002, None, {"clientOrderId": "l-1"})
        sim.private.inject(PrivateFault.LOOKUP_ERRORS, "l-1", count=1)
        sim.private.inject(PrivateFault.POSITIONS_FAIL, count=1)
        with pytest.raises(ccxt.OperationFailed):
            await exchange.fetch_order(None, BTC, {"clientOrderId": "l-1"})
        with pytest.raises(ccxt.OperationFailed):
            await exchange.fetch_positions()
        assert (await exchange.fetch_order(None, BTC, {"clientOrderId": "l-1"}))["status"] == "closed"
        assert len(await exchange.fetch_positions()) == 1


async def test_private_stop_order_triggers_on_mark_and_sends_market_order() -> None:
    """A conditional order whose trigger the mark has passed fires at once and fills a market order."""
    async with venue() as (sim, exchange):
        account = sim.private.account(SIM_API_KEY)
        await exchange.create_order(BTC, "market", "buy", 0.004, None, {"clientOrderId": "s-entry"})
        mark = float((await exchange.fetch_ticker(BTC))["last"])
        await exchange.create_order(
            BTC,
            "market",
            "sell",
            0.004,
            None,
            {"clientOrderId": "s-stop", "triggerPrice": mark * 1.05, "reduceOnly": True},
        )  # a sell stop above the market is already triggered
        await wait_until(lambda: not account.open_orders(algo=True), within=5)
        algo = await exchange.fetch_order(None, BTC, {"clientOrderId": "s-stop", "trigger": True})
        child = await exchange.fetch_order(algo["info"]["actualOrderId"], BTC)
        assert algo["status"] == "closed" and child["status"] == "closed" and child["filled"] == 0.004
        assert await exchange.fetch_positions() == []


async def test_private_countdown_cancel_all_cancels_open_orders_when_not_refreshed() -> None:
    """countdownCancelAll cancels the symbol's open orders once its countdown runs out unrefreshed; 0 disarms."""
    async with venue() as (sim, exchange):
        price = float((await exchange.fetch_ticker(BTC))["last"]) * 0.9
        await exchange.create_order(BTC, "limit", "buy", 0.002, price, {"clientOrderId": "d-1"})
        await exchange.fapiPrivatePostCountdownCancelAll({"symbol": "BTCUSDT", "countdownTime": 300})
        assert await exchange.fetch_open_orders(BTC) != []
        await wait_until(lambda: bool(sim.private.stats.deadman_fired), within=3)
        assert await exchange.fetch_open_orders(BTC) == []
        fired = sim.private.stats.deadman_fired
        assert [(f.symbol, f.cancelled) for f in fired] == [(BTC, 1)]
        await exchange.create_order(BTC, "limit", "buy", 0.002, price, {"clientOrderId": "d-2"})
        await exchange.fapiPrivatePostCountdownCancelAll({"symbol": "BTCUSDT", "countdownTime": 300})
        await exchange.fapiPrivatePostCountdownCancelAll({"symbol": "BTCUSDT", "countdownTime": 0})
        await asyncio.sleep(0.5)
        assert len(await exchange.fetch_open_orders(BTC)) == 1
