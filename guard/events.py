"""What happened, in the past tense: the events the journal records and the state is folded from.

Every event carries `at`, the clock's time in milliseconds when it happened. The journal adds
the sequence number and the hash chain around it; events themselves know nothing of storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from guard.domain import (
    AcknowledgmentKind,
    Bar,
    DecisionKind,
    Fill,
    OrderRequest,
    OverrideEdits,
    Proposal,
    ProposalRequest,
    TradingState,
)


@dataclass(frozen=True, slots=True)
class SessionStarted:
    at: int
    pid: int
    config_hash: str
    previous_clean: bool
    """False when the previous session ended without a SessionEnded: guard starts HALTED."""
    journal_id: str
    """Short random id of this journal, fixed by its first session; part of every client order id."""


@dataclass(frozen=True, slots=True)
class SessionEnded:
    at: int
    reason: str


@dataclass(frozen=True, slots=True)
class AccountFunded:
    """Paper money put into the account (the starting balance on first start)."""

    at: int
    asset: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class ProposalQueued:
    at: int
    proposal: Proposal


@dataclass(frozen=True, slots=True)
class ProposalRefused:
    """A proposal that never entered the queue, and why."""

    at: int
    request: ProposalRequest
    reason: str


@dataclass(frozen=True, slots=True)
class ProposalRepriced:
    """The price moved past the collar: a new version at today's price, to be approved again."""

    at: int
    proposal: Proposal
    reason: str


@dataclass(frozen=True, slots=True)
class DecisionRecorded:
    """An operator's approve, override or reject, with what they were shown."""

    at: int
    proposal_id: str
    kind: DecisionKind
    operator: str
    reason: str
    shown: Proposal
    """The proposal exactly as it was when the operator decided."""
    edits: OverrideEdits | None = None
    diff: tuple[str, ...] = ()
    """Human-readable changes an override made, e.g. 'leverage 3 -> 2'."""
    result: Proposal | None = None
    """For an override, the edited proposal that will execute (an approval executes `shown`)."""

    @property
    def executes(self) -> Proposal | None:
        """The proposal this decision sends to the broker, or None for a rejection."""
        if self.kind is DecisionKind.REJECT:
            return None
        return self.result or self.shown
    confirmed_risk_increase: bool = False


@dataclass(frozen=True, slots=True)
class ApprovalCounted:
    """One of the approvals a four-eyes proposal needs; it executes once enough are counted."""

    at: int
    proposal_id: str
    version: int
    operator: str
    reason: str


@dataclass(frozen=True, slots=True)
class CommandRefused:
    """An operator command the guard said no to, and why. Changes nothing."""

    at: int
    operator: str
    command: str
    proposal_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class ProposalExpired:
    at: int
    proposal_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ProposalKilled:
    at: int
    proposal_id: str


@dataclass(frozen=True, slots=True)
class ProposalFailed:
    at: int
    proposal_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderSubmitted:
    """The intent to send an order, journaled durably before the broker sees it."""

    at: int
    request: OrderRequest


@dataclass(frozen=True, slots=True)
class OrderAccepted:
    at: int
    client_order_id: str
    venue_order_id: str


@dataclass(frozen=True, slots=True)
class OrderFilled:
    at: int
    fill: Fill
    remaining: Decimal
    """Quantity of the order still open after this fill."""


@dataclass(frozen=True, slots=True)
class OrderCancelled:
    at: int
    client_order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderRejected:
    at: int
    client_order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderUnknown:
    """The venue did not say whether it took the order, and lookups did not find out."""

    at: int
    client_order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class FundingPaid:
    at: int
    symbol: str
    rate: Decimal
    mark: Decimal
    amount: Decimal
    """Signed: positive when the position received funding, negative when it paid."""


@dataclass(frozen=True, slots=True)
class PositionLiquidated:
    at: int
    symbol: str
    qty: Decimal
    """Signed quantity that was liquidated."""
    price: Decimal
    """The mark that crossed the liquidation price."""
    loss: Decimal
    """The isolated margin lost (positive number)."""


@dataclass(frozen=True, slots=True)
class TradingStateChanged:
    at: int
    previous: TradingState
    state: TradingState
    reason: str
    operator: str


@dataclass(frozen=True, slots=True)
class KillRequested:
    at: int
    operator: str
    reason: str


@dataclass(frozen=True, slots=True)
class KillCompleted:
    at: int
    flat: bool
    orders_cancelled: int
    positions_flattened: int
    elapsed_ms: float
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AcknowledgmentRecorded:
    at: int
    kind: AcknowledgmentKind
    operator: str
    text: str
    config_hash: str
    model_hash: str


@dataclass(frozen=True, slots=True)
class ThrottleTripped:
    """Too many orders in a minute: entries stay off until a person re-enables them."""

    at: int
    orders_in_window: int
    limit: int


@dataclass(frozen=True, slots=True)
class ThrottleReenabled:
    at: int
    operator: str
    reason: str


@dataclass(frozen=True, slots=True)
class RiskLimitChanged:
    at: int
    operator: str
    key: str
    old: str
    new: str
    reason: str


@dataclass(frozen=True, slots=True)
class ModelPaused:
    at: int
    operator: str
    reason: str


@dataclass(frozen=True, slots=True)
class ModelResumed:
    at: int
    operator: str
    reason: str


@dataclass(frozen=True, slots=True)
class OperatorPresenceLost:
    """No operator heartbeat for the configured time: the dead-man switch fired."""

    at: int
    silent_seconds: float
    policy: str


@dataclass(frozen=True, slots=True)
class DeadmanApplied:
    """The dead-man policy's orders were sent (after an OperatorPresenceLost that was not "hold")."""

    at: int
    policy: str
    orders: int
    filled: int


@dataclass(frozen=True, slots=True)
class FeedHealthChanged:
    """A symbol's market data became unhealthy (no proposals, approvals blocked) or recovered."""

    at: int
    symbol: str
    healthy: bool
    reason: str


@dataclass(frozen=True, slots=True)
class JournalFailed:
    """The journal could not write (a full disk, an I/O error): trading HALTED. What had to be recorded
    meanwhile was kept in memory and follows this event once the journal wrote again."""

    at: int
    error: str


@dataclass(frozen=True, slots=True)
class JournalRecovered:
    """The journal writes again after failing since `failed_at`; trading stays HALTED until a person re-arms."""

    at: int
    failed_at: int
    events_not_recorded: int
    """What was left out meanwhile (closed bars, feed health, refused commands): the record's only gap."""


@dataclass(frozen=True, slots=True)
class BarRecorded:
    at: int
    bar: Bar


Event = (
    SessionStarted
    | SessionEnded
    | AccountFunded
    | ProposalQueued
    | ProposalRefused
    | ProposalRepriced
    | DecisionRecorded
    | ApprovalCounted
    | CommandRefused
    | ProposalExpired
    | ProposalKilled
    | ProposalFailed
    | OrderSubmitted
    | OrderAccepted
    | OrderFilled
    | OrderCancelled
    | OrderRejected
    | OrderUnknown
    | FundingPaid
    | PositionLiquidated
    | TradingStateChanged
    | KillRequested
    | KillCompleted
    | AcknowledgmentRecorded
    | ThrottleTripped
    | ThrottleReenabled
    | RiskLimitChanged
    | ModelPaused
    | ModelResumed
    | OperatorPresenceLost
    | DeadmanApplied
    | FeedHealthChanged
    | BarRecorded
    | JournalFailed
    | JournalRecovered
)

EVENT_TYPES: dict[str, type] = {cls.__name__: cls for cls in Event.__args__}  # type: ignore[attr-defined]
"""Event class by name, for decoding the journal."""
