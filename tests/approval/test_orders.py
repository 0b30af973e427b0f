"""Resting orders on the desk: a limit approved rests and says so, and an operator cancels or amends it with
who and why on record, through the paper broker, with the kill switch still seeing what replaced it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path

import pytest

from guard.approval.desk import ApprovalDesk
from guard.domain import OrderPurpose, OrderStatus, OverrideEdits, ProposalStatus, TradingState
from guard.errors import InvalidCommand
from guard.events import (
    CommandRefused,
    OrderAmendRequested,
    OrderCancelled,
    OrderCancelRequested,
    OrderSubmitted,
)
from guard.journal.chain import read_entries
from guard.journal.trace import trace
from tests.builders import BTC, close, make_desk, request, set_mark


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[ApprovalDesk]:
    d = await make_desk(tmp_path / "journal.db")
    yield d
    close(d)


def journal(desk: ApprovalDesk) -> list:
    return [e.event for e in read_entries(desk.journal.path)]


async def resting_limit(desk: ApprovalDesk, price: str = "99000", qty: str = "0.05") -> str:
    """Approve a buy limit below the market: it rests. Returns its proposal id."""
    result = await desk.propose(request(qty=qty, limit_price=price))
    assert result.ok and result.proposal is not None, result.reason
    pid = result.proposal.id
    approved = await desk.approve(pid, "alice", version=1)
    assert approved.ok, approved.reason
    return pid


async def test_an_approved_limit_that_rests_is_a_success_that_says_where(desk: ApprovalDesk) -> None:
    """A limit placed and resting is what was asked: the answer is ok and names its price, not "SUBMITTED"."""
    result = await desk.propose(request(limit_price="99000"))
    assert result.proposal is not None
    answer = await desk.approve(result.proposal.id, "alice", version=1)
    assert (answer.ok, answer.reason, answer.status) == (True, "placed, resting at 99000", ProposalStatus.SUBMITTED)


async def test_an_override_to_a_limit_price_that_rests_is_a_success(desk: ApprovalDesk) -> None:
    """The override of #17: a limit price below the market is placed and rests; the reply says so."""
    result = await desk.propose(request())
    assert result.proposal is not None
    answer = await desk.override(result.proposal.id, "alice", OverrideEdits(limit_price=D(98_000)), version=1)
    assert (answer.ok, answer.reason) == (True, "placed, resting at 98000")


async def test_resting_orders_list_the_limit_with_its_proposal_and_age(desk: ApprovalDesk) -> None:
    """The resting limit is listed with its proposal, the quantity still to fill and when it was placed."""
    pid = await resting_limit(desk)
    [order] = desk.resting_orders()
    assert (order.request.proposal_id, order.request.purpose, order.remaining) == (pid, OrderPurpose.ENTRY, D("0.05"))
    assert order.submitted_at == desk.clock.now_ms()


async def test_cancel_by_proposal_id_is_journaled_with_who_and_why_before_the_broker(desk: ApprovalDesk) -> None:
    """Cancel names the order by its proposal; the request (who, why) is journaled before the cancel itself."""
    pid = await resting_limit(desk)
    answer = await desk.cancel_order(pid, "bob", "price ran away")
    assert answer.ok, answer.reason
    assert desk.resting_orders() == [] and desk.state.account.balance().free == desk.state.account.balance().total
    events = journal(desk)
    asked = next(i for i, e in enumerate(events) if isinstance(e, OrderCancelRequested))
    done = next(i for i, e in enumerate(events) if isinstance(e, OrderCancelled))
    assert asked < done
    assert (events[asked].operator, events[asked].reason) == ("bob", "price ran away")
    assert desk.state.proposals[pid].status is ProposalStatus.FAILED
    assert "cancelled by bob: price ran away" in desk.state.proposals[pid].reason


async def test_amend_is_cancel_and_replace_and_the_replacement_rests_where_asked(desk: ApprovalDesk) -> None:
    """Amend moves the price and lowers the quantity: the old order is cancelled, a new one rests in its place and
    carries the proposal, journaled with who, what and why."""
    pid = await resting_limit(desk)
    answer = await desk.amend_order(f"{pid}-E", "bob", price=D("98500"), qty=D("0.03"), reason="closer to support")
    assert answer.ok, answer.reason
    [order] = desk.resting_orders()
    request_ = order.request
    assert (request_.limit_price, request_.qty, request_.proposal_id) == (D("98500"), D("0.03"), pid)
    assert request_.client_order_id.endswith(f"{pid}-E-A1")
    assert desk.state.proposals[pid].status is ProposalStatus.SUBMITTED
    assert desk.state.proposals[pid].entry_order == request_.client_order_id
    amend = next(e for e in journal(desk) if isinstance(e, OrderAmendRequested))
    assert (amend.operator, amend.reason, amend.old_price, amend.new_price) == (
        "bob",
        "closer to support",
        D("99000"),
        D("98500"),
    )
    assert (amend.old_qty, amend.new_qty) == (D("0.05"), D("0.03"))
    assert "resting at 98500" in answer.reason


async def test_an_amended_order_fills_at_its_new_price(desk: ApprovalDesk) -> None:
    """The replacement is a real order at the venue: the market coming down to it fills it, and the proposal too."""
    pid = await resting_limit(desk)
    assert (await desk.amend_order(pid, "bob", price=D("99500"))).ok
    await set_mark(desk, BTC, 99_400.0)
    assert desk.resting_orders() == []
    assert desk.state.account.position(BTC).qty == D("0.05")
    assert desk.state.proposals[pid].status is ProposalStatus.FILLED


async def test_a_second_amend_replaces_the_replacement(desk: ApprovalDesk) -> None:
    """Amending twice gives a second replacement id; only one order of the proposal ever rests."""
    pid = await resting_limit(desk)
    assert (await desk.amend_order(pid, "bob", price=D("98000"))).ok
    assert (await desk.amend_order(pid, "bob", price=D("97000"))).ok
    [order] = desk.resting_orders()
    assert order.request.client_order_id.endswith(f"{pid}-E-A2") and order.request.limit_price == D("97000")


async def test_the_kill_switch_cancels_the_replacement(desk: ApprovalDesk) -> None:
    """The kill switch sees the amended order like any other: after a kill nothing rests."""
    pid = await resting_limit(desk)
    assert (await desk.amend_order(pid, "bob", price=D("98000"))).ok
    report = await desk.kill("carol", "test")
    assert report.flat and desk.resting_orders() == []
    replacement = next(
        e.request.client_order_id
        for e in journal(desk)
        if isinstance(e, OrderSubmitted) and e.request.client_order_id.endswith("-A1")
    )
    assert desk.state.orders[replacement].status is OrderStatus.CANCELLED


async def test_amend_refuses_a_larger_quantity_and_nothing_changes(desk: ApprovalDesk) -> None:
    """More size is a new proposal: an amend that raises the quantity is refused, journaled, and the order stays."""
    pid = await resting_limit(desk)
    answer = await desk.amend_order(pid, "bob", qty=D("0.5"))
    assert not answer.ok and "lower the quantity, not raise it" in answer.reason
    [order] = desk.resting_orders()
    assert order.request.qty == D("0.05") and order.request.limit_price == D("99000")
    assert any(isinstance(e, CommandRefused) and e.command == "amend_order" for e in journal(desk))


async def test_amend_refuses_nothing_to_change_and_an_absurd_price(desk: ApprovalDesk) -> None:
    """An amend that changes nothing, or a price far from the market, is refused before anything is cancelled."""
    pid = await resting_limit(desk)
    assert "nothing to change" in (await desk.amend_order(pid, "bob", price=D("99000"))).reason
    with pytest.raises(InvalidCommand, match="away from the market price"):
        await desk.amend_order(pid, "bob", price=D("1"))
    assert len(desk.resting_orders()) == 1


async def test_cancel_and_amend_name_what_they_cannot_find_or_may_not_touch(desk: ApprovalDesk) -> None:
    """An unknown order, an ambiguous proposal (stop and take-profit both rest) and HALTED are refused in words."""
    assert "no resting order P999999" in (await desk.cancel_order("P999999", "bob")).reason
    result = await desk.propose(request(stop="97000", take_profit="104000"))
    assert result.proposal is not None
    pid = result.proposal.id
    assert (await desk.approve(pid, "alice", version=1)).ok
    ambiguous = await desk.cancel_order(pid, "bob")
    assert not ambiguous.ok and f"{pid}-S" in ambiguous.reason and f"{pid}-T" in ambiguous.reason
    moved = await desk.amend_order(f"{pid}-S", "bob", price=D("96000"), reason="give it room")
    assert moved.ok, moved.reason
    stop = next(o for o in desk.resting_orders() if o.request.purpose is OrderPurpose.STOP)
    assert stop.request.trigger_price == D("96000") and stop.request.reduce_only
    await desk.kill("carol", "done")
    assert desk.state.trading_state is TradingState.HALTED
    assert "HALTED" in (await desk.cancel_order(f"{pid}-T", "bob")).reason


async def test_the_proposal_story_says_who_amended_and_cancelled_its_order(desk: ApprovalDesk) -> None:
    """`guard journal show` tells the amend and the cancel with who asked and why, and ends FAILED (nothing
    filled)."""
    pid = await resting_limit(desk)
    assert (await desk.amend_order(pid, "bob", price=D("98000"), reason="lower")).ok
    assert (await desk.cancel_order(pid, "carol", "gone")).ok
    story = trace(desk.journal.path, pid)
    texts = [step.text for step in story.steps]
    assert any("amended by bob (price 99000 -> 98000.0, qty 0.050 -> 0.050)" in t and "lower" in t for t in texts)
    assert any(t == "entry order cancel asked by carol: gone" for t in texts)
    assert story.status is ProposalStatus.FAILED
