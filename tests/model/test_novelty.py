"""Novelty: the same bits live and in training, and both directions of departure flagged."""

from __future__ import annotations

import numpy as np

from guard.features import WINDOW, build_series
from guard.model import novelty
from guard.model.inference import NoveltyReference
from guard.model.synthetic import toy_bars
from tests.model.toy import Trained


def test_novelty_series_and_window_statistics_are_bit_identical(trained: Trained) -> None:
    """The statistic of a whole series (training, replay) equals the one of each live window, bit for bit."""
    ref = NoveltyReference.of(trained.model.net)
    series = trained.series[1]
    whole = ref.series(series.rows)
    ends = np.flatnonzero(series.ready)[::97]
    windows = np.stack([series.window(int(i)).values for i in ends])
    assert np.array_equal(whole[ends], ref.windows(windows))


def test_novelty_flags_both_louder_and_quieter_markets(trained: Trained) -> None:
    """A market moving 5x more and one moving 5x less both score far above the ordinary one."""
    ref = NoveltyReference.of(trained.model.net)
    scores = {}
    for factor in (0.2, 1.0, 5.0):
        series = build_series(toy_bars("N/USDT:USDT", 1500, seed=77, vol_factor=factor))
        stat = ref.series(series.rows)[series.ready]
        scores[factor] = float(np.median(novelty.percentile(novelty.distance(stat, ref.mean, ref.precision),
                                                             ref.distance)))
    assert scores[1.0] < 0.9
    assert scores[5.0] > 0.99 and scores[0.2] > 0.99


def test_novelty_rows_with_nan_give_no_statistic() -> None:
    """A window that holds a warm-up (NaN) row has no statistic, rather than a made-up one."""
    rows = np.random.default_rng(1).normal(size=(300, 11)).astype(np.float32)
    ref = novelty.fit_bar_reference(rows, 101)
    rows[150] = np.nan
    stat = novelty.series_typicality(rows, ref)
    assert np.isnan(stat[: WINDOW - 1]).all()
    assert np.isnan(stat[150 : 150 + WINDOW]).any(axis=1).all()
    assert np.isfinite(stat[150 + WINDOW :]).all() and np.isfinite(stat[WINDOW - 1 : 150]).all()


def test_novelty_ties_rank_in_the_middle() -> None:
    """Flat bars (zero returns) that fill a fifth of the reference rank at its middle, not at its bottom."""
    values = np.concatenate((np.zeros(200), np.linspace(0.001, 0.01, 800)))
    rows = np.zeros((1000, 11), dtype=np.float32)
    rows[:, 0] = values
    ref = novelty.fit_bar_reference(rows, 1001)
    pct = novelty.bar_percentiles(np.zeros((1, 11), dtype=np.float32), ref)
    assert 0.09 < float(pct[0, 0]) < 0.11
