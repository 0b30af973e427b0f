"""The one-line descriptions of journal events that `guard journal tail` and the console's event log show."""

from __future__ import annotations

import pytest

from guard.events import KillCompleted
from guard.journal.describe import describe_event


@pytest.mark.parametrize(
    ("orders", "positions", "text"),
    [
        (2, 1, "kill done in 5 ms: 2 orders cancelled, 1 position flattened, flat verified"),
        (1, 0, "kill done in 5 ms: 1 order cancelled, 0 positions flattened, flat verified"),
    ],
)
def test_a_completed_kill_counts_orders_and_positions_in_words(orders: int, positions: int, text: str) -> None:
    assert describe_event(KillCompleted(0, True, orders, positions, 5.0)) == text


def test_a_kill_that_is_not_flat_says_so_with_the_problems() -> None:
    event = KillCompleted(0, False, 0, 3, 12.0, ("BTC/USDT:USDT still holds 0.1",))
    assert describe_event(event).endswith("3 positions flattened, NOT FLAT: BTC/USDT:USDT still holds 0.1")
