"""The honesty figures, computed one way for the model card and for `guard model eval`.

Given a model's calibrated probabilities and the triple-barrier outcomes they forecast:

* **ECE** (expected calibration error, 15 equal-width bins) of the top answer over all three
  classes, and of the *directional calls* alone — windows where the model names a side, with
  its confidence in that side. The directional ECE is the one that matters to an operator:
  those calls become proposals; "flat" never does.
* **Brier** against two constant forecasts: the training outcome frequencies (what the model
  could have learnt without looking at the window) and the data's own frequencies (the best
  constant forecast in hindsight).
* **Hit rates by confidence** (the claim the live tracker holds a model to), and the hit rate of
  directional calls among those that reached a barrier against the **break-even** hit rate: a
  call wins the barrier distance w or loses it, and pays the round-trip cost c, so it breaks
  even at 1/2 + c / (2w).
* **Novelty AUROC** for a regime window — how well novelty ranks windows in the regime above
  ordinary windows — next to the same AUROC for plain 60-bar volatility, the baseline a
  novelty score must beat to be worth its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from guard.features import WARMUP_BARS, WINDOW, FeatureSeries
from guard.model import calibration
from guard.model.labels import DOWN, FLAT, LABELS, UP

DIRECTIONAL_EDGES = (0.0, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 1.0)
"""Confidence buckets of the hit-rate table (the proposal threshold is 0.55 by default)."""
MIN_BARS_IN_REGIME = 15
"""A window counts as in a regime once at least this many of its bars are inside it."""
VOLATILE_SHARE = 0.05
"""The automatically found regime: the most volatile stretch of this share of the bars."""


def sides(probs: np.ndarray) -> np.ndarray:
    """The side each row of (N, 3) probabilities names: UP, DOWN, or FLAT when flat is likeliest.

    The same rule as `guard.model.inference.outputs` (ties go to UP).
    """
    side = np.where(probs[:, UP] >= probs[:, DOWN], UP, DOWN).astype(np.int8)
    return np.where(probs[:, FLAT] > np.maximum(probs[:, UP], probs[:, DOWN]), FLAT, side).astype(np.int8)


def _bin(b: calibration.ReliabilityBin) -> dict[str, float | int]:
    return {
        "lo": b.lo,
        "hi": b.hi,
        "count": b.count,
        "confidence": round(b.confidence, 4),
        "hit_rate": round(b.accuracy, 4),
    }


def _ece(confidence: np.ndarray, correct: np.ndarray) -> float | None:
    if len(confidence) == 0:
        return None
    bins = calibration.reliability(confidence, correct)
    return float(sum(b.count / len(confidence) * abs(b.accuracy - b.confidence) for b in bins))


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(float(x), digits)


def calibration_figures(
    probs: np.ndarray,
    labels: np.ndarray,
    *,
    baseline_shares: np.ndarray,
    barrier_width: np.ndarray | None = None,
    cost: float = 0.0,
    raw_probs: np.ndarray | None = None,
) -> dict[str, Any]:
    """Calibration, accuracy and hit-rate figures of probabilities against outcomes.

    Args:
        probs: (N, 3) calibrated probabilities (down, flat, up).
        labels: (N,) outcomes (DOWN, FLAT, UP); no UNKNOWN.
        baseline_shares: (3,) outcome frequencies of the constant forecast to beat (training's).
        barrier_width: (N,) log-price distance of the barriers at each window (for break-even).
        cost: round-trip cost of a trade as a log-price distance (fees and slippage, both ways).
        raw_probs: the same forecasts before temperature scaling, to report its effect.

    Raises:
        ValueError: for empty or misaligned inputs.
    """
    n = len(labels)
    if n == 0 or probs.shape != (n, 3):
        raise ValueError("calibration figures need (N, 3) probabilities for N > 0 labelled windows")
    y = labels.astype(np.int64)
    own_share = np.bincount(y, minlength=3) / n
    side = sides(probs)
    confidence = probs[np.arange(n), side]
    directional = side != FLAT
    hit = side == y
    opposite = np.where(side == UP, DOWN, UP)
    loss = directional & (y == opposite)
    top_correct = (probs.argmax(axis=1) == y).astype(np.float64)
    n_dir = int(directional.sum())
    decided = int((directional & (hit | loss)).sum())
    out: dict[str, Any] = {
        "windows": n,
        "ece": round(calibration.ece(probs, y), 4),
        "ece_directional": _round(_ece(confidence[directional], hit[directional].astype(np.float64))),
        "accuracy": round(float(top_correct.mean()), 4),
        "base_rate": round(float(own_share.max()), 4),
        "brier": round(calibration.brier(probs, y), 4),
        "brier_baseline": round(calibration.brier(np.repeat(baseline_shares[None, :], n, axis=0), y), 4),
        "brier_base_rate": round(calibration.brier(np.repeat(own_share[None, :], n, axis=0), y), 4),
        "nll": round(calibration.nll(probs, y), 4),
        "nll_baseline": round(calibration.nll(np.repeat(baseline_shares[None, :], n, axis=0), y), 4),
        "label_share": {LABELS[i]: round(float(own_share[i]), 4) for i in range(3)},
        "reliability": [_bin(b) for b in calibration.reliability(probs.max(axis=1), top_correct)],
        "directional": {
            "count": n_dir,
            "share": round(n_dir / n, 4),
            "hit_rate": _round(hit[directional].mean()) if n_dir else None,
            "decided": decided,
            "decided_hit_rate": _round(hit[directional].sum() / decided) if decided else None,
            "break_even_hit_rate": None,
            "cost_bps": round(cost * 1e4, 2),
            "buckets": [
                _bin(b)
                for b in calibration.reliability(
                    confidence[directional], hit[directional].astype(np.float64), np.array(DIRECTIONAL_EDGES)
                )
            ],
        },
    }
    if barrier_width is not None and n_dir:
        width = barrier_width[directional]
        ok = np.isfinite(width) & (width > 0)
        if ok.any():
            out["directional"]["break_even_hit_rate"] = round(
                float(np.minimum(0.5 + cost / (2 * width[ok]), 1.0).mean()), 4
            )
    if raw_probs is not None:
        raw_side = sides(raw_probs)
        raw_dir = raw_side != FLAT
        raw_conf = raw_probs[np.arange(n), raw_side]
        out["ece_uncalibrated"] = round(calibration.ece(raw_probs, y), 4)
        out["ece_directional_uncalibrated"] = _round(
            _ece(raw_conf[raw_dir], (raw_side == y)[raw_dir].astype(np.float64))
        )
    return out


def novelty_auroc(
    novelty: np.ndarray, volatility: np.ndarray, regime: np.ndarray, ordinary: np.ndarray
) -> dict[str, Any]:
    """AUROC of novelty, and of volatility as the baseline, for regime windows against ordinary ones.

    Args:
        novelty, volatility: per-window scores.
        regime, ordinary: boolean masks of the positive and negative windows.

    Raises:
        ValueError: when either class is empty.
    """
    pos, neg = int(regime.sum()), int(ordinary.sum())
    if pos == 0 or neg == 0:
        raise ValueError(f"a novelty AUROC needs windows in the regime ({pos}) and outside it ({neg})")
    return {
        "novelty_auroc": round(calibration.auroc(novelty[ordinary], novelty[regime]), 4),
        "volatility_auroc": round(calibration.auroc(volatility[ordinary], volatility[regime]), 4),
        "regime_windows": pos,
        "ordinary_windows": neg,
    }


@dataclass(frozen=True, slots=True)
class RegimeWindow:
    """A stretch of time whose windows should look novel: [start_ms, end_ms] of bar open times."""

    start_ms: int
    end_ms: int
    how: str
    """How it was chosen, in words ("given", "the most volatile 5 % of the bars")."""


def regime_masks(
    series: FeatureSeries, regime: RegimeWindow, min_inside: int = MIN_BARS_IN_REGIME
) -> tuple[np.ndarray, np.ndarray]:
    """Which ready windows of a series are in the regime, and which are wholly outside it.

    A window is in the regime when its last bar is inside and at least `min_inside` of its
    bars are; it is ordinary when none of the bars its features read (WARMUP_BARS of them)
    is inside. Windows in between are left out of both.
    """
    t = series.open_times
    inside = (t >= regime.start_ms) & (t <= regime.end_ms)
    count = np.cumsum(inside)
    idx = np.arange(len(t))

    def inside_last(k: int) -> np.ndarray:
        before = np.where(idx - k >= 0, count[np.maximum(idx - k, 0)], 0)
        return count - before

    positive = series.ready & inside & (inside_last(min_inside) >= min_inside)
    negative = series.ready & (inside_last(WARMUP_BARS) == 0)
    return positive, negative


def most_volatile_stretch(series: FeatureSeries, share: float = VOLATILE_SHARE) -> RegimeWindow:
    """The contiguous run of bars (a share of them, at least one window long) whose 1-bar
    log returns have the largest root mean square: the default regime when none is given."""
    n = len(series)
    length = max(WINDOW, round(share * n))
    if n < length + 1:
        raise ValueError(f"{series.symbol}: {n} bars is too few to find a volatile stretch of {length}")
    r = np.diff(np.log(series.closes))
    breaks = np.zeros(n - 1, dtype=bool)
    breaks[series.segment_starts[1:] - 1] = True  # a return across a gap is no return
    r2 = np.where(breaks, 0.0, r * r)
    sums = np.convolve(r2, np.ones(length), mode="valid")  # sums[i] covers returns into bars i+1 .. i+length
    best = int(np.argmax(sums))
    return RegimeWindow(
        int(series.open_times[best + 1]),
        int(series.open_times[best + length]),
        f"the most volatile stretch ({length} bars, {share:.0%} of the history)",
    )
