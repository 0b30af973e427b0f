"""The simulated market's arithmetic: trades make the bars, history files replay as recorded."""

from __future__ import annotations

import numpy as np

from guard.clock import TestClock
from guard.domain import Bar
from guard.sim.market import SimMarket
from guard.sim.process import BASE_MS, TICKS_PER_BAR, generate_history
from guard.sim.ticks import HistoryTicks, SimClock, build_source

SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT")


def _market(clock: TestClock, trades_per_tick: int = 10, speed: float = 1.0) -> SimMarket:
    start = clock.now_ms()
    origin = start - start % BASE_MS - 60 * BASE_MS
    source = build_source(SYMBOLS, seed=7, scenario="calm", origin_ms=origin, onset_ms=start)
    return SimMarket(source, SimClock(clock, speed, start), trades_per_tick=trades_per_tick)


def test_market_bars_are_aggregates_of_their_trades() -> None:
    """Each closed kline is exactly the open/high/low/close/sum of the trades inside it."""
    clock = TestClock()
    market = _market(clock, trades_per_tick=7)
    now = market.sync()
    m = market.trades_per_tick
    for j in range(len(SYMBOLS)):
        for k in market.klines(j, 60_000, None, None, 5, now)[:-1]:
            assert k.closed
            trades = market.trades(j, k.first_id - 1, k.last_id)
            assert trades.n == TICKS_PER_BAR * m
            assert trades.first_id == k.first_id
            assert float(trades.price[0]) == k.open and float(trades.price[-1]) == k.close
            assert float(trades.price.max()) == k.high and float(trades.price.min()) == k.low
            assert abs(float(trades.amount.sum()) - k.volume) < 1e-6
            assert np.all((trades.timestamp >= k.open_time) & (trades.timestamp <= k.close_time))
            assert np.all(np.diff(trades.timestamp) >= 0)


def test_market_klines_equal_generate_history() -> None:
    """The server's closed 1m klines are the bars generate_history makes for the same origin and seed."""
    clock = TestClock()
    market = _market(clock)
    now = market.sync()
    served = market.klines(0, 60_000, market.origin_ms, None, 60, now)
    expected = generate_history(SYMBOLS, market.origin_ms, 60)[SYMBOLS[0]]
    assert [(k.open_time, k.open, k.high, k.low, k.close, k.volume) for k in served] == [
        (b.open_time, b.open, b.high, b.low, b.close, b.volume) for b in expected
    ]


def test_market_time_moves_with_speed() -> None:
    """Simulated time runs `speed` times as fast as the clock, and trades appear as it passes."""
    clock = TestClock()
    market = _market(clock, speed=10.0)
    t0 = market.now_ms()
    count0 = market.trade_count_until(market.sync())
    clock.advance(1.0)
    t1 = market.sync()
    assert t1 - t0 == 10_000
    # 10 simulated seconds at 10 trades per 5 s: 20 more trades.
    assert market.trade_count_until(t1) - count0 == 20


def test_history_ticks_replay_recorded_bars() -> None:
    """A recorded history is served bar for bar: same open, high, low and close."""
    bars = generate_history(("SOL/USDT:USDT",), 1_767_225_600_000, 30)
    clock = TestClock(1_767_225_600_000 + 40 * BASE_MS)
    source = HistoryTicks(bars)
    market = SimMarket(source, SimClock(clock, 1.0, clock.now_ms()), trades_per_tick=5)
    now = market.sync()
    served = market.klines(0, 60_000, source.origin_ms, None, 30, now)
    assert len(served) == 30
    for k, b in zip(served, bars["SOL/USDT:USDT"], strict=True):
        assert (k.open_time, k.open, k.high, k.low, k.close) == (b.open_time, b.open, b.high, b.low, b.close)
    assert market.exhausted


def test_history_ticks_fill_missing_bars_flat() -> None:
    """A symbol without a bar at some minute gets a flat bar at its previous close."""
    t0 = 1_767_225_600_000
    rows = [
        Bar("X/USDT:USDT", "1m", t0, 10, 11, 9, 10.5, 3),
        Bar("X/USDT:USDT", "1m", t0 + 2 * BASE_MS, 10, 12, 10, 11, 2),
    ]
    source = HistoryTicks({"X/USDT:USDT": rows})
    block = source.advance(3)
    assert block.price[1, :, 0].tolist() == [10.5] * TICKS_PER_BAR
