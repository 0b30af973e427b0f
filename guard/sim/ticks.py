"""Simulated time and where the simulated market's ticks come from.

`SimClock` runs simulated time at a chosen speed; a `TickSource` hands out ticks a block of
1-minute bars at a time: the seeded `PriceProcess` (`guard.sim.process`), or `HistoryTicks`,
which plays a recorded history file. `SimMarket` (`guard.sim.market`) stores what they give.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from guard.clock import Clock
from guard.domain import Bar
from guard.errors import BadInput
from guard.sim.process import (
    BASE_MS,
    MIN_TICK_STEPS,
    TICKS_PER_BAR,
    PriceProcess,
    SymbolParams,
    TickBlock,
    symbol_params,
)


class SimClock:
    """Simulated time: runs `speed` times as fast as the clock it is given.

    Args:
        clock: the real (or test) clock.
        speed: simulated seconds per real second.
        start_ms: simulated time at construction.
    """

    def __init__(self, clock: Clock, speed: float, start_ms: int) -> None:
        if not speed > 0:
            raise BadInput(f"speed {speed}: must be > 0")
        self._clock = clock
        self._speed = speed
        self._start_ms = start_ms
        self._mono0 = clock.monotonic()

    @property
    def speed(self) -> float:
        return self._speed

    def now_ms(self) -> int:
        """Simulated milliseconds since the Unix epoch."""
        return self._start_ms + int((self._clock.monotonic() - self._mono0) * 1000.0 * self._speed)

    def wall_seconds(self, sim_ms: float) -> float:
        """Real seconds that `sim_ms` simulated milliseconds take."""
        return sim_ms / 1000.0 / self._speed


class TickSource(Protocol):
    """Where ticks come from: the price process, or a recorded history."""

    symbols: tuple[str, ...]
    params: tuple[SymbolParams, ...]
    origin_ms: int

    @property
    def next_index(self) -> int: ...

    @property
    def scenario(self) -> str: ...

    def advance(self, n: int) -> TickBlock: ...

    def set_scenario(self, scenario: str, onset_ms: int) -> None: ...


class HistoryTicks:
    """A tick source that plays recorded 1-minute bars, as ticks open → extreme → extreme → close.

    Bars of several symbols are aligned on their open times; a symbol with no bar at a time
    gets a flat bar at its previous close. A bar's volume is spread over its ticks in whole
    thousandths of the file's volume increment (the served lot size), at least
    `MIN_TICK_STEPS` per tick so every tick can print its trades: only bars of (almost) zero
    volume come back a little larger.
    """

    def __init__(self, bars: dict[str, list[Bar]]) -> None:
        if not bars or not any(bars.values()):
            raise BadInput("history: the file has no bars")
        for symbol, rows in bars.items():
            bad = [b for b in rows if b.timeframe != "1m"]
            if bad:
                raise BadInput(f"history: {symbol} has {bad[0].timeframe} bars; the simulator serves 1m bars")
        self.symbols = tuple(bars)
        times = sorted({b.open_time for rows in bars.values() for b in rows})
        self.origin_ms = times[0]
        n = (times[-1] - times[0]) // BASE_MS + 1
        s = len(self.symbols)
        ohlcv = np.full((n, s, 5), np.nan)
        for j, symbol in enumerate(self.symbols):
            for b in bars[symbol]:
                ohlcv[(b.open_time - self.origin_ms) // BASE_MS, j] = (b.open, b.high, b.low, b.close, b.volume)
            _fill_forward(ohlcv[:, j])
        params = []
        for j, symbol in enumerate(self.symbols):
            prices = ohlcv[:, j, :4]
            tick = _smallest_increment(prices)
            # A thousandth of the file's volume increment, so each of a bar's ticks can print
            # MIN_TICK_STEPS trades and the bar's volume still sums exactly.
            step = _smallest_increment(ohlcv[:, j, 4:5]) / 1000
            params.append(SymbolParams(symbol, float(prices[0, 0]), 0.0, 0.0, tick, step, 0.0))
        self.params = tuple(params)
        self._ohlcv = ohlcv
        self._next = 0

    @property
    def next_index(self) -> int:
        return self._next

    @property
    def scenario(self) -> str:
        return "history"

    @property
    def length(self) -> int:
        """Number of 1-minute bars in the history."""
        return int(self._ohlcv.shape[0])

    def set_scenario(self, scenario: str, onset_ms: int) -> None:
        raise BadInput(f"scenario {scenario!r}: a recorded history plays as recorded")

    def advance(self, n: int) -> TickBlock:
        first = self._next
        last = min(first + n, self.length)
        if last <= first:
            raise EOFError("history exhausted")
        rows = self._ohlcv[first:last]
        o, h, lo, c, v = (rows[:, :, i] for i in range(5))
        up = c >= o
        # Anchor ticks: open, the extreme the bar visited first, the other extreme, close.
        first_extreme = np.where(up, lo, h)
        second_extreme = np.where(up, h, lo)
        anchors = np.stack([o, first_extreme, second_extreme, c], axis=1)  # (n, 4, s)
        positions = np.array([0.0, 3.0, 7.0, TICKS_PER_BAR - 1.0])
        ks = np.arange(TICKS_PER_BAR, dtype=float)
        seg = np.clip(np.searchsorted(positions, ks, side="right") - 1, 0, 2)
        frac = (ks - positions[seg]) / (positions[seg + 1] - positions[seg])
        price = anchors[:, seg, :] + (anchors[:, seg + 1, :] - anchors[:, seg, :]) * frac[None, :, None]
        for j, p in enumerate(self.params):
            decimals = decimals_of(p.tick_size)
            price[:, :, j] = np.round(np.round(price[:, :, j] / p.tick_size) * p.tick_size, decimals)
        step = np.array([p.step_size for p in self.params])
        total = np.round(v / step).astype(np.int64)  # (n, s) whole steps per bar
        base, rem = np.divmod(total, TICKS_PER_BAR)
        extra = np.arange(TICKS_PER_BAR)[None, :, None] < rem[:, None, :]
        volume_steps = np.maximum(base[:, None, :] + extra, MIN_TICK_STEPS)
        self._next = last
        open_time = self.origin_ms + np.arange(first, last, dtype=np.int64) * BASE_MS
        return TickBlock(first, open_time, price, volume_steps)


def _fill_forward(rows: npt.NDArray[np.float64]) -> None:
    last_close = np.nan
    for i in range(rows.shape[0]):
        if np.isnan(rows[i, 0]):
            if np.isnan(last_close):
                # A symbol that starts late is back-filled with its first close.
                first = np.flatnonzero(~np.isnan(rows[:, 3]))[0]
                last_close = rows[first, 0]
            rows[i] = (last_close, last_close, last_close, last_close, 0.0)
        last_close = rows[i, 3]


def _smallest_increment(values: npt.NDArray[np.float64]) -> float:
    flat = values[np.isfinite(values) & (values > 0)]
    for decimals in range(0, 9):
        scaled = flat * 10**decimals
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-6):
            return 10.0**-decimals
    return 1e-8


def decimals_of(size: float) -> int:
    """Decimal places of a tick or step size (0.01 -> 2, 10 -> 0)."""
    return max(0, -math.floor(math.log10(size) + 1e-9))


def build_source(
    symbols: Sequence[str],
    *,
    seed: int,
    scenario: str,
    origin_ms: int,
    onset_ms: int,
    history: dict[str, list[Bar]] | None = None,
) -> TickSource:
    """The price process for these symbols, or a history player when bars are given.

    A one-off price event ("flash-crash", "regime-shift") starts at `onset_ms`.
    """
    if history is not None:
        return HistoryTicks(history)
    for symbol in symbols:
        symbol_params(symbol)
    return PriceProcess(symbols, origin_ms, seed=seed, scenario=scenario, onset_ms=onset_ms)
