"""Replay (whole series at once) and live (a few windows) give the same answers."""

from __future__ import annotations

import numpy as np

from guard.features import build_series
from guard.model.labels import FLAT
from guard.model.runner import ModelRunner
from guard.model.synthetic import toy_bars
from tests.model.toy import TOY, Trained


def test_runner_replay_matches_live_signals(trained: Trained) -> None:
    """Signals from a whole-history replay equal those from live windows at the same bars."""
    runner = ModelRunner(trained.model)
    series = build_series(toy_bars("R/USDT:USDT", 1500, seed=77, **TOY))
    replay = runner.replay(series, novelty_threshold=0.95)
    ready = np.flatnonzero(series.ready)
    picks = ready[:: max(1, len(ready) // 40)]
    live = runner.signals([series.window(int(i)) for i in picks], now_ms=0, novelty_threshold=0.95)
    for i, signal in zip(picks, live, strict=True):
        np.testing.assert_allclose(replay.probs[i], signal.probabilities, atol=1e-5)
        assert abs(replay.novelty[i] - signal.novelty) < 1e-3
        replayed = replay.signal(int(i), now_ms=0)
        assert replayed.side == signal.side and replayed.symbol == signal.symbol
        assert replayed.timestamp == signal.timestamp and replayed.sigma == signal.sigma
    assert not replay.ready[: series.ready.argmax()].any()


def test_runner_replay_candidates_name_confident_sides(trained: Trained) -> None:
    """Candidates are exactly the ready bars whose side meets the confidence asked for."""
    runner = ModelRunner(trained.model)
    series = build_series(toy_bars("R/USDT:USDT", 1200, seed=78, **TOY))
    replay = runner.replay(series, novelty_threshold=0.95)
    candidates = replay.candidates(0.5)
    assert len(candidates) > 0
    assert (replay.side[candidates] != FLAT).all() and (replay.confidence[candidates] >= 0.5).all()
    signal = replay.signal(int(candidates[0]))
    assert signal.why.startswith(("up: ", "down: "))
    assert signal.model_age_days < 0  # replaying bars older than the model's data: in-sample territory
