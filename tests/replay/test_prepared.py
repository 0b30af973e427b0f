"""Replay's precomputation: a history longer than one chunk of the model's pass is proposed on across all of it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from guard.config import Config
from guard.model.artifact import LoadedModel
from guard.model.inference import SERIES_CHUNK
from guard.replay.engine import ReplayEngine
from guard.replay.history import SymbolHistory
from guard.replay.operator import OperatorPolicy, ScriptedOperator
from guard.replay.options import ReplayOptions
from guard.sim.process import PriceProcess

START_MS = 1_767_225_600_000
BARS = 2 * SERIES_CHUNK + 5_000
"""Three chunks of the model's pass, the last one short."""


def _history(symbol: str) -> SymbolHistory:
    process = PriceProcess(["BTC/USDT:USDT"], START_MS, seed=5, scenario="trend")
    block = process.advance(BARS)
    return SymbolHistory(symbol, "1m", block.open_time, *process.bars_of(block, 0))


def test_a_replay_proposes_across_every_chunk_of_the_models_pass(model: LoadedModel, tmp_path: Path) -> None:
    """Proposals are made in the last chunk of the pass too, and the model's outlook covers every bar."""
    engine = ReplayEngine(
        Config(),
        model,
        [_history("BTC/USDT:USDT")],
        ReplayOptions(ScriptedOperator(OperatorPolicy.APPROVE_ALL)),
        tmp_path / "j.db",
    )
    result = asyncio.run(engine.run())
    assert result.outlook.bars == BARS
    assert result.outlook.scored_bars > BARS - 500
    last_chunk_opens = int(engine.grid.group_open[2 * SERIES_CHUNK])
    proposed_at = [r.proposal.created_at for r in engine.desk.state.proposals.values()]
    assert result.stats.proposals > 500 and max(proposed_at) > last_chunk_opens
