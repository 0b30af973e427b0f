"""Bad ticks, gap filling and resampling on bars the tests make."""

from __future__ import annotations

import math

import numpy as np
import pytest

from guard.domain import Bar
from guard.errors import BadInput
from guard.feed.hygiene import count_gaps, fill_gaps, find_bad_ticks, resample
from guard.sim.process import generate_history

T0 = 1_767_225_600_000
BTC = "BTC/USDT:USDT"


def _walk(n: int, seed: int = 3, price: float = 100.0, sigma: float = 0.002) -> list[Bar]:
    """A random walk of 1m bars with small wicks, like a quiet real market."""
    rng = np.random.default_rng(seed)
    bars = []
    for i in range(n):
        close = price * math.exp(rng.normal(0, sigma))
        hi = max(price, close) * (1 + abs(rng.normal(0, sigma / 2)))
        lo = min(price, close) * (1 - abs(rng.normal(0, sigma / 2)))
        bars.append(Bar(BTC, "1m", T0 + i * 60_000, price, hi, lo, close, 1.0 + i % 7))
        price = close
    return bars


def _ticks(bars: list[Bar], **kw: float) -> list[int]:
    return [b.index for b in find_bad_ticks(*zip(*[(b.open, b.high, b.low, b.close) for b in bars], strict=True), **kw)]


def test_bad_tick_100x_high_found_and_named() -> None:
    """A bar whose high is 100 times its price is a bad tick, and the reason says how far and against what."""
    bars = _walk(300)
    b = bars[150]
    bars[150] = Bar(b.symbol, b.timeframe, b.open_time, b.open, b.high * 100, b.low, b.close, b.volume)
    found = find_bad_ticks(*zip(*[(x.open, x.high, x.low, x.close) for x in bars], strict=True))
    assert [t.index for t in found] == [150]
    assert found[0].side == "high" and "median range" in found[0].reason()


def test_bad_tick_15pct_wick_low_found() -> None:
    """A +15 % wick (the one that turned a replay's +199 into -380) is found, below the body too."""
    bars = _walk(300)
    b = bars[40]
    bars[40] = Bar(b.symbol, b.timeframe, b.open_time, b.open, b.high, min(b.open, b.close) * 0.85, b.close, 1.0)
    assert _ticks(bars) == [40]


def test_bad_tick_real_crash_that_stays_down_not_flagged() -> None:
    """A 30 % fall that closes down (a long body, not a wick) is a real move, not a bad tick."""
    bars = _walk(300)
    for i in range(150, 300):
        b = bars[i]
        f = 0.7
        bars[i] = Bar(b.symbol, b.timeframe, b.open_time, b.open * f, b.high * f, b.low * f, b.close * f, b.volume)
    b = bars[149]
    bars[149] = Bar(b.symbol, b.timeframe, b.open_time, b.open, b.open, bars[150].open * 0.999, bars[150].open, 9.0)
    assert _ticks(bars) == []


def test_bad_tick_simulator_flash_crash_and_quiet_data_pass() -> None:
    """The simulator's trend history (jumps included) has no bad tick; factor 0 turns the check off."""
    bars = generate_history([BTC], T0, 3_000, scenario="trend", seed=5)[BTC]
    assert _ticks(bars) == []
    spiked = list(bars)
    b = spiked[10]
    spiked[10] = Bar(b.symbol, b.timeframe, b.open_time, b.open, b.high * 2, b.low, b.close, b.volume)
    assert _ticks(spiked) == [10]
    assert _ticks(spiked, factor=0) == []
    with pytest.raises(BadInput, match="bad-tick-factor"):
        _ticks(spiked, factor=-1)


def test_bad_tick_too_few_bars_no_verdict() -> None:
    """With no neighbours to judge against there is no verdict (no bar is refused for lack of context)."""
    assert _ticks([Bar(BTC, "1m", T0, 1, 100, 1, 1, 1)]) == []


def test_fill_gaps_flat_bars_at_previous_close_marked_incomplete() -> None:
    """Each missing bar becomes a flat, zero-volume, incomplete bar at the previous close; real bars are untouched."""
    bars = _walk(10)
    holed = [*bars[:3], *bars[6:8], bars[9]]
    assert count_gaps(holed) == 2
    result = fill_gaps(holed)
    assert (result.gaps, result.filled, result.longest_ms) == (2, 4, 180_000)
    assert [b.open_time for b in result.bars] == [b.open_time for b in bars]
    for b in result.bars:
        if b in holed:
            continue
        prev = next(p for p in reversed(result.bars) if p.open_time < b.open_time and p.complete)
        assert not b.complete and b.volume == 0 and b.open == b.high == b.low == b.close == prev.close


def test_fill_gaps_refuses_mixed_symbols() -> None:
    """Filling works on one symbol's bars at a time."""
    bars = _walk(3)
    other = Bar("ETH/USDT:USDT", "1m", T0 + 600_000, 1, 1, 1, 1, 1)
    with pytest.raises(BadInput, match="mixed"):
        fill_gaps([*bars, other])


def test_resample_exact_ohlcv_aligned_buckets() -> None:
    """5m bars are the first open, highest high, lowest low, last close and summed volume of their five 1m bars."""
    bars = generate_history([BTC], T0, 60, seed=2)[BTC]
    result = resample(bars, "5m")
    assert len(result.bars) == 12 and result.partial == []
    for k, bar in enumerate(result.bars):
        group = bars[5 * k : 5 * k + 5]
        assert bar.open_time == group[0].open_time and bar.open_time % 300_000 == 0
        assert (bar.open, bar.close) == (group[0].open, group[-1].close)
        assert bar.high == max(b.high for b in group) and bar.low == min(b.low for b in group)
        assert bar.volume == math.fsum(b.volume for b in group) and bar.timeframe == "5m" and bar.complete


def test_resample_partial_buckets_dropped_or_kept_marked() -> None:
    """Buckets the source does not cover (the last, short one; one around a gap; one holding a filled bar) are
    dropped by default, or kept marked incomplete on request."""
    bars = generate_history([BTC], T0, 23, seed=2)[BTC]
    holed = [b for i, b in enumerate(bars) if i != 7]  # bucket 5..9 misses a bar
    filled = fill_gaps(holed).bars
    result = resample(filled, "5m")
    assert [b.open_time for b in result.bars] == [T0, T0 + 600_000, T0 + 900_000]
    assert [(p.open_time, p.real, p.needed) for p in result.partial] == [(T0 + 300_000, 4, 5), (T0 + 1_200_000, 3, 5)]
    kept = resample(filled, "5m", keep_partial=True)
    assert [b.complete for b in kept.bars] == [True, False, True, True, False]


def test_resample_refuses_finer_or_uneven_target() -> None:
    """Resampling only aggregates: a finer target, or one not a whole number of source bars, is refused."""
    bars = resample(generate_history([BTC], T0, 30, seed=2)[BTC], "3m").bars
    with pytest.raises(BadInput, match="finer"):
        resample(bars, "1m")
    with pytest.raises(BadInput, match="multiple of 3m"):
        resample(bars, "5m")
    with pytest.raises(BadInput, match="must be one of"):
        resample(bars, "7m")
    assert len(resample(bars, "15m").bars) == 2
