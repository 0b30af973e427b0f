"""Journals written by the real desk (real SQLite file, paper broker, TestClock) for the trace and export tests.

`write_day` plays one trading day in which every fate a proposal can meet happens once, and returns which
proposal met which, so each test reads the story it needs from one real journal.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from guard.approval.desk import ACKNOWLEDGMENT_PHRASES, ApprovalDesk
from guard.domain import AcknowledgmentKind, OverrideEdits, Side
from tests.builders import BTC, ETH, SOL, close, make_config, make_desk, request, set_mark

MODEL_HASH = "4f2e1a9b0c" + "7d" * 27
"""The hash of the model the desk runs under (a sha256 in hex); model ids end with its first ten characters."""
MODEL_ID = "gru-4f2e1a9b0c"


@dataclass(frozen=True)
class Day:
    """Which proposal met which fate in the journal `write_day` wrote."""

    path: Path
    filled_take_profit: str
    """Four-eyes approved (alice, then bob), filled, closed by its take-profit."""
    rejected: str
    overridden_stopped: str
    """Re-priced past the collar (an approval refused), overridden (smaller, tighter stop), stopped out."""
    expired: str
    model: str
    """From the model, under an acknowledgment that binds MODEL_HASH; approved, then flattened by the kill."""
    liquidated: str
    reversing: str
    """A long ETH position, reversed by `reversed_by`."""
    reversed_by: str
    """A short ETH entry larger than `reversing`'s long: it closes that and opens a short (flattened by the kill)."""
    killed: str
    """Pending when the kill switch was pulled."""


async def write_day(path: Path) -> Day:
    """Play the day on a real desk and close its journal."""
    config = make_config(operators={"four_eyes_notional": 4500})
    desk = await make_desk(path, config=config, model_hash=MODEL_HASH)
    try:
        return await _play(desk, path)
    finally:
        close(desk)


async def _queued(desk: ApprovalDesk, **kw: object) -> str:
    result = await desk.propose(request(**kw))  # type: ignore[arg-type]
    assert result.ok and result.proposal is not None, result.reason
    return result.proposal.id


async def _play(desk: ApprovalDesk, path: Path) -> Day:
    clock = desk.clock
    # Four-eyes (5,000 notional is above 4,500): alice counts, bob decides; the take-profit closes it.
    tp = await _queued(desk, stop="97000", take_profit="104000")
    assert (await desk.approve(tp, "alice", version=1, reason="looks right")).ok
    assert (await desk.approve(tp, "bob", version=1, reason="agreed")).ok
    clock.advance(5)
    await set_mark(desk, BTC, 104_100)

    rejected = await _queued(desk, symbol=ETH, qty="1")
    assert (await desk.reject(rejected, "bob", reason="too late in the day")).ok

    # Past the collar: the approval is refused and the proposal re-priced; the override shrinks it; the stop fires.
    stopped = await _queued(desk, qty="0.04", stop="102000")
    clock.advance(2)
    await set_mark(desk, BTC, 105_200)
    refused = await desk.approve(stopped, "alice", version=1)
    assert not refused.ok and "version 2" in refused.reason
    edits = OverrideEdits(qty=Decimal("0.03"), stop=Decimal("104500"))
    assert (await desk.override(stopped, "alice", edits, version=2, reason="smaller, tighter")).ok
    clock.advance(3)
    await set_mark(desk, BTC, 104_400)

    expired = await _queued(desk, symbol=SOL, qty="5")
    clock.advance(31)
    assert await desk.expire_due() == 1

    # Liquidated: 3x long SOL with no stop, and a crash through its liquidation price.
    liquidated = await _queued(desk, symbol=SOL, qty="5")
    assert (await desk.approve(liquidated, "carol")).ok
    clock.advance(60)
    await set_mark(desk, SOL, 120)

    # A long ETH reversed by a larger short from another proposal.
    reversing = await _queued(desk, symbol=ETH, qty="1")
    assert (await desk.approve(reversing, "alice")).ok
    clock.advance(1)
    reversed_by = await _queued(desk, symbol=ETH, side=Side.SELL, qty="1.1")
    assert (await desk.approve(reversed_by, "alice")).ok

    # The model's proposal, under an acknowledgment bound to this config and model; flattened by the kill.
    ack = await desk.acknowledge(
        "alice", AcknowledgmentKind.MODEL_PROPOSALS, ACKNOWLEDGMENT_PHRASES[AcknowledgmentKind.MODEL_PROPOSALS]
    )
    assert ack.ok, ack.reason
    model = await _queued(
        desk,
        symbol=SOL,
        qty="2",
        source="model",
        model_id=MODEL_ID,
        confidence=0.64,
        novelty=0.31,
        why="three higher lows on rising volume",
    )
    assert (await desk.approve(model, "bob", reason="model call")).ok

    killed = await _queued(desk, symbol=BTC, side=Side.SELL, qty="0.01")
    clock.advance(2)
    report = await desk.kill("dave", "drill: end of day")
    assert report.flat
    return Day(
        path=path,
        filled_take_profit=tp,
        rejected=rejected,
        overridden_stopped=stopped,
        expired=expired,
        model=model,
        liquidated=liquidated,
        reversed_by=reversed_by,
        reversing=reversing,
        killed=killed,
    )
