"""One proposal per idea: a repeated model signal moves its pending proposal; duplicate marks are judged again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from guard.approval.desk import ACKNOWLEDGMENT_PHRASES, ApprovalDesk
from guard.domain import AcknowledgmentKind, ProposalStatus, Verdict
from guard.events import ProposalQueued, ProposalRepriced
from guard.journal.chain import read_entries
from tests.builders import BTC, close, make_desk, request, set_mark


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[ApprovalDesk]:
    d = await make_desk(tmp_path / "journal.db")
    kind = AcknowledgmentKind.MODEL_PROPOSALS
    assert (await d.acknowledge("alice", kind, ACKNOWLEDGMENT_PHRASES[kind])).ok
    yield d
    close(d)


def events(desk: ApprovalDesk, kind: type) -> list:
    return [e.event for e in read_entries(desk.journal.path) if isinstance(e.event, kind)]


def duplicate(desk: ApprovalDesk, pid: str) -> Verdict:
    return next(c.verdict for c in desk.state.proposals[pid].proposal.checks if c.name == "duplicate")


async def test_ideas_the_same_signal_again_leaves_the_pending_version_as_it_is(desk: ApprovalDesk) -> None:
    """The model repeats itself with nothing an operator would weigh changed (confidence a point up, size 4 %
    larger, stops following the price by a few ticks): no second proposal, no new version, nothing journaled."""
    first = await desk.propose(request(source="model", stop="99000", take_profit="102000"))
    assert first.ok and first.proposal is not None
    again = await desk.propose(
        request(source="model", confidence=0.71, qty="0.052", stop="99010", take_profit="102010")
    )
    assert not again.ok and "nothing changed" in again.reason
    assert [r.proposal.id for r in desk.state.pending()] == [first.proposal.id]
    assert desk.state.proposals[first.proposal.id].proposal.version == 1
    assert len(events(desk, ProposalQueued)) == 1 and not events(desk, ProposalRepriced)


async def test_ideas_a_changed_signal_moves_the_pending_proposal_as_a_new_version(desk: ApprovalDesk) -> None:
    """More size, more confidence, a price past the collar: each repeat is a new version of the same proposal
    (once the version before has stood 10 s), which the operator must review again (an approval of the version
    they saw is refused)."""
    pid = (await desk.propose(request(source="model"))).proposal.id  # type: ignore[union-attr]
    early = await desk.propose(request(source="model", qty="0.08", confidence=0.8))
    assert not early.ok and desk.state.proposals[pid].proposal.version == 1  # v1 is still being read
    desk.clock.advance(10)
    bigger = await desk.propose(request(source="model", qty="0.08", confidence=0.8))
    assert bigger.ok and bigger.proposal is not None and (bigger.proposal.id, bigger.proposal.version) == (pid, 2)
    await set_mark(desk, BTC, 101_000)  # 100 bps: past the 50 bps collar
    desk.clock.advance(10)
    moved = await desk.propose(request(source="model", qty="0.08", confidence=0.8))
    assert moved.ok and moved.proposal is not None and moved.proposal.version == 3
    assert [r.proposal.id for r in desk.state.pending()] == [pid]
    reasons = [e.reason for e in events(desk, ProposalRepriced)]
    assert reasons[0] == "a new signal: qty 0.050 -> 0.080; confidence 70% -> 80%"
    assert reasons[1].startswith("a new signal: moved 100 bps")
    refused = await desk.approve(pid, "alice", version=1)
    assert not refused.ok and "now version 3" in refused.reason
    assert (await desk.approve(pid, "alice", version=3)).ok


async def test_ideas_a_persons_second_proposal_stays_its_own_and_is_marked_duplicate(desk: ApprovalDesk) -> None:
    """Only the model's repeats refresh: a person's second proposal for the same symbol and side is queued,
    marked a duplicate of the first, and an approval of it is refused with that reason."""
    first = (await desk.propose(request())).proposal.id  # type: ignore[union-attr]
    second = (await desk.propose(request(qty="0.02"))).proposal.id  # type: ignore[union-attr]
    assert first != second and duplicate(desk, second) is Verdict.BLOCK
    refused = await desk.approve(second, "alice", version=1)
    assert not refused.ok and f"duplicate: duplicates {first}" in refused.reason
    assert desk.state.proposals[second].status is ProposalStatus.PENDING


@pytest.mark.parametrize("end", ["approve", "reject", "expire"])
async def test_ideas_a_duplicate_is_judged_again_when_the_older_proposal_ends(desk: ApprovalDesk, end: str) -> None:
    """Once the older proposal fills, is rejected or expires, the newer one gets a new version with fresh checks
    (no longer a duplicate, and the fill's exposure counted): an approval of the version shown marked is refused,
    the new version can be approved."""
    first = (await desk.propose(request())).proposal.id  # type: ignore[union-attr]
    desk.clock.advance(10)
    second = (await desk.propose(request(qty="0.02"))).proposal.id  # type: ignore[union-attr]
    if end == "approve":
        assert (await desk.approve(first, "alice", version=1)).ok
    elif end == "reject":
        assert (await desk.reject(first, "alice", reason="no")).ok
    else:
        desk.clock.advance(25)  # the first is 35 s old, the second 25 s: only the first is past its 30 s
        assert await desk.expire_due() == 1
    record = desk.state.proposals[second]
    assert record.status is ProposalStatus.PENDING and record.proposal.version == 2
    assert duplicate(desk, second) is Verdict.PASS
    (again,) = events(desk, ProposalRepriced)
    assert again.reason.startswith(f"{first} ended (")
    stale = await desk.approve(second, "alice", version=1)
    assert not stale.ok and "now version 2" in stale.reason
    assert (await desk.approve(second, "alice", version=2)).ok
