"""The desk's view of the market: marks by source, and today's PnL read at them."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from guard.approval.market import Market
from guard.approval.state import GuardState
from guard.clock import TestClock
from guard.domain import Bar, MarkPrice, Ticker
from guard.markets import default_spec
from tests.builders import BTC, close, make_desk, request, set_mark


def market() -> Market:
    return Market(GuardState({BTC: default_spec(BTC)}), TestClock())


def test_a_repeated_price_keeps_its_mark_and_a_price_written_otherwise_makes_a_new_one() -> None:
    """The same source repeating a price leaves the mark as it was; a number that reads otherwise (5 and 5.0, 0.0
    and -0.0) makes the mark it reads as, exactly as a first price would."""
    m = market()
    m.update(MarkPrice(BTC, 0, 100_000.5))
    first = m.marks[BTC]
    m.update(MarkPrice(BTC, 1, 100_000.5))
    assert m.marks[BTC] is first
    for price, text in ((5, "5"), (5.0, "5.0"), (5.0, "5.0"), (0.0, "0.0"), (-0.0, "-0.0"), (7.25, "7.25")):
        m.update(MarkPrice(BTC, 2, price))
        assert str(m.marks[BTC]) == text
    m.update(Ticker(BTC, 3, 8.0))  # a worse source never takes the mark
    m.update(Bar(BTC, "1m", 3, 8.0, 8.0, 8.0, 8.0, 1.0))
    assert m.marks[BTC] == D("7.25")


async def test_today_s_pnl_follows_every_fill_mark_and_day(tmp_path: Path) -> None:
    """Today's PnL, worked out once per state version, set of marks and day, is what working it out afresh
    gives after each of them changes."""
    desk = await make_desk(tmp_path / "j.db")
    try:

        def afresh() -> D:
            return desk.state.daily.today(desk.clock.now_ms()) + desk.unrealized_pnl()

        assert desk.daily_pnl() == afresh() == 0
        result = await desk.propose(request(qty="0.05"))
        assert result.proposal is not None
        await desk.approve(result.proposal.id, "alice")  # a fill: a position, and its fee booked today
        assert desk.daily_pnl() == afresh() != 0
        await set_mark(desk, BTC, 97_000)
        assert desk.daily_pnl() == afresh() < -100
        desk.clock.advance(86_400)  # a new UTC day: nothing booked yet
        assert desk.daily_pnl() == afresh() == desk.unrealized_pnl()
    finally:
        close(desk)
