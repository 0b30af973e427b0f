"""Novelty: how unlike its training data an input is, as a percentile.

The score is a *typicality* test on the window the model reads:

1. Each bar's absolute one-bar log return (`ret_1`, a feature row column) is ranked against
   the training bars' returns: a percentile u in 0..1 (the mid-rank among ties).
2. The window's statistic is the mean of u over its `WINDOW` bars and over its last 16. On
   data like the training data both sit near 0.5; in a market whose moves are bigger (a
   crash, a squeeze) they rise towards 1, in a market gone quiet or stale they fall towards 0.
   The long mean resists a single jump; the short one reacts within a few bars.
3. Their squared Mahalanobis distance from the training windows' means is turned into a
   percentile of the same distance on validation windows.

So, on inputs like the training data, novelty is uniform on 0..1 and a threshold of 0.95
flags about 5 % of ordinary windows; either direction of departure counts.

Why this and not something richer: of the designs measured on real regime shifts
(`guard.model.regimes`: GOOG in the 2008 crisis, EURUSD's late-January 2018 break) and on the
simulator's sudden ×5 shift, it has the best worst case against 60-bar volatility (the
64-bar mean alone does better on the real shifts but reacts too slowly to a sudden one), and it
beat every richer design tried —
the network's embedding distance, ensemble disagreement, Mahalanobis distance over
window summaries that include distribution shape (skew, kurtosis, autocorrelation,
drawdown, volume), high-low ranges. Shape statistics drift in ordinary markets as much as
in a shift and only added noise; an average of *ranks* resists the single jump (an
earnings gap, a news bar) that inflates a root-mean-square volatility for 60 bars.
docs/model.md gives the figures and the command that measures them.

Everything here is numpy on float64 and runs the same arithmetic for a whole series
(training, replay, evaluation) and for a handful of live windows: the mean over a window is
summed in a fixed order, so both paths give bit-identical scores.
"""

from __future__ import annotations

import numpy as np

from guard.features import FEATURE_NAMES, WINDOW

METHOD = "typicality/2"
"""Recorded in a model's config.json; a model whose novelty was fitted another way is refused."""
TYPICAL_COLUMNS = ("ret_1",)
"""Feature-row columns whose absolute value is ranked bar by bar."""
TYPICAL_SPANS = (WINDOW, 16)
"""The statistic averages the ranks over the whole window and over its last 16 bars: the long span
resists single jumps, the short one reacts within a few bars to a sudden shift."""
_COLUMNS = [FEATURE_NAMES.index(name) for name in TYPICAL_COLUMNS]
N_TYPICAL = len(TYPICAL_COLUMNS) * len(TYPICAL_SPANS)
SHRINKAGE = 0.05


def bar_values(rows: np.ndarray, columns: tuple[str, ...] = TYPICAL_COLUMNS) -> np.ndarray:
    """The ranked per-bar values of (..., F) feature rows: (..., len(columns)), float64.

    `columns` other than the default exist for the regime benchmark's comparison of designs.
    """
    index = _COLUMNS if columns == TYPICAL_COLUMNS else [FEATURE_NAMES.index(c) for c in columns]
    return np.abs(rows[..., index].astype(np.float64))


def fit_bar_reference(rows: np.ndarray, n: int, columns: tuple[str, ...] = TYPICAL_COLUMNS) -> np.ndarray:
    """`n` quantiles (0 to 1) of each ranked value over training rows (NaN rows skipped): (K, n)."""
    values = bar_values(rows, columns)
    values = values[np.isfinite(values).all(axis=1)]
    if len(values) == 0:
        raise ValueError("no finite rows to fit the novelty reference on")
    return np.ascontiguousarray(np.quantile(values, np.linspace(0.0, 1.0, n), axis=0).T, dtype=np.float64)


def bar_percentiles(rows: np.ndarray, bar_ref: np.ndarray, columns: tuple[str, ...] = TYPICAL_COLUMNS) -> np.ndarray:
    """Each bar's mid-rank percentile among the reference quantiles: (..., K), NaN stays NaN."""
    values = bar_values(rows, columns)
    out = np.empty_like(values)
    n = bar_ref.shape[1]
    for j in range(values.shape[-1]):
        ref = bar_ref[j].astype(np.float64)
        x = values[..., j]
        lo = np.searchsorted(ref, x, side="left")
        hi = np.searchsorted(ref, x, side="right")
        out[..., j] = np.clip((lo + hi) / (2.0 * (n - 1)), 0.0, 1.0)
    out[np.isnan(values)] = np.nan
    return out


def _span_means(stacked: np.ndarray, spans: tuple[int, ...] = TYPICAL_SPANS) -> np.ndarray:
    """(..., K, WINDOW) ranks -> (..., K * len(spans)) means over each span's last bars.

    Added oldest first, one term at a time, so every caller gets the same bits.
    """
    width = stacked.shape[-1]
    means = []
    for span in spans:
        total = stacked[..., width - span].copy()
        for k in range(width - span + 1, width):
            total += stacked[..., k]
        means.append(total / span)
    return np.concatenate(means, axis=-1)


def window_typicality(windows: np.ndarray, bar_ref: np.ndarray) -> np.ndarray:
    """The typicality statistic of (N, WINDOW, F) raw windows: (N, N_TYPICAL)."""
    pct = bar_percentiles(np.asarray(windows), bar_ref)  # (N, WINDOW, K)
    return _span_means(np.moveaxis(pct, 1, -1))


def series_typicality(
    rows: np.ndarray,
    bar_ref: np.ndarray,
    columns: tuple[str, ...] = TYPICAL_COLUMNS,
    spans: tuple[int, ...] = TYPICAL_SPANS,
) -> np.ndarray:
    """The statistic of the window ending at every bar of (T, F) rows: (T, K * spans), NaN before a full window.

    Entry t equals `window_typicality` of rows t - WINDOW + 1 .. t (bit for bit).
    """
    pct = bar_percentiles(rows, bar_ref, columns)  # (T, K)
    out = np.full((len(pct), pct.shape[1] * len(spans)), np.nan)
    if len(pct) >= WINDOW:
        view = np.lib.stride_tricks.sliding_window_view(pct, WINDOW, axis=0)  # (T-W+1, K, W)
        out[WINDOW - 1 :] = _span_means(view, spans)
    return out


def fit_gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and shrunk precision matrix of (N, D) samples (float64)."""
    x = x.astype(np.float64)
    mean = x.mean(axis=0)
    cov = np.atleast_2d(np.cov(x - mean, rowvar=False))
    d = cov.shape[0]
    scale = max(float(np.trace(cov)) / d, 1e-12)
    cov = (1 - SHRINKAGE) * cov + SHRINKAGE * scale * np.eye(d)
    precision = np.linalg.inv(cov)
    return mean, (precision + precision.T) / 2


def distance(x: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of (N, D) statistics from a fitted Gaussian."""
    diff = x.astype(np.float64) - mean
    return np.asarray(np.einsum("ij,jk,ik->i", diff, precision.astype(np.float64), diff), dtype=np.float64)


def reference(values: np.ndarray, n: int) -> np.ndarray:
    """`n` evenly spaced quantiles (0 to 1) of a reference sample."""
    return np.quantile(values.astype(np.float64), np.linspace(0.0, 1.0, n))


def percentile(values: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Where each value falls in a reference's quantiles, 0..1 (beyond the ends: 0 or 1)."""
    grid = np.linspace(0.0, 1.0, len(ref))
    # np.interp wants increasing x; quantiles of ties repeat, so nudge them apart
    ref = np.maximum.accumulate(ref + np.arange(len(ref)) * 1e-15 * (1 + np.abs(ref)))
    return np.interp(values.astype(np.float64), ref, grid, left=0.0, right=1.0)
