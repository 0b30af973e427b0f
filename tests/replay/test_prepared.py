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


def test_a_replay_proposes_across_every_chunk_of_the_models_pass(
    model: LoadedModel, long_trend: SymbolHistory, tmp_path: Path
) -> None:
    """Proposals are made in the last chunk of the pass too, and the model's outlook covers every bar."""
    engine = ReplayEngine(
        Config(),
        model,
        [long_trend],
        ReplayOptions(ScriptedOperator(OperatorPolicy.APPROVE_ALL)),
        tmp_path / "j.db",
    )
    result = asyncio.run(engine.run())
    assert result.outlook.bars == len(long_trend)
    assert result.outlook.scored_bars > len(long_trend) - 500
    last_chunk_opens = int(engine.grid.group_open[2 * SERIES_CHUNK])
    proposed_at = [r.proposal.created_at for r in engine.desk.state.proposals.values()]
    assert result.stats.proposals > 500 and max(proposed_at) > last_chunk_opens
