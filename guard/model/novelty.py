"""Novelty: how unlike its training data an input is, as a percentile.

Two views of "unlike", each turned into a percentile of a held-out reference from the
training period, then combined:

* **distance**: squared Mahalanobis distance of the ensemble's embedding from the training
  embeddings' mean (covariance shrunk towards a scaled identity so rare directions do not
  explode). A market with five times the volatility lands far out.
* **disagreement**: the ensemble members' mutual information (mean KL of each member from
  the average). Members that were trained alike but disagree are extrapolating.

The combined score is the larger of the two percentiles, itself re-expressed as a
percentile of the same reference — so on inputs like the training data, novelty is
uniform on 0..1, and a threshold of 0.95 flags about 5 % of ordinary windows.

The two raw scores are computed by `guard.model.inference.raw_scores` (in torch), both when
the reference is fitted and live, so they are ranked with the arithmetic that made them.
"""

from __future__ import annotations

import numpy as np

SHRINKAGE = 0.05


def fit_gaussian(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and shrunk precision matrix of (N, D) embeddings (float64)."""
    x = embeddings.astype(np.float64)
    mean = x.mean(axis=0)
    cov = np.cov(x - mean, rowvar=False)
    d = cov.shape[0]
    scale = max(float(np.trace(cov)) / d, 1e-12)
    cov = (1 - SHRINKAGE) * cov + SHRINKAGE * scale * np.eye(d)
    precision = np.linalg.inv(cov)
    return mean, (precision + precision.T) / 2


def reference(values: np.ndarray, n: int) -> np.ndarray:
    """`n` evenly spaced quantiles (0 to 1) of a reference sample."""
    return np.quantile(values.astype(np.float64), np.linspace(0.0, 1.0, n))


def percentile(values: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Where each value falls in a reference's quantiles, 0..1 (beyond the ends: 0 or 1)."""
    grid = np.linspace(0.0, 1.0, len(ref))
    # np.interp wants increasing x; quantiles of ties repeat, so nudge them apart
    ref = np.maximum.accumulate(ref + np.arange(len(ref)) * 1e-15 * (1 + np.abs(ref)))
    return np.interp(values.astype(np.float64), ref, grid, left=0.0, right=1.0)


def combine(distance_pct: np.ndarray, disagreement_pct: np.ndarray) -> np.ndarray:
    """The raw combined score: the worse of the two views."""
    return np.maximum(distance_pct, disagreement_pct)
