"""What the folded state keeps per proposal and per order, and today's PnL."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from guard.domain import ZERO, DecisionKind, OrderRequest, OrderStatus, Proposal, ProposalStatus

DAY_MS = 86_400_000


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
