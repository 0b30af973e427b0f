"""The kill switch answers the operator first, then gets flat in as few commits as it can."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from guard.approval.desk import ApprovalDesk
from guard.approval.killswitch import KillSwitch
from guard.domain import OrderPurpose
from guard.events import OrderCancelled, OrderFilled, OrderSubmitted
from guard.journal.chain import Entry
from tests.builders import BTC, ETH, SOL, close, make_desk, request


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[ApprovalDesk]:
    # Inline commits: every append is its own commit, so what is journaled together was appended together.
    d = await make_desk(tmp_path / "journal.db", threaded=False)
    yield d
    close(d)


async def _hold_positions(desk: ApprovalDesk) -> None:
    """A protected position in each of three symbols: three to flatten, six stops and take-profits to cancel."""
    held = ((BTC, "0.05", "97000", "104000"), (ETH, "1", "3900", "4100"), (SOL, "10", "190", "210"))
    for symbol, qty, stop, take_profit in held:
        proposed = await desk.propose(request(symbol=symbol, qty=qty, stop=stop, take_profit=take_profit))
        assert proposed.proposal is not None, proposed.reason
        assert (await desk.approve(proposed.proposal.id, "alice")).ok


def _flatten_orders(desk: ApprovalDesk) -> list[str]:
    return [cid for cid, o in desk.state.orders.items() if o.request.purpose is OrderPurpose.FLATTEN]


async def test_kill_cancels_in_one_commit_and_flattens_in_one_for_intents_and_one_for_fills(desk: ApprovalDesk) -> None:
    """However many positions, a kill's clean-up is three commits: the cancels, the flatten orders'
    intents, their fills (each commit is an fsync, and a frame to every console)."""
    await _hold_positions(desk)
    commits: list[Sequence[Entry]] = []
    desk.journal.subscribe(commits.append)
    report = await desk.kill("alice", "drill")
    assert report.flat and report.orders_cancelled == 6 and report.positions_flattened == 3

    def holding(kind: type, purpose: OrderPurpose | None = None) -> list[int]:
        return [
            n
            for n, batch in enumerate(commits)
            if any(isinstance(e.event, kind) and (purpose is None or e.event.request.purpose is purpose) for e in batch)
        ]

    cancels, intents = holding(OrderCancelled), holding(OrderSubmitted, OrderPurpose.FLATTEN)
    fills = holding(OrderFilled)
    assert len(cancels) == len(intents) == len(fills) == 1
    assert sum(isinstance(e.event, OrderCancelled) for e in commits[cancels[0]]) == 6
    assert sum(isinstance(e.event, OrderSubmitted) for e in commits[intents[0]]) == 3
    assert {e.event.fill.client_order_id for e in commits[fills[0]] if isinstance(e.event, OrderFilled)} == set(
        _flatten_orders(desk)
    )


async def test_kill_clean_up_waits_for_the_operator_to_be_answered(desk: ApprovalDesk) -> None:
    """Once HALTED is journaled the operator hears it first: the flatten starts when the reply is out."""
    await _hold_positions(desk)
    desk.kill_switch = KillSwitch(desk.recorder, desk.execution, desk.clock, answer_head_start_s=30)
    halted, answered = asyncio.get_running_loop().create_future(), asyncio.get_running_loop().create_future()
    kill = asyncio.create_task(desk.kill("alice", "drill", on_halted=halted, answered=answered))
    await halted
    for _ in range(20):
        await asyncio.sleep(0)
    assert _flatten_orders(desk) == [] and len(desk.state.account.positions) == 3
    answered.set_result(None)
    report = await asyncio.wait_for(kill, 5)
    assert report.flat and len(_flatten_orders(desk)) == 3


async def test_kill_clean_up_never_waits_long_for_an_answer_that_does_not_come(desk: ApprovalDesk) -> None:
    """A console that stopped reading costs the kill a few milliseconds, not the way out."""
    await _hold_positions(desk)
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    report = await asyncio.wait_for(desk.kill("alice", "drill", answered=never), 5)
    assert report.flat and desk.state.account.positions == {}
