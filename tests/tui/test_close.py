"""Closing part of a position: what was typed becomes the quantity sent, or a clear error."""

from __future__ import annotations

from decimal import Decimal

import pytest

from guard.domain import MarketKind, Position
from guard.tui.screens.close import close_amount, describe


def position(qty: str) -> Position:
    return Position(
        "ETH/USDT:USDT", MarketKind.LINEAR, Decimal(qty), Decimal("4000"), Decimal(2), Decimal("1600"), None
    )


@pytest.mark.parametrize(
    ("typed", "qty"),
    [
        ("", None),
        ("all", None),
        (" ALL ", None),
        ("100%", None),
        ("0.8", None),
        ("50%", "0.4"),
        ("12.5 %", "0.1"),
        ("0.3", "0.3"),
        ("1,0", None),
    ],
)
def test_close_amount_typed_becomes_the_quantity_sent(typed: str, qty: str | None) -> None:
    """All, a quantity and a percentage of the size held (long or short) become the quantity to send (None: all)."""
    for held in ("0.8", "-0.8"):
        sent, error = close_amount(typed, position(held))
        if typed == "1,0":  # "10" once the thousands separator goes: more than the position holds
            assert sent is None and "more than the position holds (0.8)" in error
            continue
        assert (sent, error) == (None if qty is None else Decimal(qty), "")


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("0%", "more than 0%"),
        ("150%", "at most 100%"),
        ("-5%", "more than 0%"),
        ("x%", "percentage"),
        ("abc", "not an amount"),
        ("-1", "not an amount"),
        ("0", "not an amount"),
        ("nan", "not an amount"),
        ("0.81", "more than the position holds"),
    ],
)
def test_close_amount_bad_input_says_what_is_allowed(typed: str, words: str) -> None:
    """An absurd amount is refused with words that say what was wrong; nothing is sent."""
    sent, error = close_amount(typed, position("0.8"))
    assert sent is None and words in error


def test_close_describe_names_side_quantity_and_share() -> None:
    """The preview says the side that reduces the position, the quantity, of how much, and the share."""
    assert describe(position("-0.8"), Decimal("0.2")) == "BUY 0.2 of 0.8 ETH/USDT:USDT (25%)"
    assert describe(position("0.8"), None) == "SELL all 0.8 ETH/USDT:USDT"
