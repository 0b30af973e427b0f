"""Replay decides and fills as the live daemon does, given the same bars and the same scripted operator.

The live path is a real daemon: the simulated exchange serves the history file, ccxt streams
its closed bars, the pipeline infers on a worker thread, and the scripted operator decides over
the control API. Replay runs the same file through `ReplayEngine` with the same config and the
same `ScriptedOperator`.

Two things are set so that live timing cannot change a price: marks are bar closes only
(`feed.streams = ["bars"]`, replay `intrabar=False`), and `paper.slippage_vol_multiplier = 0`
(the live broker's volatility estimate starts at whichever bar the daemon's feed delivered
first, replay's at the file's first bar). Replay is given the live desk's market specs (the
simulator derives tick and step sizes from the file; replay's default is guard's built-in ones).
What still differs, by design: timestamps and the journal id (wall clock live, bar time in
replay), the "why" text (replay skips the backward pass), and the model's probabilities in the
last float digits (small batches live, the whole series at once in replay: ~1e-6), so
confidence is compared to 1e-4.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from guard.api.client import ApiClient
from guard.api.protocol import Acknowledge, Approve, ProposalsChanged, Reject
from guard.approval.desk import ACKNOWLEDGMENT_PHRASES
from guard.daemon import running
from guard.domain import AcknowledgmentKind, DecisionKind, ProposalStatus
from guard.events import DecisionRecorded, Event, OrderFilled
from guard.feed.history import write_bars
from guard.journal.chain import read_entries
from guard.model.artifact import LoadedModel
from guard.replay.engine import ReplayEngine, ReplayOptions
from guard.replay.history import histories_from_bars
from guard.replay.operator import OperatorPolicy, ScriptedOperator
from guard.sim.process import generate_history
from tests.builders import daemon_config

BTC = "BTC/USDT:USDT"
BARS = 220


def _decisions(events: list[Event]) -> list[tuple]:
    return [
        (
            d.kind.value,
            d.shown.symbol,
            d.shown.side.value,
            d.shown.qty,
            d.shown.leverage,
            d.shown.stop,
            d.shown.take_profit,
            d.shown.price,
            d.shown.liquidation_price,
            round(d.shown.confidence, 4),
        )
        for d in events
        if isinstance(d, DecisionRecorded)
    ]


def _fills(events: list[Event]) -> list[tuple]:
    return [
        (f.fill.symbol, f.fill.side.value, f.fill.qty, f.fill.price, f.fill.fee, f.fill.liquidity.value)
        for f in events
        if isinstance(f, OrderFilled)
    ]


def _within(live: list[tuple], replay: list[tuple]) -> int:
    """Where `live` sits in `replay` as one contiguous run (its start), or -1."""
    for start in range(len(replay) - len(live) + 1):
        if replay[start : start + len(live)] == live:
            return start
    return -1


async def test_replay_matches_live_daemon_decisions_and_fills(
    guard_home: Path, tmp_path: Path, model: LoadedModel
) -> None:
    """Every live decision and fill appears in the replay of the same bars, in one unbroken run, field by field."""
    bars = generate_history([BTC], 1_767_225_600_000, BARS, scenario="trend", seed=44)[BTC]
    history = tmp_path / "btc.csv"
    write_bars(history, bars)
    config = daemon_config(
        exchange={"symbols": [BTC]},
        feed={"streams": ["bars"]},
        sim={"speed": 450.0, "history": str(history)},
        model={"enabled": True, "max_age_days": 1_000_000.0},
        paper={"slippage_vol_multiplier": 0.0},
    )
    operator = ScriptedOperator(OperatorPolicy.GUARDED, min_confidence=0.56)
    last_close = bars[-1].open_time + 60_000
    async with running(config) as daemon:
        async with ApiClient.from_config(config).connect(operator.name) as session:
            phrase = ACKNOWLEDGMENT_PHRASES[AcknowledgmentKind.MODEL_PROPOSALS]
            ack = await session.send(Acknowledge(session.next_id(), AcknowledgmentKind.MODEL_PROPOSALS, phrase))
            assert ack.ok, ack.reason
            decided: set[str] = set()

            async def operate() -> None:
                async for message in session.messages():
                    if not isinstance(message, ProposalsChanged):
                        continue
                    for view in message.upserted:
                        p = view.proposal
                        if view.status is not ProposalStatus.PENDING or p.id in decided:
                            continue
                        decided.add(p.id)
                        decision = operator.decide(p)
                        command = (
                            Approve(session.next_id(), p.id, p.version, decision.reason, decision.confirm_novel)
                            if decision.approve
                            else Reject(session.next_id(), p.id, decision.reason)
                        )
                        await session.send(command)

            async with asyncio.TaskGroup() as tg:
                worker = tg.create_task(operate())
                async with asyncio.timeout(90):
                    while daemon.sim.now_ms() < last_close + 120_000:  # noqa: ASYNC110 - simulated time has no event
                        await asyncio.sleep(0.1)
                    while daemon.desk.state.pending():  # noqa: ASYNC110 - the last decision is in flight
                        await asyncio.sleep(0.05)
                worker.cancel()
        live = [e.event for e in read_entries(daemon.paths.journal)]
        specs = dict(daemon.desk.specs)  # the venue's tick and step sizes, as the live desk sized with

    engine = ReplayEngine(
        config,
        model,
        histories_from_bars(bars),
        ReplayOptions(operator, intrabar=False),
        tmp_path / "replay.db",
        specs=specs,
    )
    await engine.run()
    replay = [e.event for e in read_entries(tmp_path / "replay.db")]

    live_decisions, replay_decisions = _decisions(live), _decisions(replay)
    assert len(live_decisions) >= 3, "the live run made too few decisions to compare"
    assert {d[0] for d in live_decisions} == {DecisionKind.APPROVE.value, DecisionKind.REJECT.value}
    start = _within(live_decisions, replay_decisions)
    assert start >= 0, f"live decisions {live_decisions} are not a run of the replay's {replay_decisions}"
    assert len(replay_decisions) - (start + len(live_decisions)) <= 1  # at most the last bar's, after live stopped
    live_fills, replay_fills = _fills(live), _fills(replay)
    assert live_fills and _within(live_fills, replay_fills) >= 0, (live_fills, replay_fills)
