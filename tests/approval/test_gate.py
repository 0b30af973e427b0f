"""The decision gate: one answer, in one wording, when a proposal is queued, shown and decided on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from guard.approval.desk import ApprovalDesk
from guard.approval.gate import SCAN_PENDING_AT_MOST, pending_index, pending_like
from guard.approval.records import ProposalRecord
from guard.clock import TestClock
from guard.domain import FeedHealth, ProposalStatus, Side
from guard.events import CommandRefused, ProposalRefused, ProposalRepriced
from guard.journal.chain import read_entries
from tests.builders import BTC, ETH, SOL, close, make_desk, request, set_mark
from tests.risk.test_checks import proposal


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[ApprovalDesk]:
    d = await make_desk(tmp_path / "journal.db")
    yield d
    close(d)


async def queued(desk: ApprovalDesk, **kw: object) -> str:
    result = await desk.propose(request(**kw))  # type: ignore[arg-type]
    assert result.ok and result.proposal is not None, result.reason
    return result.proposal.id


def refusals(desk: ApprovalDesk) -> list[str]:
    """Every refusal on record: of proposals, and of commands."""
    events = [e.event for e in read_entries(desk.journal_path)]
    return [e.reason for e in events if isinstance(e, ProposalRefused | CommandRefused)]


async def test_gate_unhealthy_feed_reads_the_same_when_queued_shown_and_decided(desk: ApprovalDesk) -> None:
    """A stale feed refuses a new proposal, greys out the queued one and refuses its approval, in one sentence;
    a decision on a bad feed is refused before anything is re-priced, however far the price moved."""
    pid = await queued(desk)
    await set_mark(desk, BTC, 103_000)  # far past the collar
    desk.set_feed_health(FeedHealth(BTC, False, "stale: no data for 16.0 s"))
    why = f"market data for {BTC} is not healthy: stale: no data for 16.0 s"
    assert (await desk.propose(request())).reason == why
    assert desk.approvable(desk.state.proposals[pid]) == why
    assert (await desk.approve(pid, "alice")).reason == why
    assert refusals(desk) == [why, why]
    assert not any(isinstance(e.event, ProposalRepriced) for e in read_entries(desk.journal_path))
    assert desk.state.proposals[pid].proposal.version == 1


async def test_gate_proposal_past_its_expiry_is_not_approvable_before_the_sweep(tmp_path: Path) -> None:
    """Past its expiry a proposal is shown as expired at once, not after the next sweep; deciding on it says the
    same and expires it."""
    clock = TestClock()
    desk = await make_desk(tmp_path / "j.db", clock)
    try:
        pid = await queued(desk)
        clock.advance(desk.settings.approval.ttl_seconds)
        assert desk.state.proposals[pid].status is ProposalStatus.PENDING
        assert desk.approvable(desk.state.proposals[pid]) == f"{pid} expired"
        assert (await desk.approve(pid, "alice")).reason == f"{pid} expired"
        assert desk.state.proposals[pid].status is ProposalStatus.EXPIRED
    finally:
        close(desk)


async def test_gate_decided_proposal_reads_the_same_in_the_view_and_to_a_second_approval(desk: ApprovalDesk) -> None:
    """The same approval sent twice: the second is refused with what the view says, and nothing executes twice."""
    pid = await queued(desk)
    assert (await desk.approve(pid, "alice")).status is ProposalStatus.FILLED
    again = await desk.approve(pid, "bob")
    shown = desk.approvable(desk.state.proposals[pid])
    assert not again.ok and again.reason == shown == f"{pid} is FILLED, not PENDING"
    assert len(desk.state.orders) == 1


async def test_gate_risk_blocks_read_the_same_in_the_view_and_the_decision(desk: ApprovalDesk) -> None:
    """A proposal the checks block is queued and shown blocked; approving it is refused with the same words."""
    pid = await queued(desk, leverage="10")
    why = desk.approvable(desk.state.proposals[pid])
    assert why.startswith("blocked by risk checks: leverage: 10x is above the conservative limit")
    assert (await desk.approve(pid, "alice")).reason == why


async def test_gate_halted_refuses_new_proposals_with_the_reason_and_ends_queued_ones(desk: ApprovalDesk) -> None:
    """After a kill a new proposal is refused with the halt's reason; a queued one is KILLED, which the view and a
    late approval both say."""
    pid = await queued(desk)
    await desk.kill("alice", "drill")
    assert (await desk.propose(request())).reason == "trading is HALTED (kill switch: drill): re-arm first"
    late = await desk.approve(pid, "alice")
    assert late.reason == desk.approvable(desk.state.proposals[pid]) == f"{pid} is KILLED, not PENDING"


def test_gate_pending_like_picks_out_what_the_index_holds_for_every_symbol_and_side() -> None:
    """A short queue is read directly and a long one through an index: both give the same proposals, in queue
    order, for every symbol and side (and none for a pair with nothing pending)."""
    pairs = [(BTC, Side.BUY), (ETH, Side.SELL), (BTC, Side.SELL), (BTC, Side.BUY), (ETH, Side.SELL), (BTC, Side.BUY)]
    pending = [
        ProposalRecord(proposal(id=f"P{i:06d}", symbol=symbol, side=side, created_at=i))
        for i, (symbol, side) in enumerate(pairs * 3)
    ]
    assert len(pending) > SCAN_PENDING_AT_MOST
    index = pending_index(pending)
    for symbol in (BTC, ETH, SOL):
        for side in Side:
            picked = pending_like(pending, symbol, side)
            assert picked == index.get((symbol, side), ())
            assert [p.id for p in picked] == [
                r.proposal.id for r in pending if (r.proposal.symbol, r.proposal.side) == (symbol, side)
            ]
