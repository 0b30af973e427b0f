"""Every novelty design measured on the regime-shift benchmark (`guard.model.regimes`), guard's own first.

A design is fitted on a series' `fit` windows (and their bars) and scores the window ending at every
bar (higher = more novel). Apart from guard's, they exist to be compared with it — docs/model.md
gives the table and says how the choice was made — and to be measured again when someone proposes
another: add it to DESIGNS and run `python -m guard.model.regimes`.

Ranks are mid-ranks among 1001 quantiles of the fit bars' values, as guard's own score ranks them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from guard.features import FEATURE_NAMES, RETURNS, WINDOW, FeatureSeries
from guard.model import novelty
from guard.model.network import N_QUANTILES
from guard.model.regimes import Design, Split, novelty_design, volatility_baseline

_COL = {name: i for i, name in enumerate(FEATURE_NAMES)}
SHORT = 16
_SHRINKAGE = 0.05


# --- per-bar values ----------------------------------------------------------------------


def _abs_returns(s: FeatureSeries) -> np.ndarray:
    return np.asarray(np.abs(s.returns), dtype=np.float64)


def _hour_scaled(how: str) -> Callable[[FeatureSeries, Split], np.ndarray]:
    """|return| divided by the fit bars' mean (or median) |return| at the bar's hour of day."""

    def values(s: FeatureSeries, sp: Split) -> np.ndarray:
        size = np.abs(s.returns)
        hours = novelty.hour_of_day(s.open_times)
        scale = np.ones(novelty.HOURS)
        for h in range(novelty.HOURS):
            m = sp.fit & (hours == h) & np.isfinite(size)
            if m.any():
                scale[h] = float(np.mean(size[m]) if how == "mean" else np.median(size[m]))
        return np.asarray(size / scale[hours], dtype=np.float64)

    return values


def _quantile_ranks(values: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """Mid-rank percentile of each value among N_QUANTILES quantiles of the fit bars' values (NaN kept)."""
    quantiles = novelty.fit_bar_quantiles(values[fit], N_QUANTILES)
    return novelty.bar_percentiles(values, quantiles)


def _hourly_ranks(values: np.ndarray, hours: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """Each value ranked among the fit bars of its own hour of day only."""
    out = np.full(len(values), np.nan)
    for h in np.unique(hours):
        m = hours == h
        if (fit & m & np.isfinite(values)).any():
            out[m] = _quantile_ranks(values, fit & m)[m]
    out[np.isnan(values)] = np.nan
    return out


def _span_mean(u: np.ndarray, span: int) -> np.ndarray:
    """Mean of u over the `span` bars ending at each bar (NaN if any is NaN or the span reaches back too far)."""
    out = np.full(len(u), np.nan)
    if len(u) < span:
        return out
    total = np.concatenate(([0.0], np.cumsum(np.nan_to_num(u))))
    bad = np.concatenate(([0], np.cumsum(np.isnan(u))))
    mean = (total[span:] - total[:-span]) / span
    mean[(bad[span:] - bad[:-span]) > 0] = np.nan
    out[span - 1 :] = mean
    return out


# --- combining statistics ----------------------------------------------------------------


def _mahalanobis(x: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance from the fit windows' Gaussian (covariance shrunk 5 % to its trace)."""
    x = x.astype(np.float64)
    ok = np.isfinite(x).all(axis=1)
    ref = x[fit & ok]
    mean = ref.mean(axis=0)
    cov = np.atleast_2d(np.cov(ref - mean, rowvar=False))
    d = cov.shape[0]
    cov = (1 - _SHRINKAGE) * cov + _SHRINKAGE * max(float(np.trace(cov)) / d, 1e-12) * np.eye(d)
    precision = np.linalg.inv(cov)
    out = np.full(len(x), np.nan)
    diff = x[ok] - mean
    out[ok] = ((diff @ precision) * diff).sum(axis=1)
    return out


def _largest_z2(x: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """The larger squared z-score against the fit windows (guard's rule)."""
    mean, spread = novelty.fit_center(x[fit])
    return novelty.distance(x, mean, spread)


def _stat_design(
    values: Callable[[FeatureSeries, Split], np.ndarray],
    spans: tuple[int, ...],
    combine: Callable[[np.ndarray, np.ndarray], np.ndarray] = _largest_z2,
    *,
    hourly_ranks: bool = False,
    extra: Callable[[FeatureSeries], np.ndarray] | None = None,
) -> Design:
    """Rank per-bar values among the fit bars', average over spans, add extra statistics, combine."""

    def score(s: FeatureSeries, sp: Split) -> np.ndarray:
        v = values(s, sp)
        u = _hourly_ranks(v, novelty.hour_of_day(s.open_times), sp.fit) if hourly_ranks else _quantile_ranks(v, sp.fit)
        stat = np.stack([_span_mean(u, k) for k in spans], axis=1)
        if extra is not None:
            stat = np.concatenate((stat, extra(s)), axis=1)
        out = combine(stat, sp.fit)
        out[~s.ready] = np.nan
        return out

    return score


# --- statistics of shape and persistence --------------------------------------------------


def _windows_of(x: np.ndarray, span: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(x, span)


def _aligned(stat: np.ndarray, n: int, span: int) -> np.ndarray:
    out = np.full(n, np.nan)
    out[span - 1 :] = stat
    return out[:, None]


def efficiency(s: FeatureSeries, span: int = WINDOW) -> np.ndarray:
    """Directional efficiency |Σ r| / Σ |r| over the span: 1 for a one-way move, near 0 for a range."""
    w = _windows_of(s.returns, span)
    return _aligned(np.abs(w.sum(axis=1)) / np.abs(w).sum(axis=1), len(s), span)


def jump_share(s: FeatureSeries, span: int = WINDOW) -> np.ndarray:
    """Share of the span's bars whose |return| exceeds 4× the span's median |return| (tail weight)."""
    w = np.abs(_windows_of(s.returns, span))
    return _aligned((w > 4 * np.median(w, axis=1)[:, None]).mean(axis=1), len(s), span)


def autocorrelation(s: FeatureSeries, span: int = WINDOW) -> np.ndarray:
    """Lag-1 autocorrelation of the span's returns (runs and reversals)."""
    w = _windows_of(s.returns, span)
    z = w - w.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _aligned((z[:, 1:] * z[:, :-1]).sum(axis=1) / (z * z).sum(axis=1), len(s), span)


def _shape_design(stat: Callable[[FeatureSeries], np.ndarray]) -> Design:
    def score(s: FeatureSeries, sp: Split) -> np.ndarray:
        out = _largest_z2(stat(s), sp.fit)
        out[~s.ready] = np.nan
        return out

    return score


def change_design(with_level: bool) -> Design:
    """The 16-bar mean rank against the mean of the RETURNS - 16 bars before it (a change within the
    window, whatever the level), two-sided; with the level's own two spans beside it when `with_level`."""
    values = _hour_scaled("mean")

    def score(s: FeatureSeries, sp: Split) -> np.ndarray:
        u = _quantile_ranks(values(s, sp), sp.fit)
        long, short = _span_mean(u, RETURNS), _span_mean(u, SHORT)
        change = short - (long * RETURNS - short * SHORT) / (RETURNS - SHORT)
        stat = np.stack((long, short, change) if with_level else (change,), axis=1)
        out = _largest_z2(stat, sp.fit)
        out[~s.ready] = np.nan
        return out

    return score


def one_sided(s: FeatureSeries, sp: Split) -> np.ndarray:
    """Not a novelty score: the hour-scaled 123-bar mean rank itself, higher = louder (a quiet market scores
    low). Shown to separate the cost of being two-sided from the rest."""
    u = _quantile_ranks(_hour_scaled("mean")(s, sp), sp.fit)
    out = _span_mean(u, RETURNS)
    out[~s.ready] = np.nan
    return out


# --- the designs of earlier versions -----------------------------------------------------


def _row_values(*columns: str) -> Callable[[FeatureSeries, Split], np.ndarray]:
    def values(s: FeatureSeries, sp: Split) -> np.ndarray:
        return np.abs(s.rows[:, [_COL[c] for c in columns]].astype(np.float64))

    return values


def _rows_design(columns: tuple[str, ...], spans: tuple[int, ...]) -> Design:
    """typicality/2 and its variants: float32 feature-row columns ranked, span means, Mahalanobis."""
    values = _row_values(*columns)

    def score(s: FeatureSeries, sp: Split) -> np.ndarray:
        v = values(s, sp)
        u = np.stack([_quantile_ranks(v[:, j], sp.fit) for j in range(v.shape[1])], axis=1)
        stat = np.stack([_span_mean(u[:, j], k) for k in spans for j in range(v.shape[1])], axis=1)
        out = _mahalanobis(stat, sp.fit)
        out[~s.ready] = np.nan
        return out

    return score


def window_summaries(s: FeatureSeries) -> np.ndarray:
    """Scale and shape of every window (T, 12): log volatility, short/long volatility, volatility of
    volatility, skew, kurtosis, drift, drawdown, lag-1 autocorrelation, range/volatility, close
    location, volume z-scores (mean and spread). NaN where no full window ends."""
    w = s.windows()  # (T - WINDOW + 1, WINDOW, F)
    r = w[:, :, _COL["ret_1"]].astype(np.float64)
    sig = np.sqrt((r * r).mean(axis=1)) + 1e-12
    z = r / sig[:, None]
    cum = np.cumsum(r, axis=1)
    n = r.shape[1]
    stats = np.stack(
        [
            np.log(sig),
            np.log(w[:, -1, _COL["vol_5"]] + 1e-12) - np.log(w[:, -1, _COL["vol_60"]] + 1e-12),
            np.log(w[:, :, _COL["vol_5"]] + 1e-12).std(axis=1),
            (z**3).mean(axis=1),
            np.log((z**4).mean(axis=1) + 1e-12),
            cum[:, -1] / (sig * np.sqrt(n)),
            (np.maximum.accumulate(cum, axis=1)[:, -1] - cum[:, -1]) / (sig * np.sqrt(n)),
            (z[:, 1:] * z[:, :-1]).mean(axis=1),
            np.log(w[:, :, _COL["range"]].mean(axis=1) + 1e-12) - np.log(sig),
            w[:, :, _COL["close_location"]].mean(axis=1),
            w[:, :, _COL["volume_z"]].mean(axis=1),
            w[:, :, _COL["volume_z"]].std(axis=1),
        ],
        axis=1,
    )
    out = np.full((len(s), stats.shape[1]), np.nan)
    out[len(s) - len(stats) :] = stats
    return out


def summaries_design(s: FeatureSeries, sp: Split) -> np.ndarray:
    """Mahalanobis distance over window summaries that include distribution shape (standardised)."""
    x = window_summaries(s)
    mu, sd = np.nanmean(x[sp.fit], axis=0), np.nanstd(x[sp.fit], axis=0) + 1e-9
    return _mahalanobis((x - mu) / sd, sp.fit)


GUARD = "guard's novelty (typicality/3): hour-scaled absolute-return ranks, 123- and 16-bar means, larger z²"
VOLATILITY = "60-bar volatility (baseline)"
ONE_SIDED = "one-sided: hour-scaled 123-bar mean rank (not two-sided; for comparison only)"

DESIGNS: dict[str, Design] = {
    GUARD: novelty_design,
    "previous novelty (typicality/2): absolute ret_1 ranks, 64- and 16-bar means, Mahalanobis": _rows_design(
        ("ret_1",), (WINDOW, SHORT)
    ),
    "absolute ret_1 ranks, 64-bar mean only": _rows_design(("ret_1",), (WINDOW,)),
    "ranks of absolute ret_1 and high-low range, 64 and 16 bars, Mahalanobis": _rows_design(
        ("ret_1", "range"), (WINDOW, SHORT)
    ),
    "Mahalanobis over window scale and shape summaries (12)": summaries_design,
    "absolute-return ranks, no hour scaling, 123 and 16, larger z²": _stat_design(
        lambda s, sp: _abs_returns(s), (RETURNS, SHORT)
    ),
    "hour-scaled by the hour's median (the design chosen before the held-out shifts were scored)": _stat_design(
        _hour_scaled("median"), (RETURNS, SHORT)
    ),
    "ranked within the bar's own hour of day, 123 and 16, larger z²": _stat_design(
        lambda s, sp: _abs_returns(s), (RETURNS, SHORT), hourly_ranks=True
    ),
    "hour-scaled, 123-bar mean only": _stat_design(_hour_scaled("mean"), (RETURNS,)),
    "hour-scaled, 64 and 16, larger z²": _stat_design(_hour_scaled("mean"), (WINDOW, SHORT)),
    "hour-scaled, 120, 64 and 16, larger z²": _stat_design(_hour_scaled("mean"), (120, WINDOW, SHORT)),
    "hour-scaled, 123 and 16, Mahalanobis": _stat_design(_hour_scaled("mean"), (RETURNS, SHORT), _mahalanobis),
    "hour-scaled, 123 and 16, plus 64-bar efficiency, larger z²": _stat_design(
        _hour_scaled("mean"), (RETURNS, SHORT), extra=efficiency
    ),
    "trend efficiency (net move over path length), 64 bars, alone": _shape_design(efficiency),
    "jump share (bars > 4× the window's median move), 64 bars, alone": _shape_design(jump_share),
    "lag-1 autocorrelation, 64 bars, alone": _shape_design(autocorrelation),
    "change: 16-bar mean rank against the 107 before it, alone": change_design(with_level=False),
    "hour-scaled 123 and 16 plus that change, larger z²": change_design(with_level=True),
    ONE_SIDED: one_sided,
    VOLATILITY: volatility_baseline,
}
"""Every design measured, guard's first, the baseline last (its own column in the tables)."""
