"""The honesty figures: directional calls apart from flat, break-even after costs, regime windows."""

from __future__ import annotations

import numpy as np
import pytest

from guard.features import WARMUP_BARS, build_series_arrays
from guard.model.evaluation import RegimeWindow, calibration_figures, most_volatile_stretch, regime_masks
from guard.model.labels import DOWN, FLAT, UP

SHARES = np.array([0.3, 0.4, 0.3])


def test_evaluation_directional_ece_leaves_flat_calls_out() -> None:
    """Well-calibrated flat calls cannot hide badly calibrated directional ones."""
    flat = np.tile([0.1, 0.8, 0.1], (800, 1))
    flat_labels = np.array([FLAT] * 640 + [UP] * 160)
    up = np.tile([0.1, 0.2, 0.7], (200, 1))  # says 70 %, right 30 % of the time
    up_labels = np.array([UP] * 60 + [DOWN] * 140)
    figures = calibration_figures(
        np.vstack((flat, up)), np.concatenate((flat_labels, up_labels)), baseline_shares=SHARES
    )
    assert figures["ece_directional"] == pytest.approx(0.4, abs=1e-6)
    assert figures["ece"] < 0.1
    assert figures["directional"]["count"] == 200 and figures["directional"]["hit_rate"] == 0.3
    assert figures["directional"]["decided"] == 200 and figures["directional"]["decided_hit_rate"] == 0.3


def test_evaluation_no_side_named_is_reported_not_hidden() -> None:
    """A model that always says flat has no directional ECE, no buckets and no hit rate — and says so."""
    probs = np.tile([0.2, 0.6, 0.2], (300, 1))
    figures = calibration_figures(probs, np.array([FLAT, UP, DOWN] * 100), baseline_shares=SHARES)
    assert figures["ece_directional"] is None
    assert figures["directional"]["count"] == 0 and figures["directional"]["buckets"] == []
    assert figures["directional"]["hit_rate"] is None


def test_evaluation_break_even_hit_rate_follows_costs_and_barriers() -> None:
    """A call that wins or loses w and pays c breaks even at 1/2 + c / 2w."""
    probs = np.tile([0.2, 0.2, 0.6], (10, 1))
    width = np.full(10, 0.01)
    figures = calibration_figures(probs, np.array([UP] * 10), baseline_shares=SHARES, barrier_width=width, cost=0.002)
    assert figures["directional"]["break_even_hit_rate"] == pytest.approx(0.6)
    assert figures["directional"]["cost_bps"] == 20


def test_evaluation_brier_against_both_constant_forecasts() -> None:
    """Brier is compared with the training frequencies and with the data's own."""
    labels = np.array([UP] * 50 + [DOWN] * 50)
    figures = calibration_figures(np.tile([0.5, 0.0, 0.5], (100, 1)), labels, baseline_shares=SHARES)
    assert figures["brier"] == pytest.approx(0.5)
    assert figures["brier_base_rate"] == pytest.approx(0.5)
    assert figures["brier_baseline"] > figures["brier_base_rate"]


def _series(n: int = 1000, loud: tuple[int, int] | None = None, gap_at: int | None = None) -> object:
    rng = np.random.default_rng(3)
    r = rng.normal(0, 0.001, n)
    if loud:
        r[loud[0] : loud[1]] *= 6
    if gap_at is not None:
        r[gap_at] = 0.4  # the market reopens 50 % higher after the gap
    close = 100 * np.exp(np.cumsum(r))
    opens = np.concatenate(([100.0], close[:-1]))
    t = np.arange(n, dtype=np.int64) * 60_000 + 1_767_225_600_000
    if gap_at is not None:
        t[gap_at:] += 60_000 * 10
    return build_series_arrays(
        "X/USDT:USDT",
        "1m",
        t,
        opens,
        np.maximum(opens, close) * 1.0002,
        np.minimum(opens, close) * 0.9998,
        close,
        np.ones(n),
    )


def test_evaluation_regime_windows_need_bars_inside_and_ordinary_none() -> None:
    """Regime windows hold at least 15 regime bars; ordinary windows read no regime bar at all."""
    s = _series()
    t = s.open_times
    regime = RegimeWindow(int(t[500]), int(t[599]), "given")
    positive, negative = regime_masks(s, regime)
    assert np.flatnonzero(positive).tolist() == list(range(514, 600))
    assert not negative[500 : 600 + WARMUP_BARS - 1].any()
    assert negative[600 + WARMUP_BARS - 1] and negative[499] and not negative[500]


def test_evaluation_most_volatile_stretch_is_found() -> None:
    """The automatic regime lands on the stretch where moves were six times larger."""
    s = _series(2000, loud=(1200, 1300))
    found = most_volatile_stretch(s)
    start = int(np.searchsorted(s.open_times, found.start_ms))
    end = int(np.searchsorted(s.open_times, found.end_ms))
    assert end - start + 1 == 100
    assert abs(start - 1200) <= 5


def test_evaluation_volatile_stretch_ignores_the_jump_across_a_gap() -> None:
    """A price jump across a gap is not a return, so it does not make a volatile stretch."""
    s = _series(2000, gap_at=400)
    found = most_volatile_stretch(s, share=0.05)
    assert not found.start_ms <= int(s.open_times[400]) <= found.end_ms
