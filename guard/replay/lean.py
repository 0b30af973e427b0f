"""Replay's lean path: proving, a run of bars at a time, that their market events change nothing.

Every symbol's bars are laid on one time axis of *groups* (one group per bar close). After
anything happens, the engine takes an `Exposure` — what could react to prices: a band per
symbol inside which no liquidation price, stop, take-profit or limit is crossed; when funding
next falls due on a held symbol; how far today's losses are from the daily limit — and
`first_work` finds, with a few numpy comparisons over the groups ahead, the first group whose
events could change anything. Every comparison carries a relative margin of 1e-9 (a Decimal
turned float is off by ~1e-16), so a proof never claims "nothing" where something happens; it
may only send a quiet group through the desk for nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

import numpy as np

from guard.approval.state import DAY_MS
from guard.broker.paper import PaperBroker
from guard.domain import Position
from guard.replay.history import SymbolHistory

EPS = 1e-9
"""Relative margin of every float proof (Decimal-to-float error is ~1e-16)."""
SCAN_FIRST = 32
SCAN_MAX = 2048
"""Groups looked at per step: a short first look (a stop is usually near), growing to this."""
SCAN_SHORT = 32
"""Up to this many groups, a step is looked at in plain Python (a numpy call costs as much as dozens of floats
compared); beyond, with numpy."""


@dataclass(frozen=True, slots=True, eq=False)
class MarketGrid:
    """Every symbol's bars on one time axis: arrays indexed [group] or [group, symbol]."""

    group_open: np.ndarray
    """Open time of each group's bars, ms (sorted, distinct)."""
    row: np.ndarray
    """Index of symbol j's bar in group g, or -1."""
    ff: np.ndarray
    """Index of symbol j's latest bar at or before group g, or -1 before its first."""
    has: np.ndarray
    groups: tuple[np.ndarray, ...]
    """Per symbol: the group of each of its bars."""
    next_bar: np.ndarray
    """The first group at or after g where symbol j has a bar (len(group_open): none)."""
    closes: np.ndarray
    """Symbol j's last close as of group g (NaN before its first bar)."""
    lows: np.ndarray
    """[symbol, group] (each symbol's groups contiguous, as the proofs read them): the lowest mark symbol j shows
    in group g (its bar's low intrabar, else its close)."""
    highs: np.ndarray
    """[symbol, group]: the highest."""
    last_ts: np.ndarray
    """Time of each group's last market event, as the broker's funding clock sees it."""
    day: np.ndarray
    """UTC day of each group's close (its closed bar and proposals)."""
    open_day: np.ndarray
    """UTC day of each group's first market events (a day's last bar closes at the next midnight)."""
    low_lists: list[list[float]]
    """`lows`, `highs`, `day` and `open_day` as lists: the plain-Python scans read a few at a time, and a slice of
    a list costs a fraction of a numpy slice turned into one."""
    high_lists: list[list[float]]
    day_list: list[int]
    open_day_list: list[int]
    _at: dict[tuple[int, int], int] = field(default_factory=dict, init=False, repr=False)
    """`first_group_at`'s answers (funding falls due at a few hundred distinct times)."""

    def __len__(self) -> int:
        return len(self.group_open)

    def first_group_at(self, ms: int, j: int) -> int:
        """The first group with a bar of symbol j whose last event is at or after `ms` (len(self): none)."""
        at = self._at.get((ms, j))
        if at is None:
            k = int(self.last_ts.searchsorted(ms))
            at = self._at[ms, j] = int(self.next_bar[k, j]) if k < len(self) else len(self)
        return at

    @classmethod
    def build(cls, histories: Sequence[SymbolHistory], tf_ms: int, intrabar: bool) -> MarketGrid:
        times = _group_opens(histories)
        n, m = len(times), len(histories)
        row = np.full((n, m), -1, dtype=np.int64)
        groups = tuple(times.searchsorted(h.open_times) for h in histories)
        for j, h in enumerate(histories):
            row[groups[j], j] = np.arange(len(h))
        has = row >= 0
        at = np.where(has, np.arange(n)[:, None], 0)
        np.maximum.accumulate(at, axis=0, out=at)
        ff = np.take_along_axis(row, at, axis=0)
        ff[~np.maximum.accumulate(has, axis=0)] = -1
        closes = np.full((n, m), np.nan)
        lows, highs = np.empty((m, n)), np.empty((m, n))
        for j, h in enumerate(histories):
            seen = ff[:, j] >= 0
            closes[seen, j] = h.closes[ff[seen, j]]
            lows[j] = highs[j] = closes[:, j]
            if intrabar:
                bar = has[:, j]
                lows[j, bar] = h.lows[row[bar, j]]
                highs[j, bar] = h.highs[row[bar, j]]
        upcoming = np.where(has, np.arange(n)[:, None], n)
        next_bar = np.minimum.accumulate(upcoming[::-1], axis=0)[::-1]
        # Funding is paid on the group's last event: the close mark intrabar, else the bar (its open time).
        last_ts = times + (tf_ms - 1 if intrabar else 0)
        day, open_day = (times + tf_ms) // DAY_MS, times // DAY_MS
        return cls(
            group_open=times,
            row=row,
            ff=ff,
            has=has,
            groups=groups,
            next_bar=next_bar,
            closes=closes,
            lows=lows,
            highs=highs,
            last_ts=last_ts,
            day=day,
            open_day=open_day,
            low_lists=lows.tolist(),
            high_lists=highs.tolist(),
            day_list=day.tolist(),
            open_day_list=open_day.tolist(),
        )


def _group_opens(histories: Sequence[SymbolHistory]) -> np.ndarray:
    """Every distinct bar open time, sorted."""
    if len(histories) == 1:
        times = histories[0].open_times
        if len(times) < 2 or bool((times[1:] > times[:-1]).all()):
            return np.array(times, dtype=np.int64)  # one history's times are already sorted and distinct
    times = np.sort(np.concatenate([h.open_times for h in histories]))
    return times[np.concatenate(([True], times[1:] != times[:-1]))]


class Exposure(NamedTuple):
    """What the proofs depend on, read after anything happened (a tuple: one is built after every event)."""

    bands: tuple[tuple[int, float, float], ...]
    """(symbol, low, high): inside (low, high) nothing on that symbol can trigger, fill or liquidate."""
    funding_group: int
    """The first group where funding falls due on a held symbol (-1: none)."""
    positions: tuple[tuple[int, float, float], ...]
    """(symbol, signed qty, entry price) as floats."""
    active: bool
    """ACTIVE: the daily loss check runs (it latches REDUCING only from ACTIVE)."""
    daily_day: int
    daily_realized: float
    limit: float
    margin: float

    @property
    def idle(self) -> bool:
        """Nothing can react to any price: no position, no resting order, no loss today to latch on."""
        return not self.positions and not self.bands and not (self.active and self.daily_realized < 0)


class ExposureReader:
    """Reads one replay's `Exposure`s, turning into floats only what changed since the last read. A resting
    order's level, a position and today's figures are replaced, never changed (Decimals and positions are
    immutable): the very object read before has the floats read before."""

    def __init__(self, broker: PaperBroker, index: Mapping[str, int], grid: MarketGrid) -> None:
        self._broker = broker
        self._symbols = sorted(index.items(), key=lambda item: item[1])  # bands come in symbol order
        self._index = index
        self._grid = grid
        self._levels: dict[str, tuple[Decimal | None, Decimal | None, float | None, float | None]] = {}
        """Per symbol: its orders' (falls_to, rises_to) as last read, and the band's edges they set."""
        self._held: dict[str, tuple[Position, tuple[int, float, float], float, float | None, float | None]] = {}
        """Per symbol: the position last read, as (symbol, qty, entry), its notional, and the edges its
        liquidation price sets below and above."""
        self._funding: dict[str, tuple[int, int]] = {}
        """Per symbol: the funding time last read, and its group."""
        self._figures: tuple[Decimal, Decimal, float, float] | None = None
        """(daily realized, limit) as last read, and as floats."""

    def read(
        self,
        positions: Mapping[str, Position],
        *,
        active: bool,
        daily_day: int,
        daily_realized: Decimal,
        limit: Decimal,
    ) -> Exposure:
        broker, grid = self._broker, self._grid
        n = len(grid)
        held = []
        liquidations: dict[int, tuple[float | None, float | None]] = {}
        funding = -1
        exposure = 0.0
        for p in positions.values():
            symbol = p.symbol
            seen = self._held.get(symbol)
            if seen is None or seen[0] is not p:
                seen = self._held[symbol] = self._position(p)
            _, row, notional, low, high = seen
            held.append(row)
            exposure += notional
            if low is not None or high is not None:
                liquidations[row[0]] = (low, high)
            due = broker.next_funding_ms(symbol)
            if due is not None:
                last = self._funding.get(symbol)
                if last is None or last[0] != due:
                    last = self._funding[symbol] = (due, grid.first_group_at(due, row[0]))
                if last[1] < n:
                    funding = last[1] if funding < 0 else min(funding, last[1])
        bands = []
        levels = self._levels
        for symbol, j in self._symbols:
            falls_to, rises_to = broker.reach(symbol)
            known = levels.get(symbol)
            if known is None or known[0] is not falls_to or known[1] is not rises_to:
                known = levels[symbol] = (
                    falls_to,
                    rises_to,
                    None if falls_to is None else float(falls_to) * (1 + EPS),
                    None if rises_to is None else float(rises_to) * (1 - EPS),
                )
            lo, hi = known[2], known[3]
            if j in liquidations:  # the nearer of the order's level and the liquidation price, either way
                liq_lo, liq_hi = liquidations[j]
                if liq_lo is not None:
                    lo = liq_lo if lo is None else max(lo, liq_lo)
                if liq_hi is not None:
                    hi = liq_hi if hi is None else min(hi, liq_hi)
            if lo is not None or hi is not None:
                bands.append((j, -math.inf if lo is None else lo, math.inf if hi is None else hi))
        figures = self._figures
        if figures is None or figures[0] is not daily_realized or figures[1] is not limit:
            figures = self._figures = (daily_realized, limit, float(daily_realized), float(limit))
        realized, lim = figures[2], figures[3]
        return Exposure(
            tuple(bands),
            funding,
            tuple(held),
            active,
            daily_day,
            realized,
            lim,
            EPS * (lim + exposure + abs(realized)) + 1e-6,
        )

    def _position(self, p: Position) -> tuple[Position, tuple[int, float, float], float, float | None, float | None]:
        qty, entry = float(p.qty), float(p.entry_price)
        low = high = None
        if p.liquidation_price is not None:
            price = float(p.liquidation_price)
            if qty > 0:
                low = price * (1 + EPS)
            else:
                high = price * (1 - EPS)
        return p, (self._index[p.symbol], qty, entry), abs(qty) * entry, low, high


def first_work(grid: MarketGrid, x: Exposure, g0: int, g1: int) -> int | None:
    """The first group in [g0, g1) whose market events could change anything, or None."""
    if x.idle:
        return None
    start, step = g0, SCAN_FIRST
    while start < g1:
        end = min(g1, start + step)
        hit = (_scan_short if end - start <= SCAN_SHORT else _scan)(grid, x, start, end)
        if hit is not None:
            return hit
        start, step = end, min(step * 4, SCAN_MAX)
    return None


def _scan(grid: MarketGrid, x: Exposure, g0: int, g1: int) -> int | None:
    hit = g1
    if x.funding_group >= 0:
        hit = min(hit, max(g0, x.funding_group))  # a due date already behind us means: work now
    lows, highs = grid.lows, grid.highs
    for j, lo, hi in x.bands:
        if hit <= g0:
            break  # nothing left to look at
        if hi == math.inf:
            crossed = lows[j, g0:hit] <= lo
        elif lo == -math.inf:
            crossed = highs[j, g0:hit] >= hi
        else:
            crossed = (lows[j, g0:hit] <= lo) | (highs[j, g0:hit] >= hi)
        first = int(crossed.argmax())  # the first True, or 0 when there is none
        if crossed[first]:
            hit = g0 + first
    if x.active and hit > g0:
        hit = _daily(grid, x, g0, hit)
    return hit if hit < g1 else None


def _daily(grid: MarketGrid, x: Exposure, g0: int, g1: int) -> int:
    """The first group in [g0, g1) where the daily loss could reach the limit (g1 when none can)."""
    r = x.daily_realized
    worst = min(r, 0.0)
    for j, qty, entry in x.positions:
        if qty > 0:
            worst += qty * (_lowest(grid.lows[j, g0:g1]) - entry)
        else:
            worst += qty * (_highest(grid.highs[j, g0:g1]) - entry)
    if -worst < x.limit - x.margin:
        return g1  # not even every position at its worst bar at once, with today's losses, gets there
    sl = slice(g0, g1)
    unrealized = np.zeros(g1 - g0)
    for j, qty, entry in x.positions:
        unrealized += qty * ((grid.lows[j, sl] if qty > 0 else grid.highs[j, sl]) - entry)
    # A group's events fall on the day of its open, its closed bar on the day of its close: take
    # whichever counts today's realized PnL the worse way.
    realized = np.minimum(
        np.where(grid.open_day[sl] == x.daily_day, r, 0.0),
        np.where(grid.day[sl] == x.daily_day, r, 0.0),
    )
    bad = -(realized + unrealized) >= x.limit - x.margin
    return g0 + int(bad.argmax()) if bad.any() else g1


def _scan_short(grid: MarketGrid, x: Exposure, g0: int, g1: int) -> int | None:
    """`_scan` in plain Python, for a few groups: the same comparisons in the same float arithmetic."""
    hit = g1
    if x.funding_group >= 0:
        hit = min(hit, max(g0, x.funding_group))
    for j, lo, hi in x.bands:
        if hit <= g0:
            break
        k = g0
        if hi == math.inf:
            for low in grid.low_lists[j][g0:hit]:
                if low <= lo:
                    hit = k
                    break
                k += 1
        elif lo == -math.inf:
            for high in grid.high_lists[j][g0:hit]:
                if high >= hi:
                    hit = k
                    break
                k += 1
        else:
            for low, high in zip(grid.low_lists[j][g0:hit], grid.high_lists[j][g0:hit], strict=True):
                if low <= lo or high >= hi:
                    hit = k
                    break
                k += 1
    if x.active and hit > g0:
        hit = _daily_short(grid, x, g0, hit)
    return hit if hit < g1 else None


def _daily_short(grid: MarketGrid, x: Exposure, g0: int, g1: int) -> int:
    """`_daily` in plain Python: the same bound over the whole span first, then group by group."""
    r, today = x.daily_realized, x.daily_day
    bound = x.limit - x.margin
    held = [(qty, entry, (grid.low_lists if qty > 0 else grid.high_lists)[j][g0:g1]) for j, qty, entry in x.positions]
    worst = min(r, 0.0)
    for qty, entry, prices in held:
        if math.isnan(sum(prices)):  # numpy's min and max give NaN then, and the bound shows nothing
            worst = math.nan
            break
        worst += qty * ((min(prices) if qty > 0 else max(prices)) - entry)
    if -worst < bound:
        return g1
    first_day = grid.open_day_list[g0]
    if first_day == grid.day_list[g1 - 1]:  # every group's events and close on one day
        booked = r if first_day == today else 0.0
        if len(held) == 1:  # the usual case, in one pass
            ((qty, entry, prices),) = held
            k = g0
            for price in prices:
                if -(booked + (0.0 + qty * (price - entry))) >= bound:
                    return k
                k += 1
            return g1
        realized = [booked] * (g1 - g0)
    else:
        days = zip(grid.open_day_list[g0:g1], grid.day_list[g0:g1], strict=True)
        realized = [min(r if opens == today else 0.0, r if closes == today else 0.0) for opens, closes in days]
    for k in range(g1 - g0):
        unrealized = 0.0
        for qty, entry, prices in held:
            unrealized += qty * (prices[k] - entry)
        if -(realized[k] + unrealized) >= bound:
            return g0 + k
    return g1


_lowest = np.minimum.reduce
_highest = np.maximum.reduce
"""ndarray.min and max without their Python-level wrappers (the proofs take a few thousand a second)."""


Segment = tuple[int, float, tuple[tuple[int, float, float], ...]]
"""(first group, account total, positions as (symbol, signed qty, entry price)): what held from that group on."""


def equity_curve(grid: MarketGrid, segments: Sequence[Segment], total: float) -> np.ndarray:
    """Equity at each group's closes: each segment's account total plus its positions marked at the closes.

    Segments come in the order of their first groups (as the engine takes them); each holds until the next one
    starts, and `total` holds before the first. Computed for all groups at once, each group's figure with the
    same arithmetic in the same order as segment by segment (the total, plus each position's in turn).
    """
    n = len(grid)
    equity = np.full(n, total)
    if not segments:
        return equity
    starts = np.array([seg[0] for seg in segments], dtype=np.int64)
    first = int(starts[0])
    which = np.repeat(np.arange(len(segments)), np.diff(np.append(starts, n)))  # each group's segment
    value = np.array([seg[1] for seg in segments], dtype=np.float64)[which]
    groups = np.arange(first, n)
    for k in range(max(len(seg[2]) for seg in segments)):  # each segment's k-th position, where it has one
        held = [seg[2][k] if len(seg[2]) > k else (0, 0.0, 0.0) for seg in segments]
        has = np.array([len(seg[2]) > k for seg in segments])[which]
        at = which[has]
        j = np.array([h[0] for h in held], dtype=np.int64)[at]
        qty = np.array([h[1] for h in held], dtype=np.float64)[at]
        entry = np.array([h[2] for h in held], dtype=np.float64)[at]
        value[has] += qty * (grid.closes[groups[has], j] - entry)
    equity[first:] = value
    return equity
