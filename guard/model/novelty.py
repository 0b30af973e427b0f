"""Novelty: how unlike its training data an input is, as a percentile.

The score is a *typicality* test on the moves the window's features read:

1. Each bar's absolute one-bar log return (the RETURNS of them a window carries,
   `guard.features`) is divided by the mean absolute return of training bars that opened at
   the same hour of the day (UTC), so a market's ordinary daily rhythm — a quiet Asian night,
   a busy London-New York overlap — is not mistaken for a change of regime. Daily bars all
   open at the same hour: for them this is one constant.
2. Those de-seasonalised sizes are ranked among the training bars': a percentile u in 0..1
   (the mid-rank among ties).
3. The window's statistic is the mean of u over all its RETURNS returns and over its last 16.
   On data like the training data both sit near 0.5; in a market whose moves are bigger (a
   crash, a squeeze) they rise towards 1, in a market gone quiet or stale they fall towards 0.
   The long mean is steady (a single jump moves it little, and two weeks of hourly bars of a
   new regime move it far); the short one reacts within a few bars to a sudden change.
4. Each mean becomes a z-score against the training windows' (mean and spread); the distance
   is the larger of the two squared z-scores, so either span departing, in either direction,
   counts. It is turned into a percentile of the same distance on validation windows.

So, on inputs like the training data, novelty is uniform on 0..1 and a threshold of 0.95
flags about 5 % of ordinary windows; a market moving much more *or much less* is flagged.

What it is not: a detector of change against the recent past. A market that has turned louder
than last month but no louder than the training data is not novel here — and that is most
real regime shifts in a model trained on years that hold a crisis. docs/model.md gives the
figures on real shifts (`guard.model.regimes`), every design tried, and the command.

Everything here is numpy and runs the same arithmetic for a whole series (training, replay,
evaluation) and for a handful of live windows: the per-bar arithmetic is elementwise and
ranks are summed as integers, exactly, so both paths give bit-identical scores.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from guard.features import RETURNS

METHOD = "typicality/3"
"""Recorded in a model's config.json; a model whose novelty was fitted another way is refused."""
SPANS = (RETURNS, 16)
"""The statistic averages the ranks over every return the window reads and over its last 16."""
N_STAT = len(SPANS)
HOURS = 24
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
_SPREAD_FLOOR = 1e-9
"""A span mean that never moved in training (a constant market) still gets a finite z-score."""


@dataclass(frozen=True, slots=True, eq=False)
class Reference:
    """What novelty is measured against, fitted on training bars and windows (float64 arrays)."""

    hour_scale: np.ndarray
    """(HOURS,) mean absolute one-bar return of training bars opening at each hour (UTC)."""
    bar_quantiles: np.ndarray
    """(n,) quantiles of the de-seasonalised absolute returns of training bars."""
    mean: np.ndarray
    """(N_STAT,) mean of the training windows' span means."""
    spread: np.ndarray
    """(N_STAT,) their standard deviation."""


def hour_of_day(open_times: np.ndarray) -> np.ndarray:
    """The UTC hour (0..23) at which each bar opens: int64, the shape of `open_times`."""
    return (np.asarray(open_times, dtype=np.int64) % DAY_MS) // HOUR_MS


def fit_hour_scale(returns: np.ndarray, open_times: np.ndarray) -> np.ndarray:
    """Mean absolute return of the bars opening at each hour (NaN returns skipped): (HOURS,).

    An hour without training bars (a timeframe of hours or days opens only at some) gets the mean
    over all bars, so a bar that opens there is compared with the market as a whole.

    Raises:
        ValueError: when no bar moved at all (nothing to measure sizes against).
    """
    size = np.abs(np.asarray(returns, dtype=np.float64))
    hours = hour_of_day(open_times)
    ok = np.isfinite(size)
    size, hours = size[ok], hours[ok]
    overall = float(size.mean()) if len(size) else 0.0
    if not overall > 0:
        raise ValueError("no price moves to fit the novelty reference on")
    total = np.bincount(hours, weights=size, minlength=HOURS)
    count = np.bincount(hours, minlength=HOURS)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(count > 0, total / np.maximum(count, 1), overall)
    return np.where(scale > 0, scale, overall)


def bar_values(returns: np.ndarray, open_times: np.ndarray, hour_scale: np.ndarray) -> np.ndarray:
    """De-seasonalised move sizes: |return| / the hour's training mean, elementwise (NaN stays NaN)."""
    return np.asarray(
        np.abs(np.asarray(returns, dtype=np.float64)) / hour_scale[hour_of_day(open_times)], dtype=np.float64
    )


def fit_bar_quantiles(values: np.ndarray, n: int) -> np.ndarray:
    """`n` quantiles (0 to 1) of training bar values (NaN skipped): (n,).

    Raises:
        ValueError: when there is no finite value.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        raise ValueError("no finite bars to fit the novelty reference on")
    return np.ascontiguousarray(np.quantile(values, np.linspace(0.0, 1.0, n)), dtype=np.float64)


def _ranks(values: np.ndarray, bar_quantiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Twice each value's mid-rank among the quantiles, as exact integers 0 .. 2(n-1), and a NaN mask."""
    nan = np.isnan(values)
    flat = values.ravel()
    # searched in sorted order (several times faster for many keys); each key's rank is its own either way
    order = np.argsort(flat)
    keys = flat[order]
    flat_ranks = np.empty(flat.shape, dtype=np.int64)
    flat_ranks[order] = np.searchsorted(bar_quantiles, keys, side="left") + np.searchsorted(
        bar_quantiles, keys, side="right"
    )
    ranks = flat_ranks.reshape(values.shape)
    np.minimum(ranks, 2 * (len(bar_quantiles) - 1), out=ranks)  # NaN sorts past the end; it is masked
    if nan.any():
        ranks[nan] = 0
    return ranks, nan


def bar_percentiles(values: np.ndarray, bar_quantiles: np.ndarray) -> np.ndarray:
    """Each value's mid-rank percentile among the quantiles (NaN stays NaN)."""
    ranks, nan = _ranks(np.asarray(values, dtype=np.float64), bar_quantiles)
    out = ranks / float(2 * (len(bar_quantiles) - 1))
    out[nan] = np.nan
    return out


def window_statistic(
    returns: np.ndarray,
    last_open_times: np.ndarray,
    step_ms: int | np.ndarray,
    ref: Reference,
    spans: tuple[int, ...] = SPANS,
) -> np.ndarray:
    """The statistic of (N, RETURNS) live windows' returns, the last bar of each opening at
    `last_open_times` (N,), bars `step_ms` apart: (N, len(spans)); NaN where a span holds a NaN return."""
    returns = np.asarray(returns, dtype=np.float64)
    width = returns.shape[-1]
    back = np.arange(width - 1, -1, -1, dtype=np.int64)
    times = (
        np.asarray(last_open_times, dtype=np.int64)[:, None]
        - np.asarray(step_ms, dtype=np.int64).reshape(-1, 1) * back[None, :]
    )
    ranks, nan = _ranks(bar_values(returns, times, ref.hour_scale), ref.bar_quantiles)
    scale = float(2 * (len(ref.bar_quantiles) - 1))
    out = np.empty((returns.shape[0], len(spans)))
    for j, span in enumerate(spans):
        out[:, j] = ranks[:, width - span :].sum(axis=1) / (scale * span)
        out[nan[:, width - span :].any(axis=1), j] = np.nan
    return out


def series_statistic(
    returns: np.ndarray, open_times: np.ndarray, ref: Reference, spans: tuple[int, ...] = SPANS
) -> np.ndarray:
    """The statistic of the window ending at every bar of a series' (T,) returns: (T, len(spans)).

    NaN where a span reaches before the series or holds a NaN return (a segment's first bar).
    Entry t equals `window_statistic` of returns t - RETURNS + 1 .. t, bit for bit.
    """
    ranks, nan = _ranks(bar_values(returns, open_times, ref.hour_scale), ref.bar_quantiles)
    t = len(ranks)
    out = np.full((t, len(spans)), np.nan)
    # running integer sums: a span's sum is a difference of two, exact like `window_statistic`'s sums
    total = np.zeros(t + 1, dtype=np.int64)
    np.cumsum(ranks, out=total[1:])
    bad = np.zeros(t + 1, dtype=np.int64)
    np.cumsum(nan, out=bad[1:])
    scale = float(2 * (len(ref.bar_quantiles) - 1))
    for j, span in enumerate(spans):
        if t < span:
            continue
        mean = (total[span:] - total[:-span]) / (scale * span)
        mean[(bad[span:] - bad[:-span]) > 0] = np.nan
        out[span - 1 :, j] = mean
    return out


def fit_center(statistics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of (N, N_STAT) training windows' statistics (NaN rows skipped).

    Raises:
        ValueError: when no window has a statistic.
    """
    x = np.asarray(statistics, dtype=np.float64)
    x = x[np.isfinite(x).all(axis=1)]
    if len(x) == 0:
        raise ValueError("no training windows to fit the novelty reference on")
    return x.mean(axis=0), np.maximum(x.std(axis=0), _SPREAD_FLOOR)


def distance(statistics: np.ndarray, mean: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """The larger squared z-score of each row of (N, N_STAT) statistics (NaN where any is NaN)."""
    z = (np.asarray(statistics, dtype=np.float64) - mean) / spread
    return np.asarray((z * z).max(axis=1), dtype=np.float64)  # max propagates NaN


def fit_reference(
    returns: np.ndarray,
    open_times: np.ndarray,
    bars: np.ndarray,
    windows: np.ndarray,
    n: int,
    spans: tuple[int, ...] = SPANS,
) -> tuple[Reference, np.ndarray]:
    """Fit a reference on one series' training bars and windows; return it and every bar's statistic.

    Args:
        returns, open_times: (T,) the series' one-bar returns and bar open times.
        bars: (T,) bool, the bars whose move sizes are the reference (training bars).
        windows: (T,) bool, the bars ending the windows whose statistics are the reference.
        n: quantiles kept.

    Raises:
        ValueError: when the training bars or windows hold nothing to fit on.
    """
    hour_scale = fit_hour_scale(returns[bars], open_times[bars])
    quantiles = fit_bar_quantiles(bar_values(returns[bars], open_times[bars], hour_scale), n)
    partial = Reference(hour_scale, quantiles, np.zeros(len(spans)), np.ones(len(spans)))
    stat = series_statistic(returns, open_times, partial, spans)
    mean, spread = fit_center(stat[windows])
    return Reference(hour_scale, quantiles, mean, spread), stat


def reference(values: np.ndarray, n: int) -> np.ndarray:
    """`n` evenly spaced quantiles (0 to 1) of a reference sample (NaN skipped)."""
    values = np.asarray(values, dtype=np.float64)
    return np.asarray(np.quantile(values[np.isfinite(values)], np.linspace(0.0, 1.0, n)), dtype=np.float64)


def increasing(ref: np.ndarray) -> np.ndarray:
    """Reference quantiles nudged strictly increasing (quantiles of ties repeat; np.interp needs increasing x)."""
    return np.maximum.accumulate(ref + np.arange(len(ref)) * 1e-15 * (1 + np.abs(ref)))


def percentile(values: np.ndarray, ref: np.ndarray, *, prepared: bool = False) -> np.ndarray:
    """Where each value falls in a reference's quantiles, 0..1 (beyond the ends: 0 or 1; NaN stays NaN).

    `prepared`: `ref` already went through `increasing` (callers scoring many times do it once).
    """
    ref = ref if prepared else increasing(ref)
    return np.asarray(np.interp(values.astype(np.float64), ref, _grid(len(ref)), left=0.0, right=1.0), dtype=np.float64)


@functools.cache
def _grid(n: int) -> np.ndarray:
    grid = np.linspace(0.0, 1.0, n)
    grid.setflags(write=False)
    return grid
