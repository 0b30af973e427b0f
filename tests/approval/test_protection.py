"""A filled entry gets the stop and take-profit its proposal was approved with, whenever and however it fills:
resting then filled by the market, in parts, after an amend, and never while the kill switch owns the book."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path

import pytest

from guard.approval import protection
from guard.approval.desk import REARM_PHRASE, ApprovalDesk
from guard.domain import (
    ZERO,
    Book,
    OrderPurpose,
    OrderStatus,
    OrderType,
    OverrideEdits,
    ProposalStatus,
    Side,
    TradingState,
)
from guard.events import OrderFilled, OrderSubmitted, TradingStateChanged
from guard.journal.chain import read_entries
from tests.builders import BTC, close, make_desk, request, set_mark

STOP, TAKE_PROFIT = D("97000"), D("104000")


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[ApprovalDesk]:
    d = await make_desk(tmp_path / "journal.db")
    yield d
    close(d)


def protective(desk: ApprovalDesk, pid: str) -> list[OrderSubmitted]:
    """The stops and take-profits journaled for proposal `pid`, in order."""
    return [
        e.event
        for e in read_entries(desk.journal.path)
        if isinstance(e.event, OrderSubmitted)
        and e.event.request.proposal_id == pid
        and e.event.request.purpose in (OrderPurpose.STOP, OrderPurpose.TAKE_PROFIT)
    ]


def placed_qty(orders: list[OrderSubmitted], purpose: OrderPurpose) -> D:
    return sum((o.request.qty for o in orders if o.request.purpose is purpose), ZERO)


async def resting_override(desk: ApprovalDesk, limit: str = "99000") -> str:
    """A proposal with a stop and take-profit, overridden to a buy limit below the market: it rests."""
    result = await desk.propose(request(stop=str(STOP), take_profit=str(TAKE_PROFIT)))
    assert result.proposal is not None, result.reason
    pid = result.proposal.id
    answer = await desk.override(pid, "alice", OverrideEdits(limit_price=D(limit)), version=1)
    assert (answer.ok, answer.reason) == (True, f"placed, resting at {limit}")
    return pid


async def test_a_resting_limit_the_market_falls_through_gets_its_stop_and_take_profit(desk: ApprovalDesk) -> None:
    """The override rests with no protection; the market falls through its price, the entry fills, and the
    position carries a reduce-only stop and take-profit at the proposal's levels for exactly the filled qty."""
    pid = await resting_override(desk)
    assert protective(desk, pid) == []
    await set_mark(desk, BTC, 98_900.0)
    assert desk.state.proposals[pid].status is ProposalStatus.FILLED
    held = desk.state.account.position(BTC)
    assert held is not None and held.qty == D("0.05")
    orders = protective(desk, pid)
    assert [(o.request.purpose, o.request.order_type, o.request.trigger_price) for o in orders] == [
        (OrderPurpose.STOP, OrderType.STOP_MARKET, STOP),
        (OrderPurpose.TAKE_PROFIT, OrderType.TAKE_PROFIT_MARKET, TAKE_PROFIT),
    ]
    for o in orders:
        r = o.request
        assert (r.qty, r.side, r.reduce_only) == (D("0.05"), Side.SELL, True)
        assert desk.state.orders[r.client_order_id].status is OrderStatus.OPEN
    assert {o.request.purpose for o in desk.resting_orders()} == {OrderPurpose.STOP, OrderPurpose.TAKE_PROFIT}


async def test_the_stop_placed_after_a_late_fill_works(desk: ApprovalDesk) -> None:
    """The protection is a real order at the venue: the market falling to the stop closes the position."""
    pid = await resting_override(desk)
    await set_mark(desk, BTC, 98_900.0)
    await set_mark(desk, BTC, 96_900.0)
    assert desk.state.account.position(BTC) is None
    stop = next(o for o in protective(desk, pid) if o.request.purpose is OrderPurpose.STOP)
    assert desk.state.orders[stop.request.client_order_id].status is OrderStatus.FILLED


async def test_a_partial_fill_then_the_rest_protects_each_part_and_never_more(desk: ApprovalDesk) -> None:
    """A limit at the ask fills 0.02 against a thin book and rests 0.03: 0.02 is protected at once; when the book
    comes down to it the rest fills and 0.03 more is protected; later prices and a restart place nothing more."""
    await desk.on_market(Book(BTC, desk.clock.now_ms(), bids=((99_990.0, 1.0),), asks=((100_000.0, 0.02),)))
    result = await desk.propose(request(stop=str(STOP), take_profit=str(TAKE_PROFIT), limit_price="100000"))
    assert result.proposal is not None, result.reason
    pid = result.proposal.id
    assert (await desk.approve(pid, "alice", version=1)).ok
    entry = desk.state.orders[desk.state.proposals[pid].entry_order or ""]
    assert (entry.filled, entry.status) == (D("0.02"), OrderStatus.PARTIALLY_FILLED)
    first = protective(desk, pid)
    assert [o.request.qty for o in first] == [D("0.02"), D("0.02")]

    await desk.on_market(Book(BTC, desk.clock.now_ms(), bids=((99_900.0, 1.0),), asks=((99_950.0, 1.0),)))
    assert entry.status is OrderStatus.FILLED
    both = protective(desk, pid)
    assert [o.request.qty for o in both[2:]] == [D("0.03"), D("0.03")]
    assert len({o.request.client_order_id for o in both}) == 4  # each part has orders of its own

    await set_mark(desk, BTC, 99_800.0)
    journal_path = desk.journal.path
    await desk.stop()
    close(desk)
    again = await make_desk(journal_path, clock=desk.clock)
    try:
        orders = protective(again, pid)
        held = again.state.account.position(BTC)
        assert held is not None and held.qty == D("0.05")
        assert placed_qty(orders, OrderPurpose.STOP) == placed_qty(orders, OrderPurpose.TAKE_PROFIT) == held.qty
    finally:
        close(again)


async def test_an_amended_entry_that_fills_is_protected(desk: ApprovalDesk) -> None:
    """The replacement an amend put on the book fills: the position gets the proposal's stop and take-profit,
    named after the proposal (not after the replacement's id)."""
    pid = await resting_override(desk)
    assert (await desk.amend_order(pid, "bob", price=D("99500"), qty=D("0.04"), reason="closer")).ok
    await set_mark(desk, BTC, 99_400.0)
    assert desk.state.proposals[pid].status is ProposalStatus.FILLED
    orders = protective(desk, pid)
    assert [(o.request.trigger_price, o.request.qty) for o in orders] == [(STOP, D("0.04")), (TAKE_PROFIT, D("0.04"))]
    assert [o.request.client_order_id.rsplit("-", 1)[1] for o in orders] == ["S", "T"]


async def test_a_fill_learnt_while_halted_places_nothing_until_re_armed(desk: ApprovalDesk) -> None:
    """The daemon dies with the limit resting and restarts HALTED (an unclean exit leaves positions as they are);
    the entry fills and nothing is placed; re-armed, the position still held gets its stop and take-profit."""
    pid = await resting_override(desk)
    close(desk)  # no clean stop: as if the process died
    again = await make_desk(desk.journal.path, clock=desk.clock)
    try:
        assert again.state.trading_state is TradingState.HALTED
        await set_mark(again, BTC, 98_900.0)
        assert again.state.proposals[pid].status is ProposalStatus.FILLED
        assert protective(again, pid) == []
        assert (await again.rearm("alice", REARM_PHRASE, "reviewed the restart")).ok
        assert [o.request.qty for o in protective(again, pid)] == [D("0.05"), D("0.05")]
    finally:
        close(again)


async def test_after_a_kill_nothing_is_placed_for_a_flattened_position(desk: ApprovalDesk) -> None:
    """A kill flattens what filled while HALTED: re-armed, there is no position, so no stop or take-profit."""
    pid = await resting_override(desk)
    await desk.recorder.commit(
        [TradingStateChanged(desk.clock.now_ms(), TradingState.ACTIVE, TradingState.HALTED, "test halt", "guard")]
    )
    await set_mark(desk, BTC, 98_900.0)
    report = await desk.kill("carol", "out")
    assert report.flat and desk.state.account.position(BTC) is None
    assert (await desk.rearm("alice", REARM_PHRASE, "reviewed")).ok
    assert protective(desk, pid) == [] and desk.resting_orders() == []


async def test_the_kill_switch_cancels_protection_placed_after_a_late_fill(desk: ApprovalDesk) -> None:
    """The stop and take-profit a late fill placed are on record: a kill cancels them and flattens."""
    pid = await resting_override(desk)
    await set_mark(desk, BTC, 98_900.0)
    report = await desk.kill("carol", "done")
    assert report.flat and desk.resting_orders() == []
    assert all(
        desk.state.orders[o.request.client_order_id].status is OrderStatus.CANCELLED for o in protective(desk, pid)
    )


async def test_a_stop_the_operator_cancelled_is_not_put_back_by_the_next_fill(desk: ApprovalDesk) -> None:
    """An operator's cancel of a part's stop is their decision: the rest filling later is protected for the rest
    only, and the cancelled stop is not placed again."""
    await desk.on_market(Book(BTC, desk.clock.now_ms(), bids=((99_990.0, 1.0),), asks=((100_000.0, 0.02),)))
    result = await desk.propose(request(stop=str(STOP), take_profit=str(TAKE_PROFIT), limit_price="100000"))
    assert result.proposal is not None, result.reason
    pid = result.proposal.id
    assert (await desk.approve(pid, "alice", version=1)).ok
    assert (await desk.cancel_order(f"{pid}-S", "bob", "I will watch it myself")).ok
    await desk.on_market(Book(BTC, desk.clock.now_ms(), bids=((99_900.0, 1.0),), asks=((99_950.0, 1.0),)))
    stops = [o.request for o in protective(desk, pid) if o.request.purpose is OrderPurpose.STOP]
    assert [(s.client_order_id.rsplit("-", 1)[1], s.qty) for s in stops] == [("S", D("0.02")), ("S2", D("0.03"))]
    assert placed_qty(protective(desk, pid), OrderPurpose.TAKE_PROFIT) == D("0.05")


async def test_an_entry_fill_and_its_stop_and_take_profit_intents_are_committed_together(tmp_path: Path) -> None:
    """The commit that puts an entry's fill on disk carries its stop's and take-profit's intents after it: a
    filled position is never on record without its protection on the way (and it costs one commit, not two)."""
    desk = await make_desk(tmp_path / "journal.db", threaded=False)  # inline: each commit is told on its own
    commits: list[list[str]] = []
    desk.subscribe(lambda entries: commits.append([_kind(e.event) for e in entries]))
    result = await desk.propose(request(stop=str(STOP), take_profit=str(TAKE_PROFIT)))
    assert result.proposal is not None, result.reason
    assert (await desk.approve(result.proposal.id, "alice")).ok
    close(desk)
    (with_fill,) = [c for c in commits if "OrderFilled ENTRY" in c]
    after_fill = with_fill[with_fill.index("OrderFilled ENTRY") + 1 :]
    assert after_fill == ["OrderSubmitted STOP", "OrderSubmitted TAKE_PROFIT"]


def _kind(event: object) -> str:
    if isinstance(event, OrderSubmitted):
        return f"OrderSubmitted {event.request.purpose.name}"
    if isinstance(event, OrderFilled):
        return "OrderFilled ENTRY" if "-E" in event.fill.client_order_id else "OrderFilled"
    return type(event).__name__


class _Lines:
    """A logger at `level` that keeps the lines it is given."""

    def __init__(self, level: int) -> None:
        self.level = level
        self.lines: list[tuple[str, dict[str, object]]] = []

    def bind(self) -> _Lines:
        return self

    def is_enabled_for(self, level: int) -> bool:
        return level >= self.level

    def info(self, event: str, **fields: object) -> None:
        self.lines.append((event, fields))

    error = info


@pytest.mark.parametrize("level", [logging.INFO, logging.ERROR])
async def test_each_protective_order_placed_is_logged_with_what_it_is_when_info_is_on(
    desk: ApprovalDesk, monkeypatch: pytest.MonkeyPatch, level: int
) -> None:
    """The line says which order it is, for how much, at what trigger and how the venue took it; below the level
    no line is made (a replay places thousands)."""
    lines = _Lines(level)
    monkeypatch.setattr(protection, "log", lines)
    pid = await resting_override(desk)
    await set_mark(desk, BTC, 98_900.0)
    ids = [o.request.client_order_id for o in protective(desk, pid)]
    expected = [
        (
            "entry_protected",
            {
                "status": "OPEN",
                "reports": 1,
                "proposal_id": pid,
                "client_order_id": cid,
                "purpose": purpose,
                "qty": "0.050",
                "trigger": trigger,
                "why": "entry filled",
            },
        )
        for cid, purpose, trigger in zip(ids, ("stop", "take_profit"), ("97000", "104000"), strict=True)
    ]
    assert lines.lines == (expected if level == logging.INFO else [])
