"""Feature windows: the one piece of code that builds training sets and live inputs alike.

A *row* describes one closed bar by a dozen numbers (returns, range, realized volatility,
volume z-score, funding). A *window* is the last `WINDOW` rows, the network's input. Two
builders produce windows: `build_series` over a whole bar sequence (training, replay) and
`WindowBuilder.update` one bar at a time (live). Both call the same row arithmetic on the
same bars, and every rolling statistic is summed in a fixed order, so the two give
bit-identical windows (tested) — a model never sees live inputs computed differently from
the ones it was trained on.

Beside its rows a window carries the RETURNS one-bar log returns its features read, in float64:
the novelty score (`guard.model.novelty`) ranks their sizes over a longer span than the rows hold.
They too are computed by one arithmetic for the whole series and for the live window.

Rows never look across a gap in the bars: a missing bar starts a new segment, and a window
is ready only after `WARMUP_BARS` contiguous bars.

The schema (names, order, window length, lookbacks, arithmetic version) is hashed by
`schema_hash()`; a model records the hash it was trained with and refuses to load under a
different one.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import structlog

from guard.domain import Bar
from guard.errors import InvalidMarketData
from guard.timeframes import timeframe_ms

log = structlog.get_logger(__name__)

SCHEMA_VERSION = 1
"""Bump whenever the arithmetic of any feature changes, even if its name does not."""

WINDOW = 64
"""Rows per window: the network sees the last 64 bars."""

VOL_HORIZONS = (5, 15, 60)
"""Realized-volatility horizons, in bars."""
RETURN_HORIZONS = (1, 5, 15)
"""Log-return horizons, in bars."""
VOLUME_LOOKBACK = 60
"""Bars in the volume z-score's reference."""

LOOKBACK = max(max(VOL_HORIZONS), max(RETURN_HORIZONS), VOLUME_LOOKBACK)
"""Earlier bars one row needs besides its own (vol_60 needs 60 one-bar returns: 60 closes back)."""

WARMUP_BARS = WINDOW + LOOKBACK
"""Contiguous closed bars needed before the first window is ready."""

RETURNS = WARMUP_BARS - 1
"""One-bar log returns a window carries besides its rows: every one its features read (each of its
WARMUP_BARS bars but the first has one). The novelty score ranks them (`guard.model.novelty`)."""

SIGMA_FEATURE = "vol_60"
"""The row feature reported as σ (per-bar standard deviation of log returns)."""

_VOLUME_STD_FLOOR = 1e-3


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """One column of a row: its name and what it means, in words an operator reads."""

    name: str
    description: str
    phrase: str
    """How a "why" names it ("the 15-bar return")."""


FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("ret_1", "log return of the last bar", "the last bar's return"),
    FeatureSpec("ret_5", "log return over the last 5 bars", "the 5-bar return"),
    FeatureSpec("ret_15", "log return over the last 15 bars", "the 15-bar return"),
    FeatureSpec("range", "log(high / low) of the bar", "bar ranges"),
    FeatureSpec("body", "log(close / open) of the bar", "bar bodies"),
    FeatureSpec(
        "close_location",
        "where the close sits in the bar's range, 0 (low) to 1 (high)",
        "where bars closed in their range",
    ),
    FeatureSpec("vol_5", "realized volatility over 5 bars (RMS of 1-bar log returns)", "short-term volatility"),
    FeatureSpec("vol_15", "realized volatility over 15 bars", "15-bar volatility"),
    FeatureSpec("vol_60", "realized volatility over 60 bars", "60-bar volatility"),
    FeatureSpec("volume_z", "z-score of log(1 + volume) against the last 60 bars", "volume"),
    FeatureSpec("funding", "funding rate per interval (0 where the market has none)", "the funding rate"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
N_FEATURES = len(FEATURES)
_COL = {name: i for i, name in enumerate(FEATURE_NAMES)}
_SIGMA_COL = _COL[SIGMA_FEATURE]


def schema() -> dict[str, object]:
    """The feature schema as plain JSON: what a model records and checks at load time."""
    return {
        "version": SCHEMA_VERSION,
        "window": WINDOW,
        "lookback": LOOKBACK,
        "warmup_bars": WARMUP_BARS,
        "return_horizons": list(RETURN_HORIZONS),
        "vol_horizons": list(VOL_HORIZONS),
        "volume_lookback": VOLUME_LOOKBACK,
        "features": [{"name": f.name, "description": f.description} for f in FEATURES],
        "dtype": "float32",
    }


def schema_hash() -> str:
    """sha256 of the canonical schema JSON."""
    text = json.dumps(schema(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# --- windows ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class FeatureWindow:
    """The network's input for one symbol at one bar close."""

    symbol: str
    timeframe: str
    timestamp: int
    """Close time of the last bar (its open time plus the timeframe), in ms."""
    close: float
    sigma: float
    """Per-bar standard deviation of log returns (60-bar realized volatility)."""
    values: np.ndarray
    """Rows, shape (WINDOW, N_FEATURES), float32, read-only; the last row is the latest bar."""
    returns: np.ndarray
    """The last RETURNS one-bar log returns (into each bar, oldest first), float64, read-only."""

    @property
    def open_time(self) -> int:
        """Open time of the last bar, in ms."""
        return self.timestamp - timeframe_ms(self.timeframe)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FeatureWindow):
            return NotImplemented
        return (
            (self.symbol, self.timeframe, self.timestamp, self.close, self.sigma)
            == (other.symbol, other.timeframe, other.timestamp, other.close, other.sigma)
            and self.values.shape == other.values.shape
            and bool(np.array_equal(self.values, other.values))
            and self.returns.shape == other.returns.shape
            and bool(np.array_equal(self.returns, other.returns))
        )

    __hash__ = None  # type: ignore[assignment]  # holds an array: not hashable


@dataclass(frozen=True, slots=True, eq=False)
class FeatureSeries:
    """Rows for a whole bar sequence, for training and fast replay.

    Arrays are aligned with the input bars (sorted by time). `rows[i]` is NaN where bar `i`
    has too little contiguous history for a row; `ready[i]` says a full window ends at bar `i`.
    """

    symbol: str
    timeframe: str
    open_times: np.ndarray
    """int64, (T,)."""
    opens: np.ndarray
    highs: np.ndarray
    lows: np.ndarray
    closes: np.ndarray
    """float64, (T,)."""
    volumes: np.ndarray
    rows: np.ndarray
    """float32, (T, N_FEATURES)."""
    sigma: np.ndarray
    """float64, (T,): the per-bar σ at each bar (NaN during warm-up)."""
    returns: np.ndarray
    """float64, (T,): the one-bar log return into each bar (NaN at the first bar of each segment)."""
    ready: np.ndarray
    """bool, (T,)."""
    segment_starts: np.ndarray
    """int64: index of the first bar of each contiguous run (a gap starts a new one)."""

    def __len__(self) -> int:
        return len(self.open_times)

    @property
    def close_times(self) -> np.ndarray:
        return self.open_times + timeframe_ms(self.timeframe)

    def windows(self) -> np.ndarray:
        """Every length-WINDOW stack of rows, as a read-only view: (T - WINDOW + 1, WINDOW, F).

        Entry `j` ends at bar `j + WINDOW - 1`; use only those where `ready` is true.
        """
        view = np.lib.stride_tricks.sliding_window_view(self.rows, WINDOW, axis=0)
        return view.transpose(0, 2, 1)

    def window(self, index: int) -> FeatureWindow:
        """The window ending at bar `index`.

        Raises:
            ValueError: when no full window ends there.
        """
        if not self.ready[index]:
            raise ValueError(f"no full window ends at bar {index}")
        values = self.rows[index - WINDOW + 1 : index + 1].copy()
        values.setflags(write=False)
        returns = self.returns[index - RETURNS + 1 : index + 1].copy()
        returns.setflags(write=False)
        return FeatureWindow(
            symbol=self.symbol,
            timeframe=self.timeframe,
            timestamp=int(self.open_times[index]) + timeframe_ms(self.timeframe),
            close=float(self.closes[index]),
            sigma=float(self.sigma[index]),
            values=values,
            returns=returns,
        )


def build_series(
    bars: Sequence[Bar],
    funding: Sequence[float | None] | np.ndarray | None = None,
) -> FeatureSeries:
    """Compute rows for a bar sequence of one symbol and timeframe.

    Args:
        bars: closed bars, oldest first; a bar missing from the sequence starts a new segment.
        funding: optional funding rate aligned with `bars` (None or NaN where unknown).

    Raises:
        InvalidMarketData: for mixed symbols or timeframes, unsorted or impossible bars.
    """
    if not bars:
        raise InvalidMarketData("no bars to build features from")
    symbol, timeframe = bars[0].symbol, bars[0].timeframe
    for bar in bars:
        if bar.symbol != symbol or bar.timeframe != timeframe:
            raise InvalidMarketData(
                f"bars mix {symbol} {timeframe} with {bar.symbol} {bar.timeframe}: one series per symbol"
            )
    open_times = np.fromiter((b.open_time for b in bars), dtype=np.int64, count=len(bars))
    ohlcv = np.array([(b.open, b.high, b.low, b.close, b.volume) for b in bars], dtype=np.float64)
    return build_series_arrays(
        symbol, timeframe, open_times, ohlcv[:, 0], ohlcv[:, 1], ohlcv[:, 2], ohlcv[:, 3], ohlcv[:, 4], funding=funding
    )


def build_series_arrays(
    symbol: str,
    timeframe: str,
    open_times: np.ndarray,
    opens: np.ndarray,
    highs: np.ndarray,
    lows: np.ndarray,
    closes: np.ndarray,
    volumes: np.ndarray,
    funding: Sequence[float | None] | np.ndarray | None = None,
) -> FeatureSeries:
    """`build_series` over plain arrays (fast replay of long histories skips Bar objects).

    Raises:
        InvalidMarketData: for unsorted or impossible bars, or misaligned arrays.
    """
    t = np.array(open_times, dtype=np.int64)  # copies: the series freezes its own arrays
    o, h, lo, c, v = (np.array(a, dtype=np.float64) for a in (opens, highs, lows, closes, volumes))
    n = len(t)
    if n == 0:
        raise InvalidMarketData("no bars to build features from")
    if any(a.shape != (n,) for a in (o, h, lo, c, v)):
        raise InvalidMarketData("bar arrays have different lengths")
    _check_arrays(symbol, t, o, h, lo, c, v)
    f = _funding_array(funding, n)
    step = timeframe_ms(timeframe)
    diffs = np.diff(t)
    if np.any(diffs <= 0):
        at = int(np.argmax(diffs <= 0)) + 1
        raise InvalidMarketData(f"{symbol}: bars not in time order at index {at} (open_time {t[at]})")
    starts = np.concatenate(([0], np.flatnonzero(diffs != step) + 1)).astype(np.int64)
    ends = np.append(starts[1:], n)
    rows = np.full((n, N_FEATURES), np.nan, dtype=np.float32)
    sigma = np.full(n, np.nan, dtype=np.float64)
    returns = np.full(n, np.nan, dtype=np.float64)
    ready = np.zeros(n, dtype=bool)
    for start, end in zip(starts, ends, strict=True):
        returns[start + 1 : end] = _returns(c[start:end])
        seg = _rows(o[start:end], h[start:end], lo[start:end], c[start:end], v[start:end], f[start:end])
        rows[start + LOOKBACK : end] = seg
        sigma[start + LOOKBACK : end] = seg[:, _SIGMA_COL]
        ready[start + WARMUP_BARS - 1 : end] = True
    for a in (t, o, h, lo, c, v, rows, sigma, returns, ready):
        a.setflags(write=False)
    return FeatureSeries(
        symbol=symbol,
        timeframe=timeframe,
        open_times=t,
        opens=o,
        highs=h,
        lows=lo,
        closes=c,
        volumes=v,
        rows=rows,
        sigma=sigma,
        returns=returns,
        ready=ready,
        segment_starts=starts,
    )


class WindowBuilder:
    """Builds one symbol's windows live, one closed bar at a time.

    Keeps the last `WARMUP_BARS` bars; each new bar recomputes the window with the same
    arithmetic `build_series` uses, so live and replay inputs are identical.
    """

    def __init__(self, symbol: str, timeframe: str) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self._step = timeframe_ms(timeframe)
        self._bars: deque[tuple[int, float, float, float, float, float, float]] = deque(maxlen=WARMUP_BARS)

    @property
    def bars_needed(self) -> int:
        """Closed contiguous bars still missing before a window is ready."""
        return WARMUP_BARS - len(self._bars)

    def reset(self) -> None:
        """Forget every bar (after a feed gap the window must warm up again)."""
        self._bars.clear()

    def update(self, bar: Bar, funding_rate: float | None = None) -> FeatureWindow | None:
        """Add a bar; return the window ending at it once enough contiguous bars are known.

        Bars that are not closed, or not newer than the last one, are ignored (None). A bar
        that does not follow the previous one directly starts the warm-up again.

        Raises:
            InvalidMarketData: for another symbol's bar or impossible prices.
        """
        if bar.symbol != self.symbol or bar.timeframe != self.timeframe:
            raise InvalidMarketData(
                f"{bar.symbol} {bar.timeframe} bar given to the {self.symbol} {self.timeframe} builder"
            )
        if not bar.closed:
            return None
        if self._bars:
            last = self._bars[-1][0]
            if bar.open_time <= last:
                return None
            if bar.open_time != last + self._step:
                log.info("features.gap", symbol=self.symbol, missing_from=last + self._step, next_bar=bar.open_time)
                self._bars.clear()
        funding = 0.0 if funding_rate is None or not np.isfinite(funding_rate) else float(funding_rate)
        _check_bar(bar)
        self._bars.append((bar.open_time, bar.open, bar.high, bar.low, bar.close, bar.volume, funding))
        if len(self._bars) < WARMUP_BARS:
            return None
        cols = list(zip(*self._bars, strict=True))
        o, h, lo, c, v, f = (np.array(col, dtype=np.float64) for col in cols[1:])
        rows = _rows(o, h, lo, c, v, f)
        values = rows[-WINDOW:].astype(np.float32)
        values.setflags(write=False)
        returns = _returns(c)[-RETURNS:]
        returns.setflags(write=False)
        sigma = rows[-1, _SIGMA_COL]
        return FeatureWindow(
            symbol=self.symbol,
            timeframe=self.timeframe,
            timestamp=bar.open_time + self._step,
            close=float(bar.close),
            sigma=float(sigma),
            values=values,
            returns=returns,
        )


# --- the arithmetic --------------------------------------------------------------------


def _check_bar(bar: Bar) -> None:
    values = (bar.open, bar.high, bar.low, bar.close)
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise InvalidMarketData(f"{bar.symbol} bar at {bar.open_time}: prices must be positive and finite")
    if bar.high < max(bar.open, bar.close, bar.low) or bar.low > min(bar.open, bar.close):
        raise InvalidMarketData(f"{bar.symbol} bar at {bar.open_time}: high/low do not bound open/close")
    if not np.isfinite(bar.volume) or bar.volume < 0:
        raise InvalidMarketData(f"{bar.symbol} bar at {bar.open_time}: volume must be >= 0 and finite")


def _check_arrays(
    symbol: str, t: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray
) -> None:
    prices = np.stack((o, h, lo, c))
    bad = ~(np.isfinite(prices) & (prices > 0)).all(axis=0)
    bad |= (h < np.maximum(np.maximum(o, c), lo)) | (lo > np.minimum(o, c))
    bad |= ~np.isfinite(v) | (v < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidMarketData(
            f"{symbol} bar at {int(t[i])}: impossible values (open {o[i]}, high {h[i]}, low {lo[i]}, "
            f"close {c[i]}, volume {v[i]}): prices must be positive, high/low must bound open/close"
        )


def _funding_array(funding: Sequence[float | None] | np.ndarray | None, n: int) -> np.ndarray:
    if funding is None:
        return np.zeros(n, dtype=np.float64)
    f = np.array([np.nan if x is None else x for x in funding], dtype=np.float64)
    if f.shape != (n,):
        raise InvalidMarketData(f"funding has {f.size} values for {n} bars")
    return np.where(np.isfinite(f), f, 0.0)


def _returns(c: np.ndarray) -> np.ndarray:
    """One-bar log returns of one contiguous run of closes: length len(c) - 1 (elementwise, so the same
    bits for a whole series and for a live window)."""
    lc = np.log(c)
    return np.asarray(lc[1:] - lc[:-1], dtype=np.float64)


def _rolling_sum(x: np.ndarray, n: int) -> np.ndarray:
    """Sum of each run of `n` values, aligned with the run's last value: length len(x) - n + 1.

    Added in a fixed order (oldest first) rather than by cumulative sums, so the result for
    one position depends only on its own n values — never on where the array starts.
    """
    out = x[: len(x) - n + 1].copy()
    for k in range(1, n):
        out += x[k : len(x) - n + 1 + k]
    return out


def _rows(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Rows for one contiguous run of bars: shape (len - LOOKBACK, N_FEATURES), float64.

    Row `j` describes bar `j + LOOKBACK` and uses only bars `j .. j + LOOKBACK`.
    """
    n = len(c)
    m = n - LOOKBACK
    if m <= 0:
        return np.empty((0, N_FEATURES), dtype=np.float32)
    lc = np.log(c)
    r1 = lc[1:] - lc[:-1]  # r1[i] is the return into bar i + 1
    out = np.empty((m, N_FEATURES), dtype=np.float64)
    tail = slice(LOOKBACK, n)
    for k in RETURN_HORIZONS:
        out[:, _COL[f"ret_{k}"]] = lc[tail] - lc[LOOKBACK - k : n - k]
    out[:, _COL["range"]] = np.log(h[tail]) - np.log(lo[tail])
    out[:, _COL["body"]] = lc[tail] - np.log(o[tail])
    span = h[tail] - lo[tail]
    with np.errstate(invalid="ignore", divide="ignore"):
        loc = np.where(span > 0, (c[tail] - lo[tail]) / span, 0.5)
    out[:, _COL["close_location"]] = loc
    r2 = r1 * r1
    for k in VOL_HORIZONS:
        # the k returns into bars t-k+1 .. t: r1 indices t-k .. t-1
        sums = _rolling_sum(r2, k)  # sums[i] covers r1[i .. i+k-1], i.e. ends at bar i + k
        out[:, _COL[f"vol_{k}"]] = np.sqrt(sums[LOOKBACK - k : LOOKBACK - k + m] / k)
    lv = np.log1p(v)
    k = VOLUME_LOOKBACK
    s1 = _rolling_sum(lv, k)[LOOKBACK - k + 1 : LOOKBACK - k + 1 + m]
    s2 = _rolling_sum(lv * lv, k)[LOOKBACK - k + 1 : LOOKBACK - k + 1 + m]
    mean = s1 / k
    var = np.maximum(s2 / k - mean * mean, 0.0)
    out[:, _COL["volume_z"]] = (lv[tail] - mean) / np.maximum(np.sqrt(var), _VOLUME_STD_FLOOR)
    out[:, _COL["funding"]] = f[tail]
    return out
