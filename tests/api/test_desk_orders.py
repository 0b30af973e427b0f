"""Resting orders and run-time limits over the control API, against a real daemon: the paper broker and the
sandbox broker (ccxt against the embedded simulated exchange) alike."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from guard.api.client import ApiClient, Session
from guard.api.protocol import AmendOrder, CancelOrder, Kill, Message, Override, SetRiskLimit, StatusChanged
from guard.daemon import Daemon, running
from guard.domain import OverrideEdits, ProposalStatus
from guard.events import OrderAmendRequested, OrderCancelRequested, RiskLimitChanged
from guard.journal.chain import read_entries
from tests.api.support import queue_proposal, wait_for, wait_until
from tests.builders import daemon_config

BTC = "BTC/USDT:USDT"


def _orders_are(predicate: object) -> object:
    def matches(m: Message) -> bool:
        return isinstance(m, StatusChanged) and predicate(m.status.orders)  # type: ignore[operator]

    return matches


async def _override_to_a_resting_limit(daemon: Daemon, session: Session) -> tuple[str, Decimal]:
    """Queue a market proposal and override it to a buy limit 3% under the mark. Returns its id and price."""
    pid = await queue_proposal(daemon, qty="0.01")
    price = (daemon.desk.marks[BTC] * Decimal("0.97")).quantize(Decimal(1))
    reply = await session.send(Override(session.next_id(), pid, 1, OverrideEdits(limit_price=price), "buy the dip"))
    assert (reply.ok, reply.reason) == (True, f"placed, resting at {price}"), reply.reason
    assert reply.data["status"] == "SUBMITTED"
    return pid, price


async def _see_amend_and_cancel(daemon: Daemon, session: Session) -> None:
    """The whole path an operator takes, over the WebSocket: see the order, amend it, see it moved, cancel it."""
    pid, price = await _override_to_a_resting_limit(daemon, session)
    seen = await wait_for(session, _orders_are(lambda orders: any(o.proposal_id == pid for o in orders)))
    [order] = seen.status.orders  # type: ignore[attr-defined]
    assert (order.order_id, order.kind, order.side.value, order.qty, order.price) == (
        f"{pid}-E",
        "limit entry",
        "buy",
        Decimal("0.01"),
        price,
    )
    assert order.distance_pct is not None and -3.5 < order.distance_pct < -2.5
    assert order.placed_at <= seen.status.server_time  # type: ignore[attr-defined]

    lower = price - 50
    amend = AmendOrder(session.next_id(), order.order_id, price=lower, qty=Decimal("0.005"), reason="lower still")
    amended = await session.send(amend)
    assert amended.ok, amended.reason
    moved = await wait_for(session, _orders_are(lambda orders: [o.order_id for o in orders] == [f"{pid}-E-A1"]))
    [replacement] = moved.status.orders  # type: ignore[attr-defined]
    assert (replacement.price, replacement.qty, replacement.proposal_id) == (lower, Decimal("0.005"), pid)
    at_venue = await daemon.desk.broker.open_orders()
    assert [(o.client_order_id, o.limit_price) for o in at_venue] == [(replacement.client_order_id, lower)]

    cancelled = await session.send(CancelOrder(session.next_id(), pid, "not today"))
    assert (cancelled.ok, cancelled.reason) == (True, f"{pid}-E-A1 cancelled")
    await wait_for(session, _orders_are(lambda orders: orders == ()))
    assert await daemon.desk.broker.open_orders() == []

    events = [e.event for e in read_entries(daemon.paths.journal)]
    amend_event = next(e for e in events if isinstance(e, OrderAmendRequested))
    cancel_event = next(e for e in events if isinstance(e, OrderCancelRequested))
    assert (amend_event.operator, amend_event.reason, amend_event.new_price) == ("alice", "lower still", lower)
    assert (cancel_event.operator, cancel_event.reason) == ("alice", "not today")


async def test_a_resting_limit_over_the_api_with_the_paper_broker(daemon: Daemon, client: ApiClient) -> None:
    """Paper broker: the override that rests is a success; the status lists it; amend and cancel work and are
    journaled with who and why."""
    async with client.connect("alice") as session:
        await _see_amend_and_cancel(daemon, session)


async def test_a_resting_limit_over_the_api_with_the_sandbox_broker(guard_home: Path) -> None:
    """Sandbox broker (ccxt to the simulated exchange): the same path, and the venue's own book agrees."""
    async with running(daemon_config(exchange={"broker": "sandbox"})) as daemon:
        assert daemon.desk.broker.name != "paper"
        async with ApiClient.from_config(daemon.config).connect("alice") as session:
            await _see_amend_and_cancel(daemon, session)


async def test_the_kill_switch_cancels_an_amended_order_at_the_sandbox_venue(guard_home: Path) -> None:
    """The replacement an amend sent is an order like any other: a kill leaves nothing at the venue."""
    async with running(daemon_config(exchange={"broker": "sandbox"})) as daemon:
        async with ApiClient.from_config(daemon.config).connect("alice") as session:
            pid, price = await _override_to_a_resting_limit(daemon, session)
            amended = await session.send(AmendOrder(session.next_id(), pid, price=price - 30, reason="lower"))
            assert amended.ok, amended.reason
            assert [o.client_order_id[-5:] for o in await daemon.desk.broker.open_orders()] == ["-E-A1"]
            assert (await session.send(Kill(session.next_id(), "enough"))).ok
            await wait_until(lambda: not daemon.desk.state.kill_in_progress)
            assert daemon.desk.resting_orders() == []
            assert await daemon.desk.broker.open_orders() == []


async def test_limits_in_the_status_and_an_increase_needs_its_confirmation(daemon: Daemon, client: ApiClient) -> None:
    """The status lists every run-time limit; raising one is refused until confirmed; the change shows who made it."""
    async with client.connect("alice") as session:
        limits = {v.key: v for v in session.snapshot.status.limits}  # type: ignore[union-attr]
        assert limits["risk.max_leverage"].value == "3" and limits["risk.max_leverage"].changed_by == ""
        refused = await session.send(SetRiskLimit(session.next_id(), "risk.max_leverage", "5", "more room"))
        assert not refused.ok and "confirm the increase" in refused.reason
        confirmed = SetRiskLimit(session.next_id(), "risk.max_leverage", "5", "more room", confirm_risk_increase=True)
        assert (await session.send(confirmed)).ok

        def changed(m: Message) -> bool:
            return isinstance(m, StatusChanged) and any(
                v.key == "risk.max_leverage" and v.value == "5" for v in m.status.limits
            )

        status = await wait_for(session, changed)
        view = next(v for v in status.status.limits if v.key == "risk.max_leverage")  # type: ignore[attr-defined]
        assert (view.changed_by, view.reason) == ("alice", "more room") and view.changed_at is not None
        lower = await session.send(SetRiskLimit(session.next_id(), "max_leverage", "2.5", "calmer"))
        exact = await session.send(SetRiskLimit(session.next_id(), "daily_loss_limit", "999.12345678", "exact"))
        assert lower.ok and exact.ok, (lower.reason, exact.reason)
        assert daemon.desk.limits().max_leverage == 2.5
        assert daemon.desk.limits().daily_loss_limit == Decimal("999.12345678")
    changes = [e.event for e in read_entries(daemon.paths.journal) if isinstance(e.event, RiskLimitChanged)]
    assert [(c.key, c.old, c.new) for c in changes] == [
        ("max_leverage", "3", "5"),
        ("max_leverage", "5", "2.5"),
        ("daily_loss_limit", "1000", "999.12345678"),
    ]


@pytest.mark.parametrize("bad", ["1e999999", "-5", "NaN"])
async def test_an_amend_with_an_absurd_number_is_refused(daemon: Daemon, client: ApiClient, bad: str) -> None:
    """Prices and quantities in an amend are bounded like every other number a client sends."""
    reply = await client.command(AmendOrder("a1", "P000001", price=Decimal(bad)), "alice")
    assert not reply.ok and "AmendOrder.price" in reply.reason


async def test_a_resting_entry_filled_at_the_sandbox_venue_gets_its_stop_and_take_profit(guard_home: Path) -> None:
    """Sandbox broker: the override rests at the venue; a flash crash fills it there; the fill learnt from the
    venue's reports places the proposal's reduce-only stop and take-profit at the venue for the filled qty."""
    async with running(daemon_config(exchange={"broker": "sandbox"})) as daemon:
        await wait_until(lambda: BTC in daemon.desk.marks)
        mark = daemon.desk.marks[BTC]
        stop, take_profit = (mark * Decimal("0.5")).quantize(Decimal(1)), (mark * Decimal("1.2")).quantize(Decimal(1))
        pid = await queue_proposal(daemon, qty="0.01", leverage="1", stop=str(stop), take_profit=str(take_profit))
        async with ApiClient.from_config(daemon.config).connect("alice") as session:
            price = (mark * Decimal("0.97")).quantize(Decimal(1))
            edits = OverrideEdits(limit_price=price)
            reply = await session.send(Override(session.next_id(), pid, 1, edits, "buy the dip"))
            assert reply.ok, reply.reason
            daemon.sim.flash_crash()
            await wait_until(lambda: daemon.desk.state.proposals[pid].status is ProposalStatus.FILLED, within=60)
            await wait_until(lambda: len(daemon.desk.resting_orders()) == 2, within=30)
            at_venue = {o.client_order_id: o for o in await daemon.desk.broker.open_orders()}
            filled = daemon.desk.state.orders[daemon.desk.state.proposals[pid].entry_order or ""].filled
            for order in daemon.desk.resting_orders():
                placed = at_venue[order.request.client_order_id]
                assert placed.reduce_only and placed.qty == filled == Decimal("0.01")
                assert placed.trigger_price in (stop, take_profit)
