"""Sizing an idea from outside the model: a notional or a fraction of equity becomes contracts at the mark, rounded
down to the step; a source's is capped by the risk limits, each cap said in words."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from guard.config import RiskSection
from guard.errors import InvalidCommand
from guard.markets import default_spec
from guard.proposals.intake import Size, size_order

BTC = default_spec("BTC/USDT:USDT")
LIMITS = RiskSection(max_order_notional=D(25_000), max_leverage=3.0)


def test_a_notional_becomes_a_quantity_rounded_down_to_the_step() -> None:
    """500 USDT at 70,000 is 0.007 BTC (never more than was asked for), with the conversion named."""
    sized = size_order(
        Size(notional=D(500)), D(2), spec=BTC, price=D(70_000), equity=D(10_000), limits=LIMITS, cap=True
    )
    assert sized.qty == BTC.round_qty(D(500) / D(70_000)) and sized.qty * 70_000 <= 500
    assert sized.leverage == 2 and "notional 500" in sized.notes[0]


def test_a_fraction_of_equity_is_margin_times_leverage() -> None:
    """10 % of 10,000 equity at 2x is a 2,000 notional."""
    sized = size_order(
        Size(equity_fraction=D("0.1")), D(2), spec=BTC, price=D(100_000), equity=D(10_000), limits=LIMITS, cap=True
    )
    assert sized.qty == D("0.02")


def test_a_sources_size_and_leverage_are_capped_by_the_limits() -> None:
    """A source asking 10x and 1 BTC at 100,000 gets 3x (risk.max_leverage) and 0.25 BTC (max_order_notional)."""
    sized = size_order(Size(qty=D(1)), D(10), spec=BTC, price=D(100_000), equity=D(10_000), limits=LIMITS, cap=True)
    assert (sized.qty, sized.leverage) == (D("0.25"), D(3))
    assert any("risk.max_leverage" in n for n in sized.notes)
    assert any("risk.max_order_notional" in n for n in sized.notes)


def test_a_persons_quantity_is_kept_as_typed() -> None:
    """An operator's own proposal is not capped: the risk checks say what blocks it."""
    sized = size_order(Size(qty=D(1)), D(10), spec=BTC, price=D(100_000), equity=D(10_000), limits=LIMITS, cap=False)
    assert (sized.qty, sized.leverage, sized.notes) == (D(1), D(10), ())


@pytest.mark.parametrize(
    ("size", "price", "equity", "says"),
    [
        (Size(notional=D(500)), None, D(10_000), "no market price"),
        (Size(equity_fraction=D("0.1")), D(100_000), D(0), "no equity"),
        (Size(notional=D("0.5")), D(100_000), D(10_000), "below the market minimum"),
    ],
)
def test_a_size_that_cannot_be_made_says_why(size: Size, price: D | None, equity: D, says: str) -> None:
    """No price yet, no equity, or too small to trade: refused with the reason."""
    with pytest.raises(InvalidCommand, match=says):
        size_order(size, D(1), spec=BTC, price=price, equity=equity, limits=LIMITS, cap=True)
