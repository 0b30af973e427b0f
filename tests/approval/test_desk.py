"""The approval desk, as an operator experiences it: propose, approve, override, reject, expire, kill, re-arm."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path

import pytest

from guard.approval.desk import ACKNOWLEDGMENT_PHRASES, REARM_PHRASE, ApprovalDesk
from guard.clock import TestClock
from guard.domain import (
    AcknowledgmentKind,
    DecisionKind,
    FeedHealth,
    OrderPurpose,
    OrderStatus,
    OverrideEdits,
    ProposalStatus,
    Side,
    TradingState,
    Verdict,
)
from guard.errors import InvalidCommand
from guard.events import (
    ApprovalCounted,
    CommandRefused,
    DecisionRecorded,
    OrderSubmitted,
    ProposalRepriced,
    RiskLimitChanged,
    ThrottleTripped,
)
from guard.journal.chain import read_entries, verify
from tests.builders import BTC, ETH, close, make_config, make_desk, request, set_mark


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[ApprovalDesk]:
    d = await make_desk(tmp_path / "journal.db")
    yield d
    close(d)


def journal(desk: ApprovalDesk) -> list:
    return [e.event for e in read_entries(desk.journal.path)]


async def queued(desk: ApprovalDesk, **kw: object) -> str:
    result = await desk.propose(request(**kw))
    assert result.ok, result.reason
    assert result.proposal is not None
    return result.proposal.id


async def test_approve_executes_after_decision_is_journaled(desk: ApprovalDesk) -> None:
    """Approve: the decision, with what was shown, is journaled before the order; it fills; stop and TP rest."""
    pid = await queued(desk, stop="97000", take_profit="104000")
    result = await desk.approve(pid, "alice", version=1, reason="looks right")
    assert result.ok and result.status is ProposalStatus.FILLED
    assert desk.state.account.position(BTC).qty == D("0.050")
    events = journal(desk)
    decision = next(i for i, e in enumerate(events) if isinstance(e, DecisionRecorded))
    entry = next(
        i for i, e in enumerate(events) if isinstance(e, OrderSubmitted) and e.request.purpose is OrderPurpose.ENTRY
    )
    assert decision < entry
    recorded = events[decision]
    assert (recorded.operator, recorded.kind, recorded.reason) == ("alice", DecisionKind.APPROVE, "looks right")
    assert recorded.shown.confidence == 0.7 and recorded.shown.price == D("100000.0") and recorded.shown.checks
    resting = {o.request.purpose: o.status for o in desk.state.open_orders()}
    assert resting == {OrderPurpose.STOP: OrderStatus.OPEN, OrderPurpose.TAKE_PROFIT: OrderStatus.OPEN}


async def test_expired_proposal_never_executes(desk: ApprovalDesk) -> None:
    """Past its time-to-live a proposal cannot be approved: no answer means no."""
    pid = await queued(desk)
    desk.clock.advance(30.0)
    result = await desk.approve(pid, "alice")
    assert not result.ok and "expired" in result.reason
    assert desk.state.proposals[pid].status is ProposalStatus.EXPIRED
    assert not any(isinstance(e, OrderSubmitted) for e in journal(desk))


async def test_expire_due_expires_unanswered_proposals(desk: ApprovalDesk) -> None:
    """The expiry sweep ends every proposal older than the TTL, with the reason."""
    first = await queued(desk)
    desk.clock.advance(20)
    second = await queued(desk, symbol=ETH, qty="1")
    desk.clock.advance(10)
    assert await desk.expire_due() == 1
    assert desk.state.proposals[first].status is ProposalStatus.EXPIRED
    assert "no answer means no" in desk.state.proposals[first].reason
    assert desk.state.proposals[second].status is ProposalStatus.PENDING


async def test_price_beyond_collar_reprices_and_needs_reconfirmation(desk: ApprovalDesk) -> None:
    """A move past the collar refuses the approval, re-prices the proposal, and only the new version may be approved."""
    pid = await queued(desk, stop="97000")
    await set_mark(desk, BTC, 101_000)
    refused = await desk.approve(pid, "alice", version=1)
    assert not refused.ok and "moved 100 bps" in refused.reason and "version 2" in refused.reason
    repriced = desk.state.proposals[pid].proposal
    assert (repriced.version, repriced.price, repriced.stop) == (2, D("101000.0"), D("97970.0"))
    assert any(isinstance(e, ProposalRepriced) for e in journal(desk))
    stale = await desk.approve(pid, "alice", version=1)
    assert not stale.ok and "now version 2" in stale.reason
    confirmed = await desk.approve(pid, "alice", version=2)
    assert confirmed.status is ProposalStatus.FILLED


@pytest.mark.parametrize(
    ("side", "mark", "passed"),
    [
        (Side.BUY, 99_840, "stop 99850"),
        (Side.BUY, 100_160, "take-profit 100150"),
        (Side.SELL, 100_160, "stop 100150"),
        (Side.SELL, 99_840, "take-profit 99850"),
    ],
)
async def test_a_stop_or_take_profit_the_market_already_passed_reprices_within_the_collar(
    desk: ApprovalDesk, side: Side, mark: int, passed: str
) -> None:
    """A move inside the collar that already reached the proposal's stop or take-profit would fill the entry
    and fire that order at once: the approval is refused and the proposal re-priced, as past the collar."""
    below, above = "99850", "100150"
    stop, take_profit = (below, above) if side is Side.BUY else (above, below)
    pid = await queued(desk, side=side, stop=stop, take_profit=take_profit)
    await set_mark(desk, BTC, mark)  # 16 bps: inside the 50 bps collar
    refused = await desk.approve(pid, "alice", version=1)
    assert not refused.ok and f"past {pid}'s {passed}" in refused.reason and "version 2" in refused.reason
    assert desk.state.proposals[pid].proposal.version == 2 and desk.state.account.positions == {}
    confirmed = await desk.approve(pid, "alice", version=2)
    assert confirmed.status is ProposalStatus.FILLED
    assert desk.state.account.position(BTC) is not None  # the re-priced stop and take-profit rest around the mark


async def test_risk_checks_run_again_at_decision_time(tmp_path: Path) -> None:
    """A proposal that passed when queued is blocked if the world changed before the decision."""
    desk = await make_desk(tmp_path / "j.db", config=make_config(risk={"max_gross_exposure": 10_000}))
    try:
        first = await queued(desk, qty="0.06")
        second = await queued(desk, symbol=ETH, qty="1.2")
        assert not desk.state.proposals[second].proposal.blocked
        assert (await desk.approve(first, "alice")).ok
        refused = await desk.approve(second, "alice")
        assert not refused.ok and "gross_exposure" in refused.reason
        assert desk.state.proposals[second].status is ProposalStatus.PENDING
    finally:
        close(desk)


async def test_override_smaller_needs_no_confirmation_and_records_diff(desk: ApprovalDesk) -> None:
    """Override to less size and leverage executes the edited proposal, with the diff on record."""
    pid = await queued(desk, qty="0.05", leverage="3")
    result = await desk.override(pid, "bob", OverrideEdits(qty=D("0.02"), leverage=D(2)), reason="smaller")
    assert result.status is ProposalStatus.FILLED
    assert desk.state.account.position(BTC).qty == D("0.02")
    decision = next(e for e in journal(desk) if isinstance(e, DecisionRecorded))
    assert decision.kind is DecisionKind.OVERRIDE
    assert decision.diff == ("qty 0.050 -> 0.02", "leverage 3 -> 2")
    assert decision.shown.qty == D("0.050") and decision.result.qty == D("0.02")
    assert not decision.confirmed_risk_increase


async def test_override_that_increases_risk_needs_its_own_confirmation(desk: ApprovalDesk) -> None:
    """More size, more leverage or a wider stop is refused unless the increase is confirmed."""
    pid = await queued(desk, stop="97000")
    for edits in (OverrideEdits(qty=D("0.1")), OverrideEdits(leverage=D(4)), OverrideEdits(stop=D(95_000))):
        refused = await desk.override(pid, "bob", edits)
        assert not refused.ok and "increases risk" in refused.reason
    assert desk.state.proposals[pid].status is ProposalStatus.PENDING
    done = await desk.override(pid, "bob", OverrideEdits(qty=D("0.1")), confirm_risk_increase=True)
    assert done.status is ProposalStatus.FILLED
    decision = next(e for e in journal(desk) if isinstance(e, DecisionRecorded))
    assert decision.confirmed_risk_increase


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        (OverrideEdits(qty=D(-1)), "qty must be a positive number"),
        (OverrideEdits(qty=D("NaN")), "qty must be a positive number"),
        (OverrideEdits(leverage=D(25)), "hard cap of 20x"),
        (OverrideEdits(leverage=D("0.5")), "between 1x"),
        (OverrideEdits(stop=D(0)), "stop must be a positive number"),
        (OverrideEdits(), "changes nothing"),
    ],
)
async def test_override_bad_input_raises_and_journals_nothing(
    desk: ApprovalDesk, edits: OverrideEdits, message: str
) -> None:
    """A malformed override is a clear error; the state is unchanged and nothing is journaled."""
    pid = await queued(desk)
    before = (desk.journal.last_seq, desk.state.snapshot())
    with pytest.raises(InvalidCommand, match=message):
        await desk.override(pid, "bob", edits, confirm_risk_increase=True)
    assert (desk.journal.last_seq, desk.state.snapshot()) == before


async def test_reject_records_who_and_why_and_ends_the_proposal(desk: ApprovalDesk) -> None:
    """A rejection is final and attributed; a later approval is refused."""
    pid = await queued(desk)
    assert (await desk.reject(pid, "carol", reason="not today")).ok
    record = desk.state.proposals[pid]
    assert (record.status, record.decided_by, record.reason) == (ProposalStatus.REJECTED, "carol", "not today")
    again = await desk.approve(pid, "alice")
    assert not again.ok and "REJECTED" in again.reason


async def test_kill_halts_kills_pending_cancels_and_flattens(desk: ApprovalDesk) -> None:
    """Kill: HALTED at once, pending proposals KILLED, resting orders cancelled, positions flat by a fresh read."""
    pid = await queued(desk, stop="97000", take_profit="104000")
    await desk.approve(pid, "alice")
    await desk.propose(request(symbol=ETH, qty="1", leverage="2", take_profit="4100"))
    pending = await queued(desk, symbol="SOL/USDT:USDT", qty="10")
    report = await desk.kill("alice", "drill")
    assert report.flat and report.orders_cancelled == 2 and report.positions_flattened == 1
    assert report.proposals_killed == 2
    assert desk.state.trading_state is TradingState.HALTED
    assert desk.state.proposals[pending].status is ProposalStatus.KILLED
    assert desk.state.account.positions == {} and await desk.broker.positions() == []
    assert desk.state.open_orders() == [] and await desk.broker.open_orders() == []
    refused = await desk.propose(request(symbol=ETH, qty="1"))
    assert not refused.ok and "HALTED" in refused.reason


async def test_kill_is_idempotent(desk: ApprovalDesk) -> None:
    """A second kill changes nothing and still reports flat."""
    await desk.approve(await queued(desk), "alice")
    first = await desk.kill("alice", "one")
    second = await desk.kill("bob", "two")
    assert first.flat and second.flat and second.positions_flattened == 0
    assert desk.state.trading_state is TradingState.HALTED and desk.state.kill_count == 2
    assert verify(desk.journal.path).ok


async def test_only_typed_rearm_leaves_halted(desk: ApprovalDesk) -> None:
    """HALTED stays HALTED until someone types the re-arm phrase."""
    await desk.kill("alice", "drill")
    refused = await desk.rearm("alice", "yes")
    assert not refused.ok and REARM_PHRASE in refused.reason
    assert desk.state.trading_state is TradingState.HALTED
    assert (await desk.rearm("alice", "  re-arm ")).ok
    assert desk.state.trading_state is TradingState.ACTIVE
    assert (await desk.propose(request())).ok


async def test_daily_loss_latches_reducing_and_only_reducing_orders_pass(tmp_path: Path) -> None:
    """Losing the daily limit latches REDUCING: new risk is refused, reducing a position is not."""
    desk = await make_desk(tmp_path / "j.db", config=make_config(risk={"daily_loss_limit": 100}))
    try:
        await desk.approve(await queued(desk, qty="0.05"), "alice")
        await set_mark(desk, BTC, 97_000)
        assert desk.state.trading_state is TradingState.REDUCING
        assert "daily loss limit" in desk.state.state_reason
        refused = await desk.propose(request(symbol=ETH, qty="1"))
        assert not refused.ok and "REDUCING" in refused.reason
        reduce = await desk.propose(request(side=Side.SELL, qty="0.02", stop="99000"))
        assert reduce.ok
        assert (await desk.approve(reduce.proposal.id, "alice")).status is ProposalStatus.FILLED
        assert desk.state.account.position(BTC).qty == D("0.030")
    finally:
        close(desk)


async def test_throttle_latches_until_a_person_reenables_it(tmp_path: Path) -> None:
    """The order beyond the per-minute limit trips the throttle, which stays tripped after the minute passes."""
    desk = await make_desk(tmp_path / "j.db", config=make_config(risk={"max_orders_per_minute": 2}))
    try:
        for symbol, qty in ((BTC, "0.01"), (ETH, "0.5")):
            assert (await desk.approve(await queued(desk, symbol=symbol, qty=qty), "alice")).ok
        third = await queued(desk, symbol="SOL/USDT:USDT", qty="5")
        refused = await desk.approve(third, "alice")
        assert not refused.ok and "throttle" in refused.reason
        assert any(isinstance(e, ThrottleTripped) for e in journal(desk))
        desk.clock.advance(61)
        fourth = await queued(desk, symbol="SOL/USDT:USDT", qty="5", side=Side.SELL)
        assert not (await desk.approve(fourth, "alice")).ok
        assert (await desk.reenable_throttle("alice", "reviewed")).ok
        assert (await desk.approve(fourth, "alice")).ok
    finally:
        close(desk)


async def test_leverage_above_conservative_needs_acknowledgment(desk: ApprovalDesk) -> None:
    """10x is blocked until a typed leverage acknowledgment is on record; 25x is bad input."""
    blocked = (await desk.propose(request(leverage="10"))).proposal
    assert blocked.blocked and any(c.name == "leverage" for c in blocked.checks if c.verdict is Verdict.BLOCK)
    assert not (await desk.approve(blocked.id, "alice")).ok
    assert not (await desk.acknowledge("alice", AcknowledgmentKind.LEVERAGE, "sure")).ok
    phrase = ACKNOWLEDGMENT_PHRASES[AcknowledgmentKind.LEVERAGE]
    assert (await desk.acknowledge("alice", AcknowledgmentKind.LEVERAGE, phrase.lower())).ok
    assert (await desk.approve(blocked.id, "alice")).status is ProposalStatus.FILLED
    with pytest.raises(InvalidCommand, match="hard cap"):
        await desk.propose(request(symbol=ETH, leverage="25"))


async def test_model_proposals_need_acknowledgment_bound_to_config(tmp_path: Path) -> None:
    """Model proposals are refused until acknowledged; the acknowledgment does not survive a config change."""
    path = tmp_path / "j.db"
    desk = await make_desk(path, model_hash="m1")
    refused = await desk.propose(request(source="model"))
    assert not refused.ok and "acknowledgment" in refused.reason
    phrase = ACKNOWLEDGMENT_PHRASES[AcknowledgmentKind.MODEL_PROPOSALS]
    assert (await desk.acknowledge("alice", AcknowledgmentKind.MODEL_PROPOSALS, phrase)).ok
    assert (await desk.propose(request(source="model"))).ok
    await desk.stop()
    close(desk)
    changed = await make_desk(path, config=make_config(risk={"max_leverage": 2}), model_hash="m1")
    try:
        assert not (await changed.propose(request(symbol=ETH, qty="1", source="model"))).ok
    finally:
        close(changed)


async def test_novel_proposal_needs_novelty_confirmation(desk: ApprovalDesk) -> None:
    """A proposal flagged novel cannot be approved without confirming that the model is guessing."""
    pid = await queued(desk, novel=True, novelty=0.99)
    refused = await desk.approve(pid, "alice")
    assert not refused.ok and "guessing" in refused.reason
    assert (await desk.approve(pid, "alice", confirm_novel=True)).ok


async def test_novel_proposal_suppressed_by_policy(tmp_path: Path) -> None:
    """With novelty_policy = suppress, a novel model proposal never reaches the queue."""
    desk = await make_desk(tmp_path / "j.db", config=make_config(model={"novelty_policy": "suppress"}))
    try:
        phrase = ACKNOWLEDGMENT_PHRASES[AcknowledgmentKind.MODEL_PROPOSALS]
        await desk.acknowledge("alice", AcknowledgmentKind.MODEL_PROPOSALS, phrase)
        result = await desk.propose(request(source="model", novel=True, novelty=0.99))
        assert not result.ok and "guessing" in result.reason
    finally:
        close(desk)


async def test_four_eyes_needs_two_different_operators(tmp_path: Path) -> None:
    """Above the four-eyes notional one approval is counted, the same operator cannot count twice, a second executes."""
    desk = await make_desk(tmp_path / "j.db", config=make_config(operators={"four_eyes_notional": 1000}))
    try:
        pid = await queued(desk)
        first = await desk.approve(pid, "alice")
        assert first.ok and "1 of 2" in first.reason and first.status is ProposalStatus.PENDING
        again = await desk.approve(pid, "alice")
        assert not again.ok and "different operator" in again.reason
        assert (await desk.approve(pid, "bob")).status is ProposalStatus.FILLED
        counted = [e.operator for e in journal(desk) if isinstance(e, ApprovalCounted)]
        assert counted == ["alice"]
    finally:
        close(desk)


async def test_unhealthy_feed_blocks_proposals_and_approvals(desk: ApprovalDesk) -> None:
    """Invariant 6: stale data stops new proposals and blocks approvals, with the reason; recovery clears it."""
    pid = await queued(desk)
    desk.set_feed_health(FeedHealth(BTC, False, "stale: no data for 16.0 s"))
    assert "stale" in (await desk.propose(request(side=Side.SELL))).reason
    blocked = await desk.approve(pid, "alice")
    assert not blocked.ok and "stale: no data for 16.0 s" in blocked.reason
    desk.set_feed_health(FeedHealth(BTC, True, ""))
    assert (await desk.approve(pid, "alice")).ok


async def test_refusals_are_journaled_without_changing_state(desk: ApprovalDesk) -> None:
    """A refused command is on record with who asked and why, and changes nothing else."""
    await desk.approve("P999999", "mallory")
    refused = [e for e in journal(desk) if isinstance(e, CommandRefused)]
    assert refused[-1].operator == "mallory" and "no proposal P999999" in refused[-1].reason


async def test_commands_need_an_operator(desk: ApprovalDesk) -> None:
    """Every decision carries who made it: an empty operator id is bad input."""
    pid = await queued(desk)
    with pytest.raises(InvalidCommand, match="operator id"):
        await desk.approve(pid, " ")


async def test_propose_without_price_or_unknown_symbol(tmp_path: Path) -> None:
    """No market price yet means no proposal; an unknown symbol is bad input."""
    desk = await make_desk(tmp_path / "j.db", marks={})
    try:
        assert "no market price" in (await desk.propose(request())).reason
        with pytest.raises(InvalidCommand, match="unknown symbol"):
            await desk.propose(request(symbol="DOGE/USDT:USDT"))
    finally:
        close(desk)


async def test_set_risk_limit_is_journaled_validated_and_applied(desk: ApprovalDesk) -> None:
    """A run-time limit change is validated like the config, journaled with who and why (the values as plain
    numbers, not quoted strings), and used by the checks."""
    assert (await desk.set_risk_limit("alice", "max_order_notional", 1000, "tighter")).ok
    change = next(e for e in journal(desk) if isinstance(e, RiskLimitChanged))
    assert (change.key, change.operator, change.old, change.new) == ("max_order_notional", "alice", "25000", "1000")
    assert (await desk.propose(request())).proposal.blocked
    with pytest.raises(InvalidCommand, match=r"risk\.max_leverage = 50"):
        await desk.set_risk_limit("alice", "max_leverage", 50)


async def test_risk_limit_changed_at_run_time_is_state_and_survives_a_restart(tmp_path: Path) -> None:
    """A changed limit is part of the folded state (read, not re-validated, by every check) and a restart on the
    same journal and config rebuilds exactly the same limits."""
    path = tmp_path / "j.db"
    config = make_config(risk={"daily_loss_limit": 500})
    desk = await make_desk(path, config=config)
    assert (await desk.set_risk_limit("alice", "max_order_notional", "1000", "tighter")).ok
    assert (await desk.set_risk_limit("alice", "max_orders_per_minute", 7)).ok
    limits = desk.limits()
    assert limits is desk.state.limits and limits is desk.limits()
    assert (limits.max_order_notional, limits.max_orders_per_minute, limits.daily_loss_limit) == (1000, 7, 500)
    await desk.stop()
    close(desk)
    restarted = await make_desk(path, config=config)
    try:
        assert restarted.limits() == limits
    finally:
        close(restarted)


async def test_close_position_reduces_with_reduce_only(desk: ApprovalDesk) -> None:
    """An operator can close part of a position; the order is reduce-only and attributed in the log."""
    await desk.approve(await queued(desk, qty="0.05"), "alice")
    assert (await desk.close_position(BTC, "alice", D("0.02"))).ok
    assert desk.state.account.position(BTC).qty == D("0.030")
    assert not (await desk.close_position(ETH, "alice")).ok


async def test_restart_after_crash_starts_halted_and_expires_pending(tmp_path: Path) -> None:
    """After an unclean exit: HALTED until re-armed, pending proposals EXPIRED (never executed late), books intact."""
    path = tmp_path / "j.db"
    clock = TestClock()
    desk = await make_desk(path, clock)
    await desk.approve(await queued(desk, stop="97000"), "alice")
    pending = await queued(desk, symbol=ETH, qty="1")
    books = desk.state.account.snapshot()
    close(desk)  # no stop(): the process "died"
    restarted = await make_desk(path, clock, marks={})
    try:
        assert restarted.state.trading_state is TradingState.HALTED
        assert "unclean exit" in restarted.state.state_reason
        assert restarted.state.proposals[pending].status is ProposalStatus.EXPIRED
        assert restarted.state.account.snapshot() == books
        assert restarted.broker.account.snapshot() == books
        assert [o.request.purpose for o in restarted.state.open_orders()] == [OrderPurpose.STOP]
    finally:
        close(restarted)


async def test_restart_after_clean_stop_keeps_trading_state(tmp_path: Path) -> None:
    """A clean stop expires pending proposals and the next start is not HALTED."""
    path = tmp_path / "j.db"
    desk = await make_desk(path)
    pid = await queued(desk)
    await desk.stop()
    close(desk)
    assert desk.state.proposals[pid].status is ProposalStatus.EXPIRED
    restarted = await make_desk(path)
    try:
        assert restarted.state.trading_state is TradingState.ACTIVE
    finally:
        close(restarted)


async def test_a_proposal_without_a_model_is_judged_on_the_markets_own_volatility(tmp_path: Path) -> None:
    """A person's proposal brings no σ: once the market has closed enough bars, its P(liquidation) and σ
    distance come from the symbol's own recent volatility, not from zero."""
    from guard.domain import Bar

    desk = await make_desk(tmp_path / "journal.db")
    flat = await desk.propose(request(BTC, leverage="20", sigma=0.0))
    assert flat.ok and flat.proposal is not None and flat.proposal.sigma == 0.0
    price = 100_000.0
    for i in range(61):
        price *= 1.004 if i % 2 else 0.996  # ±0.4 % a minute: a busy market
        bar = Bar(BTC, "1m", i * 60_000, price, price * 1.001, price * 0.999, price, 5.0)
        await desk.on_market(bar)
    judged = await desk.propose(request(BTC, leverage="20", sigma=0.0))
    assert judged.ok and judged.proposal is not None
    p = judged.proposal
    assert p.sigma == pytest.approx(0.004 / 60**0.5, rel=0.1)  # per second: 0.4 % a bar over 60 s bars
    assert p.p_liquidation > flat.proposal.p_liquidation
    close(desk)
