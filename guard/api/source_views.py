"""What a proposal source may read over the control API: the fate of its own proposals, and the account.

A source's credential may propose and read these, nothing else (`guard.api.server`): `GET /v1/proposals/{id}`
and `GET /v1/proposals` answer with `ProposalFate`s (a source sees only the proposals it made; an operator sees
all), `GET /v1/account` with a `AccountView`. The daemon computes them (`guard.api.fates`); `guard.client` reads
them. This module imports only the shared domain types, like `guard.api.protocol`.
"""

from __future__ import annotations

from decimal import Decimal

from guard.api.protocol import PositionView
from guard.domain import DecisionKind, FeedHealth, Proposal, ProposalStatus, TradingState, Value


class ProposalFate(Value, frozen=True):
    """One proposal and where it stands: pending, decided, filled, or ended without a trade (and why)."""

    proposal: Proposal
    """The proposal as guard priced and checked it (the latest version: re-priced or overridden)."""
    status: ProposalStatus
    final: bool
    """Nothing more will happen to it (filled, rejected, expired, killed or failed)."""
    decision: DecisionKind | None
    decided_by: str
    """The operator who approved, overrode or rejected it ("" while undecided)."""
    reason: str
    """Why: the operator's reason, the expiry ("no answer means no"), the kill, or the venue's refusal."""
    filled_qty: Decimal
    fill_price: Decimal | None
    """The average price of the entry's fills (None until it has one)."""


class ProposalFates(Value, frozen=True):
    """Proposals, newest first (`GET /v1/proposals`)."""

    proposals: tuple[ProposalFate, ...]


class AccountView(Value, frozen=True, gc=True):  # holds a dict: tracked
    """What a source may know of the desk before it proposes (`GET /v1/account`): the trading state, whether a
    person is there to decide, prices, feed health, the positions and equity."""

    trading_state: TradingState
    state_reason: str
    operator_present: bool
    """A person is attached: with nobody there, proposals are refused (no answer would come)."""
    marks: dict[str, Decimal]
    """The latest price per symbol guard trades."""
    feeds: tuple[FeedHealth, ...]
    positions: tuple[PositionView, ...]
    equity: Decimal
    server_time: int
    """The daemon's clock, in ms since the epoch: a proposal's `expires_at` is on this clock."""
