"""The sandbox broker against the simulated exchange, through ccxt's own binanceusdm over real sockets."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from guard.broker.venue_client import build_venue, sandbox_credentials
from guard.config import ExchangeSection, config_from_dict
from guard.domain import OrderStatus, OrderType, ProposalStatus, Side, TradingState
from guard.errors import BadInput, RealMoneyRefused
from guard.events import KillCompleted, OrderFilled, OrderRejected, OrderSubmitted
from guard.exchanges import SIM_API_KEY, SIM_API_SECRET, make_exchange
from guard.journal.chain import read_entries
from guard.sim.private_faults import PrivateFault
from guard.sim.server import SimExchange
from tests.broker.sandbox_support import (
    BTC,
    CONFIG,
    ETH,
    FAST,
    broker_of,
    order,
    run_fault_batch,
    sandbox_desk,
    set_marks,
    simulated_exchange,
)
from tests.builders import request

FAULT_RUNS = 100


async def test_sandbox_injected_ambiguous_outcomes_leave_no_duplicate_and_no_lost_order(tmp_path: Path) -> None:
    """100 orders through injected timeouts, 5xx, late arrivals, duplicate-id errors and failing lookups: each
    is created at most once at the venue and the journal ends with exactly what the venue did."""
    async with simulated_exchange() as sim, sandbox_desk(tmp_path / "j.db", sim) as desk:
        outcome = await run_fault_batch(desk, sim, FAULT_RUNS, seed=8, concurrency=50)
    assert outcome.runs == FAULT_RUNS
    assert outcome.violations == []
    assert outcome.duplicates == outcome.lost == outcome.unresolved == 0
    assert outcome.unknown_then_resolved > 0  # some outcomes stayed unknown past every lookup, and were resolved later
    assert len(outcome.by_injection) >= 9


async def test_sandbox_approved_proposal_fills_from_venue_trades_and_rests_its_protection(tmp_path: Path) -> None:
    """An approved proposal fills with the venue's own trades and fees; its stop and take-profit rest at the venue."""
    async with simulated_exchange() as sim, sandbox_desk(tmp_path / "j.db", sim) as desk:
        await set_marks(desk, sim)
        mark = desk.marks[BTC]
        proposed = await desk.propose(
            request(
                BTC,
                Side.BUY,
                "0.004",
                "2",
                stop=str(round(mark * Decimal("0.97"))),
                take_profit=str(round(mark * Decimal("1.03"))),
            )
        )
        assert proposed.proposal is not None
        result = await desk.approve(proposed.proposal.id, "alice")
        assert result.status is ProposalStatus.FILLED, result.reason
        account = sim.private.account(SIM_API_KEY)
        trades = account.trades
        fills = [e.event.fill for e in read_entries(tmp_path / "j.db") if isinstance(e.event, OrderFilled)]
        venue_trades = sorted((t.qty, t.price, t.commission) for t in trades)
        assert sorted((f.qty, f.price, f.fee) for f in fills) == venue_trades
        resting = {o.request.client_order_id for o in desk.state.open_orders()}
        venue = {o.client_id for o in account.open_orders(algo=True)}
        assert resting == venue and len(venue) == 2
        assert desk.state.account.positions[BTC].qty == account.positions[0].qty == Decimal("0.004")


async def test_sandbox_venue_refusal_is_a_rejection_not_an_unknown(tmp_path: Path) -> None:
    """An order the venue refuses (no margin) is recorded rejected with the venue's reason; trading stays ACTIVE."""
    async with simulated_exchange() as sim, sandbox_desk(tmp_path / "j.db", sim) as desk:
        reports = await desk.execution.send(order(f"g{desk.state.journal_id}-big", BTC, Side.BUY, Decimal("5")))
        assert [type(r) for r in reports] == [OrderRejected]
        assert "Margin is insufficient" in reports[0].reason
        assert desk.state.trading_state is TradingState.ACTIVE
        assert sim.private.stats.orders_created == 0


async def test_sandbox_resting_fill_is_reported_once_by_polling(tmp_path: Path) -> None:
    """A limit order filled in part at once and in full later is reported fill by fill, each exactly once."""
    async with simulated_exchange() as sim, sandbox_desk(tmp_path / "j.db", sim) as desk:
        await set_marks(desk, sim)
        cid = f"g{desk.state.journal_id}-L1"
        sim.private.inject(PrivateFault.PARTIAL_FILL, cid)
        sim.private.matching = False  # the rest rests until the script says otherwise
        limit = (desk.marks[BTC] * Decimal("1.01")).quantize(Decimal("0.1"))
        reports = await desk.execution.send(
            order(cid, BTC, Side.BUY, Decimal("0.004"), order_type=OrderType.LIMIT, limit_price=limit)
        )
        assert desk.state.orders[cid].status is OrderStatus.PARTIALLY_FILLED, reports
        broker = broker_of(desk)
        assert await broker.poll() == []
        sim.private.matching = True
        async with asyncio.timeout(5):
            while desk.state.orders[cid].status is not OrderStatus.FILLED:
                await desk.execution.record_reports(await broker.poll())
                await asyncio.sleep(0.05)
        assert await broker.poll() == []
        assert desk.state.orders[cid].filled == Decimal("0.004")
        assert desk.state.account.positions[BTC].qty == sim.private.account(SIM_API_KEY).positions[0].qty


async def _open_book(desk, sim: SimExchange) -> None:  # type: ignore[no-untyped-def]
    """Positions on two symbols, a resting limit order and resting stops/take-profits."""
    await set_marks(desk, sim)
    for symbol, side, qty in ((BTC, Side.BUY, "0.004"), (ETH, Side.SELL, "0.1")):
        mark = desk.marks[symbol]
        away = Decimal("0.97") if side is Side.BUY else Decimal("1.03")
        back = Decimal("1.03") if side is Side.BUY else Decimal("0.97")
        proposed = await desk.propose(
            request(symbol, side, qty, "2", stop=str(round(mark * away)), take_profit=str(round(mark * back)))
        )
        assert proposed.proposal is not None
        assert (await desk.approve(proposed.proposal.id, "alice")).status is ProposalStatus.FILLED
    far = (desk.marks[BTC] * Decimal("0.9")).quantize(Decimal("0.1"))
    proposed = await desk.propose(request(BTC, Side.BUY, "0.002", "2", limit_price=str(far)))
    assert proposed.proposal is not None
    await desk.approve(proposed.proposal.id, "alice")


async def _venue_after(sim: SimExchange) -> tuple[list, list]:
    """Re-read the venue with a client of its own: open orders (regular and conditional) and positions."""
    exchange = make_exchange(
        "sim", timeout_seconds=5.0, sim=sim, streaming=False, config={"apiKey": SIM_API_KEY, "secret": SIM_API_SECRET}
    )
    exchange.enable_demo_trading(True)
    try:
        await exchange.load_markets()
        orders = []
        for symbol in (BTC, ETH):
            orders += await exchange.fetch_open_orders(symbol)
            orders += await exchange.fetch_open_orders(symbol, None, None, {"trigger": True})
        return orders, await exchange.fetch_positions()
    finally:
        await exchange.close()


async def test_sandbox_kill_cancels_every_order_and_flattens_confirmed_by_rereading(tmp_path: Path) -> None:
    """The kill switch on a venue: every order cancelled (stops too), positions flattened reduce-only; a fresh read
    of the venue shows 0 open orders and 0 positions."""
    async with simulated_exchange() as sim, sandbox_desk(tmp_path / "j.db", sim) as desk:
        await _open_book(desk, sim)
        assert len(desk.state.open_orders()) == 5
        report = await desk.kill("alice", "drill")
        assert report.flat and report.problems == () and report.orders_cancelled == 5
        assert report.positions_flattened == 2
        orders, positions = await _venue_after(sim)
        assert orders == [] and positions == []
        assert desk.state.account.positions == {} and desk.state.open_orders() == []


async def test_sandbox_kill_keeps_retrying_while_halted_until_flat(tmp_path: Path) -> None:
    """With position reads failing, the kill reports not flat (never "flat" from a failed read) and keeps stops working;
    the sweep run while HALTED then flattens, cancels the stops and confirms flat."""
    config = config_from_dict(
        {
            "risk": {"max_orders_per_minute": 10_000, "daily_loss_limit": 1_000_000},
            "operators": {"kill_cancels_stops": False},
        }
    )
    async with simulated_exchange() as sim, sandbox_desk(tmp_path / "j.db", sim, config=config) as desk:
        await _open_book(desk, sim)
        sim.private.inject(PrivateFault.POSITIONS_FAIL, count=100)
        report = await desk.kill("alice", "venue erroring")
        assert not report.flat and any("could not read positions" in p for p in report.problems)
        assert any("stops and take-profits left working" in p for p in report.problems)
        stops = [o for o in desk.state.open_orders() if o.request.order_type is not OrderType.LIMIT]
        assert len(stops) == 4  # the protection stays while the positions are not confirmed flat
        assert await desk.kill_switch.sweep() is None  # the venue is still unreadable: nothing concluded
        sim.private.clear_faults()
        swept = await desk.kill_switch.sweep()
        assert swept is not None and swept.flat and swept.problems == ()
        assert await desk.kill_switch.sweep() is None  # nothing left to do
        orders, positions = await _venue_after(sim)
        assert orders == [] and positions == []
        completed = [e.event for e in read_entries(tmp_path / "j.db") if isinstance(e.event, KillCompleted)]
        assert [c.flat for c in completed] == [False, True]
        assert desk.state.trading_state is TradingState.HALTED


async def test_sandbox_watch_reports_venue_order_and_position_guard_did_not_send(tmp_path: Path) -> None:
    """At start the watch compares venue and journal: an order and a position guard did not make are reported and
    trading goes REDUCING; neither is adopted into the journal."""
    async with simulated_exchange() as sim:
        exchange = make_exchange(
            "sim",
            timeout_seconds=5.0,
            sim=sim,
            streaming=False,
            config={"apiKey": SIM_API_KEY, "secret": SIM_API_SECRET},
        )
        exchange.enable_demo_trading(True)
        try:
            await exchange.load_markets()
            await exchange.create_order(ETH, "market", "buy", 0.05, None, {"clientOrderId": "by-hand-1"})
            price = float((await exchange.fetch_ticker(BTC))["last"]) * 0.9
            await exchange.create_order(BTC, "limit", "buy", 0.002, price, {"clientOrderId": "by-hand-2"})
        finally:
            await exchange.close()
        async with sandbox_desk(tmp_path / "j.db", sim) as desk:
            alerts: list[tuple[str, str, str]] = []
            watch = desk.watch_venue(broker_of(desk), FAST.reconcile_seconds, alert=lambda *a: alerts.append(a))
            problems = await watch.start()
            assert len(problems) == 2 and len(alerts) == 2
            assert any("by-hand-2" in p and "not sent by this guard" in p for p in problems)
            assert any(ETH in p and "position of 0.05" in p for p in problems)
            assert desk.state.trading_state is TradingState.REDUCING
            assert "by-hand-2" not in desk.state.orders and desk.state.account.positions == {}
            # The kill switch still cancels what it did not send (and cannot flatten what the journal never held).
            report = await desk.kill("alice", "clean up")
            assert report.flat
            assert sim.private.account(SIM_API_KEY).open_orders(algo=False) == []


def test_sandbox_exchange_without_test_urls_is_refused() -> None:
    """An exchange ccxt has no sandbox or demo URLs for is refused: guard would be trading real money."""
    with pytest.raises(RealMoneyRefused, match="real money"):
        build_venue(ExchangeSection(id="kraken", broker="sandbox"), "k" * 10, "s" * 10)


async def test_sandbox_binance_futures_goes_to_demo_trading_urls_only() -> None:
    """For Binance USDⓈ-M every API URL after the switch is a demo-trading URL (no live host left)."""
    exchange = build_venue(ExchangeSection(id="binanceusdm", broker="sandbox"), "k" * 10, "s" * 10)
    try:
        urls = [u for u in exchange.urls["api"].values() if isinstance(u, str)]
        assert urls and all("demo" in u for u in urls)
        assert exchange.options["enableDemoTrading"] is True
    finally:
        await exchange.close()


def test_sandbox_credentials_come_from_the_environment_only() -> None:
    """Keys are read from <prefix>_API_KEY / _API_SECRET; without them a real venue is refused (the simulator has a
    built-in test key)."""
    live = ExchangeSection(id="binanceusdm", broker="sandbox", credentials_env="MY")
    assert sandbox_credentials(live, {"MY_API_KEY": "abc123", "MY_API_SECRET": "def456"}) == ("abc123", "def456")
    with pytest.raises(BadInput, match="MY_API_KEY"):
        sandbox_credentials(live, {})
    assert sandbox_credentials(FAST, {}) == (SIM_API_KEY, SIM_API_SECRET)


async def test_sandbox_order_sent_once_even_when_every_answer_is_lost(tmp_path: Path) -> None:
    """When the create and every lookup fail the order is UNKNOWN and trading REDUCING; resolving it later finds the one
    venue order, and nothing was ever sent twice."""
    async with simulated_exchange() as sim, sandbox_desk(tmp_path / "j.db", sim, config=CONFIG) as desk:
        cid = f"g{desk.state.journal_id}-U1"
        sim.private.inject(PrivateFault.ERROR_AFTER_ACCEPT, cid)
        sim.private.inject(PrivateFault.LOOKUP_ERRORS, cid, count=100)
        assert await desk.execution.send(order(cid)) == []
        assert desk.state.orders[cid].status is OrderStatus.UNKNOWN
        assert desk.state.trading_state is TradingState.REDUCING
        sim.private.clear_faults()
        await desk.execution.record_reports(await broker_of(desk).poll())
        assert desk.state.orders[cid].status is OrderStatus.FILLED
        assert sim.private.books.orders_created(SIM_API_KEY, cid) == 1
        submitted = [e for e in read_entries(tmp_path / "j.db") if isinstance(e.event, OrderSubmitted)]
        assert len(submitted) == 1
