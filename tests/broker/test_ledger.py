"""The ledger's fill booking: worked out once when the venue's ledger and the journal's fold book the same fill."""

from __future__ import annotations

from decimal import Decimal as D

from msgspec.structs import replace

from guard.broker.ledger import Account, Bookings
from guard.domain import Fill, Liquidity, Side
from guard.markets import default_spec

BTC = "BTC/USDT:USDT"
SPECS = {BTC: default_spec(BTC)}


def account(bookings: Bookings | None = None) -> Account:
    a = Account(SPECS, bookings=bookings)
    a.deposit(D(10_000))
    return a


def fill(n: int, side: Side, qty: str, price: str) -> Fill:
    return Fill(f"c{n}", f"c{n}-1", BTC, side, D(qty), D(price), D("0.5"), Liquidity.TAKER, n)


def test_the_second_ledger_to_book_a_fill_reads_the_first_ones_booking() -> None:
    shared = Bookings()
    venue, fold = account(shared), account(shared)
    leverage = D(10)
    for f in (fill(1, Side.BUY, "0.2", "100000"), fill(2, Side.SELL, "0.05", "101000")):
        assert venue.apply_fill(f, leverage) == fold.apply_fill(f, leverage)
        assert fold.positions[BTC] is venue.positions[BTC]
    assert fold.snapshot() == venue.snapshot()


def test_a_ledger_whose_position_is_another_object_works_its_booking_out() -> None:
    shared = Bookings()
    venue, other = account(shared), account(shared)
    leverage = D(10)
    opening = fill(1, Side.BUY, "0.2", "100000")
    venue.apply_fill(opening, leverage)
    other.apply_fill(opening, leverage)
    other.positions[BTC] = replace(venue.positions[BTC], margin=venue.positions[BTC].margin - D(100))
    closing = fill(2, Side.SELL, "0.1", "99000")
    venue.apply_fill(closing, leverage)
    other.apply_fill(closing, leverage)
    assert other.positions[BTC] is not venue.positions[BTC]
    assert other.positions[BTC].margin == venue.positions[BTC].margin - D(50)
    assert other.positions[BTC].liquidation_price != venue.positions[BTC].liquidation_price


def test_ledgers_with_bookings_of_their_own_each_work_a_fill_out_alike() -> None:
    venue, fold = account(), account()
    leverage = D(10)
    for f in (fill(1, Side.BUY, "0.2", "100000"), fill(2, Side.SELL, "0.05", "101000")):
        assert venue.apply_fill(f, leverage) == fold.apply_fill(f, leverage)
        assert fold.positions[BTC] is not venue.positions[BTC]
        assert fold.positions[BTC] == venue.positions[BTC]
    assert fold.snapshot() == venue.snapshot()
