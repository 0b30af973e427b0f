"""Training, calibration and novelty on a small synthetic market."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from guard.errors import BadInput
from guard.features import WARMUP_BARS, build_series
from guard.model import calibration
from guard.model.inference import forward_series
from guard.model.labels import UNKNOWN, triple_barrier_labels
from guard.model.network import parameter_count
from guard.model.runner import ModelRunner
from guard.model.synthetic import toy_bars
from guard.model.training import MAX_PARAMETERS, TrainParams, train
from tests.model.toy import TINY, TOY, Trained, toy_series


def _held_out(trained: Trained, seed: int, n: int = 30_000) -> tuple[np.ndarray, np.ndarray]:
    series = build_series(toy_bars("H/USDT:USDT", n, seed=seed, **TOY))
    labels = triple_barrier_labels(
        series.highs, series.lows, series.closes, series.sigma, series.segment_starts, TINY.barrier
    )
    ok = series.ready & (labels != UNKNOWN)
    logits, _ = forward_series(trained.model.net, series.rows)
    return logits[ok], labels[ok].astype(np.int64)


def test_train_small_synthetic_set_loads_and_infers(trained: Trained) -> None:
    """A model trained on a toy market saves, loads and answers with calibrated probabilities."""
    assert parameter_count(trained.model.net) <= MAX_PARAMETERS
    assert trained.model.net.members >= 3
    runner = ModelRunner(trained.model)
    series = trained.series[0]
    windows = [series.window(i) for i in range(len(series) - 5, len(series))]
    signals = runner.signals(windows, now_ms=int(series.close_times[-1]), novelty_threshold=0.95)
    assert [s.symbol for s in signals] == [series.symbol] * 5
    for s in signals:
        assert math.isclose(sum(s.probabilities), 1.0, abs_tol=1e-6)
        assert 0.0 <= s.novelty <= 1.0
        assert s.model_id == trained.info.model_id
        assert s.horizon_seconds == 600
        assert s.barrier == pytest.approx(s.sigma * math.sqrt(10))
        if s.side is not None:
            assert s.confidence == max(s.probabilities[0], s.probabilities[2])
    metrics = trained.model.metrics
    for key in ("ece", "novelty_auroc", "accuracy", "brier"):
        assert isinstance(metrics[key], float)


def test_train_model_learns_more_than_the_base_rate(trained: Trained) -> None:
    """On a toy market with real (short-lived) trends, test accuracy beats the base rate."""
    metrics = trained.result.metrics
    assert metrics["accuracy"] > metrics["base_rate"]
    assert metrics["brier"] < metrics["brier_baseline"]


def test_calibration_overconfident_model_lowers_ece_on_held_out_data(trained: Trained) -> None:
    """Temperature scaling fitted on one held-out set cuts an overconfident model's ECE on another."""
    logits_val, y_val = _held_out(trained, seed=101)
    logits_test, y_test = _held_out(trained, seed=202)
    overconfident = 3.0  # as if the network's logits had grown three times too sure
    temperature = calibration.fit_temperature(logits_val * overconfident, y_val)
    raw = calibration.ece(calibration.ensemble_probs(logits_test * overconfident), y_test)
    calibrated = calibration.ece(calibration.ensemble_probs(logits_test * overconfident, temperature), y_test)
    assert temperature > 2.0
    assert calibrated < raw / 2
    assert calibrated < 0.05


def test_calibration_trained_model_is_calibrated_on_held_out_data(trained: Trained) -> None:
    """The shipped temperature leaves the trained model's ECE small on a fresh held-out market."""
    logits, y = _held_out(trained, seed=303)
    assert calibration.ece(calibration.ensemble_probs(logits, trained.model.temperature), y) < 0.05


def test_novelty_regime_shift_window_scores_higher_than_in_distribution(trained: Trained) -> None:
    """Windows from a market with volatility ×5 score higher novelty than ordinary ones."""
    runner = ModelRunner(trained.model)
    normal = build_series(toy_bars("N/USDT:USDT", 3000, seed=404, **TOY))
    shifted = build_series(toy_bars("S/USDT:USDT", 3000, seed=404, vol_factor=5.0, **TOY))
    normal_novelty = runner.replay(normal, novelty_threshold=0.95).novelty[normal.ready]
    shifted_novelty = runner.replay(shifted, novelty_threshold=0.95).novelty[shifted.ready]
    assert np.median(shifted_novelty) > np.quantile(normal_novelty, 0.95)
    assert calibration.auroc(normal_novelty, shifted_novelty) > 0.9
    assert (shifted_novelty >= 0.95).mean() > 0.8
    assert 0.0 < (normal_novelty >= 0.95).mean() < 0.2
    assert trained.result.metrics["novelty_auroc"] > 0.9


def test_training_split_is_chronological_with_embargo(trained: Trained) -> None:
    """Validation starts an embargo after training ends, and test after validation."""
    splits = trained.result.splits
    gap_ms = splits["embargo_bars"] * 60_000
    assert splits["embargo_bars"] == TINY.barrier.horizon_bars + WARMUP_BARS
    assert splits["train"]["end_ms"] + gap_ms <= splits["validation"]["start_ms"]
    assert splits["validation"]["end_ms"] + gap_ms <= splits["test"]["start_ms"]


def test_train_same_seed_gives_identical_weights() -> None:
    """Two runs with the same data and seed produce bit-identical weights."""
    series = toy_series(n=2500, symbols=2)
    params = TrainParams(epochs=2, channels=4, barrier=TINY.barrier, threads=1, seed=11)
    a, b = train(series, params), train(series, params)
    for (name, x), (_, y) in zip(a.net.state_dict().items(), b.net.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    assert a.temperature == b.temperature


def test_train_too_little_data_is_refused() -> None:
    """A history too short for a train/validation/test split is refused with a clear message."""
    with pytest.raises(BadInput, match="windows: need more history"):
        train(toy_series(n=400, symbols=1), TINY)


def test_train_mixed_timeframes_are_refused() -> None:
    """One model has one timeframe: mixing 1m and 5m series is refused."""
    one = build_series(toy_bars("A/USDT:USDT", 500, timeframe="1m"))
    five = build_series(toy_bars("B/USDT:USDT", 500, timeframe="5m"))
    with pytest.raises(BadInput, match="mixes timeframes"):
        train([one, five], TINY)


@pytest.mark.parametrize(
    ("every", "message"),
    [
        (
            100,
            r"no labelled windows: 199 gaps split the history into 200 pieces \(200 shorter than the 134 contiguous "
            r"bars a labelled window needs: 124 for the window, 10 for its horizon; the longest 99\), so 19,800 of "
            r"19,800 bars end no labelled window",
        ),
        (
            140,
            r"only \d+ validation windows: 142 gaps split the history into 143 pieces \(1 shorter than the 134 "
            r"contiguous bars a labelled window needs: 124 for the window, 10 for its horizon; the longest 139\)",
        ),
    ],
)
def test_train_refusal_names_gaps_when_gaps_are_the_cause(every: int, message: str) -> None:
    """History long enough but cut by gaps into short pieces is refused naming the gaps, not its length."""
    bars = toy_bars("G/USDT:USDT", 20_000, seed=2, **TOY)
    pieces = [b for i, b in enumerate(bars) if i % every != 0]  # a bar missing every `every`
    with pytest.raises(BadInput, match=message):
        train([build_series(pieces)], TINY)


def test_train_refusal_blames_length_when_there_are_no_gaps() -> None:
    """Without gaps the refusal asks for more history, as before."""
    with pytest.raises(BadInput, match="windows: need more history") as err:
        train(toy_series(n=400, symbols=1), TINY)
    assert "gaps" not in str(err.value)
