"""Feature windows: one arithmetic for training, replay and live."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from guard.domain import Bar
from guard.errors import InvalidMarketData
from guard.features import (
    FEATURE_NAMES,
    N_FEATURES,
    RETURNS,
    WARMUP_BARS,
    WINDOW,
    WindowBuilder,
    build_series,
    schema_hash,
)
from guard.model.synthetic import toy_bars


def _stream(bars: list[Bar], funding: list[float | None] | None = None) -> dict[int, object]:
    builder = WindowBuilder(bars[0].symbol, bars[0].timeframe)
    out = {}
    for i, bar in enumerate(bars):
        window = builder.update(bar, None if funding is None else funding[i])
        if window is not None:
            out[i] = window
    return out


def test_features_replay_and_live_windows_are_identical() -> None:
    """Windows built by the batch builder equal, bit for bit, those built bar by bar."""
    bars = toy_bars(n=600, seed=3)
    funding = [None if i % 7 else 0.0001 * (i % 3) for i in range(len(bars))]
    series = build_series(bars, funding)
    live = _stream(bars, funding)
    ready = np.flatnonzero(series.ready)
    assert sorted(live) == ready.tolist()
    assert ready[0] == WARMUP_BARS - 1
    for i in ready:
        assert series.window(int(i)) == live[int(i)]


def test_features_windows_view_matches_single_windows() -> None:
    """The strided view of all windows gives the same rows as one window at a time."""
    bars = toy_bars(n=300, seed=4)
    series = build_series(bars)
    view = series.windows()
    for i in np.flatnonzero(series.ready)[::37]:
        assert np.array_equal(view[i - WINDOW + 1], series.window(int(i)).values)


def test_features_gap_restarts_warmup_in_both_builders() -> None:
    """A missing bar restarts the warm-up, live and in replay, and the windows still agree."""
    bars = toy_bars(n=500, seed=5)
    gapped = bars[:200] + bars[201:]
    series = build_series(gapped)
    live = _stream(gapped)
    assert sorted(live) == np.flatnonzero(series.ready).tolist()
    assert not series.ready[199 + WARMUP_BARS - 1]
    assert series.ready[199 + WARMUP_BARS]
    for i, window in live.items():
        assert series.window(i) == window


def test_features_rows_are_finite_and_shaped() -> None:
    """Every ready window is finite, float32 and (WINDOW, N_FEATURES)."""
    series = build_series(toy_bars(n=400, seed=6))
    window = series.window(len(series) - 1)
    assert window.values.shape == (WINDOW, N_FEATURES) == (WINDOW, len(FEATURE_NAMES))
    assert window.values.dtype == np.float32
    assert np.isfinite(series.windows()[series.ready[WINDOW - 1 :]]).all()
    assert window.sigma > 0


def test_features_live_ignores_unclosed_and_duplicate_bars() -> None:
    """Open bars and bars not newer than the last one do not change the live window."""
    bars = toy_bars(n=WARMUP_BARS + 2, seed=7)
    builder = WindowBuilder(bars[0].symbol, "1m")
    for bar in bars[:-1]:
        last = builder.update(bar)
    assert last is not None
    assert builder.update(msgspec.structs.replace(bars[-1], closed=False)) is None
    assert builder.update(bars[-2]) is None
    assert builder.update(bars[-1]) is not None


def test_features_impossible_bar_is_rejected() -> None:
    """A bar with a non-positive price is refused with a message naming it."""
    bars = toy_bars(n=200, seed=8)
    bars[50] = msgspec.structs.replace(bars[50], low=-1.0)
    with pytest.raises(InvalidMarketData, match="impossible values"):
        build_series(bars)
    with pytest.raises(InvalidMarketData, match="positive"):
        _stream(bars)


def test_features_schema_hash_is_stable_hex() -> None:
    """The schema hash is a sha256 hex digest, the same on every call."""
    assert schema_hash() == schema_hash()
    assert len(schema_hash()) == 64


def test_features_window_carries_the_returns_its_features_read() -> None:
    """A ready window carries the RETURNS one-bar log returns before its close, finite, the same as the series'."""
    bars = toy_bars(n=400, seed=9)
    series = build_series(bars)
    window = series.window(300)
    closes = np.array([b.close for b in bars[300 - RETURNS : 301]])
    assert window.returns.shape == (RETURNS,) and window.returns.dtype == np.float64
    assert np.array_equal(window.returns, np.log(closes[1:]) - np.log(closes[:-1]))
    assert not window.returns.flags.writeable
    assert window.open_time == bars[300].open_time


def test_features_series_returns_never_cross_a_gap() -> None:
    """The first bar after a gap has no return (NaN), and no ready window reaches back to it."""
    bars = toy_bars(n=500, seed=10)
    series = build_series(bars[:200] + bars[201:])
    assert np.isnan(series.returns[0]) and np.isnan(series.returns[200])
    assert np.isfinite(series.returns[1:200]).all() and np.isfinite(series.returns[201:]).all()
    for i in np.flatnonzero(series.ready):
        assert np.isfinite(series.window(int(i)).returns).all()
