"""Bars as arrays, one symbol each: what replay reads, and what it computes from them once."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from guard.domain import Bar
from guard.errors import BadInput
from guard.feed.history import read_bars
from guard.timeframes import timeframe_ms

VOL_ALPHA = 0.06
"""The paper broker's EWMA weight (`guard.broker.paper_market.VOL_ALPHA`): the fast-forwarded volatility
estimate must come from the very same arithmetic."""


_SETTLE_RUN = 32
"""Bars `settling_bar` reads at a time."""


@dataclass(frozen=True, slots=True, eq=False)
class SymbolHistory:
    """One symbol's bars as arrays (oldest first, strictly increasing open times)."""

    symbol: str
    timeframe: str
    open_times: np.ndarray
    opens: np.ndarray
    highs: np.ndarray
    lows: np.ndarray
    closes: np.ndarray
    volumes: np.ndarray
    filled: np.ndarray | None = None
    """bool per bar: not a full record of its interval (a filled gap, a partial bucket); None when none is."""

    @classmethod
    def from_bars(cls, bars: Sequence[Bar]) -> SymbolHistory:
        """Arrays from Bar objects of one symbol and timeframe."""
        if not bars:
            raise BadInput("a symbol's history has no bars")
        ohlcv = np.array([(b.open, b.high, b.low, b.close, b.volume) for b in bars], dtype=np.float64)
        times = np.fromiter((b.open_time for b in bars), dtype=np.int64, count=len(bars))
        filled = np.fromiter((not b.complete for b in bars), dtype=bool, count=len(bars))
        opens, highs, lows, closes, volumes = (ohlcv[:, i].copy() for i in range(5))
        return cls(
            bars[0].symbol,
            bars[0].timeframe,
            times,
            opens,
            highs,
            lows,
            closes,
            volumes,
            filled=filled if filled.any() else None,
        )

    @property
    def filled_count(self) -> int:
        """Bars that are not a full record of their interval."""
        return 0 if self.filled is None else int(np.count_nonzero(self.filled))

    def __len__(self) -> int:
        return len(self.open_times)

    def settling_bar(self, i: int, timestamp: int, price: float, barrier: float, horizon_seconds: float) -> int | None:
        """The bar at which the live tracker settles a signal given at bar `i` (`guard.model.tracker`'s rule):
        the first after it whose high or low reaches a barrier, or whose close reaches or passes the horizon's
        deadline. None when the history ends first."""
        entry = math.log(price)
        up, down = entry + barrier, entry - barrier
        deadline = timestamp + round(horizon_seconds * 1000)
        times, n, tf = self.open_times, len(self.open_times), timeframe_ms(self.timeframe)
        # The first bar after i opened at or after the signal (usually i + 1); the first of those closing at the
        # deadline (usually where bars one timeframe apart put it: checked, else searched). Plain `bisect`, not
        # numpy's searchsorted: for one value its call costs more than the search.
        first = i + 1
        if first < n and times[first] < timestamp:
            first = bisect_left(times, timestamp, first + 1)
        due, target = first, deadline - tf
        if due < n and times[due] < target:
            guess = min(n, due + (target - int(times[due]) + tf - 1) // tf)
            if times[guess - 1] < target and (guess == n or times[guess] >= target):
                due = guess
            else:
                due = bisect_left(times, target, due + 1)
        # Bars before `due` settle only on a barrier. Plain comparisons find those that might (a margin of 1e-9
        # over math.log's last bits); each is then judged with the tracker's own arithmetic, in order. A proposal
        # usually settles within a few bars: they are read a short run at a time.
        reach_up = math.exp(min(up, 709.0)) * (1 - 1e-9)  # never above e^up (and no overflow)
        reach_down = math.exp(down) * (1 + 1e-9)
        log = math.log
        for start in range(first, due, _SETTLE_RUN):
            end = min(start + _SETTLE_RUN, due)
            run = zip(self.highs[start:end].tolist(), self.lows[start:end].tolist(), strict=True)
            for k, (high, low) in enumerate(run, start):
                if (high >= reach_up or low <= reach_down) and (log(high) >= up or log(low) <= down):
                    return k
        return due if due < len(times) else None

    def bar(self, i: int) -> Bar:
        """Bar `i` as the feed would deliver it (closed; incomplete when it is a filled one)."""
        return Bar(
            self.symbol,
            self.timeframe,
            int(self.open_times[i]),
            float(self.opens[i]),
            float(self.highs[i]),
            float(self.lows[i]),
            float(self.closes[i]),
            float(self.volumes[i]),
            complete=self.filled is None or not bool(self.filled[i]),
        )

    def broker_variances(self) -> list[float]:
        """The paper broker's volatility estimate after each bar, with its exact arithmetic (math.log, in order).

        A recurrence: vectorising it would change the last bits, and fills depend on it through slippage.
        """
        out: list[float] = []
        variance = 0.0
        last: float | None = None
        log = math.log
        for c in self.closes.tolist():
            if last is not None:
                r = log(c / last)
                variance = (1 - VOL_ALPHA) * variance + VOL_ALPHA * r * r
            last = c
            out.append(variance)
        return out


def histories_from_bars(bars: Sequence[Bar]) -> list[SymbolHistory]:
    """Group bars by symbol (in order of first appearance)."""
    by_symbol: dict[str, list[Bar]] = {}
    for bar in bars:
        by_symbol.setdefault(bar.symbol, []).append(bar)
    return [SymbolHistory.from_bars(rows) for rows in by_symbol.values()]


def load_histories(paths: Sequence[str]) -> list[SymbolHistory]:
    """Read history files (several may hold the same symbol, for different periods) into arrays.

    Raises:
        BadInput: a file is unreadable, or two files repeat a bar of the same symbol.
    """
    by_symbol: dict[str, list[Bar]] = {}
    for path in paths:
        for bar in read_bars(path):
            by_symbol.setdefault(bar.symbol, []).append(bar)
    out = []
    for symbol, bars in by_symbol.items():
        bars.sort(key=lambda b: b.open_time)
        for a, b in pairwise(bars):
            if a.open_time == b.open_time:
                raise BadInput(f"{symbol}: two bars open at {a.open_time} (do the files overlap?)")
        out.append(SymbolHistory.from_bars(bars))
    return out
