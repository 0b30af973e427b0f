"""The views the daemon sends its clients: a pending proposal, a position, the model, the desk's policy, the
status, a logged event, an alert, a confidence bucket. Part of the wire protocol (`guard.api.protocol` carries
them in its messages and re-exports them)."""

from __future__ import annotations

from decimal import Decimal

from guard.api.desk_views import LimitView, OrderView
from guard.api.sourcing import ProposalSource, SourceView
from guard.domain import (
    AcknowledgmentKind,
    FeedHealth,
    Position,
    Proposal,
    ProposalStatus,
    TradingState,
    Value,
)


class ProposalView(Value, frozen=True):
    """A pending proposal as an operator should see it, with what the daemon says about it."""

    proposal: Proposal
    status: ProposalStatus
    can_approve: bool
    why_not: str
    """Why approve/override is greyed out ("" when it is not)."""
    approvals: tuple[str, ...]
    needs_two_approvals: bool
    liquidation_distance_pct: float | None
    fee_estimate: Decimal
    hit_rate_at_confidence: float | None
    """How often the model was right at this confidence (test split of its card), or None."""
    live_hit_rate_at_confidence: float | None = None
    source: ProposalSource | None = None
    """The source that proposed it (None for the model's and a person's own); its record is in the status."""


class PositionView(Value, frozen=True):
    position: Position
    mark: Decimal | None
    unrealized_pnl: Decimal | None
    liquidation_distance_pct: float | None


class ModelStatus(Value, frozen=True):
    loaded: bool
    model_id: str
    age_days: float | None
    expired: bool
    paused: bool
    reason: str
    """Why the model is not proposing (not loaded, paused, expired), or ""."""
    last_novelty: float | None = None
    last_latency_ms: float | None = None
    acknowledged: bool = False


class DeskPolicy(Value, frozen=True):
    """The daemon's own rules a console explains: its words, never the console's local config."""

    heartbeat_timeout_seconds: float
    """With no operator heartbeat for this long, the dead-man switch fires."""
    deadman_policy: str
    """What it does to open positions then: "hold", "reduce" or "flatten"."""
    leverage_acknowledgment_above: Decimal
    """Leverage above this needs the leverage acknowledgment on record."""
    conservative_leverage: Decimal
    """The risk limit `risk.max_leverage` as it stands (changed at run time or not)."""
    hard_leverage_cap: Decimal
    """Nothing goes above this, whatever anyone types."""


class StatusView(Value, frozen=True):
    trading_state: TradingState
    state_reason: str
    equity: Decimal
    balance: Decimal
    free: Decimal
    unrealized_pnl: Decimal
    daily_pnl: Decimal
    operators: tuple[str, ...]
    operator_present: bool
    feeds: tuple[FeedHealth, ...]
    model: ModelStatus
    leverage_acknowledged: bool
    throttle_latched: bool
    pending: int
    exchange: str
    broker: str
    server_time: int
    kill_in_progress: bool = False
    orders: tuple[OrderView, ...] = ()
    limits: tuple[LimitView, ...] = ()
    rearm_phrase: str = "RE-ARM"
    acknowledgment_phrases: tuple[tuple[AcknowledgmentKind, str], ...] = ()
    needs_acknowledgment: tuple[AcknowledgmentKind, ...] = ()
    """Acknowledgments the daemon is waiting for before it lets the model propose."""
    policy: DeskPolicy | None = None
    """The rules the acknowledgments explain (None from a daemon too old to say)."""
    sources: tuple[SourceView, ...] = ()
    """The proposal sources guard has heard from or paused since it started."""


class LoggedEvent(Value, frozen=True):
    seq: int
    at: int
    type: str
    text: str


class Alert(Value, frozen=True):
    at: int
    level: str
    """"critical", "warning" or "info"."""
    kind: str
    text: str


class BucketView(Value, frozen=True):
    """One confidence bucket: how often the model was right live, beside what its card claimed."""

    lo: float
    hi: float
    live_count: int
    live_hit_rate: float | None
    claimed_hit_rate: float | None
    claimed_count: int
