"""What happened, in the past tense: the events the journal records and the state is folded from.

Every event carries `at`, the clock's time in milliseconds when it happened. The journal adds
the sequence number and the hash chain around it; events themselves know nothing of storage.

`Event` is a tagged union: encoded alone, an event carries its class name under "type", so any
stream of events (an export, a future wire) says what each one is. The journal keeps the name in
its own column as well, and decodes rows written before the tag existed (no "type" inside).
"""

from __future__ import annotations

import typing
from decimal import Decimal
from typing import TypeAlias

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
    Value,
)


class EventBase(Value, frozen=True, tag_field="type", tag=True):
    """Base of every event: a frozen value tagged with its class name."""


class SessionStarted(EventBase, frozen=True):
    at: int
    pid: int
    config_hash: str
    previous_clean: bool
    """False when the previous session ended without a SessionEnded: guard starts HALTED."""
    journal_id: str
    """Short random id of this journal, fixed by its first session; part of every client order id."""


class SessionEnded(EventBase, frozen=True):
    at: int
    reason: str


class AccountFunded(EventBase, frozen=True):
    """Paper money put into the account (the starting balance on first start)."""

    at: int
    asset: str
    amount: Decimal


class ProposalQueued(EventBase, frozen=True):
    at: int
    proposal: Proposal


class ProposalRefused(EventBase, frozen=True):
    """A proposal that never entered the queue, and why."""

    at: int
    request: ProposalRequest
    reason: str


class ProposalRepriced(EventBase, frozen=True):
    """A new version at today's price, to be approved again: the price moved past the collar, the same idea
    came again with something changed, or the proposal it duplicated ended (`reason` says which)."""

    at: int
    proposal: Proposal
    reason: str


class DecisionRecorded(EventBase, frozen=True):
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
    confirmed_risk_increase: bool = False
    credential: str = ""
    """The credential the decision came with ("shared" for the one-person token; "" in journals written before
    operators had credentials): four-eyes counts these, not names."""

    @property
    def executes(self) -> Proposal | None:
        """The proposal this decision sends to the broker, or None for a rejection."""
        if self.kind is DecisionKind.REJECT:
            return None
        return self.result or self.shown


class ApprovalCounted(EventBase, frozen=True):
    """One of the approvals a four-eyes proposal needs; it executes once enough are counted."""

    at: int
    proposal_id: str
    version: int
    operator: str
    reason: str
    credential: str = ""
    """Which credential approved: a second approval must come with another one ("" before credentials existed:
    the operator's name stands for it)."""

    @property
    def approver(self) -> str:
        return self.credential or self.operator


class CommandReceived(EventBase, frozen=True):
    """A client's command, recorded before it is carried out: its id is executed at most once (invariant 13)."""

    at: int
    credential: str
    command_id: str
    command: str
    """The command's type (Approve, Kill, ...)."""


class CommandAnswered(EventBase, frozen=True):
    """The answer a command got: a repeat of its id gets this answer again and does nothing."""

    at: int
    credential: str
    command_id: str
    ok: bool
    reason: str
    data: str = "{}"
    """The reply's data, as JSON."""


class CommandRefused(EventBase, frozen=True):
    """An operator command the guard said no to, and why. Changes nothing."""

    at: int
    operator: str
    command: str
    proposal_id: str | None
    reason: str


class ProposalExpired(EventBase, frozen=True):
    at: int
    proposal_id: str
    reason: str


class ProposalKilled(EventBase, frozen=True):
    at: int
    proposal_id: str


class ProposalFailed(EventBase, frozen=True):
    at: int
    proposal_id: str
    reason: str


class OrderSubmitted(EventBase, frozen=True):
    """The intent to send an order, journaled durably before the broker sees it."""

    at: int
    request: OrderRequest


class OrderAccepted(EventBase, frozen=True):
    at: int
    client_order_id: str
    venue_order_id: str


class OrderFilled(EventBase, frozen=True):
    at: int
    fill: Fill
    remaining: Decimal
    """Quantity of the order still open after this fill."""


class OrderCancelled(EventBase, frozen=True):
    at: int
    client_order_id: str
    reason: str


class OrderRejected(EventBase, frozen=True):
    at: int
    client_order_id: str
    reason: str


class OrderUnknown(EventBase, frozen=True):
    """The venue did not say whether it took the order, and lookups did not find out."""

    at: int
    client_order_id: str
    reason: str


class OrderCancelRequested(EventBase, frozen=True):
    """An operator asked for a resting order to be cancelled: who, and why. Journaled before the broker is asked;
    the broker's answer (OrderCancelled, or a fill that came first) follows."""

    at: int
    client_order_id: str
    operator: str
    reason: str
    credential: str = ""


class OrderAmendRequested(EventBase, frozen=True):
    """An operator changed a resting order's price or quantity: who, what and why. Journaled before the broker is
    asked; the order is cancelled and `replacement` sent in its place (its own OrderSubmitted follows)."""

    at: int
    client_order_id: str
    replacement: str
    """The client order id of the order sent in its place."""
    operator: str
    reason: str
    old_price: Decimal | None
    new_price: Decimal | None
    old_qty: Decimal
    new_qty: Decimal
    credential: str = ""


class FundingPaid(EventBase, frozen=True):
    at: int
    symbol: str
    rate: Decimal
    mark: Decimal
    amount: Decimal
    """Signed: positive when the position received funding, negative when it paid."""


class PositionLiquidated(EventBase, frozen=True):
    at: int
    symbol: str
    qty: Decimal
    """Signed quantity that was liquidated."""
    price: Decimal
    """The mark that crossed the liquidation price."""
    loss: Decimal
    """The isolated margin lost (positive number)."""


class TradingStateChanged(EventBase, frozen=True):
    at: int
    previous: TradingState
    state: TradingState
    reason: str
    operator: str


class KillRequested(EventBase, frozen=True):
    at: int
    operator: str
    reason: str


class KillCompleted(EventBase, frozen=True):
    at: int
    flat: bool
    orders_cancelled: int
    positions_flattened: int
    elapsed_ms: float
    problems: tuple[str, ...] = ()


class AcknowledgmentRecorded(EventBase, frozen=True):
    at: int
    kind: AcknowledgmentKind
    operator: str
    text: str
    config_hash: str
    model_hash: str


class ThrottleTripped(EventBase, frozen=True):
    """Too many orders in a minute: entries stay off until a person re-enables them."""

    at: int
    orders_in_window: int
    limit: int


class ThrottleReenabled(EventBase, frozen=True):
    at: int
    operator: str
    reason: str


class RiskLimitChanged(EventBase, frozen=True):
    at: int
    operator: str
    key: str
    old: str
    new: str
    reason: str


class ModelPaused(EventBase, frozen=True):
    at: int
    operator: str
    reason: str


class ModelResumed(EventBase, frozen=True):
    at: int
    operator: str
    reason: str


class SourcePaused(EventBase, frozen=True):
    """A proposal source stopped: its record fell clearly below its claims, or it flooded. Its proposals are
    refused until a person resumes it."""

    at: int
    source: str
    cause: str
    """"record" (graded below its claims) or "flood" (too many proposals a second)."""
    reason: str
    """The numbers that made the case."""
    operator: str = "guard"


class SourceResumed(EventBase, frozen=True):
    at: int
    source: str
    operator: str
    reason: str


class OperatorPresenceLost(EventBase, frozen=True):
    """No operator heartbeat for the configured time: the dead-man switch fired."""

    at: int
    silent_seconds: float
    policy: str


class DeadmanApplied(EventBase, frozen=True):
    """The dead-man policy's orders were sent (after an OperatorPresenceLost that was not "hold")."""

    at: int
    policy: str
    orders: int
    filled: int


class FeedHealthChanged(EventBase, frozen=True):
    """A symbol's market data became unhealthy (no proposals, approvals blocked) or recovered."""

    at: int
    symbol: str
    healthy: bool
    reason: str


class JournalFailed(EventBase, frozen=True):
    """The journal could not write (a full disk, an I/O error): trading HALTED. What had to be recorded
    meanwhile was kept in memory and follows this event once the journal wrote again."""

    at: int
    error: str


class JournalRecovered(EventBase, frozen=True):
    """The journal writes again after failing since `failed_at`; trading stays HALTED until a person re-arms."""

    at: int
    failed_at: int
    events_not_recorded: int
    """What was left out meanwhile (closed bars, feed health, refused commands): the record's only gap."""


class BarRecorded(EventBase, frozen=True):
    at: int
    bar: Bar


Event: TypeAlias = (
    SessionStarted
    | SessionEnded
    | AccountFunded
    | ProposalQueued
    | ProposalRefused
    | ProposalRepriced
    | DecisionRecorded
    | ApprovalCounted
    | CommandRefused
    | CommandReceived
    | CommandAnswered
    | ProposalExpired
    | ProposalKilled
    | ProposalFailed
    | OrderSubmitted
    | OrderAccepted
    | OrderFilled
    | OrderCancelled
    | OrderRejected
    | OrderUnknown
    | OrderCancelRequested
    | OrderAmendRequested
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
    | SourcePaused
    | SourceResumed
    | OperatorPresenceLost
    | DeadmanApplied
    | FeedHealthChanged
    | BarRecorded
    | JournalFailed
    | JournalRecovered
)

EVENT_TYPES: dict[str, type[EventBase]] = {cls.__name__: cls for cls in typing.get_args(Event)}
"""Event class by name, for decoding the journal."""
