"""The control API's wire protocol: typed, versioned messages, shared by the daemon and its clients.

Every frame is one JSON object with `"v": PROTOCOL_VERSION` and `"type"`: the class name of the
message. Clients send commands (each with a client-chosen `id`); the daemon answers each with a
`Reply` carrying that id, only after the command's effect is journaled. The daemon also pushes
views: a `Snapshot` on connect, then `StatusChanged`, `ProposalsChanged`, `PositionsChanged`,
`EventsLogged` (one per journal commit), `AlertRaised` and `Prices` as things happen.

Views are computed by the daemon (what can be approved and why not, liquidation distance, hit
rates): a client renders them and never decides anything itself. This module imports only the
shared domain types, so a TUI that imports it pulls in neither torch, ccxt nor the risk code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from guard import codec
from guard.domain import (
    AcknowledgmentKind,
    FeedHealth,
    OverrideEdits,
    Position,
    Proposal,
    ProposalStatus,
    Side,
    TradingState,
)
from guard.errors import DecodeError

PROTOCOL_VERSION = 2
OPERATOR_HEADER = "X-Guard-Operator"
"""REST commands name their operator in this header."""
MAX_FRAME_BYTES = 64 * 1024
"""Commands are small; anything larger is refused before it is parsed."""
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""Daemon messages carry whole views (a snapshot of 1,000 pending proposals is ~1.6 MB): a client
reading the daemon accepts far more than the daemon accepts from a client."""


# --- commands (client -> daemon) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """Names the operator behind this connection. Required before any other command."""

    id: str
    operator: str
    client: str = "tui"


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """I am still here (the dead-man switch listens for these)."""

    id: str


@dataclass(frozen=True, slots=True)
class Propose:
    """An operator's own trade idea: priced and risk-checked like the model's, and still needs approval."""

    id: str
    symbol: str
    side: Side
    qty: Decimal
    leverage: Decimal
    stop: Decimal | None = None
    take_profit: Decimal | None = None
    limit_price: Decimal | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Approve:
    id: str
    proposal_id: str
    version: int
    """The version the operator saw; a re-priced proposal must be looked at again."""
    reason: str = ""
    confirm_novel: bool = False


@dataclass(frozen=True, slots=True)
class Override:
    id: str
    proposal_id: str
    version: int
    edits: OverrideEdits
    reason: str = ""
    confirm_risk_increase: bool = False
    confirm_novel: bool = False


@dataclass(frozen=True, slots=True)
class Reject:
    id: str
    proposal_id: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Kill:
    id: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Rearm:
    id: str
    acknowledgment: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PauseModel:
    id: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ResumeModel:
    id: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ClosePosition:
    id: str
    symbol: str
    qty: Decimal | None = None
    """None closes all of it; a quantity reduces it."""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SetRiskLimit:
    id: str
    key: str
    value: str
    """The new value as text, validated exactly like config.toml."""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Acknowledge:
    id: str
    kind: AcknowledgmentKind
    text: str


@dataclass(frozen=True, slots=True)
class ReenableThrottle:
    id: str
    reason: str = ""


Command = (
    Hello
    | Heartbeat
    | Propose
    | Approve
    | Override
    | Reject
    | Kill
    | Rearm
    | PauseModel
    | ResumeModel
    | ClosePosition
    | SetRiskLimit
    | Acknowledge
    | ReenableThrottle
)
COMMAND_TYPES: dict[str, type] = {cls.__name__: cls for cls in Command.__args__}  # type: ignore[attr-defined]


# --- views (daemon -> client) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProposalView:
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


@dataclass(frozen=True, slots=True)
class PositionView:
    position: Position
    mark: Decimal | None
    unrealized_pnl: Decimal | None
    liquidation_distance_pct: float | None


@dataclass(frozen=True, slots=True)
class ModelStatus:
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


@dataclass(frozen=True, slots=True)
class StatusView:
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
    rearm_phrase: str = "RE-ARM"
    acknowledgment_phrases: tuple[tuple[AcknowledgmentKind, str], ...] = ()
    needs_acknowledgment: tuple[AcknowledgmentKind, ...] = ()
    """Acknowledgments the daemon is waiting for before it lets the model propose."""


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    seq: int
    at: int
    type: str
    text: str


@dataclass(frozen=True, slots=True)
class Alert:
    at: int
    level: str
    """"critical", "warning" or "info"."""
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class BucketView:
    """One confidence bucket: how often the model was right live, beside what its card claimed."""

    lo: float
    hi: float
    live_count: int
    live_hit_rate: float | None
    claimed_hit_rate: float | None
    claimed_count: int


@dataclass(frozen=True, slots=True)
class PerformanceView:
    """The model's live record next to its card's claims (`GET /v1/model/performance`)."""

    model_id: str
    recorded: int
    """Proposals being tracked since the daemon started."""
    scored: int
    """Of those, settled at their horizon."""
    hit_rate: float | None
    mean_confidence: float | None
    """What the model claimed, on average, for the same proposals."""
    brier: float | None
    claimed_brier: float | None
    buckets: tuple[BucketView, ...]
    paused: bool
    pause_reason: str
    statistic: float
    """The sequential test's evidence that the live record is below the claim."""
    threshold: float
    """Evidence at which the model is paused."""


# --- pushed messages ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    id: str
    ok: bool
    reason: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Snapshot:
    status: StatusView
    proposals: tuple[ProposalView, ...]
    positions: tuple[PositionView, ...]
    events: tuple[LoggedEvent, ...]
    alerts: tuple[Alert, ...]
    prices: dict[str, tuple[float, ...]]
    """Recent marks per symbol, oldest first (for sparklines)."""


@dataclass(frozen=True, slots=True)
class StatusChanged:
    status: StatusView


@dataclass(frozen=True, slots=True)
class ProposalsChanged:
    upserted: tuple[ProposalView, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PositionsChanged:
    positions: tuple[PositionView, ...]


@dataclass(frozen=True, slots=True)
class EventsLogged:
    """The events of one journal commit: a kill's hundred order events are one frame, not a hundred."""

    events: tuple[LoggedEvent, ...]


@dataclass(frozen=True, slots=True)
class AlertRaised:
    alert: Alert


@dataclass(frozen=True, slots=True)
class Prices:
    at: int
    marks: dict[str, float]


Message = (
    PerformanceView
    | Reply
    | Snapshot
    | StatusChanged
    | ProposalsChanged
    | PositionsChanged
    | EventsLogged
    | AlertRaised
    | Prices
)
MESSAGE_TYPES: dict[str, type] = {cls.__name__: cls for cls in Message.__args__}  # type: ignore[attr-defined]


# --- framing -----------------------------------------------------------------------------


def encode(message: Any) -> str:
    """One frame: the message's fields, its type name and the protocol version."""
    return json.dumps(
        {"v": PROTOCOL_VERSION, "type": type(message).__name__, **codec.to_plain(message)},
        separators=(",", ":"),
        allow_nan=False,
    )


def _decode(text: str | bytes, types: dict[str, type], limit: int = MAX_FRAME_BYTES) -> Any:
    if len(text) > limit:
        raise DecodeError(f"frame of {len(text)} bytes is larger than {limit}")
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise DecodeError(f"not JSON: {e}") from None
    if not isinstance(data, dict):
        raise DecodeError("a frame must be a JSON object")
    version = data.pop("v", None)
    if version != PROTOCOL_VERSION:
        raise DecodeError(f"protocol version {version!r} is not supported; this daemon speaks {PROTOCOL_VERSION}")
    type_name = data.pop("type", None)
    cls = types.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise DecodeError(f"unknown message type {type_name!r}; known: {', '.join(sorted(types))}")
    return codec.from_plain(cls, data, path=type_name)


def decode_command(text: str | bytes) -> Command:
    """Parse a client frame. Raises DecodeError naming what is wrong."""
    return _decode(text, COMMAND_TYPES)  # type: ignore[no-any-return]


def decode_message(text: str | bytes) -> Message:
    """Parse a daemon frame (for clients)."""
    return _decode(text, MESSAGE_TYPES, MAX_MESSAGE_BYTES)  # type: ignore[no-any-return]


def command_id(text: str | bytes) -> str:
    """The `id` of a frame that failed to parse, if it has one, so the error reply can name it."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return ""
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""
