"""ccxt's own binanceusdm class, pointed at the simulated exchange over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import ccxt
import pytest

from guard.config import SimSection
from guard.exchanges import make_exchange
from guard.feed.history import write_bars
from guard.sim.process import generate_history
from guard.sim.server import SimExchange

SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT")


@asynccontextmanager
async def sim_and_ccxt(section: SimSection | None = None, **kwargs: Any) -> AsyncIterator[tuple[SimExchange, Any]]:
    section = section or SimSection(speed=10.0, history_bars=300)
    async with SimExchange(section, SYMBOLS, **kwargs) as sim:
        exchange = make_exchange("sim", timeout_seconds=5.0, sim=sim)
        try:
            yield sim, exchange
        finally:
            await exchange.close()


async def test_sim_ccxt_loads_markets_with_precision_and_limits() -> None:
    """ccxt.pro.binanceusdm loads the simulator's markets as linear USDT perpetuals with precision and limits."""
    async with sim_and_ccxt() as (_, exchange):
        markets = await exchange.load_markets()
        btc = markets["BTC/USDT:USDT"]
        assert btc["swap"] and btc["linear"] and btc["settle"] == "USDT"
        assert btc["precision"]["price"] == 0.1 and btc["precision"]["amount"] == 0.001
        assert btc["limits"]["cost"]["min"] == 100
        assert btc["taker"] == 0.0005 and btc["maker"] == 0.0002


async def test_sim_rest_klines_equal_generate_history() -> None:
    """fetch_ohlcv through ccxt returns the bars generate_history makes for the simulator's origin and seed."""
    async with sim_and_ccxt() as (sim, exchange):
        await exchange.load_markets()
        rows = await exchange.fetch_ohlcv("ETH/USDT:USDT", "1m", since=0, limit=200)
        expected = generate_history(
            SYMBOLS, sim.market.origin_ms, 200, seed=sim.section.seed, scenario=sim.section.scenario
        )["ETH/USDT:USDT"]
        assert rows == [[b.open_time, b.open, b.high, b.low, b.close, b.volume] for b in expected]


async def test_sim_ccxt_pro_streams_every_channel() -> None:
    """Trades, bars, ticker, mark price and order book all stream through ccxt.pro from the simulator."""
    async with sim_and_ccxt() as (_, exchange):
        await exchange.load_markets()
        symbol = "BTC/USDT:USDT"

        async def first(coro: Any) -> Any:
            return await asyncio.wait_for(coro, 5.0)

        trades = await first(exchange.watch_trades(symbol, params={"name": "aggTrade"}))
        ohlcv = await first(exchange.watch_ohlcv(symbol, "1m"))
        ticker = await first(exchange.watch_ticker(symbol))
        mark = await first(exchange.watch_mark_price(symbol))
        book = await first(exchange.watch_order_book(symbol))
        assert trades[0]["symbol"] == symbol and trades[0]["price"] > 0
        assert ohlcv[-1][0] % 60_000 == 0
        assert ticker["last"] > 0
        assert mark["markPrice"] > 0 and mark["info"]["r"] == "0.00010000"
        assert book["bids"][0][0] < book["asks"][0][0]


async def test_sim_unknown_symbol_is_bad_symbol() -> None:
    """A symbol the simulator does not list is answered the way Binance answers it (ccxt BadSymbol)."""
    async with sim_and_ccxt() as (_, exchange):
        await exchange.load_markets()
        with pytest.raises(ccxt.BadSymbol):
            await exchange.fetch_ticker("DOGE/USDT:USDT")
        with pytest.raises(ccxt.BadSymbol):
            await exchange.fapiPublicGetDepth({"symbol": "NOPEUSDT"})


async def test_sim_rate_limit_storm_answers_429_with_retry_after() -> None:
    """During a 429 storm every request gets 429 and Retry-After; ccxt raises DDoSProtection."""
    async with sim_and_ccxt() as (sim, exchange):
        await exchange.load_markets()
        sim.rate_limit_storm(seconds=60, retry_after=3)
        with pytest.raises(ccxt.DDoSProtection):
            await exchange.fetch_ticker("BTC/USDT:USDT")
        assert exchange.last_response_headers["Retry-After"] == "3"
        assert sim.statistics().faults.rate_limited == 1


async def test_sim_server_errors_answer_503() -> None:
    """During a 5xx burst requests fail as Binance's do (503, code -1001: ccxt OperationFailed), then recover."""
    async with sim_and_ccxt() as (sim, exchange):
        await exchange.load_markets()
        sim.server_errors(seconds=60)
        with pytest.raises(ccxt.OperationFailed):
            await exchange.fetch_ticker("BTC/USDT:USDT")
        sim.clear_faults()
        assert (await exchange.fetch_ticker("BTC/USDT:USDT"))["last"] > 0


async def test_sim_serves_history_file_through_ccxt(tmp_path: Path) -> None:
    """A recorded history file plays through ccxt: its bars come back from fetch_ohlcv."""
    recorded = generate_history(("SOL/USDT:USDT",), 1_767_225_600_000, 120, seed=99)["SOL/USDT:USDT"]
    path = tmp_path / "sol.parquet"
    write_bars(path, recorded)
    async with SimExchange(SimSection(history=str(path)), ["ignored/USDT:USDT"]) as sim:
        exchange = make_exchange("sim", timeout_seconds=5.0, sim=sim)
        try:
            await exchange.load_markets()
            assert list(exchange.markets) == ["SOL/USDT:USDT"]
            rows = await exchange.fetch_ohlcv("SOL/USDT:USDT", "1m", since=0, limit=50)
        finally:
            await exchange.close()
    assert rows == [[b.open_time, b.open, b.high, b.low, b.close, b.volume] for b in recorded[:50]]


async def test_sim_admin_api_plays_fault() -> None:
    """The /_sim admin API lets another process script faults and read statistics, with the simulator's token."""
    async with (
        SimExchange(SimSection(history_bars=60), SYMBOLS) as sim,
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {sim.admin_token}"}) as http,
    ):
        async with http.post(f"{sim.url}/_sim/fault", json={"name": "5xx-burst", "seconds": 30}) as r:
            assert r.status == 200
        async with http.get(f"{sim.url}/fapi/v1/time") as r:
            assert r.status == 503
        async with http.post(f"{sim.url}/_sim/fault", json={"name": "bogus"}) as r:
            assert r.status == 400
        async with http.get(f"{sim.url}/_sim/state") as r:
            state = await r.json()
        assert state["faults"]["server_errors"] == 1


async def test_sim_admin_api_refuses_anyone_without_the_token() -> None:
    """Any process on the machine reaches loopback: without the token no fault starts and no state is read."""
    async with SimExchange(SimSection(history_bars=60), SYMBOLS) as sim, aiohttp.ClientSession() as http:
        for token in ("", "Bearer wrong", f"Bearer {sim.admin_token}x"):
            headers = {"Authorization": token} if token else {}
            async with http.post(f"{sim.url}/_sim/scenario", json={"name": "flash-crash"}, headers=headers) as r:
                assert r.status == 401
            keys = {"api_key": "k", "secret": "s"}
            async with http.post(f"{sim.url}/_sim/private/keys", json=keys, headers=headers) as r:
                assert r.status == 401
        assert sim.statistics().to_plain()["scenario"] != "flash-crash"


async def test_sim_a_daemons_fault_scenario_plays_once(guard_home: Path) -> None:
    """A daemon whose sim.scenario is a fault (here a feed stall at 60x) plays it once, then the market is left
    alone: the task that played it is over, not waiting to play it again every 2 s."""
    from guard.daemon import running
    from tests.api.support import wait_until
    from tests.builders import daemon_config

    async with running(daemon_config(sim={"scenario": "feed-stall", "speed": 60.0})) as daemon:
        sim = daemon.sim
        assert sim is not None and sim.fault_task is not None
        await wait_until(lambda: sim.faults_played == 1 and sim.fault_task.done(), within=20)
        assert sim.fault_task.exception() is None


async def test_sim_guard_sim_repeats_its_fault_scenario() -> None:
    """`guard sim --scenario feed-stall` (repeat_faults) plays the fault again every repeat period."""
    from tests.api.support import wait_until

    section = SimSection(speed=600.0, history_bars=60, scenario="feed-stall")
    async with SimExchange(section, SYMBOLS, repeat_faults=True) as sim:
        await wait_until(lambda: sim.faults_played >= 2, within=20)
        assert sim.fault_task is not None and not sim.fault_task.done()
