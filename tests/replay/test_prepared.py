"""Replay's precomputation: one long history's model pass runs ahead of the replay, and gives it the very outputs
and candidates one synchronous pass gives."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from guard.config import Config
from guard.model.artifact import LoadedModel
from guard.model.inference import SERIES_CHUNK
from guard.replay.engine import ReplayEngine
from guard.replay.history import SymbolHistory
from guard.replay.operator import OperatorPolicy, ScriptedOperator
from guard.replay.options import ReplayOptions
from guard.replay.prepared import prepare
from guard.sim.process import PriceProcess
from guard.timeframes import timeframe_ms

START_MS = 1_767_225_600_000
BARS = 2 * SERIES_CHUNK + 5_000
"""Three chunks of the model's pass, the last one short."""


def _history(symbol: str) -> SymbolHistory:
    process = PriceProcess(["BTC/USDT:USDT"], START_MS, seed=5, scenario="trend")
    block = process.advance(BARS)
    return SymbolHistory(symbol, "1m", block.open_time, *process.bars_of(block, 0))


def test_a_long_histories_model_pass_ahead_gives_the_outputs_and_candidates_of_one_pass(model: LoadedModel) -> None:
    """Alone, the history's pass runs on a worker ahead of the replay; beside a second history (the same bars
    under another name, so the grid is the same) it is one synchronous pass. Both give the same numbers, bit for
    bit, and the same candidates, taken a chunk at a time."""
    config, tf_ms = Config(), timeframe_ms("1m")
    history = _history("BTC/USDT:USDT")
    _, (ahead_of,), ahead = prepare(config, model, [history], {}, tf_ms, intrabar=True)
    assert ahead is not None and not ahead.complete
    taken = []
    while not ahead.complete:
        ahead.take()
        taken.append(len(ahead_of.candidate_groups))
    ahead.finish()
    _, (whole, _twin), none = prepare(config, model, [history, _history("ETH/USDT:USDT")], {}, tf_ms, intrabar=True)
    assert none is None
    for name in ("probs", "side", "confidence", "novelty", "novel"):
        assert np.array_equal(getattr(ahead_of.signals, name), getattr(whole.signals, name), equal_nan=name != "novel")
    assert np.array_equal(ahead_of.candidate, whole.candidate)
    assert ahead_of.candidate_groups == whole.candidate_groups and ahead_of.candidate_times == whole.candidate_times
    assert len(whole.candidate_groups) > 100 and taken[0] < taken[-1]  # candidates came in more than one take


def test_a_replay_with_the_model_ahead_proposes_across_the_whole_history(model: LoadedModel, tmp_path: Path) -> None:
    """The replay reads each chunk's candidates as it reaches them: proposals are made in the last chunk too, and
    the model's outlook covers every bar."""
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
