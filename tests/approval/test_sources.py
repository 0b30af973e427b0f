"""Proposal sources at the desk: graded on their claims like the model, paused on the record, latched when they
flood, and resumed only by a person."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from guard.api.clients import Presence
from guard.api.hub import Hub
from guard.api.protocol import ModelStatus
from guard.approval.desk import ApprovalDesk
from guard.clock import TestClock
from guard.domain import Bar, ProposalStatus
from guard.events import ProposalRefused, SourcePaused, SourceResumed
from guard.journal.chain import read_entries
from guard.tui.widgets.card import DecisionCard
from tests.builders import BTC, close, make_desk, request

PRICE = 100_000.0


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[ApprovalDesk]:
    d = await make_desk(tmp_path / "journal.db", marks={BTC: PRICE})
    yield d
    close(d)


def journal(desk: ApprovalDesk) -> list:
    return [e.event for e in read_entries(desk.journal.path)]


def hub(desk: ApprovalDesk) -> Hub:
    return Hub(
        desk,
        Presence(),
        exchange="sim",
        broker="paper",
        model_status=lambda: ModelStatus(False, "", None, False, False, ""),
    )


async def claim(desk: ApprovalDesk, source: str = "tv", confidence: float = 0.8) -> str:
    """A source's buy at 100,000 claiming `confidence` that 101,000 comes before 99,000."""
    result = await desk.propose(
        request(qty="0.01", leverage="2", stop="99000", take_profit="101000", confidence=confidence, source=source)
    )
    assert result.ok and result.proposal is not None, result.reason
    return result.proposal.id


async def settle(desk: ApprovalDesk, hit: bool) -> None:
    """A minute bar that touches the take-profit (a hit) or the stop (a miss), closing where it opened."""
    assert isinstance(desk.clock, TestClock)
    desk.clock.advance(60)
    high, low = (101_500.0, 99_500.0) if hit else (100_500.0, 98_500.0)
    await desk.on_market(Bar(BTC, "1m", desk.clock.now_ms(), PRICE, high, low, PRICE, 1.0))


async def test_a_source_claiming_80_percent_right_40_percent_over_30_is_paused_on_the_record(
    desk: ApprovalDesk,
) -> None:
    """Twelve hits in thirty claims of 80 %: not paused before 30 have settled, paused on the 30th, on the record
    (SourcePaused "record"), shown on the card of its pending proposal, refused meanwhile, resumed by a person."""
    outcomes = [i % 5 in (1, 3) for i in range(30)]  # 12 hits, spread out
    assert sum(outcomes) == 12
    for n, hit in enumerate(outcomes, start=1):
        pid = await claim(desk)
        await settle(desk, hit)
        if n < 30:
            assert "tv" not in desk.state.paused_sources, f"paused after only {n} settled"
            assert isinstance(desk.clock, TestClock)
            desk.clock.advance(31)
            await desk.expire_due()
    paused = [e for e in journal(desk) if isinstance(e, SourcePaused)]
    assert [(e.source, e.cause) for e in paused] == [("tv", "record")]
    assert "claimed 80%" in paused[0].reason

    view = hub(desk).proposal_view(desk.state.proposals[pid])
    assert view.source is not None and view.source.paused
    record = next(s for s in hub(desk).status().sources if s.name == "tv")
    assert (record.settled, record.hit_rate, record.at(0.8)) == (30, pytest.approx(0.4), (pytest.approx(0.4), 30))
    card = DecisionCard()
    card.view, card.sources = view, hub(desk).status().sources
    text = card.render(wide=True).plain
    assert "From tv" in text and "claims 80%; right 40% of 30 settled" in text and "SOURCE PAUSED" in text
    assert any(s.name == "tv" and s.paused for s in hub(desk).status().sources)

    refused = await desk.propose(request(qty="0.01", confidence=0.8, source="tv"))
    assert not refused.ok and "source tv is paused (record)" in refused.reason
    assert isinstance(journal(desk)[-1], ProposalRefused)
    other = await desk.propose(request(qty="0.01", confidence=0.8, source="another-bot"))
    assert other.ok, "one source's pause is its own"

    resumed = await desk.resume_source("tv", "alice", "reviewed its strategy")
    assert resumed.ok
    assert [(e.source, e.operator) for e in journal(desk) if isinstance(e, SourceResumed)] == [("tv", "alice")]
    assert desk.state.proposals[pid].status is ProposalStatus.PENDING
    assert (await claim(desk)) != pid


async def test_a_claim_is_shown_claimed_and_uncalibrated_until_the_source_has_a_record(desk: ApprovalDesk) -> None:
    """Before anything of the source's settled, its card says "claimed, uncalibrated"; after, its record."""
    card = DecisionCard()
    pid = await claim(desk, "fresh")
    card.view, card.sources = hub(desk).proposal_view(desk.state.proposals[pid]), hub(desk).status().sources
    assert "From fresh — no model figures: claims 80%, claimed, uncalibrated" in card.render(wide=True).plain
    await settle(desk, hit=True)
    card.view, card.sources = hub(desk).proposal_view(desk.state.proposals[pid]), hub(desk).status().sources
    assert "claims 80%; right 100% of 1 settled at it" in card.render(wide=True).plain


async def test_a_source_as_good_as_its_claims_is_not_paused(desk: ApprovalDesk) -> None:
    """Claims of 80 % right 80 % of the time over 40: no pause."""
    assert isinstance(desk.clock, TestClock)
    for i in range(40):
        await claim(desk)
        await settle(desk, hit=i % 5 != 0)
        desk.clock.advance(31)
        await desk.expire_due()
    assert desk.sources.standing("tv").settled == 40
    assert not desk.state.paused_sources


async def test_a_pause_survives_a_restart(tmp_path: Path) -> None:
    """A source paused on the record is still paused when the desk is rebuilt from its journal."""
    path = tmp_path / "journal.db"
    desk = await make_desk(path, marks={BTC: PRICE})
    for _ in range(11):
        await desk.propose(request(qty="0.01", source="flooder"))
    assert "flooder" in desk.state.paused_sources
    close(desk)
    again = await make_desk(path, marks={BTC: PRICE})
    try:
        refused = await again.propose(request(qty="0.01", source="flooder"))
        assert not refused.ok and "paused (flood)" in refused.reason
    finally:
        close(again)


async def test_a_source_sending_100_proposals_a_second_is_throttled_and_latched(desk: ApprovalDesk) -> None:
    """100 proposals within one second: the first ten are taken, the eleventh latches the source (one
    SourcePaused "flood"), the rest are refused; a second later it is still latched until a person resumes it."""
    answers = [await desk.propose(request(qty="0.01", source="flooder")) for _ in range(100)]
    assert [a.ok for a in answers] == [True] * 10 + [False] * 90
    assert all("throttled and latched" in a.reason for a in answers[10:])
    paused = [e for e in journal(desk) if isinstance(e, SourcePaused)]
    assert [(e.source, e.cause) for e in paused] == [("flooder", "flood")]
    assert isinstance(desk.clock, TestClock)
    desk.clock.advance(5)
    assert not (await desk.propose(request(qty="0.01", source="flooder"))).ok
    assert (await desk.propose(request(qty="0.01", source="operator"))).ok
    assert (await desk.resume_source("flooder", "alice", "fixed its loop")).ok
    assert (await desk.propose(request(qty="0.01", source="flooder"))).ok


async def test_resuming_a_source_that_is_not_paused_is_refused(desk: ApprovalDesk) -> None:
    """Nothing to resume: refused, with the reason."""
    answer = await desk.resume_source("tv", "alice", "why not")
    assert not answer.ok and "not paused" in answer.reason
