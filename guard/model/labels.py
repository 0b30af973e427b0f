"""Triple-barrier labels: what the model is asked to predict, and how a proposal is scored.

From a bar's close, draw a take-profit barrier at +w and a stop at −w in log price, with
w = k·σ·√H (σ the per-bar volatility at that close, H the horizon in bars). The label is
"up" if the high of a later bar touches +w first, "down" if a low touches −w first, and
"flat" if neither happens within H bars — or if one bar touches both, because from bars
alone nobody can say which came first, and a trade cannot count on either.

The same rule scores live proposals (`guard.model.tracker`), so the hit rate the model card
claims and the one measured live mean the same thing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DOWN, FLAT, UP = 0, 1, 2
LABELS = ("down", "flat", "up")
"""Class index -> name; the order of `Signal.probabilities`."""
UNKNOWN = -1


@dataclass(frozen=True, slots=True)
class BarrierParams:
    """Where the barriers sit and how long to wait."""

    k: float = 1.0
    """Barrier distance in units of σ·√H."""
    horizon_bars: int = 30
    """Time limit H, in bars."""

    def width(self, sigma: float) -> float:
        """Log-price distance of both barriers from the entry."""
        return self.k * sigma * math.sqrt(self.horizon_bars)


def triple_barrier_labels(
    highs: np.ndarray,
    lows: np.ndarray,
    closes: np.ndarray,
    sigma: np.ndarray,
    segment_starts: np.ndarray,
    params: BarrierParams,
) -> np.ndarray:
    """Label every bar (int8: DOWN, FLAT, UP, or UNKNOWN where the future is not fully known).

    A bar is UNKNOWN when σ is not defined yet or its H following bars run past the data or
    across a gap.
    """
    n = len(closes)
    labels = np.full(n, UNKNOWN, dtype=np.int8)
    ends = np.append(segment_starts[1:], n)
    horizon = params.horizon_bars
    for start, end in zip(segment_starts, ends, strict=True):
        m = end - start - horizon  # bars with H full bars after them
        if m <= 0:
            continue
        c = np.log(closes[start:end])
        lh = np.log(highs[start:end])
        ll = np.log(lows[start:end])
        width = params.k * sigma[start : start + m] * math.sqrt(horizon)
        up_level = c[:m] + width
        down_level = c[:m] - width
        decided = np.zeros(m, dtype=bool)
        seg_labels = np.full(m, FLAT, dtype=np.int8)
        for j in range(1, horizon + 1):
            touch_up = lh[j : j + m] >= up_level
            touch_down = ll[j : j + m] <= down_level
            new = ~decided & (touch_up | touch_down)
            seg_labels[new & touch_up & ~touch_down] = UP
            seg_labels[new & touch_down & ~touch_up] = DOWN
            decided |= new  # both touched in one bar stays FLAT: the order is unknowable
        seg_labels[~np.isfinite(width)] = UNKNOWN
        labels[start : start + m] = seg_labels
    return labels


@dataclass(slots=True)
class BarrierWatch:
    """One proposal being scored bar by bar against its barriers (mutable, owned by the tracker)."""

    up_level: float
    down_level: float
    deadline_ms: int
    """Close time of the last bar that still counts."""
    outcome: int | None = None

    def observe(self, high: float, low: float, close_time: int) -> int | None:
        """Feed one later bar; return the outcome once decided (DOWN, FLAT or UP)."""
        if self.outcome is not None:
            return self.outcome
        if close_time > self.deadline_ms:
            self.outcome = FLAT
            return self.outcome
        lh, ll = math.log(high), math.log(low)
        touch_up, touch_down = lh >= self.up_level, ll <= self.down_level
        if touch_up and touch_down:
            self.outcome = FLAT
        elif touch_up:
            self.outcome = UP
        elif touch_down:
            self.outcome = DOWN
        elif close_time == self.deadline_ms:
            self.outcome = FLAT
        return self.outcome
