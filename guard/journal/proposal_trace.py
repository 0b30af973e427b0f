"""The story of one proposal as values: its versions, the model binding, its orders, its position lives, its steps.

`guard.journal.trace` folds the journal into a `ProposalTrace`; `guard.journal.story` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from guard.domain import ZERO, Fill, OrderRequest, OrderStatus, Proposal, ProposalStatus
from guard.events import ApprovalCounted, CommandRefused, DecisionRecorded, KillRequested
from guard.journal.positions import PositionLife, average_price


@dataclass(frozen=True, slots=True)
class Step:
    """One line of the story: something that happened to the proposal, its orders or its position."""

    seq: int
    at: int
    kind: str
    """What sort of thing: queued, repriced, refused, approval, decision, order, accepted, fill, cancelled,
    rejected, unknown, expired, killed, failed, position, funding, liquidated."""
    text: str


@dataclass(frozen=True, slots=True)
class Version:
    """One version of the proposal and what made it."""

    seq: int
    at: int
    cause: str
    """queued, repriced or overridden."""
    reason: str
    proposal: Proposal


@dataclass(frozen=True, slots=True)
class ModelBinding:
    """The model a proposal was judged under, as the journal binds it."""

    model_id: str
    model_hash: str
    """The hash the session's model acknowledgment was recorded for; "" when none binds this session."""
    acknowledged_by: str
    acknowledged_at: int | None
    config_hash: str
    """The config hash of the session the proposal was queued in."""

    @property
    def consistent(self) -> bool:
        """The model id names the bound hash (ids end with the hash's first ten characters)."""
        return bool(self.model_hash) and self.model_id.endswith(self.model_hash[:10])


@dataclass(frozen=True, slots=True)
class OrderTrace:
    """One order sent for the proposal, with what became of it."""

    request: OrderRequest
    submitted_seq: int
    submitted_at: int
    venue_order_id: str
    status: OrderStatus
    fills: tuple[Fill, ...]
    ended_at: int | None
    reason: str

    @property
    def filled(self) -> Decimal:
        return sum((f.qty for f in self.fills), ZERO)

    @property
    def fees(self) -> Decimal:
        return sum((f.fee for f in self.fills), ZERO)

    @property
    def average_price(self) -> Decimal | None:
        if not self.fills:
            return None
        cost = sum((f.price * f.qty for f in self.fills), ZERO)
        return average_price(cost, self.filled, self.fills[-1].price)


@dataclass(frozen=True, slots=True)
class ProposalTrace:
    """The whole story of one proposal, as the journal tells it."""

    proposal_id: str
    versions: tuple[Version, ...]
    model: ModelBinding | None
    """None for a proposal that did not come from the model (an operator's, a script's)."""
    approvals: tuple[ApprovalCounted, ...]
    decision: DecisionRecorded | None
    refusals: tuple[CommandRefused, ...]
    orders: tuple[OrderTrace, ...]
    positions: tuple[PositionLife, ...]
    """The position lifecycles its entry fills opened or changed, as they stand at the end of the journal."""
    status: ProposalStatus
    status_at: int
    status_reason: str
    kill: KillRequested | None
    """The kill that ended it while pending, or flattened its position."""
    steps: tuple[Step, ...]
    journal_events: int
    """How many events the journal held when it was read."""

    @property
    def first(self) -> Proposal:
        return self.versions[0].proposal

    @property
    def last(self) -> Proposal:
        return self.versions[-1].proposal
