"""Real regime shifts: the benchmark a novelty score must pass on markets guard never simulated.

The series are the real ones backtesting.py ships (`pip install -e '.[bench]'` or `.[test]`):
GOOG daily bars 2004-2013 and EURUSD hourly bars April 2017 - February 2018. Its third,
BTCUSD, holds 156 *monthly* bars: fewer than the 124 a first window needs plus any history
before a shift, so it cannot take part.

How the shifts are defined — by outside events, dated before any score was computed:

* **GOOG, the 2008 financial crisis**: from Lehman Brothers' bankruptcy (2008-09-15) to the
  US stock market's low (2009-03-09).
* **EURUSD, the January 2018 break**: from the US Treasury Secretary's weak-dollar remark
  (2018-01-24), through the equity volatility shock of 5 February, to the end of the file
  (2018-02-07).

How each is scored (no peeking: everything fitted precedes the shift):

1. The windows that end before the shift are split by time as `guard train` splits its data:
   the first 70 % fit the novelty reference, the next 15 % calibrate its percentile, the last
   15 % are the *ordinary* windows — the market the weeks before the shift, never fitted on.
   An embargo of WARMUP_BARS bars between parts keeps any bar out of two parts' inputs.
2. *Regime* windows end inside the shift with at least MIN_BARS_IN_REGIME of their bars in it.
3. AUROC: how often a regime window scores above an ordinary one — for each novelty design,
   and for plain 60-bar volatility, the baseline.

Both markets close (weekends, holidays) and the feature code starts a new segment at every
gap, so their bars are renumbered as one contiguous series (bar i opens at the first bar's
time plus i timeframes). No bar is dropped or invented; dates after the first drift from the
calendar, so the shifts are located by the real dates, then carried over. `write_history`
writes such a file for `guard train` / `guard model eval` and says where its shift lies in
the file's own time.
"""

from __future__ import annotations

import csv
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from guard.domain import Bar
from guard.errors import BadInput
from guard.features import FEATURE_NAMES, WARMUP_BARS, FeatureSeries, build_series_arrays, timeframe_ms
from guard.model import novelty
from guard.model.calibration import auroc
from guard.model.evaluation import MIN_BARS_IN_REGIME, RegimeWindow, regime_masks
from guard.model.network import N_QUANTILES

_COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


@dataclass(frozen=True, slots=True)
class RealShift:
    """A dated regime shift in one of backtesting.py's shipped series."""

    name: str
    file: str
    symbol: str
    timeframe: str
    start: str
    """First day of the shift (UTC date)."""
    end: str
    """Last day of the shift (inclusive)."""
    why: str


SHIFTS: tuple[RealShift, ...] = (
    RealShift("GOOG 2008 crisis", "GOOG.csv", "GOOG/USD", "1d", "2008-09-15", "2009-03-09",
              "Lehman Brothers' bankruptcy to the US stock market's low"),
    RealShift("EURUSD January 2018", "EURUSD.csv", "EUR/USD", "1h", "2018-01-24", "2018-02-07",
              "the US Treasury Secretary's weak-dollar remark, through the 5 February volatility shock, "
              "to the end of the file"),
    # Added later, dated by the same kind of outside events before any design was scored on them, as
    # held-out checks on the designs chosen on the two shifts above:
    RealShift("GOOG May 2010", "GOOG.csv", "GOOG/USD", "1d", "2010-05-06", "2010-07-02",
              "the 6 May flash crash, through the euro-area debt crisis, to the S&P 500's closing low of "
              "that correction (2 July)"),
    RealShift("GOOG August 2011", "GOOG.csv", "GOOG/USD", "1d", "2011-08-05", "2011-10-03",
              "S&P's downgrade of the US government's credit rating to the S&P 500's closing low of 2011 "
              "(3 October)"),
    RealShift("EURUSD June 2017", "EURUSD.csv", "EUR/USD", "1h", "2017-06-27", "2017-07-20",
              "the ECB President's Sintra speech (the euro's rally on a hawkish turn) to the ECB's next "
              "policy meeting"),
)
EXCLUDED = {"BTCUSD.csv": "156 monthly bars: too few for a 124-bar first window and a history before any shift"}


def data_dir() -> Path:
    """Where backtesting.py keeps its sample data.

    Raises:
        BadInput: when backtesting.py is not installed.
    """
    spec = importlib.util.find_spec("backtesting")
    if spec is None or not spec.submodule_search_locations:
        raise BadInput("the real regime-shift series come with backtesting.py: pip install -e '.[bench]'")
    return Path(next(iter(spec.submodule_search_locations))) / "test"


@dataclass(frozen=True, slots=True, eq=False)
class RealSeries:
    """A shipped series renumbered as contiguous bars, with each bar's real open time."""

    shift: RealShift
    series: FeatureSeries
    real_open_ms: np.ndarray
    """int64 (T,): the bar's real open time (the series' own times are renumbered)."""

    def regime(self) -> RegimeWindow:
        """The shift in the series' own (renumbered) time."""
        start = _day_ms(self.shift.start)
        end = _day_ms(self.shift.end) + 86_400_000 - 1
        inside = np.flatnonzero((self.real_open_ms >= start) & (self.real_open_ms <= end))
        t = self.series.open_times
        return RegimeWindow(int(t[inside[0]]), int(t[inside[-1]]), f"{self.shift.name}: {self.shift.why}")

    def bars(self) -> list[Bar]:
        """The renumbered bars (what `write_history` writes)."""
        s = self.series
        return [Bar(s.symbol, s.timeframe, int(s.open_times[i]), float(s.opens[i]), float(s.highs[i]),
                    float(s.lows[i]), float(s.closes[i]), float(s.volumes[i])) for i in range(len(s))]


def _day_ms(day: str) -> int:
    return int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp() * 1000)


def load(shift: RealShift, directory: Path | None = None) -> RealSeries:
    """Read a shipped CSV (`,Open,High,Low,Close,Volume` with a date index) as contiguous bars.

    Raises:
        BadInput: when the file is missing or not in that format.
    """
    path = (directory or data_dir()) / shift.file
    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise BadInput(f"{path}: cannot be read: {e}") from e
    if not rows or [c.strip().lower() for c in rows[0][1:6]] != ["open", "high", "low", "close", "volume"]:
        raise BadInput(f"{path}: expected a header ',Open,High,Low,Close,Volume'")
    real, ohlcv = [], []
    for row in rows[1:]:
        stamp = datetime.fromisoformat(row[0]).replace(tzinfo=UTC)
        real.append(int(stamp.timestamp() * 1000))
        ohlcv.append([float(x) for x in row[1:6]])
    values = np.array(ohlcv, dtype=np.float64)
    step = timeframe_ms(shift.timeframe)
    first = real[0] - real[0] % step
    times = first + step * np.arange(len(real), dtype=np.int64)
    series = build_series_arrays(shift.symbol, shift.timeframe, times, *(values[:, i] for i in range(5)))
    return RealSeries(shift, series, np.array(real, dtype=np.int64))


def write_history(shift: RealShift, out: Path | str) -> RegimeWindow:
    """Write a shipped series as a guard history file; return its shift in the file's own time."""
    from guard.feed.history import write_bars

    real = load(shift)
    write_bars(out, real.bars())
    return real.regime()


# --- the benchmark ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Split:
    """Window masks of one benchmark series."""

    fit: np.ndarray
    calibrate: np.ndarray
    ordinary: np.ndarray
    regime: np.ndarray


def split(real: RealSeries) -> Split:
    """Fit / calibrate / ordinary windows before the shift (70/15/15 by time, embargoed) and regime windows."""
    s = real.series
    regime = real.regime()
    positive, _ = regime_masks(s, regime, MIN_BARS_IN_REGIME)
    before = np.flatnonzero(s.ready & (s.open_times < regime.start_ms))
    if len(before) < 3 * WARMUP_BARS:
        raise BadInput(f"{real.shift.name}: only {len(before)} windows before the shift")
    t0, t1 = int(s.open_times[before[0]]), int(s.open_times[before[-1]])
    b1, b2 = t0 + int((t1 - t0) * 0.70), t0 + int((t1 - t0) * 0.85)
    embargo = WARMUP_BARS * timeframe_ms(s.timeframe)
    t = s.open_times
    mask = np.zeros(len(s), dtype=bool)
    mask[before] = True
    return Split(
        fit=mask & (t < b1 - embargo),
        calibrate=mask & (t >= b1) & (t < b2 - embargo),
        ordinary=mask & (t >= b2),
        regime=positive,
    )


Design = Callable[[FeatureSeries, Split], np.ndarray]
"""A novelty design: fitted on `split.fit` windows, it scores every bar's window (higher = more novel)."""


def typicality_design(
    columns: tuple[str, ...] = novelty.TYPICAL_COLUMNS, spans: tuple[int, ...] = novelty.TYPICAL_SPANS
) -> Design:
    """guard's novelty (the defaults) or a variant ranking other per-bar columns or averaging other spans."""

    def score(s: FeatureSeries, sp: Split) -> np.ndarray:
        ref = novelty.fit_bar_reference(s.rows[sp.fit], N_QUANTILES, columns)
        stat = novelty.series_typicality(s.rows, ref, columns, spans)
        mean, precision = novelty.fit_gaussian(stat[sp.fit])
        out = np.full(len(s), np.nan)
        ok = np.isfinite(stat).all(axis=1)
        out[ok] = novelty.distance(stat[ok], mean, precision)
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
    stats = np.stack([
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
    ], axis=1)
    out = np.full((len(s), stats.shape[1]), np.nan)
    out[len(s) - len(stats):] = stats
    return out


def summaries_design(s: FeatureSeries, sp: Split) -> np.ndarray:
    """Mahalanobis distance over window summaries that include distribution shape (standardised)."""
    x = window_summaries(s)
    mu, sd = np.nanmean(x[sp.fit], axis=0), np.nanstd(x[sp.fit], axis=0) + 1e-9
    zx = (x - mu) / sd
    mean, precision = novelty.fit_gaussian(zx[sp.fit])
    out = np.full(len(s), np.nan)
    ok = np.isfinite(zx).all(axis=1)
    out[ok] = novelty.distance(zx[ok], mean, precision)
    return out


def volatility_baseline(s: FeatureSeries, sp: Split) -> np.ndarray:
    """Plain 60-bar realized volatility: the baseline."""
    return s.sigma.astype(np.float64)


DESIGNS: dict[str, Design] = {
    "guard novelty: rank typicality of |1-bar return|, 64- and 16-bar means": typicality_design(),
    "rank typicality, 64-bar mean only": typicality_design(spans=(64,)),
    "rank typicality of |1-bar return| and high-low range": typicality_design(("ret_1", "range")),
    "Mahalanobis over window scale and shape summaries": summaries_design,
}


@dataclass(frozen=True, slots=True)
class ShiftResult:
    """AUROCs on one real shift."""

    shift: RealShift
    novelty_auroc: float
    """guard's novelty method."""
    volatility_auroc: float
    designs: dict[str, float]
    regime_windows: int
    ordinary_windows: int
    fit_windows: int

    def as_dict(self) -> dict[str, object]:
        """The figures as card metrics."""
        return {
            "name": self.shift.name, "why": self.shift.why, "timeframe": self.shift.timeframe,
            "start": self.shift.start, "end": self.shift.end,
            "novelty_auroc": self.novelty_auroc, "volatility_auroc": self.volatility_auroc,
            "regime_windows": self.regime_windows, "ordinary_windows": self.ordinary_windows,
            "fit_windows": self.fit_windows,
        }


def benchmark(shift: RealShift, designs: dict[str, Design] | None = None,
              directory: Path | None = None) -> ShiftResult:
    """Score guard's novelty method, other designs and the volatility baseline on one shift."""
    real = load(shift, directory)
    sp = split(real)
    s = real.series

    def area(score: np.ndarray) -> float:
        return round(auroc(score[sp.ordinary], score[sp.regime]), 4)

    figures = {name: area(design(s, sp)) for name, design in (designs or DESIGNS).items()}
    return ShiftResult(
        shift=shift,
        novelty_auroc=area(typicality_design()(s, sp)),
        volatility_auroc=area(volatility_baseline(s, sp)),
        designs=figures,
        regime_windows=int(sp.regime.sum()),
        ordinary_windows=int(sp.ordinary.sum()),
        fit_windows=int(sp.fit.sum()),
    )


def card_figures() -> list[dict[str, object]] | None:
    """guard's novelty method on every shipped shift, for a model card; None without backtesting.py."""
    try:
        directory = data_dir()
    except BadInput:
        return None
    return [benchmark(shift, designs={}, directory=directory).as_dict() for shift in SHIFTS]
