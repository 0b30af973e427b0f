"""Real-data hygiene for history: bad ticks, gap filling and resampling.

**Bad ticks.** A bad print on a venue shows up as a wick no real trading made: one bar reaching
far beyond its own open and close while its neighbours are quiet. The rule: a bar's longer wick,
as a log distance beyond its body (`log(high / max(open, close))` above, `log(min(open, close) /
low)` below), is a bad tick when it is more than `factor` (default 20) times the median range
`log(high / low)` of the bars around it (up to 50 on each side) *and* more than `min_wick`
(default 2 %). A wick measured against the body, not the whole range, leaves real crashes alone:
a bar that falls and stays down has a long body, not a long wick. A bar that spikes and comes back
within itself is flagged; if it was real, raise `--bad-tick-factor` (0 turns the check off).

**Gaps** are filled with flat bars at the previous close and zero volume, marked incomplete
(`Bar.complete` False, the `filled` column in the file): a filled bar says "no data", never
"the price did not move", and nothing may learn from it as a real move.

**Resampling** aggregates exactly (first open, highest high, lowest low, last close, summed
volume) into buckets aligned to the Unix epoch, so a 1h bar opens on the hour as on a venue.
A bucket missing source bars (at the start or end of the data, around a gap, or holding filled
bars) is partial: it is dropped unless asked to keep it, and then it is marked incomplete.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from guard.domain import Bar
from guard.errors import BadInput
from guard.timeframes import Timeframe, timeframe_ms

BAD_TICK_FACTOR = 20.0
"""A wick this many times its neighbours' median range is a bad tick."""
BAD_TICK_MIN_WICK = 0.02
"""...and longer than this (log distance, about 2 %): quiet neighbours do not make every wick bad."""
NEIGHBOURS = 50
"""Bars on each side whose ranges set the scale."""
MIN_NEIGHBOURS = 5
"""With fewer neighbours than this there is no scale to judge against: no verdict."""


@dataclass(frozen=True, slots=True)
class BadTick:
    """A bar whose wick is far outside its neighbours' ranges."""

    index: int
    """Position in the bars given."""
    side: str
    """"high" or "low"."""
    price: float
    wick: float
    """Log distance of the wick beyond the bar's body."""
    reference: float
    """Median log range of the neighbouring bars."""

    def reason(self) -> str:
        """Why the bar was refused, for a person."""
        where = "above" if self.side == "high" else "below"
        times = f"{self.wick / self.reference:.0f}x" if self.reference > 0 else "infinitely many times"
        return (
            f"bad tick? {self.side} {self.price:g} is {math.expm1(self.wick):.1%} {where} the bar's open/close, "
            f"{times} the median range of the bars around it ({math.expm1(self.reference):.2%})"
        )


def find_bad_ticks(
    opens: Sequence[float] | np.ndarray,
    highs: Sequence[float] | np.ndarray,
    lows: Sequence[float] | np.ndarray,
    closes: Sequence[float] | np.ndarray,
    *,
    factor: float = BAD_TICK_FACTOR,
    min_wick: float = BAD_TICK_MIN_WICK,
) -> list[BadTick]:
    """The bars of one symbol (in time order) whose wick is a bad tick by the rule in the module docstring.

    `factor` 0 turns the check off.

    Raises:
        BadInput: for a negative factor or minimum wick.
    """
    if factor < 0 or min_wick < 0 or not math.isfinite(factor) or not math.isfinite(min_wick):
        raise BadInput(f"--bad-tick-factor {factor:g}: must be 0 (off) or a positive number")
    o, h, lo, c = (np.asarray(a, dtype=np.float64) for a in (opens, highs, lows, closes))
    n = len(o)
    if factor == 0 or n <= MIN_NEIGHBOURS:
        return []
    body_hi, body_lo = np.maximum(o, c), np.minimum(o, c)
    up, down = np.log(h / body_hi), np.log(body_lo / lo)
    wick = np.maximum(up, down)
    ranges = np.log(h / lo)
    out: list[BadTick] = []
    # Only bars past the floor can be bad: the neighbours' median is needed for those alone.
    for i in np.flatnonzero(wick > min_wick).tolist():
        around = np.concatenate((ranges[max(0, i - NEIGHBOURS) : i], ranges[i + 1 : i + 1 + NEIGHBOURS]))
        if len(around) < MIN_NEIGHBOURS:
            continue
        reference = float(np.median(around))
        if wick[i] > factor * reference:
            side = "high" if up[i] >= down[i] else "low"
            out.append(BadTick(i, side, float(h[i] if side == "high" else lo[i]), float(wick[i]), reference))
    return out


# --- gaps -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FillResult:
    """What `fill_gaps` did."""

    bars: list[Bar]
    gaps: int
    """Places where bars were missing."""
    filled: int
    """Flat bars inserted."""
    longest_ms: int
    """The longest gap filled, in ms (0 when none)."""


def fill_gaps(bars: Sequence[Bar]) -> FillResult:
    """Fill every gap in one symbol's bars with flat bars at the previous close, zero volume, incomplete.

    Raises:
        BadInput: for bars of several symbols or timeframes, or out of time order.
    """
    if not bars:
        return FillResult([], 0, 0, 0)
    _one_series(bars)
    step = timeframe_ms(bars[0].timeframe)
    out: list[Bar] = [bars[0]]
    gaps = filled = longest = 0
    for bar in bars[1:]:
        prev = out[-1]
        missing = (bar.open_time - prev.open_time) // step - 1
        if missing > 0:
            gaps += 1
            filled += missing
            longest = max(longest, missing * step)
            p = prev.close
            out.extend(
                Bar(
                    symbol=prev.symbol,
                    timeframe=prev.timeframe,
                    open_time=prev.open_time + k * step,
                    open=p,
                    high=p,
                    low=p,
                    close=p,
                    volume=0.0,
                    complete=False,
                )
                for k in range(1, missing + 1)
            )
        out.append(bar)
    return FillResult(out, gaps, filled, longest)


def count_gaps(bars: Sequence[Bar]) -> int:
    """Places where one symbol's bars skip at least one bar."""
    if not bars:
        return 0
    step = timeframe_ms(bars[0].timeframe)
    return sum(1 for a, b in pairwise(bars) if b.open_time - a.open_time > step)


def _one_series(bars: Sequence[Bar]) -> None:
    first = bars[0]
    for a, b in pairwise(bars):
        if b.symbol != first.symbol or b.timeframe != first.timeframe:
            raise BadInput(f"bars of {first.symbol} {first.timeframe} and {b.symbol} {b.timeframe} mixed")
        if b.open_time <= a.open_time:
            raise BadInput(f"{first.symbol}: bars out of time order at {b.open_time}")


# --- resampling ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartialBucket:
    """A target bar that its source bars do not fully cover."""

    symbol: str
    open_time: int
    real: int
    """Real (complete) source bars in it."""
    needed: int


@dataclass(frozen=True, slots=True)
class ResampleResult:
    """What `resample` made."""

    bars: list[Bar]
    source_bars: int
    partial: list[PartialBucket]
    """Buckets not fully covered by real source bars: dropped, or kept marked incomplete."""
    kept_partial: bool


def resample(bars: Sequence[Bar], target: str, *, keep_partial: bool = False) -> ResampleResult:
    """Aggregate bars (one or several symbols, each in time order) into `target` bars, exactly.

    Raises:
        BadInput: an unknown target, a target finer than (or not a whole multiple of) the source, or
            bars mixing timeframes.
    """
    to = Timeframe.parse(target)
    by_symbol: dict[str, list[Bar]] = {}
    for bar in bars:
        by_symbol.setdefault(bar.symbol, []).append(bar)
    out: list[Bar] = []
    partial: list[PartialBucket] = []
    for series in by_symbol.values():
        _one_series(series)
        source = Timeframe.parse(series[0].timeframe)
        if to.ms < source.ms:
            raise BadInput(f"--to {to}: finer than the source's {source} bars; resampling only aggregates")
        if to.ms % source.ms:
            raise BadInput(f"--to {to}: not a whole number of {source} bars; choose a multiple of {source}")
        needed = to.ms // source.ms
        for bucket in _buckets(series, to):
            real = sum(1 for b in bucket if b.complete)
            if real < needed:
                partial.append(PartialBucket(series[0].symbol, to.open_time(bucket[0].open_time), real, needed))
                if not keep_partial:
                    continue
            out.append(_aggregate(bucket, to, complete=real == needed))
    return ResampleResult(out, len(bars), partial, keep_partial)


def _buckets(series: Sequence[Bar], to: Timeframe) -> list[list[Bar]]:
    groups: list[list[Bar]] = []
    current = -1
    for bar in series:
        start = to.open_time(bar.open_time)
        if start != current:
            groups.append([])
            current = start
        groups[-1].append(bar)
    return groups


def _aggregate(bucket: Sequence[Bar], to: Timeframe, complete: bool) -> Bar:
    first, last = bucket[0], bucket[-1]
    return Bar(
        symbol=first.symbol,
        timeframe=to.name,
        open_time=to.open_time(first.open_time),
        open=first.open,
        high=max(b.high for b in bucket),
        low=min(b.low for b in bucket),
        close=last.close,
        volume=math.fsum(b.volume for b in bucket),
        complete=complete,
    )
