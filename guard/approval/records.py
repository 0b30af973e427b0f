"""What the folded state keeps per proposal and per order, and today's PnL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from guard.domain import ZERO, DecisionKind, OrderPurpose, OrderRequest, OrderStatus, Proposal, ProposalStatus

DAY_MS = 86_400_000
_ENDED = frozenset(s for s in OrderStatus if s.is_final)
_WORKING = frozenset({OrderStatus.SENDING, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED})
"""An order in one of these states stands in front of a position (one in doubt may or may not)."""


@dataclass(slots=True)
class ProposalRecord:
    """A proposal and where it stands."""

    proposal: Proposal
    status: ProposalStatus = ProposalStatus.PENDING
    decided_by: str = ""
    decision: DecisionKind | None = None
    reason: str = ""
    entry_order: str | None = None
    approvals: tuple[str, ...] = ()
    """Credentials that approved the current version (four-eyes counts credentials, not names)."""


COMMAND_WINDOW_MS = 24 * 3_600_000
"""How long a command id is remembered: a repeat within 24 hours gets its first answer and does nothing; after
that the id may be used again (clients choose fresh ids; the window bounds what the daemon keeps)."""


@dataclass(slots=True)
class CommandRecord:
    """A client's command id: when it was received, and its answer once it has one."""

    at: int
    command: str
    answered: bool = False
    ok: bool = False
    reason: str = ""
    data: str = "{}"


@dataclass(slots=True)
class OrderRecord:
    """An order guard sent (its intent journaled) and what became of it."""

    request: OrderRequest
    status: OrderStatus = OrderStatus.SENDING
    submitted_at: int = 0
    """When its intent was journaled (ms)."""
    filled: Decimal = ZERO
    venue_id: str = ""
    reason: str = ""

    @property
    def remaining(self) -> Decimal:
        """What is left to fill."""
        return self.request.qty - self.filled


class LiveOrders:
    """Orders not known to have ended, in submission order, and the reduce-only ones among them by symbol and
    purpose: reading the live book, or what a position's stops rest for (every entry fill asks), stays linear in
    what is live, not in every order ever sent (a long replay sends tens of thousands).

    Kept by the fold (`guard.approval.state`): an order joins when submitted, leaves when it ends, and comes
    back when a venue's late report brings it back from an end."""

    __slots__ = ("_live", "_reduce_only")

    def __init__(self) -> None:
        self._live: dict[str, OrderRecord] = {}
        self._reduce_only: dict[tuple[str, OrderPurpose], dict[str, OrderRecord]] = {}

    def submitted(self, order: OrderRecord) -> None:
        request = order.request
        self._live[request.client_order_id] = order
        if request.reduce_only:
            self._reduce_only.setdefault((request.symbol, request.purpose), {})[request.client_order_id] = order

    def changed(self, order: OrderRecord, orders: Mapping[str, OrderRecord]) -> None:
        """`order`'s status changed: out if it ended; if it had ended and is live again (a venue's late report),
        back in (among the live, in its place)."""
        request = order.request
        cid = request.client_order_id
        if order.status in _ENDED:
            self._live.pop(cid, None)
            if request.reduce_only:
                self._reduce_only.get((request.symbol, request.purpose), {}).pop(cid, None)
            return
        if request.reduce_only:  # in its place if it never left
            self._reduce_only.setdefault((request.symbol, request.purpose), {})[cid] = order
        if cid not in self._live:
            self._live = {cid: o for cid, o in orders.items() if o.status not in _ENDED}

    def orders(self) -> list[OrderRecord]:
        """The orders that have not ended (sending, open, partly filled, in doubt), in submission order."""
        return list(self._live.values())  # every status change is told to `changed`, which takes the ended out

    def resting(self, symbol: str, purpose: OrderPurpose) -> Decimal:
        """What the working (sending, open, partly filled) reduce-only `purpose` orders on `symbol` have left."""
        total = ZERO
        for order in self._reduce_only.get((symbol, purpose), {}).values():
            if order.status in _WORKING:  # not one in doubt
                total += order.request.qty - order.filled
        return total


@dataclass(slots=True)
class DailyPnl:
    """What was booked today (UTC): the daily loss limit reads it."""

    day: int = -1
    realized: Decimal = ZERO
    """Realized PnL, fees, funding and liquidation losses booked today (UTC)."""

    def add(self, at: int, amount: Decimal) -> None:
        """Book `amount` at `at` (ms), starting a new day when the UTC day changed."""
        day = at // DAY_MS
        if day != self.day:
            self.day, self.realized = day, ZERO
        self.realized += amount

    def today(self, now_ms: int) -> Decimal:
        """What was booked on the UTC day of `now_ms` (zero on a day with nothing booked)."""
        return self.realized if now_ms // DAY_MS == self.day else ZERO
