"""Real regime shifts in backtesting.py's series: dated honestly, fitted before, novelty beats volatility."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from guard.cli import main
from guard.features import WARMUP_BARS, build_series
from guard.feed.history import read_bars
from guard.model import regimes
from tests.model.toy import TINY

GOOG, EURUSD = regimes.SHIFTS[:2]
CHOSEN_ON = [s for s in regimes.SHIFTS if not s.held_out]


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def test_regimes_renumbered_series_keeps_every_bar_and_its_real_date() -> None:
    """Closing up weekends drops and invents nothing: every CSV row is one contiguous bar, real dates kept."""
    real = regimes.load(GOOG)
    s = real.series
    assert len(s) == 2148 and len(s.segment_starts) == 1
    assert _day(int(real.real_open_ms[0])) == "2004-08-19" and _day(int(real.real_open_ms[-1])) == "2013-03-01"
    assert np.all(np.diff(real.real_open_ms) > 0)
    assert s.closes[0] == pytest.approx(100.34)


def test_regimes_shift_is_located_by_real_dates() -> None:
    """The regime starts at the first bar on or after its real start date and ends on its real end date."""
    real = regimes.load(GOOG)
    window = real.regime()
    first = int(np.searchsorted(real.series.open_times, window.start_ms))
    last = int(np.searchsorted(real.series.open_times, window.end_ms))
    assert _day(int(real.real_open_ms[first])) == "2008-09-15"
    assert _day(int(real.real_open_ms[last])) == "2009-03-09"


@pytest.mark.parametrize("shift", regimes.SHIFTS, ids=lambda s: s.name)
def test_regimes_everything_fitted_precedes_the_shift(shift: regimes.RealShift) -> None:
    """Fit, calibration and ordinary windows all end before the shift, in that order, with no shared input bar."""
    real = regimes.load(shift)
    sp = regimes.split(real)
    start = real.regime().start_ms
    t = real.series.open_times
    for part in (sp.fit, sp.calibrate, sp.ordinary):
        assert part.any() and t[part].max() < start
    assert np.flatnonzero(sp.calibrate)[0] - np.flatnonzero(sp.fit)[-1] >= WARMUP_BARS
    assert np.flatnonzero(sp.ordinary)[0] > np.flatnonzero(sp.calibrate)[-1]
    # the held-out GOOG shifts are about 40 trading days long: 27 windows hold 15 of their bars
    assert sp.regime.sum() > (20 if shift.held_out else 50) and t[sp.regime].min() >= start


@pytest.mark.parametrize("shift", CHOSEN_ON, ids=lambda s: s.name)
def test_regimes_novelty_separates_real_shifts_better_than_volatility(shift: regimes.RealShift) -> None:
    """On each real shift guard's novelty ranks shift windows above ordinary ones more often than volatility does."""
    result = regimes.benchmark(shift, designs={})
    assert result.novelty_auroc >= result.volatility_auroc + 0.04
    assert result.novelty_auroc >= 0.85


def test_regimes_btcusd_is_excluded_with_a_reason() -> None:
    """The monthly BTCUSD file is too short for a window and a history before a shift, and says so."""
    assert "monthly" in regimes.EXCLUDED["BTCUSD.csv"]
    rows = (regimes.data_dir() / "BTCUSD.csv").read_text().strip().splitlines()
    assert len(rows) - 1 < WARMUP_BARS + 64


def test_regimes_model_trained_on_a_real_series_is_evaluated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], guard_home: Path
) -> None:
    """A model trained on EURUSD before its shift is measured by `guard model eval` on the whole file, shift dated."""
    history = tmp_path / "eurusd.parquet"
    window = regimes.write_history(EURUSD, history)
    bars = read_bars(history)
    before = [b for b in bars if b.open_time < window.start_ms]
    from guard.model.artifact import save_artifact
    from guard.model.training import train

    result = train([build_series(before)], dataclasses.replace(TINY, epochs=3))
    save_artifact(
        result,
        tmp_path / "m",
        name="eurusd",
        data_source={"description": "EURUSD", "synthetic": False, "files": []},
        command="test",
    )
    capsys.readouterr()  # training's own log lines
    code = main(
        [
            "model",
            "eval",
            str(history),
            "--model",
            str(tmp_path / "m"),
            "--json",
            "--regime-start",
            str(window.start_ms),
            "--regime-end",
            str(window.end_ms),
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    m = data["metrics"]
    assert m["scored"] == 5000 - WARMUP_BARS + 1
    assert m["novelty"]["regime_windows"] > 200
    assert m["novelty"]["novelty_auroc"] > m["novelty"]["volatility_auroc"]
    assert m["in_training_data"] > 0  # the earlier bars are its own training data, and it says so:
    assert m["novelty"]["ordinary_kind"] == "all"
    assert any("every ordinary window lies in the model's training data" in w for w in data["warnings"])
