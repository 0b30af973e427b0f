"""`ExposureReader` reads what `Exposure.of` reads, whatever changed between two reads."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any, cast

import numpy as np

from guard.approval.state import DAY_MS
from guard.broker.paper import PaperBroker
from guard.domain import MarketKind, Position
from guard.replay.history import SymbolHistory
from guard.replay.lean import Exposure, ExposureReader, MarketGrid

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
        want = Exposure.of(broker, positions, index, grid, limit=limit, **fields)
        assert reader.read(positions, limit=limit, **fields) == want
