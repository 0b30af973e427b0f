"""Calibration and the honesty metrics: temperature scaling, ECE, reliability, Brier, AUROC.

All numpy: these run on held-out predictions after training and in the benchmarks.

Temperature scaling divides every member's logits by one number T, fitted on the validation
split to minimise the negative log-likelihood of the ensemble's averaged probabilities. It
changes how sure the model sounds, never which class it prefers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ECE_BINS = 15


def member_probs(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax of (N, members, 3) logits at a temperature: (N, members, 3)."""
    z = logits / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    probs: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return probs


def ensemble_probs(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """The ensemble's probabilities: the mean of its members' (N, 3)."""
    mean: np.ndarray = member_probs(logits, temperature).mean(axis=1)
    return mean


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels."""
    p = probs[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(p, 1e-12, None)).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray, lo: float = 0.05, hi: float = 20.0) -> float:
    """The temperature minimising validation NLL (golden-section search on log T)."""
    a, b = math.log(lo), math.log(hi)
    ratio = (math.sqrt(5) - 1) / 2

    def loss(log_t: float) -> float:
        return nll(ensemble_probs(logits, math.exp(log_t)), labels)

    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss(c), loss(d)
    for _ in range(60):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    return math.exp((a + b) / 2)


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """One confidence bucket: how sure the model said it was, and how often it was right."""

    lo: float
    hi: float
    count: int
    confidence: float
    """Mean stated confidence in the bucket."""
    accuracy: float
    """Share of the bucket that came true."""


def reliability(confidence: np.ndarray, correct: np.ndarray, edges: np.ndarray | None = None) -> list[ReliabilityBin]:
    """Bucket predictions by confidence (equal-width bins by default); empty bins are left out."""
    if edges is None:
        edges = np.linspace(0.0, 1.0, ECE_BINS + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, len(edges) - 2)
    bins = []
    for i in range(len(edges) - 1):
        mask = index == i
        n = int(mask.sum())
        if n:
            bins.append(
                ReliabilityBin(
                    float(edges[i]),
                    float(edges[i + 1]),
                    n,
                    float(confidence[mask].mean()),
                    float(correct[mask].mean()),
                )
            )
    return bins


def ece(probs: np.ndarray, labels: np.ndarray) -> float:
    """Expected calibration error of the top-label confidence (15 equal-width bins)."""
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    total = len(labels)
    return float(sum(b.count / total * abs(b.accuracy - b.confidence) for b in reliability(confidence, correct)))


def brier(probs: np.ndarray, labels: np.ndarray) -> float:
    """Multi-class Brier score: mean squared distance to the one-hot truth (0 best, 2 worst)."""
    onehot = np.eye(probs.shape[1])[labels]
    return float(((probs - onehot) ** 2).sum(axis=1).mean())


def auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve: P(a positive scores above a negative), ties counted half."""
    scores = np.concatenate((negatives, positives))
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    n_neg, n_pos = len(negatives), len(positives)
    rank_sum = ranks[n_neg:].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_neg * n_pos))
