"""Real regime shifts: the benchmark a novelty score must pass on markets guard never simulated.

The series are the real ones backtesting.py ships (`pip install -e '.[bench]'` or `.[test]`):
GOOG daily bars 2004-2013 and EURUSD hourly bars April 2017 - February 2018. Its third,
BTCUSD, holds 156 *monthly* bars: fewer than the 124 a first window needs plus any history
before a shift, so it cannot take part.

How the shifts are defined — by outside events, dated before any score was computed on them:

* **GOOG, the 2008 financial crisis**: from Lehman Brothers' bankruptcy (2008-09-15) to the
  US stock market's low (2009-03-09).
* **EURUSD, the January 2018 break**: from the US Treasury Secretary's weak-dollar remark
  (2018-01-24), through the equity volatility shock of 5 February, to the end of the file
  (2018-02-07).

Those two were the benchmark when guard's novelty design was chosen. Three more were dated the
same way and added *before* any design was scored on them, as held-out checks (`held_out`):

* **GOOG, May 2010**: the flash crash (2010-05-06) through the euro-area debt crisis to the
  S&P 500's closing low of that correction (2010-07-02).
* **GOOG, August 2011**: S&P's downgrade of the US government's rating (2011-08-05) to the
  S&P 500's closing low of 2011 (2011-10-03).
* **EURUSD, June 2017**: the ECB President's Sintra speech (2017-06-27) to the ECB's next
  policy meeting (2017-07-20).

How each is scored (no peeking: everything fitted precedes the shift):

1. The windows that end before the shift are split by time as `guard train` splits its data:
   the first 70 % fit the novelty reference, the next 15 % calibrate its percentile, the last
   15 % are the *ordinary* windows — the market the weeks before the shift, never fitted on.
   An embargo of WARMUP_BARS bars between parts keeps any bar out of two parts' inputs.
2. *Regime* windows end inside the shift with at least MIN_BARS_IN_REGIME of their bars in it.
3. AUROC: how often a regime window scores above an ordinary one — for each design
   (`guard.model.designs`), and for plain 60-bar volatility, the baseline. For guard's own
   design also the share of ordinary and regime windows it flags at the 0.95 percentile of the
   calibration windows, as a model flags at `model.novelty_threshold`.

The simulator's sudden ×5 volatility hour (`simulator_shift`) is scored the same way, fitted on
a calm simulator history.

Both markets close (weekends, holidays) and the feature code starts a new segment at every
gap, so their bars are renumbered as one contiguous series (bar i opens at the first bar's
time plus i timeframes). No bar is dropped or invented; dates after the first drift from the
calendar, so the shifts are located by the real dates, then carried over. The hour of day
guard's novelty de-seasonalises by is read from the renumbered times, as guard would read
them from a file `write_history` writes; for EURUSD most weekends close exactly 48 hours, and
where a holiday did not the hours drift by one or two. `write_history` writes such a file for
`guard train` / `guard model eval` and says where its shift lies in the file's own time.

`python -m guard.model.regimes` prints the AUROC table of every design on every shift.
"""

from __future__ import annotations

import csv
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from guard.domain import Bar
from guard.errors import BadInput
from guard.features import WARMUP_BARS, FeatureSeries, build_series_arrays
from guard.model import novelty
from guard.model.calibration import auroc
from guard.model.evaluation import MIN_BARS_IN_REGIME, RegimeWindow, regime_masks
from guard.model.network import N_QUANTILES
from guard.timeframes import timeframe_ms


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
    held_out: bool = False
    """Added, dated, after guard's novelty design was chosen on the others: a check it never saw."""


SHIFTS: tuple[RealShift, ...] = (
    RealShift(
        "GOOG 2008 crisis",
        "GOOG.csv",
        "GOOG/USD",
        "1d",
        "2008-09-15",
        "2009-03-09",
        "Lehman Brothers' bankruptcy to the US stock market's low",
    ),
    RealShift(
        "EURUSD January 2018",
        "EURUSD.csv",
        "EUR/USD",
        "1h",
        "2018-01-24",
        "2018-02-07",
        "the US Treasury Secretary's weak-dollar remark, through the 5 February volatility shock, "
        "to the end of the file",
    ),
    # Added later, dated by the same kind of outside events before any design was scored on them, as
    # held-out checks on the designs chosen on the two shifts above:
    RealShift(
        "GOOG May 2010",
        "GOOG.csv",
        "GOOG/USD",
        "1d",
        "2010-05-06",
        "2010-07-02",
        "the 6 May flash crash, through the euro-area debt crisis, to the S&P 500's closing low of "
        "that correction (2 July)",
        held_out=True,
    ),
    RealShift(
        "GOOG August 2011",
        "GOOG.csv",
        "GOOG/USD",
        "1d",
        "2011-08-05",
        "2011-10-03",
        "S&P's downgrade of the US government's credit rating to the S&P 500's closing low of 2011 (3 October)",
        held_out=True,
    ),
    RealShift(
        "EURUSD June 2017",
        "EURUSD.csv",
        "EUR/USD",
        "1h",
        "2017-06-27",
        "2017-07-20",
        "the ECB President's Sintra speech (the euro's rally on a hawkish turn) to the ECB's next policy meeting",
        held_out=True,
    ),
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
        return [
            Bar(
                s.symbol,
                s.timeframe,
                int(s.open_times[i]),
                float(s.opens[i]),
                float(s.highs[i]),
                float(s.lows[i]),
                float(s.closes[i]),
                float(s.volumes[i]),
            )
            for i in range(len(s))
        ]


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

FLAG_AT = 0.95
"""The percentile at which guard flags a window novel by default (`model.novelty_threshold`)."""


def novelty_design(s: FeatureSeries, sp: Split) -> np.ndarray:
    """guard's novelty, by the code a model runs (`guard.model.novelty`): its distance at every bar."""
    ref, statistic = novelty.fit_reference(s.returns, s.open_times, sp.fit, sp.fit, N_QUANTILES)
    return novelty.distance(statistic, ref.mean, ref.spread)


def volatility_baseline(s: FeatureSeries, sp: Split) -> np.ndarray:
    """Plain 60-bar realized volatility: the baseline."""
    return s.sigma.astype(np.float64)


@dataclass(frozen=True, slots=True)
class ShiftResult:
    """AUROCs on one shift."""

    name: str
    novelty_auroc: float
    """guard's novelty method."""
    volatility_auroc: float
    designs: dict[str, float]
    """Every design measured (guard's among them), by name."""
    flagged_ordinary: float
    """Share of ordinary windows guard's novelty flags at FLAG_AT (percentile of the calibration windows)."""
    flagged_regime: float
    regime_windows: int
    ordinary_windows: int
    fit_windows: int
    shift: RealShift | None = None
    """None for the simulator's shift."""

    def as_dict(self) -> dict[str, object]:
        """The figures as card metrics."""
        shift = self.shift
        return {
            "name": self.name,
            "why": shift.why if shift else "",
            "timeframe": shift.timeframe if shift else "1m",
            "start": shift.start if shift else "",
            "end": shift.end if shift else "",
            "held_out": shift.held_out if shift else False,
            "novelty_auroc": self.novelty_auroc,
            "volatility_auroc": self.volatility_auroc,
            "flagged_ordinary": self.flagged_ordinary,
            "flagged_regime": self.flagged_regime,
            "regime_windows": self.regime_windows,
            "ordinary_windows": self.ordinary_windows,
            "fit_windows": self.fit_windows,
        }


def _score(
    name: str, pieces: list[tuple[FeatureSeries, Split]], designs: dict[str, Design], shift: RealShift | None
) -> ShiftResult:
    """AUROCs of every design over one or more (series, split) pieces pooled."""
    scores: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    flagged: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    for s, sp in pieces:
        for key, design in {**designs, "guard": novelty_design, "volatility": volatility_baseline}.items():
            score = design(s, sp)
            scores.setdefault(key, ([], []))
            scores[key][0].append(score[sp.ordinary])
            scores[key][1].append(score[sp.regime])
            if key == "guard":
                ref = novelty.reference(score[sp.calibrate], N_QUANTILES)
                flagged[0].append(novelty.percentile(score[sp.ordinary], ref) >= FLAG_AT)
                flagged[1].append(novelty.percentile(score[sp.regime], ref) >= FLAG_AT)

    def area(key: str) -> float:
        negatives, positives = (np.concatenate(part) for part in scores[key])
        return round(auroc(negatives, positives), 4)

    return ShiftResult(
        name=name,
        novelty_auroc=area("guard"),
        volatility_auroc=area("volatility"),
        designs={key: area(key) for key in designs},
        flagged_ordinary=round(float(np.concatenate(flagged[0]).mean()), 4),
        flagged_regime=round(float(np.concatenate(flagged[1]).mean()), 4),
        regime_windows=sum(int(sp.regime.sum()) for _, sp in pieces),
        ordinary_windows=sum(int(sp.ordinary.sum()) for _, sp in pieces),
        fit_windows=sum(int(sp.fit.sum()) for _, sp in pieces),
        shift=shift,
    )


def benchmark(shift: RealShift, designs: dict[str, Design] | None = None, directory: Path | None = None) -> ShiftResult:
    """Score guard's novelty method, other designs (default: every one in `guard.model.designs`) and
    the volatility baseline on one real shift."""
    if designs is None:
        from guard.model.designs import DESIGNS

        designs = DESIGNS
    real = load(shift, directory)
    return _score(shift.name, [(real.series, split(real))], designs, shift)


SIMULATOR_SHIFT = "simulator ×5 volatility hour"
_SIM_END_MS = 1_795_392_000_000
_SIM_ONSET = 720


def simulator_shift(designs: dict[str, Design] | None = None) -> ShiftResult:
    """The simulator's sudden ×5 volatility hour: each design fitted on 10,000 calm 1-minute bars of the
    same symbol, scored on the hour (windows with 15 to 60 of its bars) against the 12 hours before."""
    from guard.sim.process import generate_history

    if designs is None:
        from guard.model.designs import DESIGNS

        designs = DESIGNS
    symbols = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]
    calm = generate_history(symbols, _SIM_END_MS - 10_000 * 60_000, 10_000, "1m", seed=21, scenario="calm")
    shifted = generate_history(symbols, _SIM_END_MS, 1440, "1m", seed=9, scenario="regime-shift")
    pieces = []
    for symbol in symbols:
        bars = [*calm[symbol], *shifted[symbol]]
        times = np.array([b.open_time for b in bars])
        times[len(calm[symbol]) :] += 60_000  # a one-bar gap: the two histories' prices do not join up
        s = build_series_arrays(
            symbol,
            "1m",
            times,
            *(np.array([getattr(b, f) for b in bars]) for f in ("open", "high", "low", "close", "volume")),
        )
        idx = np.arange(len(s)) - len(calm[symbol])
        fit = s.ready & (idx < 0)
        ordinary = s.ready & (idx >= 0) & (idx < _SIM_ONSET)
        regime = s.ready & (idx >= _SIM_ONSET + MIN_BARS_IN_REGIME - 1) & (idx < _SIM_ONSET + 60)
        pieces.append((s, Split(fit=fit, calibrate=fit, ordinary=ordinary, regime=regime)))
    return _score(SIMULATOR_SHIFT, pieces, designs, None)


def card_figures() -> list[dict[str, object]] | None:
    """guard's novelty method on every shipped shift, for a model card; None without backtesting.py."""
    try:
        directory = data_dir()
    except BadInput:
        return None
    return [benchmark(shift, designs={}, directory=directory).as_dict() for shift in SHIFTS]


def table(results: list[ShiftResult]) -> str:
    """Every design's AUROC on every shift as a Markdown table, the baseline first."""
    from guard.model.designs import DESIGNS, GUARD, VOLATILITY

    def label(r: ShiftResult) -> str:
        return r.name + (" (held out)" if r.shift is not None and r.shift.held_out else "")

    lines = ["| design | " + " | ".join(label(r) for r in results) + " |", "|---|" + "---|" * len(results)]
    for name in [VOLATILITY, *(n for n in DESIGNS if n != VOLATILITY)]:
        cells = [f"{r.designs[name]:.3f}" for r in results]
        if name == GUARD:
            name, cells = f"**{name}**", [f"**{c}**" for c in cells]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(
        "| guard's novelty − volatility | "
        + " | ".join(f"{r.novelty_auroc - r.volatility_auroc:+.3f}" for r in results)
        + " |"
    )
    lines.append(
        "| guard's novelty flags, ordinary / regime windows (at 0.95) | "
        + " | ".join(f"{r.flagged_ordinary:.0%} / {r.flagged_regime:.0%}" for r in results)
        + " |"
    )
    lines.append(
        "| regime / ordinary / fit windows | "
        + " | ".join(f"{r.regime_windows:,} / {r.ordinary_windows:,} / {r.fit_windows:,}" for r in results)
        + " |"
    )
    return "\n".join(lines)


def main() -> int:
    """Print the AUROC table of every design on every shift (and the simulator's)."""
    results = [benchmark(shift) for shift in SHIFTS]
    results.append(simulator_shift())
    sys.stdout.write(table(results) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
