"""The embedded venue's books on disk: written as they change, read back, and set aside when they do not fit."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from guard.config import SimSection
from guard.sim.books import SimPosition
from guard.sim.server import SimExchange

SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT")
SECTION = SimSection(history_bars=30)


async def test_venue_store_books_come_back_in_a_new_simulator(tmp_path: Path) -> None:
    """Books saved by one simulator (an account with a position) are the next one's, order ids going on."""
    path = tmp_path / "sim-venue.json"
    async with SimExchange(SECTION, SYMBOLS, venue_file=path) as sim:
        account = sim.private.account()
        account.positions[1] = SimPosition(qty=Decimal("-0.5"), entry=Decimal("3000"), margin=Decimal("750"))
        sim._store.save(sim.private.books)  # type: ignore[union-attr]
        ids = sim.private.books.next_ids()
    async with SimExchange(SECTION, SYMBOLS, venue_file=path) as again:
        position = again.private.account().positions[1]
        assert (position.qty, position.entry, position.margin) == (Decimal("-0.5"), Decimal("3000"), Decimal("750"))
        assert again.private.books.next_ids() == ids


async def test_venue_store_a_damaged_or_foreign_file_is_set_aside_and_the_venue_starts_empty(tmp_path: Path) -> None:
    """A file that is not the books, or books of other markets (positions name markets by index), is renamed
    `.unreadable` and the venue starts empty: the daemon's reconciliation then says what the journal holds."""
    path = tmp_path / "sim-venue.json"
    path.write_text("{not json")
    async with SimExchange(SECTION, SYMBOLS, venue_file=path) as sim:
        assert not sim.private.books.accounts and (tmp_path / "sim-venue.json.unreadable").exists()
        sim.private.account().positions[0] = SimPosition(qty=Decimal("0.1"), entry=Decimal("50000"))
        sim._store.save(sim.private.books)  # type: ignore[union-attr]
    async with SimExchange(SECTION, SYMBOLS[1:], venue_file=path) as other:
        assert not other.private.books.accounts and not path.exists()
