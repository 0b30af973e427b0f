"""The control API's wire protocol: typed, versioned messages, shared by the daemon and its clients.

Every frame is one JSON object with `"v": PROTOCOL_VERSION` and `"type"`: the class name of the
message (commands and messages are tagged unions of frozen msgspec Structs). Clients send commands
(each with a client-chosen `id`); the daemon answers each with a `Reply` carrying that id, only
after the command's effect is journaled. The daemon also pushes
views: a `Snapshot` on connect, then `StatusChanged`, `ProposalsChanged`, `PositionsChanged`,
`EventsLogged` (one per journal commit), `AlertRaised` and `Prices` as things happen.

Views are computed by the daemon (what can be approved and why not, liquidation distance, hit
rates): a client renders them and never decides anything itself. This module imports only the
shared domain types, so a TUI that imports it pulls in neither torch, ccxt nor the risk code.

What a client sends is bounded where it enters: every string has a length limit, integers a range,
and every decimal must be finite, positive and of a sane size (`check_numbers`). A frame that does
not fit is refused with the path of what was wrong; it never reaches the desk.
"""

from __future__ import annotations

import typing
from decimal import Decimal
from typing import Annotated, Any, TypeAlias

import msgspec
from msgspec import Meta

from guard import codec
from guard.api.desk_views import OrderName
from guard.api.sourcing import check_size
from guard.api.wire_views import (
    Alert as Alert,
    BucketView as BucketView,
    DeskPolicy as DeskPolicy,
    LoggedEvent as LoggedEvent,
    ModelStatus as ModelStatus,
    PositionView as PositionView,
    ProposalView as ProposalView,
    StatusView as StatusView,
)
from guard.domain import (
    AcknowledgmentKind,
    OverrideEdits,
    Side,
    Value,
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

MAX_OPERATOR_CHARS = 64
"""An operator id is 1 to this many characters, on every route."""
MAX_DIGITS = 24
"""Significant digits a decimal from a client may have."""
MAX_EXPONENT = 12
"""A decimal from a client lies between 1e-12 and 1e13 (its adjusted exponent within ±12)."""

# What a client may send, bounded: a string's length, an integer's range.
CommandId = Annotated[str, Meta(max_length=128)]
OperatorName = Annotated[str, Meta(max_length=MAX_OPERATOR_CHARS)]
ClientName = Annotated[str, Meta(max_length=64)]
ProposalId = Annotated[str, Meta(max_length=64)]
Symbol = Annotated[str, Meta(max_length=64)]
Reason = Annotated[str, Meta(max_length=1000)]
Phrase = Annotated[str, Meta(max_length=200)]
"""Typed acknowledgments (RE-ARM, the risk phrases): short sentences."""
LimitKey = Annotated[str, Meta(max_length=64)]
LimitValue = Annotated[str, Meta(max_length=64)]
Version = Annotated[int, Meta(ge=1, le=2**31 - 1)]


class Frame(Value, frozen=True, tag_field="type", tag=True, kw_only=True):
    """A whole frame: tagged with its class name, and carrying the protocol version."""

    v: int = PROTOCOL_VERSION


class CommandFrame(Frame, frozen=True):
    """Base of the commands a client sends."""


class MessageFrame(Frame, frozen=True):
    """Base of the messages the daemon sends."""


# --- commands (client -> daemon) ---------------------------------------------------------


class Hello(CommandFrame, frozen=True):
    """Names the operator behind this connection. Required before any other command."""

    id: CommandId
    operator: OperatorName
    client: ClientName = "tui"


class Heartbeat(CommandFrame, frozen=True):
    """I am still here (the dead-man switch listens for these)."""

    id: CommandId


class Propose(CommandFrame, frozen=True):
    """A trade idea from an operator or a source: priced and risk-checked like the model's, and still needs approval.

    The size is exactly one of `qty`, `notional` or `equity_fraction`; guard turns the last two into a quantity
    at the mark, rounded down to the market's step (and, for a source, capped by the risk limits).
    """

    id: CommandId
    symbol: Symbol
    side: Side
    qty: Decimal | None = None
    """Contracts (base units for a linear perpetual)."""
    leverage: Decimal = Decimal(1)
    stop: Decimal | None = None
    take_profit: Decimal | None = None
    limit_price: Decimal | None = None
    reason: Reason = ""
    """The short "why"."""
    notional: Decimal | None = None
    """The position's value in the account currency (USDT), instead of `qty`."""
    equity_fraction: Decimal | None = None
    """Margin as a fraction of equity (0 < f <= 1), instead of `qty`; the notional is that margin times `leverage`."""
    confidence: Decimal | None = None
    """The source's own claimed probability that the trade works (0 < c <= 1): shown as claimed and uncalibrated
    until guard has graded the source's record."""


class Approve(CommandFrame, frozen=True):
    id: CommandId
    proposal_id: ProposalId
    version: Version
    """The version the operator saw; a re-priced proposal must be looked at again."""
    reason: Reason = ""
    confirm_novel: bool = False


class Override(CommandFrame, frozen=True):
    id: CommandId
    proposal_id: ProposalId
    version: Version
    edits: OverrideEdits
    reason: Reason = ""
    confirm_risk_increase: bool = False
    confirm_novel: bool = False


class Reject(CommandFrame, frozen=True):
    id: CommandId
    proposal_id: ProposalId
    reason: Reason = ""


class Kill(CommandFrame, frozen=True):
    id: CommandId
    reason: Reason = ""


class Rearm(CommandFrame, frozen=True):
    id: CommandId
    acknowledgment: Phrase
    reason: Reason = ""


class PauseModel(CommandFrame, frozen=True):
    id: CommandId
    reason: Reason = ""


class ResumeModel(CommandFrame, frozen=True):
    id: CommandId
    reason: Reason = ""


class ClosePosition(CommandFrame, frozen=True):
    id: CommandId
    symbol: Symbol
    qty: Decimal | None = None
    """None closes all of it; a quantity reduces it."""
    reason: Reason = ""


class SetRiskLimit(CommandFrame, frozen=True):
    id: CommandId
    key: LimitKey
    value: LimitValue
    """The new value as text, validated exactly like config.toml."""
    reason: Reason = ""
    confirm_risk_increase: bool = False
    """A change that loosens a limit (more leverage, a larger notional or loss) is refused without it."""


class Acknowledge(CommandFrame, frozen=True):
    id: CommandId
    kind: AcknowledgmentKind
    text: Phrase


class ReenableThrottle(CommandFrame, frozen=True):
    id: CommandId
    reason: Reason = ""


class CancelOrder(CommandFrame, frozen=True):
    id: CommandId
    order: OrderName
    """`OrderView.order_id`, the client order id, or the id of a proposal with one resting order."""
    reason: Reason = ""


class AmendOrder(CommandFrame, frozen=True):
    """Move a resting order's price (limit or trigger) or lower its quantity: cancelled, then replaced."""

    id: CommandId
    order: OrderName
    price: Decimal | None = None
    qty: Decimal | None = None
    reason: Reason = ""


class ResumeSource(CommandFrame, frozen=True):
    """Let a paused source propose again (paused on its record, or latched for flooding): a person's call."""

    id: CommandId
    source: OperatorName
    reason: Reason = ""


Command: TypeAlias = (
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
    | CancelOrder
    | AmendOrder
    | ResumeSource
)
COMMAND_TYPES: dict[str, type[Frame]] = {cls.__name__: cls for cls in typing.get_args(Command)}


class PerformanceView(MessageFrame, frozen=True):
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


class Reply(MessageFrame, frozen=True, gc=True):  # holds a dict: tracked
    id: str
    ok: bool
    reason: str = ""
    data: dict[str, Any] = msgspec.field(default_factory=dict)


class Snapshot(MessageFrame, frozen=True, gc=True):  # holds a dict: tracked
    status: StatusView
    proposals: tuple[ProposalView, ...]
    positions: tuple[PositionView, ...]
    events: tuple[LoggedEvent, ...]
    alerts: tuple[Alert, ...]
    prices: dict[str, tuple[float, ...]]
    """Recent marks per symbol, oldest first (for sparklines)."""


class StatusChanged(MessageFrame, frozen=True):
    status: StatusView


class ProposalsChanged(MessageFrame, frozen=True):
    upserted: tuple[ProposalView, ...]
    removed: tuple[str, ...]


class PositionsChanged(MessageFrame, frozen=True):
    positions: tuple[PositionView, ...]


class EventsLogged(MessageFrame, frozen=True):
    """The events of one journal commit: a kill's hundred order events are one frame, not a hundred."""

    events: tuple[LoggedEvent, ...]


class AlertRaised(MessageFrame, frozen=True):
    alert: Alert


class Prices(MessageFrame, frozen=True, gc=True):  # holds a dict: tracked
    at: int
    marks: dict[str, float]


Message: TypeAlias = (
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
MESSAGE_TYPES: dict[str, type[Frame]] = {cls.__name__: cls for cls in typing.get_args(Message)}


# --- framing -----------------------------------------------------------------------------


def encode(message: Frame) -> str:
    """One frame: the message's fields, its type name and the protocol version."""
    return codec.encode(message).decode()


class _Header(msgspec.Struct):
    """A frame's version, type and id, read before the rest: the rest is skipped unbuilt on this first look."""

    v: Any = None
    type: Any = None
    id: Any = None


_HEADER = msgspec.json.Decoder(_Header)


def _header(data: str | bytes, limit: int) -> _Header:
    if len(data) > limit:
        raise DecodeError(f"frame of {len(data)} bytes is larger than {limit}")
    try:
        return _HEADER.decode(data)
    except msgspec.ValidationError:
        raise DecodeError("a frame must be a JSON object") from None
    except (msgspec.DecodeError, RecursionError) as e:
        raise codec.translate(e, _Header, "frame") from None


def _decode(data: str | bytes, types: dict[str, type[Frame]], limit: int) -> Frame:
    header = _header(data, limit)
    if header.v != PROTOCOL_VERSION or type(header.v) is not int:
        raise DecodeError(
            f"protocol version {_short(header.v)} is not supported; this daemon speaks {PROTOCOL_VERSION}"
        )
    cls = types.get(header.type) if isinstance(header.type, str) else None
    if cls is None:
        raise DecodeError(f"unknown message type {_short(header.type)}; known: {', '.join(sorted(types))}")
    return codec.decode(cls, data, root=cls.__name__)


def decode_command(data: str | bytes) -> Command:
    """Parse a client frame, with every number bounded. Raises DecodeError naming what is wrong, whatever the input."""
    command: Command = _decode(data, COMMAND_TYPES, MAX_FRAME_BYTES)  # type: ignore[assignment]
    check_numbers(command)
    return command


def decode_message(data: str | bytes) -> Message:
    """Parse a daemon frame (for clients)."""
    return _decode(data, MESSAGE_TYPES, MAX_MESSAGE_BYTES)  # type: ignore[return-value]


def command_id(data: str | bytes) -> str:
    """The `id` of a frame that failed to parse, if it has one, so the error reply can name it."""
    try:
        value = _header(data, MAX_FRAME_BYTES).id
    except DecodeError:
        return ""
    return value if isinstance(value, str) and len(value) <= 128 else ""


# --- numbers from clients ----------------------------------------------------------------

_DECIMALS: dict[type, tuple[str, ...]] = {
    Propose: ("qty", "notional", "equity_fraction", "leverage", "stop", "take_profit", "limit_price", "confidence"),
    ClosePosition: ("qty",),
    AmendOrder: ("price", "qty"),
}
_EDITS = ("qty", "leverage", "stop", "take_profit", "limit_price")


def check_numbers(command: Command) -> None:
    """Every decimal a command carries is finite, positive and of a sane size, or DecodeError names it.

    msgspec reads "1e999999", "sNaN" or a 4,000-digit number into a Decimal without complaint;
    arithmetic on them later raises or overflows (a re-price at approval did). They stop here.
    """
    name = type(command).__name__
    for field in _DECIMALS.get(type(command), ()):
        bounded(f"{name}.{field}", getattr(command, field))
    if isinstance(command, Override):
        for field in _EDITS:
            bounded(f"{name}.edits.{field}", getattr(command.edits, field))
    if isinstance(command, Propose):
        check_size(command.qty, command.notional, command.equity_fraction, command.confidence)


def bounded(where: str, value: Decimal | None) -> None:
    """Raise DecodeError unless `value` is None or a finite, positive decimal of a sane size."""
    if value is None:
        return
    if not value.is_finite():
        raise DecodeError(f"{where}: expected a finite number, got {_short(value)}")
    if value <= 0:
        raise DecodeError(f"{where}: must be more than 0, got {_short(value)}")
    if len(value.as_tuple().digits) > MAX_DIGITS or not -MAX_EXPONENT <= value.adjusted() <= MAX_EXPONENT:
        raise DecodeError(
            f"{where}: {_short(value)} is out of range: at most {MAX_DIGITS} digits, "
            f"between 1e-{MAX_EXPONENT} and 1e{MAX_EXPONENT + 1}"
        )


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value) if not isinstance(value, Decimal) else str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
