"""The seeded price process: reproducible, chunk-invariant, realistic enough, fast."""

from __future__ import annotations

import numpy as np
import pytest

from guard.errors import BadInput
from guard.sim.process import (
    FLASH_CRASH_DROP,
    REGIME_SHIFT_BARS,
    PriceProcess,
    generate_history,
)

SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT")
START = 1_767_225_600_000


def _closes(bars: list) -> np.ndarray:
    return np.array([b.close for b in bars])


def test_generate_history_same_seed_identical_bars() -> None:
    """The same arguments give exactly the same bars; another seed gives others."""
    a = generate_history(SYMBOLS, START, 500, seed=3)
    b = generate_history(SYMBOLS, START, 500, seed=3)
    c = generate_history(SYMBOLS, START, 500, seed=4)
    assert a == b
    assert a[SYMBOLS[0]] != c[SYMBOLS[0]]


def test_price_process_chunked_equals_whole() -> None:
    """Generating bars in uneven chunks gives the same bars as one call (the server relies on it)."""
    whole = generate_history(SYMBOLS, START, 3_000)
    process = PriceProcess(SYMBOLS, START)
    blocks = [process.advance(n) for n in (1, 7, 992, 2_000)]
    for j, symbol in enumerate(SYMBOLS):
        closes = np.concatenate([process.bars_of(block, j)[3] for block in blocks])
        assert closes.tolist() == [bar.close for bar in whole[symbol]]


def test_generate_history_bars_valid_and_aligned() -> None:
    """Every bar is a possible bar: positive prices, close and open inside [low, high], 1m aligned."""
    history = generate_history(SYMBOLS, START + 12_345, 5_000, scenario="flash-crash")
    for bars in history.values():
        assert [b.open_time for b in bars] == [START + i * 60_000 for i in range(5_000)]
        for b in bars:
            assert 0 < b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
            assert b.volume > 0 and b.closed and b.complete


def test_generate_history_flash_crash_drops_then_recovers() -> None:
    """flash-crash: every symbol falls about 30 % within one minute at the middle bar, then recovers."""
    bars = 400
    history = generate_history(SYMBOLS, START, bars, scenario="flash-crash")
    mid = bars // 2
    for symbol in SYMBOLS:
        closes = _closes(history[symbol])
        drop = closes[mid] / closes[mid - 1] - 1
        assert drop == pytest.approx(-FLASH_CRASH_DROP, abs=0.05)
        assert closes[mid + 40] / closes[mid - 1] == pytest.approx(1.0, abs=0.08)


def test_generate_history_regime_shift_volatility_five_times() -> None:
    """regime-shift: the hour after the middle bar is about five times as volatile as the hour before."""
    history = generate_history(SYMBOLS, START, 600, scenario="regime-shift", seed=11)
    ratios = []
    for symbol in SYMBOLS:
        r = np.diff(np.log(_closes(history[symbol])))
        before = r[300 - REGIME_SHIFT_BARS : 299].std()
        during = r[300 : 300 + REGIME_SHIFT_BARS - 1].std()
        ratios.append(during / before)
    assert 3.0 < float(np.median(ratios)) < 8.0


def test_generate_history_symbols_correlated_and_clustered() -> None:
    """Returns of different symbols move together, and big moves cluster in time."""
    history = generate_history(SYMBOLS, START, 20_000)
    r = np.array([np.diff(np.log(_closes(history[s]))) for s in SYMBOLS])
    corr = np.corrcoef(r)
    assert corr[0, 1] > 0.4 and corr[0, 2] > 0.3
    a = np.abs(r[0])
    clustering = np.corrcoef(a[:-1], a[1:])[0, 1]
    assert clustering > 0.05


def test_generate_history_trend_drifts() -> None:
    """trend: drift segments make |total move| larger than under calm for the same seed."""
    calm = _closes(generate_history(SYMBOLS, START, 3_000, scenario="calm")[SYMBOLS[0]])
    trend = _closes(generate_history(SYMBOLS, START, 3_000, scenario="trend")[SYMBOLS[0]])
    assert not np.array_equal(calm, trend)
    assert np.abs(np.diff(np.log(trend))).mean() > 0


def test_generate_history_hour_bars_aggregate_minutes() -> None:
    """1h bars are exactly the aggregate of the 1m bars behind them."""
    minutes = generate_history(SYMBOLS[:1], START, 120)[SYMBOLS[0]]
    hours = generate_history(SYMBOLS[:1], START, 2, timeframe="1h")[SYMBOLS[0]]
    for h, chunk in zip(hours, (minutes[:60], minutes[60:]), strict=True):
        assert h.open == chunk[0].open and h.close == chunk[-1].close
        assert h.high == max(b.high for b in chunk) and h.low == min(b.low for b in chunk)
        assert h.volume == pytest.approx(sum(b.volume for b in chunk))


def test_generate_history_200k_bars_for_every_symbol() -> None:
    """200,000 bars of each of three symbols, contiguous minutes (how fast is bench/replay.py's business)."""
    history = generate_history(SYMBOLS, START, 200_000)
    for symbol in SYMBOLS:
        bars = history[symbol]
        assert len(bars) == 200_000
        assert bars[-1].open_time - bars[0].open_time == 199_999 * 60_000


def test_generate_history_bad_arguments_rejected() -> None:
    """An unknown scenario, timeframe or symbol is refused with BadInput."""
    with pytest.raises(BadInput, match="scenario"):
        generate_history(SYMBOLS, START, 10, scenario="moon")
    with pytest.raises(BadInput, match="timeframe"):
        generate_history(SYMBOLS, START, 10, timeframe="7m")
    with pytest.raises(BadInput, match="symbol"):
        generate_history(("BTCUSDT",), START, 10)
