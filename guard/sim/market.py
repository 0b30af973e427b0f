"""The live simulated market: simulated time, stored bars and ticks, and what they imply.

`SimMarket` turns a tick source (`guard.sim.ticks`: the seeded `PriceProcess`, or a recorded history file) into
everything an exchange publishes: trades, klines of any supported interval, a 24-hour ticker,
an order book and a mark price. It knows nothing about HTTP or WebSocket; `public.py` and
`ws.py` format what it computes.

Trades are derived from ticks by a formula, so nothing per trade is stored: trade number `g`
(its id is `g + 1`) is trade `m` of tick `k` of bar `i`, where `g = (i·K + k)·M + m`, `K` is
`TICKS_PER_BAR` and `M` the trades per tick. Its price moves linearly from tick `k` toward
tick `k + 1`, so every trade lies inside its bar's high and low, and a bar is exactly the
open/high/low/close/sum of its trades.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from guard.errors import BadInput
from guard.sim.process import BASE_MS, MIN_TICK_STEPS, SCENARIOS, TICK_MS, TICKS_PER_BAR, TickBlock
from guard.sim.ticks import SimClock, TickSource, decimals_of

FUNDING_INTERVAL_MS = 8 * 3_600_000
BOOK_LEVELS = 20
_BASIS = 0.0002
"""Mark over index: a perpetual usually trades a little above its index."""


def market_id(symbol: str) -> str:
    """The venue's id of a unified symbol: "BTC/USDT:USDT" → "BTCUSDT"."""
    return symbol.split(":", 1)[0].replace("/", "")


@dataclass(frozen=True, slots=True)
class TradeBatch:
    """Consecutive trades of one symbol, as arrays (ids ascend by one)."""

    first_id: int
    timestamp: npt.NDArray[np.int64]
    price: npt.NDArray[np.float64]
    amount: npt.NDArray[np.float64]
    buyer_maker: npt.NDArray[np.bool_]

    @property
    def n(self) -> int:
        return int(self.timestamp.shape[0])

    def rows(self) -> Iterator[tuple[int, int, float, float, bool]]:
        """Each trade as (id, time in ms, price, amount, buyer is the maker), as Python values, in order."""
        return zip(
            range(self.first_id, self.first_id + self.n),
            self.timestamp.tolist(),
            self.price.tolist(),
            self.amount.tolist(),
            self.buyer_maker.tolist(),
            strict=True,
        )


@dataclass(frozen=True, slots=True)
class Kline:
    """One candle as the venue reports it."""

    open_time: int
    close_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float
    trades: int
    first_id: int
    last_id: int
    closed: bool


@dataclass(frozen=True, slots=True)
class BookState:
    """One order-book snapshot of a symbol, numbered like Binance's update ids."""

    update_id: int
    timestamp: int
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]


class SimMarket:
    """Stored ticks of every symbol, advanced lazily to the simulated now.

    Args:
        source: the price process or a recorded history.
        clock: simulated time.
        trades_per_tick: trades printed per 5-second tick (1..MIN_TICK_STEPS).
        keep_bars: 1-minute bars kept for REST queries; older ones are forgotten.
    """

    def __init__(
        self,
        source: TickSource,
        clock: SimClock,
        *,
        trades_per_tick: int = 10,
        keep_bars: int = 20_160,
    ) -> None:
        if not 1 <= trades_per_tick <= MIN_TICK_STEPS:
            raise BadInput(f"trades_per_tick {trades_per_tick}: must be 1..{MIN_TICK_STEPS}")
        self.source = source
        self.clock = clock
        self.symbols = source.symbols
        self.ids = tuple(market_id(s) for s in self.symbols)
        self.index_of_id = {mid: j for j, mid in enumerate(self.ids)}
        self.params = source.params
        self.price_decimals = tuple(decimals_of(p.tick_size) for p in self.params)
        self.amount_decimals = tuple(decimals_of(p.step_size) for p in self.params)
        self.trades_per_tick = trades_per_tick
        self.origin_ms = source.origin_ms
        self._keep = max(keep_bars, 1_500)
        s = len(self.symbols)
        cap = 4_096
        self._price: npt.NDArray[np.float64] = np.empty((cap, TICKS_PER_BAR, s))
        self._steps: npt.NDArray[np.int64] = np.empty((cap, TICKS_PER_BAR, s), dtype=np.int64)
        self._first = 0
        self._n = 0
        self._step = np.array([p.step_size for p in self.params])
        self._exhausted = False
        self._book_ids = [1_000_000 * (j + 1) for j in range(s)]
        self._books: list[BookState | None] = [None] * s

    # --- time and storage ---------------------------------------------------------

    @property
    def exhausted(self) -> bool:
        """True when a recorded history has been played to its end."""
        return self._exhausted

    @property
    def first_index(self) -> int:
        return self._first

    @property
    def end_index(self) -> int:
        """One past the last generated bar."""
        return self._first + self._n

    def now_ms(self) -> int:
        """Simulated time."""
        return self.clock.now_ms()

    def bar_index(self, ts_ms: int) -> int:
        """Index of the 1-minute bar containing a time."""
        return (ts_ms - self.origin_ms) // BASE_MS

    def open_time(self, index: int) -> int:
        """Open time of the 1-minute bar with this index."""
        return self.origin_ms + index * BASE_MS

    def sync(self, now_ms: int | None = None) -> int:
        """Generate every bar up to the one containing `now_ms`; return that simulated time."""
        now = self.clock.now_ms() if now_ms is None else now_ms
        want = self.bar_index(now) + 1
        while self.end_index < want and not self._exhausted:
            try:
                block = self.source.advance(min(want - self.end_index, 20_000))
            except EOFError:
                self._exhausted = True
                break
            self._append(block)
        return now

    def _append(self, block: TickBlock) -> None:
        cap = self._price.shape[0]
        if self._n + block.n > cap:
            drop = max(0, self._n - self._keep)
            if drop:
                self._price[: self._n - drop] = self._price[drop : self._n]
                self._steps[: self._n - drop] = self._steps[drop : self._n]
                self._first += drop
                self._n -= drop
            if self._n + block.n > cap:
                new_cap = max(cap * 2, self._n + block.n)
                self._price = _grow(self._price, new_cap)
                self._steps = _grow(self._steps, new_cap)
        self._price[self._n : self._n + block.n] = block.price
        self._steps[self._n : self._n + block.n] = block.volume_steps
        self._n += block.n

    def set_scenario(self, scenario: str) -> None:
        """Switch the price scenario from the next bar on (raises BadInput for a history)."""
        if scenario not in SCENARIOS:
            raise BadInput(f"scenario {scenario!r}: price scenarios are {', '.join(SCENARIOS)}")
        self.sync()
        self.source.set_scenario(scenario, self.clock.now_ms())

    @property
    def scenario(self) -> str:
        return self.source.scenario

    # --- trades --------------------------------------------------------------------

    def trade_count_until(self, ts_ms: int) -> int:
        """Number of trades (per symbol) with a timestamp at or before `ts_ms`."""
        rel = ts_ms - self.origin_ms
        if rel < 0:
            return 0
        m = self.trades_per_tick
        ticks, r = divmod(rel, TICK_MS)
        in_tick = min(m, ((r + 1) * m + TICK_MS - 1) // TICK_MS)
        count = ticks * m + in_tick
        return min(count, self.end_index * TICKS_PER_BAR * m)

    def first_trade_number(self) -> int:
        """The oldest trade number still answerable."""
        return self._first * TICKS_PER_BAR * self.trades_per_tick

    def trades(self, j: int, g0: int, g1: int) -> TradeBatch:
        """Trades number g0 (inclusive) to g1 (exclusive) of symbol `j`; ids are g + 1."""
        m = self.trades_per_tick
        g0 = max(g0, self.first_trade_number())
        g1 = min(g1, self.end_index * TICKS_PER_BAR * m)
        if g1 <= g0:
            empty_i = np.empty(0, dtype=np.int64)
            return TradeBatch(g0 + 1, empty_i, np.empty(0), np.empty(0), np.empty(0, dtype=bool))
        g = np.arange(g0, g1, dtype=np.int64)
        tick_global, mm = np.divmod(g, m)
        bar, k = np.divmod(tick_global, TICKS_PER_BAR)
        rows = bar - self._first
        p_k = self._price[rows, k, j]
        k_next = np.minimum(k + 1, TICKS_PER_BAR - 1)
        p_next = self._price[rows, k_next, j]
        tick = self.params[j].tick_size
        raw = p_k + (p_next - p_k) * (mm / m)
        price = np.round(np.round(raw / tick) * tick, self.price_decimals[j])
        q = self._steps[rows, k, j]
        base, rem = np.divmod(q, m)
        amount_steps = base + (mm < rem)
        amount = np.round(amount_steps * self._step[j], self.amount_decimals[j])
        ts = self.origin_ms + tick_global * TICK_MS + (mm * TICK_MS) // m
        buyer_maker = (p_next < p_k) | ((p_next == p_k) & (g % 2 == 1))
        return TradeBatch(int(g0) + 1, ts, price, amount, buyer_maker)

    def trade_number_at_or_after(self, ts_ms: int) -> int:
        """The first trade number whose timestamp is at or after `ts_ms`."""
        return self.trade_count_until(ts_ms - 1)

    def last_price(self, j: int, now_ms: int) -> float:
        """Price of symbol `j`'s last trade at or before `now_ms`."""
        count = self.trade_count_until(now_ms)
        if count <= self.first_trade_number():
            return self.params[j].start_price
        batch = self.trades(j, count - 1, count)
        return float(batch.price[0]) if batch.n else self.params[j].start_price

    # --- klines --------------------------------------------------------------------

    def klines(
        self, j: int, interval_ms: int, start_ms: int | None, end_ms: int | None, limit: int, now_ms: int
    ) -> list[Kline]:
        """Candles of symbol `j`, oldest first, including the one still open at `now_ms`."""
        per = interval_ms // BASE_MS
        now_bar = self.bar_index(now_ms)
        lo_bar = self._first
        # Align to the interval, and never start before the oldest stored bar's bucket.
        first_bucket = -(-(self.open_time(lo_bar)) // interval_ms) * interval_ms
        last_bucket = (self.open_time(min(now_bar, self.end_index - 1)) // interval_ms) * interval_ms
        if start_ms is not None:
            first_bucket = max(first_bucket, -(-start_ms // interval_ms) * interval_ms)
        if end_ms is not None:
            last_bucket = min(last_bucket, (end_ms // interval_ms) * interval_ms)
        if start_ms is None:
            # No start: the latest `limit` candles up to the end, as Binance answers.
            first_bucket = max(first_bucket, last_bucket - (limit - 1) * interval_ms)
        out: list[Kline] = []
        t = first_bucket
        while t <= last_bucket and len(out) < limit:
            i0 = self.bar_index(t)
            kline = self._kline(j, i0, per, now_ms)
            if kline is not None:
                out.append(kline)
            t += interval_ms
        return out

    def _kline(self, j: int, i0: int, per: int, now_ms: int) -> Kline | None:
        """The candle of `per` base bars starting at bar i0, as of `now_ms`."""
        m = self.trades_per_tick
        count = self.trade_count_until(now_ms)
        g_start = i0 * TICKS_PER_BAR * m
        g_stop = min((i0 + per) * TICKS_PER_BAR * m, count)
        if g_stop <= g_start or i0 < self._first:
            return None
        interval_ms = per * BASE_MS
        open_time = self.open_time(i0)
        closed = now_ms >= open_time + interval_ms and g_stop == (i0 + per) * TICKS_PER_BAR * m
        full_bars = (g_stop - g_start) // (TICKS_PER_BAR * m)
        rows = slice(i0 - self._first, i0 - self._first + full_bars)
        p = self._price[rows, :, j]
        highs = [float(p.max())] if full_bars else []
        lows = [float(p.min())] if full_bars else []
        volume_steps = int(self._steps[rows, :, j].sum()) if full_bars else 0
        open_price = float(p[0, 0]) if full_bars else math.nan
        close = float(p[-1, -1]) if full_bars else math.nan
        quote = float((p * self._steps[rows, :, j]).sum() * self._step[j]) if full_bars else 0.0
        tail_start = g_start + full_bars * TICKS_PER_BAR * m
        if tail_start < g_stop:
            # The bar still open: the trades printed so far.
            tail = self.trades(j, tail_start, g_stop)
            highs.append(float(tail.price.max()))
            lows.append(float(tail.price.min()))
            volume_steps += round(float(tail.amount.sum()) / self._step[j])
            quote += float((tail.price * tail.amount).sum())
            if not full_bars:
                open_price = float(tail.price[0])
            close = float(tail.price[-1])
        return Kline(
            open_time=open_time,
            close_time=open_time + interval_ms - 1,
            open=open_price,
            high=max(highs),
            low=min(lows),
            close=close,
            volume=round(volume_steps * self._step[j], self.amount_decimals[j]),
            quote_volume=round(quote, 4),
            trades=g_stop - g_start,
            first_id=g_start + 1,
            last_id=g_stop,
            closed=closed,
        )

    def kline_at(self, j: int, interval_ms: int, open_time: int, now_ms: int) -> Kline | None:
        """The candle of the interval starting at `open_time`, as of `now_ms`."""
        return self._kline(j, self.bar_index(open_time), interval_ms // BASE_MS, now_ms)

    # --- ticker, mark, book --------------------------------------------------------

    def ticker_24h(self, j: int, now_ms: int) -> dict[str, float | int]:
        """24-hour rolling statistics of symbol `j`."""
        last = self.last_price(j, now_ms)
        now_bar = min(self.bar_index(now_ms), self.end_index - 1)
        lo_bar = max(self._first, now_bar - 1_439)
        rows = slice(lo_bar - self._first, now_bar - self._first + 1)
        p = self._price[rows, :, j]
        steps = self._steps[rows, :, j]
        open_price = float(p[0, 0]) if p.size else last
        volume = float(steps.sum() * self._step[j])
        quote = float((p * steps).sum() * self._step[j])
        count = self.trade_count_until(now_ms)
        first = self.open_time(lo_bar)
        return {
            "open": open_price,
            "high": float(max(p.max(), last)) if p.size else last,
            "low": float(min(p.min(), last)) if p.size else last,
            "last": last,
            "volume": round(volume, self.amount_decimals[j]),
            "quote_volume": round(quote, 2),
            "open_time": first,
            "close_time": now_ms,
            "first_id": self.trade_count_until(first - 1) + 1,
            "last_id": count,
            "count": count - self.trade_count_until(first - 1),
        }

    def mark(self, j: int, now_ms: int) -> tuple[float, float, float, int]:
        """(mark price, index price, funding rate, next funding time) of symbol `j`."""
        last = self.last_price(j, now_ms)
        decimals = self.price_decimals[j]
        mark = round(last, decimals)
        index = round(last / (1 + _BASIS), decimals)
        funding = 0.0001
        next_funding = (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
        return mark, index, funding, next_funding

    def book(self, j: int, now_ms: int) -> tuple[BookState, BookState | None]:
        """A fresh depth snapshot around the last price, and the one it replaces."""
        mid = self.last_price(j, now_ms)
        p = self.params[j]
        tick = p.tick_size
        spacing = max(tick, round(mid * 0.00002 / tick) * tick)
        best_bid = math.floor(mid / tick) * tick
        best_ask = best_bid + tick
        decimals = self.price_decimals[j]
        amount_decimals = self.amount_decimals[j]
        self._book_ids[j] += 1
        uid = self._book_ids[j]
        base_amount = max(p.step_size, 40 * p.step_size * MIN_TICK_STEPS / 100)
        bids = []
        asks = []
        for level in range(BOOK_LEVELS):
            wobble = 1 + ((level * 7919 + uid * 104_729) % 97) / 50
            amount = round(base_amount * wobble * (1 + level / 4), amount_decimals)
            bids.append((round(best_bid - level * spacing, decimals), amount))
            asks.append((round(best_ask + level * spacing, decimals), amount))
        state = BookState(uid, now_ms, tuple(bids), tuple(asks))
        previous = self._books[j]
        self._books[j] = state
        return state, previous

    def current_book(self, j: int, now_ms: int) -> BookState:
        """The last book published for symbol `j` (made now if none yet)."""
        state = self._books[j]
        if state is None:
            state, _ = self.book(j, now_ms)
        return state


_Item = TypeVar("_Item", bound=np.generic)


def _grow(a: npt.NDArray[_Item], cap: int) -> npt.NDArray[_Item]:
    out = np.empty((cap, *a.shape[1:]), dtype=a.dtype)
    out[: a.shape[0]] = a
    return out
