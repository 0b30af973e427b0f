"""Triple-barrier labels, and the live scoring that must agree with them."""

from __future__ import annotations

import math

import numpy as np

from guard.features import build_series
from guard.model.labels import DOWN, FLAT, UNKNOWN, UP, BarrierParams, BarrierWatch, triple_barrier_labels
from guard.model.synthetic import toy_bars


def _labels(highs: list[float], lows: list[float], closes: list[float], sigma: float, h: int) -> np.ndarray:
    n = len(closes)
    return triple_barrier_labels(
        np.array(highs), np.array(lows), np.array(closes), np.full(n, sigma), np.array([0]), BarrierParams(1.0, h)
    )


def test_labels_first_barrier_touched_decides() -> None:
    """Up when the high reaches +w first, down when the low reaches -w first, flat otherwise."""
    w = 0.01  # σ·√H with H = 2 bars: barriers at ±1 % in log price
    up = math.exp(w) * 100 + 0.01
    down = math.exp(-w) * 100 - 0.01
    labels = _labels([100, up, 100, 100, 100], [100, 100, 100, down, 100], [100] * 5, w / math.sqrt(2), 2)
    assert labels.tolist()[:3] == [UP, DOWN, DOWN]
    assert labels.tolist()[3:] == [UNKNOWN, UNKNOWN]  # not enough future


def test_labels_both_barriers_in_one_bar_is_flat() -> None:
    """A bar that touches both barriers cannot say which came first: flat."""
    labels = _labels([100, 102, 100], [100, 98, 100], [100, 100, 100], 0.01, 1)
    assert labels[0] == FLAT


def test_labels_live_watch_agrees_with_batch_labels() -> None:
    """Scoring bar by bar, as the tracker does, gives the training labels on a toy market."""
    series = build_series(toy_bars(n=1500, seed=9))
    params = BarrierParams(1.0, 10)
    labels = triple_barrier_labels(
        series.highs, series.lows, series.closes, series.sigma, series.segment_starts, params
    )
    close_times = series.close_times
    checked = 0
    for i in np.flatnonzero(labels != UNKNOWN)[::7]:
        width = params.width(float(series.sigma[i]))
        entry = math.log(series.closes[i])
        watch = BarrierWatch(entry + width, entry - width, int(close_times[i]) + 10 * 60_000)
        outcome = None
        j = i + 1
        while outcome is None:
            outcome = watch.observe(float(series.highs[j]), float(series.lows[j]), int(close_times[j]))
            j += 1
        assert outcome == labels[i], i
        checked += 1
    assert checked > 100
