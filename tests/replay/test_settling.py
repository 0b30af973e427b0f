"""`SymbolHistory.settling_bar` names the bar at which the live tracker settles a proposal."""

from __future__ import annotations

import math
import random

import numpy as np

from guard.domain import Side
from guard.model.tracker import LiveTracker
from guard.replay.history import SymbolHistory

TF_MS = 60_000


def test_settling_bar_is_where_the_tracker_settles() -> None:
    rng = np.random.default_rng(3)
    bars = 400
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, bars)))
    opens = np.concatenate(([closes[0]], closes[:-1]))
    highs = np.maximum(opens, closes) * (1 + rng.uniform(0, 0.002, bars))
    lows = np.minimum(opens, closes) * (1 - rng.uniform(0, 0.002, bars))
    gaps = rng.choice([1, 1, 1, 2, 5], bars)  # irregular: some bars missing
    times = 1_700_000_000_000 + TF_MS * np.cumsum(gaps).astype(np.int64)
    h = SymbolHistory("A", "1m", times, opens, highs, lows, closes, np.ones(bars))
    pick = random.Random(3)
    for _ in range(300):
        i = pick.randrange(bars)
        timestamp = int(times[i]) + TF_MS * pick.choice([1, 1, 3])
        barrier, horizon = pick.uniform(0.001, 0.01), pick.choice([600.0, 1800.0, 3600.0])
        price = float(closes[i])
        tracker = LiveTracker("m")
        entry = math.log(price)
        tracker.record_levels("p", "A", Side.BUY, 0.6, timestamp, (entry + barrier, entry - barrier), horizon)
        want = next((k for k in range(i + 1, bars) if tracker.on_bar(h.bar(k))), None)
        assert h.settling_bar(i, timestamp, price, barrier, horizon) == want
