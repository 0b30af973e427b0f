"""A proposal's fate as a program sees it: a typed value, one class per outcome.

    match decision:
        case Filled(price=price, qty=qty): ...      # a person approved it and guard's venue filled it
        case Rejected(reason=why): ...              # a person said no, and why
        case Expired() | Killed() | Failed() | Refused(): ...   # no trade; `reason` says why

`decision.filled` is True only for `Filled`: every other outcome means no trade.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, NewType, TypeAlias

from guard.api.source_views import ProposalFate
from guard.domain import DecisionKind, ProposalStatus

ProposalId = NewType("ProposalId", str)
"""The id guard gave a queued proposal ("P000042")."""


@dataclass(frozen=True, slots=True)
class Filled:
    """A person approved (or overrode) the proposal and guard's venue filled it."""

    proposal_id: ProposalId
    price: Decimal
    """The average fill price."""
    qty: Decimal
    """The quantity filled (an override may have changed it)."""
    decided_by: str
    reason: str
    overridden: bool = False
    """The person changed the terms (size, leverage, levels) before approving."""
    filled: ClassVar[bool] = True

    def __str__(self) -> str:
        how = "overridden" if self.overridden else "approved"
        return f"{self.proposal_id} {how} by {self.decided_by} and filled: {self.qty} at {self.price}"


@dataclass(frozen=True, slots=True)
class Rejected:
    """A person rejected the proposal."""

    proposal_id: ProposalId
    reason: str
    decided_by: str
    filled: ClassVar[bool] = False

    def __str__(self) -> str:
        return f"{self.proposal_id} rejected by {self.decided_by}" + (f": {self.reason}" if self.reason else "")


@dataclass(frozen=True, slots=True)
class Expired:
    """Nobody decided in time: no answer means no."""

    proposal_id: ProposalId
    reason: str
    filled: ClassVar[bool] = False

    def __str__(self) -> str:
        return f"{self.proposal_id} expired: {self.reason}"


@dataclass(frozen=True, slots=True)
class Killed:
    """The kill switch ended the proposal while it waited."""

    proposal_id: ProposalId
    reason: str
    filled: ClassVar[bool] = False

    def __str__(self) -> str:
        return f"{self.proposal_id} killed: {self.reason}"


@dataclass(frozen=True, slots=True)
class Failed:
    """Approved, but the order did not fill (the venue refused it, or it was cancelled unfilled)."""

    proposal_id: ProposalId
    reason: str
    decided_by: str
    filled: ClassVar[bool] = False

    def __str__(self) -> str:
        return f"{self.proposal_id} approved by {self.decided_by} but not filled: {self.reason}"


@dataclass(frozen=True, slots=True)
class Refused:
    """The desk would not queue the proposal at all (a stale feed, no operator present, a full queue, HALTED, a
    paused source, a size below the market's minimum): no person saw it. `proposal_id` is empty."""

    reason: str
    proposal_id: ProposalId = ProposalId("")
    filled: ClassVar[bool] = False

    def __str__(self) -> str:
        return f"refused by the desk: {self.reason}"


Decision: TypeAlias = Filled | Rejected | Expired | Killed | Failed | Refused


def decision_of(fate: ProposalFate) -> Decision | None:
    """The decision a fate amounts to, or None while it is still open (pending, or approved and not yet filled,
    or filled but its fill not yet readable)."""
    pid = ProposalId(fate.proposal.id)
    match fate.status:
        case ProposalStatus.FILLED if fate.fill_price is not None:
            overridden = fate.decision is DecisionKind.OVERRIDE
            return Filled(pid, fate.fill_price, fate.filled_qty, fate.decided_by, fate.reason, overridden)
        case ProposalStatus.REJECTED:
            return Rejected(pid, fate.reason, fate.decided_by)
        case ProposalStatus.EXPIRED:
            return Expired(pid, fate.reason or "no decision in time: no answer means no")
        case ProposalStatus.KILLED:
            return Killed(pid, fate.reason or "the kill switch ended it while it waited")
        case ProposalStatus.FAILED:
            return Failed(pid, fate.reason, fate.decided_by)
    return None
