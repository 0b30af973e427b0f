"""History as the model reads it: filled bars are gaps, never moves to learn from or score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from guard.domain import Bar
from guard.errors import BadInput
from guard.features import WARMUP_BARS
from guard.feed.history import write_bars
from guard.model.data import read_history
from guard.model.labels import UNKNOWN, BarrierParams, triple_barrier_labels
from guard.model.synthetic import toy_bars

HORIZON = 10


def _flat(bar: Bar, close: float) -> Bar:
    """A bar filled flat at the previous close, as `guard history import --fill-gaps` writes it."""
    return Bar(
        symbol=bar.symbol,
        timeframe=bar.timeframe,
        open_time=bar.open_time,
        open=close,
        high=close,
        low=close,
        close=close,
        volume=0.0,
        complete=False,
    )


def _with_filled(path: Path, n: int, holes: list[range]) -> tuple[list[Bar], set[int]]:
    bars = toy_bars("F/USDT:USDT", n, seed=4)
    filled: set[int] = set()
    for hole in holes:
        for i in hole:
            bars[i] = _flat(bars[i], bars[hole.start - 1].close)
            filled.add(bars[i].open_time)
    write_bars(path, bars)
    return bars, filled


def test_data_filled_bars_become_gaps_no_window_or_label_reaches_across(tmp_path: Path) -> None:
    """Every labelled window training would use, and its label's horizon, holds only real bars."""
    path = tmp_path / "filled.csv"
    _, filled = _with_filled(path, 2000, [range(700, 706), range(1400, 1401)])
    history = read_history([str(path)])
    (series,) = history.series
    assert len(series) == 2000 - 7 and history.filled == 7
    assert not set(series.open_times.tolist()) & filled
    assert len(series.segment_starts) == 3  # each hole is a gap again
    labels = triple_barrier_labels(
        series.highs, series.lows, series.closes, series.sigma, series.segment_starts, BarrierParams(1.0, HORIZON)
    )
    used = np.flatnonzero(series.ready & (labels != UNKNOWN))
    assert len(used) > 1000
    step = 60_000
    for i in used:
        first = int(series.open_times[i]) - (WARMUP_BARS - 1) * step
        last = int(series.open_times[i]) + HORIZON * step
        assert not any(first <= t <= last for t in filled), f"window/label at bar {i} reaches a filled bar"


def test_data_notes_say_how_many_filled_bars_were_left_out(tmp_path: Path) -> None:
    """The file's record counts the filled bars left out, and a note says so."""
    path = tmp_path / "filled.csv"
    _with_filled(path, 600, [range(300, 305)])
    history = read_history([str(path)])
    assert history.files[0]["filled_dropped"] == 5 and history.files[0]["bars"] == 600
    assert history.notes() == [
        f"{path}: 5 filled bars left out (gaps filled flat are no real moves); each is a gap again"
    ]


def test_data_symbol_with_only_filled_bars_is_refused(tmp_path: Path) -> None:
    """A file whose bars for a symbol are all filled has nothing real in it, and says so."""
    bars = toy_bars("F/USDT:USDT", 50, seed=1)
    path = tmp_path / "all-filled.csv"
    write_bars(path, [_flat(b, 100.0) for b in bars])
    with pytest.raises(BadInput, match="every F/USDT:USDT bar is a filled bar"):
        read_history([str(path)])
