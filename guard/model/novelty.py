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

Everything here is numpy and runs the same arithmetic for a whole series (training, replay,
evaluation) and for a handful of live windows: ranks are summed as integers, exactly, so both
paths give bit-identical scores.
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


def _bar_ranks(
    rows: np.ndarray, bar_ref: np.ndarray, columns: tuple[str, ...] = TYPICAL_COLUMNS
) -> tuple[np.ndarray, np.ndarray]:
    """Twice each bar's mid-rank among the reference quantiles, as exact integers 0 .. 2(n-1), and a NaN mask."""
    values = bar_values(rows, columns)
    nan = np.isnan(values)
    ranks = np.empty(values.shape, dtype=np.int64)
    top = 2 * (bar_ref.shape[1] - 1)
    for j in range(values.shape[-1]):
        ref = bar_ref[j]
        x = values[..., j]
        ranks[..., j] = np.searchsorted(ref, x, side="left") + np.searchsorted(ref, x, side="right")
    np.minimum(ranks, top, out=ranks)  # NaN sorts past the end; it is masked below
    if nan.any():
        ranks[nan] = 0
    return ranks, nan


def bar_percentiles(rows: np.ndarray, bar_ref: np.ndarray, columns: tuple[str, ...] = TYPICAL_COLUMNS) -> np.ndarray:
    """Each bar's mid-rank percentile among the reference quantiles: (..., K), NaN stays NaN."""
    ranks, nan = _bar_ranks(rows, bar_ref, columns)
    out = ranks / float(2 * (bar_ref.shape[1] - 1))
    out[nan] = np.nan
    return out


def _span_means(ranks: np.ndarray, nan: np.ndarray, n: int, spans: tuple[int, ...] = TYPICAL_SPANS) -> np.ndarray:
    """(..., K, WINDOW) integer ranks -> (..., K * len(spans)) mean percentiles over each span's last bars.

    The ranks are summed as integers — exactly, whatever the order — so a whole series and a
    single live window give the same bits; a span holding a NaN row has no mean.
    """
    width = ranks.shape[-1]
    means = []
    for span in spans:
        total = ranks[..., width - span :].sum(axis=-1)
        mean = total / float(2 * (n - 1) * span)
        if nan.any():
            mean[nan[..., width - span :].any(axis=-1)] = np.nan
        means.append(mean)
    return np.concatenate(means, axis=-1)


def window_typicality(windows: np.ndarray, bar_ref: np.ndarray) -> np.ndarray:
    """The typicality statistic of (N, WINDOW, F) raw windows: (N, N_TYPICAL)."""
    ranks, nan = _bar_ranks(np.asarray(windows), bar_ref)  # (N, WINDOW, K)
    return _span_means(ranks.transpose(0, 2, 1), nan.transpose(0, 2, 1), bar_ref.shape[1])


def series_typicality(
    rows: np.ndarray,
    bar_ref: np.ndarray,
    columns: tuple[str, ...] = TYPICAL_COLUMNS,
    spans: tuple[int, ...] = TYPICAL_SPANS,
) -> np.ndarray:
    """The statistic of the window ending at every bar of (T, F) rows: (T, K * spans), NaN before a full window.

    Entry t equals `window_typicality` of rows t - WINDOW + 1 .. t (bit for bit).
    """
    ranks, nan = _bar_ranks(rows, bar_ref, columns)  # (T, K)
    t, k = ranks.shape
    out = np.full((t, k * len(spans)), np.nan)
    if t < WINDOW:
        return out
    # running integer sums: a span's sum is a difference of two, exact like `_span_means`' sums
    total = np.zeros((t + 1, k), dtype=np.int64)
    np.cumsum(ranks, axis=0, out=total[1:])
    bad = np.zeros((t + 1, k), dtype=np.int64)
    np.cumsum(nan, axis=0, out=bad[1:])
    scale = float(2 * (bar_ref.shape[1] - 1))
    for i, span in enumerate(spans):
        sums = total[WINDOW:] - total[WINDOW - span : t + 1 - span]
        mean = sums / (scale * span)
        mean[(bad[WINDOW:] - bad[WINDOW - span : t + 1 - span]) > 0] = np.nan
        out[WINDOW - 1 :, i * k : (i + 1) * k] = mean
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
    return np.asarray(((diff @ precision) * diff).sum(axis=1), dtype=np.float64)


def reference(values: np.ndarray, n: int) -> np.ndarray:
    """`n` evenly spaced quantiles (0 to 1) of a reference sample."""
    return np.quantile(values.astype(np.float64), np.linspace(0.0, 1.0, n))


def increasing(ref: np.ndarray) -> np.ndarray:
    """Reference quantiles nudged strictly increasing (quantiles of ties repeat; np.interp needs increasing x)."""
    return np.maximum.accumulate(ref + np.arange(len(ref)) * 1e-15 * (1 + np.abs(ref)))


def percentile(values: np.ndarray, ref: np.ndarray, *, prepared: bool = False) -> np.ndarray:
    """Where each value falls in a reference's quantiles, 0..1 (beyond the ends: 0 or 1).

    `prepared`: `ref` already went through `increasing` (callers scoring many times do it once).
    """
    grid = np.linspace(0.0, 1.0, len(ref))
    ref = ref if prepared else increasing(ref)
    return np.interp(values.astype(np.float64), ref, grid, left=0.0, right=1.0)
