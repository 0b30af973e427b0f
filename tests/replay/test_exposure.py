"""`ExposureReader` reads what a full read gives, whatever changed between two reads."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, cast

import numpy as np

from guard.approval.state import DAY_MS
from guard.broker.paper import PaperBroker
from guard.domain import MarketKind, Position
from guard.replay.history import SymbolHistory
from guard.replay.lean import EPS, Exposure, ExposureReader, MarketGrid

TF_MS = 60_000
SYMBOLS = ("A", "B", "C")


class _Venue:
    """What the reader asks the broker: each symbol's resting orders' reach and next funding time."""

    def __init__(self) -> None:
        self.levels: dict[str, tuple[Decimal | None, Decimal | None]] = {s: (None, None) for s in SYMBOLS}
        self.funding: dict[str, int | None] = {s: None for s in SYMBOLS}

    def reach(self, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        return self.levels[symbol]

    def next_funding_ms(self, symbol: str) -> int | None:
        return self.funding[symbol]


def _full_read(
    broker: PaperBroker,
    positions: Mapping[str, Position],
    index: Mapping[str, int],
    grid: MarketGrid,
    *,
    active: bool,
    daily_day: int,
    daily_realized: Decimal,
    limit: Decimal,
) -> Exposure:
    """Every figure read and converted anew: what the reader must give, whatever it kept."""
    # Per symbol: the highest price that stops a fall, the lowest that stops a rise (with the margin).
    lows: dict[int, float] = {}
    highs: dict[int, float] = {}
    for symbol, j in index.items():
        falls_to, rises_to = broker.reach(symbol)
        if falls_to is not None:
            lows[j] = float(falls_to) * (1 + EPS)
        if rises_to is not None:
            highs[j] = float(rises_to) * (1 - EPS)
    held = []
    funding = -1
    exposure = 0.0
    n = len(grid)
    for p in positions.values():
        j = index[p.symbol]
        qty, entry = float(p.qty), float(p.entry_price)
        held.append((j, qty, entry))
        exposure += abs(qty) * entry
        if p.liquidation_price is not None:
            price = float(p.liquidation_price)
            if qty > 0:
                lows[j] = max(lows.get(j, -math.inf), price * (1 + EPS))
            else:
                highs[j] = min(highs.get(j, math.inf), price * (1 - EPS))
        due = broker.next_funding_ms(p.symbol)
        if due is not None:
            at = grid.first_group_at(due, j)
            if at < n:
                funding = at if funding < 0 else min(funding, at)
    realized, lim = float(daily_realized), float(limit)
    return Exposure(
        bands=tuple((j, lows.get(j, -math.inf), highs.get(j, math.inf)) for j in sorted(lows.keys() | highs)),
        funding_group=funding,
        positions=tuple(held),
        active=active,
        daily_day=daily_day,
        daily_realized=realized,
        limit=lim,
        margin=EPS * (lim + exposure + abs(realized)) + 1e-6,
    )


def _grid() -> MarketGrid:
    histories = []
    for j, symbol in enumerate(SYMBOLS):
        bars = 300 - 50 * j
        closes = 100.0 + np.arange(bars) / 7
        times = 20_000 * DAY_MS + TF_MS * (np.arange(bars, dtype=np.int64) + 20 * j)
        histories.append(SymbolHistory(symbol, "1m", times, closes, closes + 1, closes - 1, closes, np.ones(bars)))
    return MarketGrid.build(histories, TF_MS, intrabar=True)


def _price(rng: random.Random) -> Decimal | None:
    return None if rng.random() < 0.4 else Decimal(f"{rng.uniform(90, 110):.2f}")


def test_reader_agrees_with_a_full_read_after_every_change() -> None:
    rng = random.Random(7)
    grid = _grid()
    venue = _Venue()
    broker = cast(PaperBroker, venue)
    index = {"B": 1, "A": 0, "C": 2}  # not in symbol order: the bands still are
    reader = ExposureReader(broker, index, grid)
    positions: dict[str, Position] = {}
    realized, limit = Decimal("-1.5"), Decimal("40")
    for _ in range(2_000):
        what = rng.randrange(5)
        symbol = rng.choice(SYMBOLS)
        if what == 0:
            venue.levels[symbol] = (_price(rng), _price(rng))
        elif what == 1:
            if rng.random() < 0.3:
                positions.pop(symbol, None)
            else:
                qty = Decimal(f"{rng.uniform(-2, 2):.3f}") or Decimal("0.001")
                entry = Decimal(f"{rng.uniform(95, 105):.2f}")
                positions[symbol] = Position(symbol, MarketKind.LINEAR, qty, entry, Decimal(3), Decimal(1), _price(rng))
        elif what == 2:
            due = int(grid.last_ts[rng.randrange(len(grid))]) + rng.randrange(-5, 5)
            venue.funding[symbol] = rng.choice([None, due])
        elif what == 3:
            realized = Decimal(f"{rng.uniform(-30, 5):.2f}")
        else:
            limit = Decimal(rng.choice(["40", "25.5"]))
        fields: dict[str, Any] = {"active": rng.random() < 0.8, "daily_day": 20_000, "daily_realized": realized}
        want = _full_read(broker, positions, index, grid, limit=limit, **fields)
        assert reader.read(positions, limit=limit, **fields) == want
