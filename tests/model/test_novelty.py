"""Novelty: the same bits live and in training, both directions of departure flagged, the daily rhythm not."""

from __future__ import annotations

import numpy as np
import pytest

from guard.features import RETURNS, WindowBuilder, build_series
from guard.model import novelty
from guard.model.inference import NoveltyReference
from guard.model.synthetic import toy_bars
from tests.model.toy import Trained

HOUR_MS = 3_600_000


def _seasonal_returns(days: int, seed: int, factor: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Hourly returns with a strong daily rhythm: quiet nights (0.3x), busy afternoons (3x)."""
    rng = np.random.default_rng(seed)
    times = 1_767_225_600_000 + HOUR_MS * np.arange(days * 24, dtype=np.int64)
    rhythm = np.where(
        (novelty.hour_of_day(times) >= 12) & (novelty.hour_of_day(times) < 18),
        3.0,
        np.where(novelty.hour_of_day(times) < 6, 0.3, 1.0),
    )
    returns = 0.001 * factor * rhythm * rng.standard_normal(len(times))
    returns[0] = np.nan  # a series' first bar has no return
    return returns, times


def _scores(ref: novelty.Reference, validation: np.ndarray, returns: np.ndarray, times: np.ndarray) -> np.ndarray:
    stat = novelty.series_statistic(returns, times, ref)[RETURNS:]
    return novelty.percentile(novelty.distance(stat, ref.mean, ref.spread), novelty.reference(validation, 1001))


def test_novelty_series_and_window_statistics_are_bit_identical(trained: Trained) -> None:
    """The statistic of a whole series (training, replay) equals the one of each live window, bit for bit."""
    ref = NoveltyReference.of(trained.model.net)
    series = trained.series[1]
    whole = ref.series(series)
    ends = np.flatnonzero(series.ready)[::97]
    windows = [series.window(int(i)) for i in ends]
    assert np.array_equal(whole[ends], ref.windows(windows))


def test_novelty_live_windows_of_hourly_bars_match_the_series_bit_for_bit() -> None:
    """Hourly bars built one by one, as live, give the series' statistic exactly, each bar's hour read right."""
    bars = toy_bars("H/USDT:USDT", 700, seed=12, timeframe="1h")
    series = build_series(bars)
    returns, times = series.returns, series.open_times
    scale = np.linspace(0.5, 2.0, novelty.HOURS)  # a different scale every hour: a wrong hour shows
    quantiles = novelty.fit_bar_quantiles(novelty.bar_values(returns, times, scale), 1001)
    ref = novelty.Reference(scale, quantiles, np.full(novelty.N_STAT, 0.5), np.full(novelty.N_STAT, 0.1))
    whole = novelty.series_statistic(returns, times, ref)
    builder = WindowBuilder(series.symbol, "1h")
    live = {i: w for i, bar in enumerate(bars) if (w := builder.update(bar)) is not None}
    batch = list(live.values())
    stat = novelty.window_statistic(
        np.stack([w.returns for w in batch]), np.array([w.open_time for w in batch]), HOUR_MS, ref
    )
    assert np.array_equal(whole[list(live)], stat)
    assert np.isfinite(stat).all()


def test_novelty_flags_both_louder_and_quieter_markets(trained: Trained) -> None:
    """A market moving 5x more and one moving 5x less both score far above the ordinary one."""
    ref = NoveltyReference.of(trained.model.net)
    scores = {}
    for factor in (0.2, 1.0, 5.0):
        series = build_series(toy_bars("N/USDT:USDT", 1500, seed=77, vol_factor=factor))
        stat = ref.series(series)[series.ready]
        scores[factor] = float(
            np.median(novelty.percentile(novelty.distance(stat, ref.fitted.mean, ref.fitted.spread), ref.distance))
        )
    assert scores[1.0] < 0.9
    assert scores[5.0] > 0.99 and scores[0.2] > 0.99


def test_novelty_daily_rhythm_is_not_novel_but_a_louder_market_is() -> None:
    """A market's ordinary busy and quiet hours score alike; the same rhythm 3x louder is flagged."""
    returns, times = _seasonal_returns(90, seed=1)
    train = np.arange(len(returns)) < 60 * 24
    ref, stat = novelty.fit_reference(returns, times, train, train, 1001)
    assert ref.hour_scale[14] > 5 * ref.hour_scale[3]  # the rhythm was learnt
    validation = novelty.distance(stat[~train], ref.mean, ref.spread)
    fresh, fresh_times = _seasonal_returns(30, seed=2)
    fresh_times = fresh_times + 90 * 24 * HOUR_MS
    ordinary = _scores(ref, validation, fresh, fresh_times)
    hours = novelty.hour_of_day(fresh_times[RETURNS:])
    busy, quiet = np.median(ordinary[(hours >= 13) & (hours < 18)]), np.median(ordinary[(hours >= 1) & (hours < 6)])
    assert abs(busy - quiet) < 0.2
    assert np.mean(ordinary >= 0.95) < 0.15
    louder, _ = _seasonal_returns(30, seed=2, factor=3.0)
    assert np.mean(_scores(ref, validation, louder, fresh_times) >= 0.95) > 0.9


def test_novelty_a_night_moving_like_an_afternoon_is_flagged() -> None:
    """Six quiet night hours that move as much as a busy afternoon are novel for their hour (without the
    hour's scale they look like any afternoon: their median novelty was 0.90 in this market)."""
    returns, times = _seasonal_returns(90, seed=1)
    train = np.arange(len(returns)) < 60 * 24
    ref, stat = novelty.fit_reference(returns, times, train, train, 1001)
    validation = novelty.reference(novelty.distance(stat[~train], ref.mean, ref.spread), 1001)
    fresh, fresh_times = _seasonal_returns(30, seed=2)
    fresh_times = fresh_times + 90 * 24 * HOUR_MS
    hours = novelty.hour_of_day(fresh_times)
    scores = []
    for day in range(8, 28, 2):
        loud = fresh.copy()
        night = (np.arange(len(loud)) // 24 == day) & (hours < 6)
        loud[night] *= 10  # 0.3x made 3x: the size of an ordinary afternoon bar
        end = day * 24 + 5  # the window ending with the night's last hour
        stat = novelty.series_statistic(loud, fresh_times, ref)[end : end + 1]
        scores.append(float(novelty.percentile(novelty.distance(stat, ref.mean, ref.spread), validation)[0]))
    assert np.median(scores) >= 0.95


def test_novelty_hour_scale_of_daily_bars_is_one_constant() -> None:
    """Daily bars all open at one hour: every hour gets the overall mean move, so nothing is de-seasonalised."""
    times = 1_767_225_600_000 + 86_400_000 * np.arange(300, dtype=np.int64)
    returns = np.random.default_rng(3).standard_normal(300) * 0.02
    scale = novelty.fit_hour_scale(returns, times)
    assert np.allclose(scale, np.mean(np.abs(returns)))


def test_novelty_flat_history_is_refused() -> None:
    """A history whose price never moved has no move sizes to compare with: refused, not divided by zero."""
    times = 1_767_225_600_000 + 60_000 * np.arange(500, dtype=np.int64)
    with pytest.raises(ValueError, match="no price moves"):
        novelty.fit_hour_scale(np.zeros(500), times)


def test_novelty_nan_returns_give_no_statistic() -> None:
    """A window that reaches a segment's first bar (no return) has no statistic, rather than a made-up one."""
    rng = np.random.default_rng(1)
    returns = rng.normal(size=600) * 0.001
    times = 1_767_225_600_000 + 60_000 * np.arange(600, dtype=np.int64)
    returns[0] = returns[300] = np.nan
    ref, _ = novelty.fit_reference(returns, times, np.isfinite(returns), np.ones(600, dtype=bool), 101)
    stat = novelty.series_statistic(returns, times, ref)
    assert np.isnan(stat[:RETURNS]).any(axis=1).all()
    assert np.isnan(stat[300 : 300 + RETURNS]).any(axis=1).all()
    assert np.isfinite(stat[300 + RETURNS :]).all() and np.isfinite(stat[RETURNS:300]).all()


def test_novelty_ties_rank_in_the_middle() -> None:
    """Flat bars (zero returns) that fill a fifth of the reference rank at its middle, not at its bottom."""
    values = np.concatenate((np.zeros(200), np.linspace(0.001, 0.01, 800)))
    quantiles = novelty.fit_bar_quantiles(values, 1001)
    pct = novelty.bar_percentiles(np.zeros(1), quantiles)
    assert 0.09 < float(pct[0]) < 0.11
