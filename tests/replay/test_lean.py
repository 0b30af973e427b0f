"""The lean path's short plain-Python scan finds what the numpy scan finds."""

from __future__ import annotations

import math
import random

import numpy as np

from guard.approval.state import DAY_MS
from guard.replay.history import SymbolHistory
from guard.replay.lean import SCAN_SHORT, Exposure, MarketGrid, _scan, _scan_short

TF_MS = 60_000


def _history(symbol: str, rng: np.random.Generator, start_ms: int, bars: int) -> SymbolHistory:
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, bars)))
    opens = np.concatenate(([closes[0]], closes[:-1]))
    highs = np.maximum(opens, closes) * (1 + rng.uniform(0, 0.002, bars))
    lows = np.minimum(opens, closes) * (1 - rng.uniform(0, 0.002, bars))
    times = start_ms + TF_MS * np.arange(bars, dtype=np.int64)
    return SymbolHistory(symbol, "1m", times, opens, highs, lows, closes, np.ones(bars))


def _grid(rng: np.random.Generator) -> MarketGrid:
    midnight = 20_000 * DAY_MS
    a = _history("A", rng, midnight - 200 * TF_MS, 400)  # across a midnight
    b = _history("B", rng, midnight - 100 * TF_MS, 150)  # starts later (NaN before) and ends earlier
    return MarketGrid.build([a, b], TF_MS, intrabar=True)


def _exposure(rng: random.Random, grid: MarketGrid) -> Exposure:
    bands, positions = [], []
    for j in range(2):
        price = float(np.nanmean(grid.closes[:, j]))
        if rng.random() < 0.7:
            lo = price * (1 - rng.uniform(0, 0.02)) if rng.random() < 0.8 else -math.inf
            hi = price * (1 + rng.uniform(0, 0.02)) if rng.random() < 0.8 or lo == -math.inf else math.inf
            bands.append((j, lo, hi))
        if rng.random() < 0.6:
            positions.append((j, rng.choice([-1, 1]) * rng.uniform(0.1, 2.0), price * rng.uniform(0.99, 1.01)))
    return Exposure(
        bands=tuple(bands),
        funding_group=rng.choice([-1, -1, rng.randrange(len(grid))]),
        positions=tuple(positions),
        active=rng.random() < 0.8,
        daily_day=rng.choice([19_999, 20_000]),
        daily_realized=rng.uniform(-3.0, 1.0),
        limit=rng.uniform(0.5, 4.0),
        margin=1e-6,
    )


def _loss_at(grid: MarketGrid, x: Exposure, g: int) -> float:
    """Today's loss at group g's worst marks, as the proof counts it."""
    booked = min(x.daily_realized if int(day) == x.daily_day else 0.0 for day in (grid.open_day[g], grid.day[g]))
    unrealized = 0.0
    for j, qty, entry in x.positions:
        unrealized += qty * (float((grid.lows if qty > 0 else grid.highs)[j, g]) - entry)
    return -(booked + unrealized)


def test_the_short_scan_finds_the_first_group_the_numpy_scan_finds() -> None:
    rng = random.Random(7)
    grid = _grid(np.random.default_rng(7))
    hits = 0
    for _ in range(4000):
        x = _exposure(rng, grid)
        g0 = rng.randrange(len(grid) - 1)
        g1 = min(len(grid), g0 + rng.randint(1, SCAN_SHORT))
        if rng.random() < 0.5:  # the loss limit within a hair of one group's loss: the comparisons' edges
            loss = _loss_at(grid, x, rng.randrange(g0, g1))
            if math.isfinite(loss):
                x = x._replace(bands=(), limit=loss + x.margin + rng.choice([-1e-9, 0.0, 1e-9]), active=True)
        elif x.bands and rng.random() < 0.5:  # a band's edge at one group's very low or high
            j, lo, hi = x.bands[0]
            g = rng.randrange(g0, g1)
            edge = (float(grid.lows[j, g]), hi) if rng.random() < 0.5 else (lo, float(grid.highs[j, g]))
            x = x._replace(bands=((j, *edge), *x.bands[1:]))
        found = _scan_short(grid, x, g0, g1)
        assert found == _scan(grid, x, g0, g1), (x, g0, g1)
        hits += found is not None
    assert 400 < hits < 3600  # both answers are well represented
