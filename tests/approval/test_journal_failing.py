"""The journal failing is a state, not a crash: trading HALTS with the reason, commands that need a record are
refused, the kill switch still flattens, nothing acknowledged is lost, and trading resumes only after the
journal writes again and a person re-arms."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from guard.approval.desk import REARM_PHRASE, ApprovalDesk
from guard.domain import Bar, MarkPrice, ProposalStatus, TradingState
from guard.errors import JournalFailing
from guard.events import (
    BarRecorded,
    DecisionRecorded,
    JournalFailed,
    JournalRecovered,
    KillCompleted,
    OrderFilled,
)
from guard.journal.chain import read_entries, verify
from tests.api.support import wait_until
from tests.builders import BTC, ETH, close, make_desk, request


def _pages(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return int(conn.execute("PRAGMA page_count").fetchone()[0])


async def _fill_until_failing(desk: ApprovalDesk) -> None:
    """Proposals and rejections until the journal reaches its page limit and a write fails."""
    for _ in range(2_000):
        try:
            result = await desk.propose(request(BTC, qty="0.001", leverage="1"))
            if result.ok and result.proposal is not None:
                await desk.reject(result.proposal.id, "alice", reason="filler")
        except JournalFailing:
            return
        if desk.journal.failing is not None:
            return
    raise AssertionError("the journal never filled up")


async def _open_positions(desk: ApprovalDesk) -> list[str]:
    acknowledged = []
    for symbol, qty in ((BTC, "0.05"), (ETH, "1")):
        proposed = await desk.propose(request(symbol, qty=qty, leverage="2"))
        assert proposed.ok and proposed.proposal is not None, proposed.reason
        approved = await desk.approve(proposed.proposal.id, "alice", version=1)
        assert approved.ok, approved.reason
        acknowledged.append(proposed.proposal.id)
    return acknowledged


async def test_full_journal_halts_keeps_killing_and_resumes_only_after_rearm(tmp_path: Path) -> None:
    """A journal that runs out of space: HALTED 'journal failing', approvals and re-arm refused, the market
    keeps flowing, the kill still flattens; once space returns, what happened meanwhile is written, trading
    stays HALTED until a person re-arms, and a restart rebuilds a flat book with every decision kept."""
    path = tmp_path / "journal.db"
    desk = await make_desk(path)
    acknowledged = await _open_positions(desk)
    assert len(desk.state.account.positions) == 2

    desk.journal.page_limit = _pages(path)
    await _fill_until_failing(desk)
    await wait_until(lambda: desk.state.trading_state is TradingState.HALTED)
    assert desk.state.state_reason.startswith("journal failing")

    pending = await desk.propose(request(ETH, qty="0.1", leverage="1"))
    assert not pending.ok and "journal is failing" in pending.reason
    refused = await desk.rearm("alice", REARM_PHRASE)
    assert not refused.ok and "journal is failing" in refused.reason

    # The market pump goes on: a closed bar is left out of the record, and nothing raises.
    bar = Bar(BTC, "1m", desk.clock.now_ms(), 100_000, 100_100, 99_900, 100_050, 3.0)
    assert desk.recorder.record([BarRecorded(desk.clock.now_ms(), bar)], durable=False, failing="drop") is None
    await desk.on_market(MarkPrice(BTC, desk.clock.now_ms(), 100_050.0))

    report = await desk.kill("alice", "disk full drill")
    assert report.flat and not desk.state.account.positions
    assert await desk.broker.positions() == []

    desk.journal.page_limit = None
    await wait_until(lambda: desk.journal.failing is None, within=10)
    await wait_until(lambda: "writes again" in desk.state.state_reason)
    assert desk.state.trading_state is TradingState.HALTED
    rearmed = await desk.rearm("alice", REARM_PHRASE, "space freed")
    assert rearmed.ok, rearmed.reason
    await desk.stop("test over")
    close(desk)

    assert verify(path).ok
    events = [e.event for e in read_entries(path)]
    decided = {e.proposal_id for e in events if isinstance(e, DecisionRecorded)}
    assert set(acknowledged) <= decided
    failed_at = next(i for i, e in enumerate(events) if isinstance(e, JournalFailed))
    recovered_at = next(i for i, e in enumerate(events) if isinstance(e, JournalRecovered))
    kill_done = next(i for i, e in enumerate(events) if isinstance(e, KillCompleted))
    assert failed_at < kill_done < recovered_at
    assert any(isinstance(e, OrderFilled) for e in events[failed_at:recovered_at])

    restarted = await make_desk(path)
    assert not restarted.state.account.positions
    assert not restarted.state.open_orders()
    assert restarted.state.trading_state is TradingState.ACTIVE  # re-armed, then stopped cleanly
    close(restarted)


async def test_an_approval_whose_decision_could_not_be_recorded_sends_nothing(tmp_path: Path) -> None:
    """An approval whose durable commit fails is refused, its order never leaves, and the record says so."""
    path = tmp_path / "journal.db"
    desk = await make_desk(path)
    proposed = await desk.propose(request(BTC, qty="0.01", leverage="1"))
    assert proposed.ok and proposed.proposal is not None
    conn = sqlite3.connect(path)
    conn.execute("CREATE TRIGGER block BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk says no'); END;")
    conn.close()
    with pytest.raises(JournalFailing, match="disk says no"):
        await desk.approve(proposed.proposal.id, "alice", version=1)
    assert desk.state.proposals[proposed.proposal.id].status is ProposalStatus.FAILED
    assert not desk.state.account.positions
    assert await desk.broker.positions() == []
    close(desk)
