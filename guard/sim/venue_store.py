"""The simulated venue's books on disk: an embedded venue keeps its accounts across a restart of its process.

A real venue outlives guard: a daemon killed with SIGKILL comes back to the same positions and orders at the
exchange, and reconciles its journal against them. The simulator embedded in the daemon lives in the daemon's
process, so without this its positions died with it while the journal kept them (a phantom position). The
books are written to one file (a whole snapshot, replaced atomically) before any answer about them leaves
(`SimExchange`'s middleware), so the venue on disk is never behind what guard was told; a restarted simulator
starts from it. The file survives the process, not the machine: it is not fsynced (a simulator's books are not worth
a disk flush per order).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import msgspec
import structlog

from guard.sim.books import SimAccount, SimBooks

log = structlog.get_logger(__name__)


@dataclass
class _Saved:
    symbols: list[str]
    """The venue's markets, in order: orders and positions name a market by its index."""
    accounts: list[SimAccount]
    created: list[tuple[str, str, list[int]]]
    """(api key, client id, every order id created with it)."""
    next_order: int
    next_trade: int


def _version(books: SimBooks) -> tuple[int, int, int]:
    """What changes whenever the books do: order and trade ids handed out, and open orders (a cancel)."""
    open_orders = sum(o.open for acct in books.accounts.values() for o in acct.orders.values())
    return (*books.next_ids(), open_orders)


class VenueStore:
    """Writes a venue's books to `path` whenever they changed, and reads them back at start.

    Args:
        path: the file (in the daemon's state directory).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._saved: tuple[int, int, int] | None = None
        self.saves = 0

    def load(self, books: SimBooks) -> bool:
        """Put the books saved at `path` back into `books` (fresh ones). False when there is nothing saved.

        A file that cannot be read is set aside (renamed `.unreadable`) and the venue starts empty: the daemon's
        reconciliation then reports what the journal holds that the venue does not.
        """
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return False
        symbols = list(books.market.symbols)
        try:
            saved = msgspec.json.decode(data, type=_Saved)
            if saved.symbols != symbols:
                raise ValueError(f"saved for {saved.symbols}, the venue now lists {symbols}")
        except (msgspec.DecodeError, ValueError) as e:
            aside = self.path.with_name(self.path.name + ".unreadable")
            os.replace(self.path, aside)
            log.error("sim_venue_unreadable", path=str(self.path), moved_to=str(aside), error=str(e))
            return False
        books.accounts = {a.api_key: a for a in saved.accounts}
        books.created = {(key, cid): ids for key, cid, ids in saved.created}
        books.set_next_ids(saved.next_order, saved.next_trade)
        self._saved = _version(books)
        log.info("sim_venue_restored", path=str(self.path), accounts=len(saved.accounts))
        return True

    def save_if_changed(self, books: SimBooks) -> None:
        """Write the books when an order, a fill or a cancel changed them since the last write."""
        if _version(books) != self._saved:
            self.save(books)

    def save(self, books: SimBooks) -> None:
        """Write the books (a new temporary file, then renamed over the old one)."""
        version = _version(books)
        next_order, next_trade = books.next_ids()
        saved = _Saved(
            symbols=list(books.market.symbols),
            accounts=list(books.accounts.values()),
            created=[(key, cid, ids) for (key, cid), ids in books.created.items()],
            next_order=next_order,
            next_trade=next_trade,
        )
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(msgspec.json.encode(saved))
        os.replace(tmp, self.path)
        self._saved = version
        self.saves += 1
