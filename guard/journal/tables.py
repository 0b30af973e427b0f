"""The journal as typed tables for `guard journal export --table ...`: one row per fill, order, decision,
proposal version or position lifecycle, read in one pass.

Each table declares its columns with a kind, and the writers (`guard.journal.export`) turn each kind
into the right type: times are timestamps (UTC, milliseconds), prices, quantities and money are exact
decimals, booleans are booleans, enums are their text. Rows are tuples in column order; a missing value
is None.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from guard.domain import (
    ZERO,
    DecisionKind,
    Fill,
    OrderPurpose,
    OrderRequest,
    OrderStatus,
    Proposal,
    ProposalStatus,
    Side,
)
from guard.events import (
    ApprovalCounted,
    DecisionRecorded,
    FundingPaid,
    KillRequested,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    OrderUnknown,
    PositionLiquidated,
    ProposalExpired,
    ProposalFailed,
    ProposalKilled,
    ProposalQueued,
    ProposalRepriced,
)
from guard.journal.chain import Entry
from guard.journal.positions import PositionBook, PositionLife, average_price


class Kind(StrEnum):
    """How a column's values are typed in an export."""

    INT = "int"
    TIMESTAMP = "timestamp"
    """Epoch milliseconds in the rows; a UTC timestamp in Parquet, ISO 8601 (`...Z`) in CSV."""
    DECIMAL = "decimal"
    """Exact: decimal128 in Parquet with the smallest scale that holds every value; fixed-point text in CSV."""
    FLOAT = "float"
    """Model figures that are floats in guard itself (confidence, novelty, P(liquidation), σ)."""
    BOOL = "bool"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind


@dataclass(frozen=True, slots=True)
class Table:
    """A table of the export: its columns and how to build its rows from the journal's entries."""

    name: str
    doc: str
    columns: tuple[Column, ...]
    rows: Callable[[Iterable[Entry]], Iterator[tuple[Any, ...]]]
    reads: frozenset[str] | None = None
    """The event types its rows are built from (only these are read and decoded); None for every event."""


def _columns(spec: str) -> tuple[Column, ...]:
    """`"seq:int time:timestamp"` -> columns, so each table's layout reads as one line per few columns."""
    return tuple(Column(name, Kind(kind)) for name, kind in (item.split(":") for item in spec.split()))


def _checks(p: Proposal) -> str:
    return "; ".join(f"{c.verdict.value} {c.name}: {c.reason}" for c in p.checks)


# --- fills -----------------------------------------------------------------------------------------

FILL_COLUMNS = _columns(
    "seq:int time:timestamp fill_time:timestamp client_order_id:text fill_id:text proposal_id:text purpose:text "
    "symbol:text side:text qty:decimal price:decimal fee:decimal liquidity:text remaining:decimal "
    "reduce_only:bool"
)


def fill_rows(entries: Iterable[Entry]) -> Iterator[tuple[Any, ...]]:
    requests: dict[str, OrderRequest] = {}
    for entry in entries:
        event = entry.event
        if isinstance(event, OrderSubmitted):
            requests[event.request.client_order_id] = event.request
        elif isinstance(event, OrderFilled):
            f = event.fill
            r = requests.get(f.client_order_id)
            yield (
                entry.seq, event.at, f.timestamp, f.client_order_id, f.fill_id,
                r.proposal_id if r else None, r.purpose.value if r else None,
                f.symbol, f.side.value, f.qty, f.price, f.fee, f.liquidity.value, event.remaining,
                r.reduce_only if r else None,
            )  # fmt: skip


# --- orders ----------------------------------------------------------------------------------------

ORDER_COLUMNS = _columns(
    "client_order_id:text proposal_id:text purpose:text symbol:text side:text order_type:text qty:decimal "
    "leverage:decimal limit_price:decimal trigger_price:decimal reduce_only:bool submitted_seq:int "
    "submitted_at:timestamp venue_order_id:text accepted_at:timestamp status:text filled_qty:decimal "
    "average_price:decimal fees:decimal fills:int ended_at:timestamp reason:text"
)


@dataclass(slots=True)
class _OrderRow:
    request: OrderRequest
    seq: int
    at: int
    venue_id: str | None = None
    accepted_at: int | None = None
    status: OrderStatus = OrderStatus.SENDING
    fills: list[Fill] = field(default_factory=list)
    ended_at: int | None = None
    reason: str | None = None

    def row(self) -> tuple[Any, ...]:
        r = self.request
        filled = sum((f.qty for f in self.fills), ZERO)
        cost = sum((f.price * f.qty for f in self.fills), ZERO)
        average = average_price(cost, filled, self.fills[-1].price) if self.fills else None
        return (
            r.client_order_id, r.proposal_id, r.purpose.value, r.symbol, r.side.value, r.order_type.value, r.qty,
            r.leverage, r.limit_price, r.trigger_price, r.reduce_only, self.seq, self.at, self.venue_id,
            self.accepted_at, self.status.value, filled, average, sum((f.fee for f in self.fills), ZERO),
            len(self.fills), self.ended_at, self.reason,
        )  # fmt: skip


def order_rows(entries: Iterable[Entry]) -> Iterator[tuple[Any, ...]]:
    """One row per order, in the order they were submitted, with its state at the end of the journal."""
    orders: dict[str, _OrderRow] = {}
    for entry in entries:
        event = entry.event
        if isinstance(event, OrderSubmitted):
            orders[event.request.client_order_id] = _OrderRow(event.request, entry.seq, event.at)
            continue
        cid = getattr(event, "client_order_id", None)
        if cid is None and isinstance(event, OrderFilled):
            cid = event.fill.client_order_id
        order = orders.get(cid) if cid is not None else None
        if order is None:
            continue
        if isinstance(event, OrderAccepted):
            order.venue_id, order.accepted_at = event.venue_order_id, event.at
            if order.status in (OrderStatus.SENDING, OrderStatus.UNKNOWN):
                order.status = OrderStatus.OPEN
        elif isinstance(event, OrderFilled):
            order.fills.append(event.fill)
            order.status = OrderStatus.FILLED if event.remaining == 0 else OrderStatus.PARTIALLY_FILLED
            if event.remaining == 0:
                order.ended_at = event.at
        elif isinstance(event, OrderCancelled | OrderRejected):
            filled = sum((f.qty for f in order.fills), ZERO)
            ended = OrderStatus.CANCELLED if isinstance(event, OrderCancelled) else OrderStatus.REJECTED
            order.status = OrderStatus.FILLED if filled == order.request.qty else ended
            order.ended_at, order.reason = event.at, event.reason
        elif isinstance(event, OrderUnknown):
            order.status, order.reason = OrderStatus.UNKNOWN, event.reason
    for order in orders.values():
        yield order.row()


# --- decisions -------------------------------------------------------------------------------------

DECISION_COLUMNS = _columns(
    "seq:int time:timestamp proposal_id:text version:int kind:text operator:text reason:text "
    "first_approval_by:text first_approval_at:timestamp diff:text confirmed_risk_increase:bool "
    "symbol:text side:text shown_price:decimal shown_qty:decimal shown_leverage:decimal shown_limit_price:decimal "
    "shown_stop:decimal shown_take_profit:decimal shown_liquidation_price:decimal shown_p_liquidation:float "
    "shown_confidence:float shown_novelty:float shown_novel:bool shown_checks:text shown_blocked:bool "
    "executes_qty:decimal executes_leverage:decimal executes_limit_price:decimal executes_stop:decimal "
    "executes_take_profit:decimal"
)


def decision_rows(entries: Iterable[Entry]) -> Iterator[tuple[Any, ...]]:
    """One row per operator decision (approve, override, reject), with the first of two approvals when four-eyes
    applied, what was shown, and what executes (empty for a rejection)."""
    first: dict[tuple[str, int], ApprovalCounted] = {}
    for entry in entries:
        event = entry.event
        if isinstance(event, ApprovalCounted):
            first.setdefault((event.proposal_id, event.version), event)
        elif isinstance(event, DecisionRecorded):
            s = event.shown
            counted = first.pop((event.proposal_id, s.version), None)
            x = event.executes
            yield (
                entry.seq, event.at, event.proposal_id, s.version, event.kind.value, event.operator, event.reason,
                counted.operator if counted else None, counted.at if counted else None,
                "; ".join(event.diff), event.confirmed_risk_increase,
                s.symbol, s.side.value, s.price, s.qty, s.leverage, s.limit_price, s.stop, s.take_profit,
                s.liquidation_price, s.p_liquidation, s.confidence, s.novelty, s.novel, _checks(s), s.blocked,
                x.qty if x else None, x.leverage if x else None, x.limit_price if x else None,
                x.stop if x else None, x.take_profit if x else None,
            )  # fmt: skip


# --- proposals -------------------------------------------------------------------------------------

PROPOSAL_COLUMNS = _columns(
    "seq:int time:timestamp proposal_id:text version:int cause:text reason:text symbol:text side:text "
    "order_type:text qty:decimal leverage:decimal limit_price:decimal stop:decimal take_profit:decimal "
    "price:decimal notional:decimal liquidation_price:decimal p_liquidation:float liquidation_distance_sigma:float "
    "confidence:float novelty:float novel:bool sigma:float horizon_seconds:float model_id:text why:text "
    "source:text created_at:timestamp expires_at:timestamp checks:text blocked:bool final_status:text"
)

_DECIDED = {
    DecisionKind.APPROVE: ProposalStatus.APPROVED,
    DecisionKind.OVERRIDE: ProposalStatus.OVERRIDDEN,
    DecisionKind.REJECT: ProposalStatus.REJECTED,
}


def proposal_rows(entries: Iterable[Entry]) -> Iterator[tuple[Any, ...]]:
    """One row per proposal version (queued, re-priced, overridden), each with the proposal's status at the end
    of the journal (the same for all its versions)."""
    versions: list[tuple[int, int, str, str, Proposal]] = []
    status: dict[str, ProposalStatus] = {}
    entry_orders: dict[str, tuple[str, Decimal]] = {}
    """Entry order -> (proposal id, quantity filled so far)."""
    for entry in entries:
        e = entry.event
        if isinstance(e, ProposalQueued):
            versions.append((entry.seq, e.at, "queued", "", e.proposal))
            status[e.proposal.id] = ProposalStatus.PENDING
        elif isinstance(e, ProposalRepriced):
            versions.append((entry.seq, e.at, "repriced", e.reason, e.proposal))
        elif isinstance(e, DecisionRecorded):
            status[e.proposal_id] = _DECIDED[e.kind]
            if e.result is not None:
                versions.append((entry.seq, e.at, "overridden", "; ".join(e.diff), e.result))
        elif isinstance(e, ProposalExpired | ProposalKilled | ProposalFailed):
            status[e.proposal_id] = {
                ProposalExpired: ProposalStatus.EXPIRED,
                ProposalKilled: ProposalStatus.KILLED,
                ProposalFailed: ProposalStatus.FAILED,
            }[type(e)]
        elif isinstance(e, OrderSubmitted):
            r = e.request
            if r.purpose is OrderPurpose.ENTRY and r.proposal_id:
                entry_orders[r.client_order_id] = (r.proposal_id, ZERO)
                status[r.proposal_id] = ProposalStatus.SUBMITTED
        elif isinstance(e, OrderFilled):
            known = entry_orders.get(e.fill.client_order_id)
            if known is not None:
                entry_orders[e.fill.client_order_id] = (known[0], known[1] + e.fill.qty)
                status[known[0]] = ProposalStatus.FILLED
        elif isinstance(e, OrderCancelled | OrderRejected):
            known = entry_orders.get(e.client_order_id)
            if known is not None and known[1] == 0:
                status[known[0]] = ProposalStatus.FAILED
    for seq, at, cause, reason, p in versions:
        yield (
            seq, at, p.id, p.version, cause, reason, p.symbol, p.side.value, p.order_type.value, p.qty, p.leverage,
            p.limit_price, p.stop, p.take_profit, p.price, p.notional, p.liquidation_price, p.p_liquidation,
            p.liquidation_distance_sigma, p.confidence, p.novelty, p.novel, p.sigma, p.horizon_seconds, p.model_id,
            p.why, p.source, p.created_at, p.expires_at, _checks(p), p.blocked, status[p.id].value,
        )  # fmt: skip


# --- positions -------------------------------------------------------------------------------------

POSITION_COLUMNS = _columns(
    "number:int symbol:text side:text opened_seq:int opened_at:timestamp closed_seq:int closed_at:timestamp "
    "end:text ended_by:text max_qty:decimal qty:decimal entry_price:decimal exit_price:decimal "
    "realized_pnl:decimal fees:decimal funding:decimal liquidation_loss:decimal net_pnl:decimal "
    "proposals:text fills:int"
)


def _position_row(life: PositionLife) -> tuple[Any, ...]:
    return (
        life.number, life.symbol, "long" if life.side is Side.BUY else "short", life.opened_seq, life.opened_at,
        life.closed_seq, life.closed_at,
        life.end.value, life.ended_by or None, life.max_qty, life.qty, life.entry_price, life.exit_price,
        life.realized_pnl, life.fees, life.funding, life.liquidation_loss, life.net_pnl, ",".join(life.proposals),
        sum(1 for c in life.changes if c.client_order_id),
    )  # fmt: skip


def position_rows(entries: Iterable[Entry]) -> Iterator[tuple[Any, ...]]:
    """One row per position lifecycle, in the order they opened; open ones (end `open`) as they stand."""
    book = PositionBook()
    ended: list[PositionLife] = []
    for entry in entries:
        for update in book.apply(entry.seq, entry.event):
            if update.ended is not None:
                ended.append(update.ended)
    for life in sorted([*ended, *book.open_lives()], key=lambda life: life.number):
        yield _position_row(life)


def _names(*classes: type) -> frozenset[str]:
    return frozenset(cls.__name__ for cls in classes)


_ORDER_EVENTS = _names(OrderSubmitted, OrderAccepted, OrderFilled, OrderCancelled, OrderRejected, OrderUnknown)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table("fills", "one row per fill", FILL_COLUMNS, fill_rows, _names(OrderSubmitted, OrderFilled)),
        Table(
            "orders", "one row per order, with its state at the end of the journal", ORDER_COLUMNS, order_rows,
            _ORDER_EVENTS,
        ),
        Table(
            "decisions", "one row per approve, override or reject", DECISION_COLUMNS, decision_rows,
            _names(ApprovalCounted, DecisionRecorded),
        ),
        Table(
            "proposals", "one row per proposal version", PROPOSAL_COLUMNS, proposal_rows,
            _names(
                ProposalQueued, ProposalRepriced, DecisionRecorded, ProposalExpired, ProposalKilled, ProposalFailed,
                OrderSubmitted, OrderFilled, OrderCancelled, OrderRejected,
            ),
        ),
        Table(
            "positions", "one row per position lifecycle, open to close", POSITION_COLUMNS, position_rows,
            _names(OrderSubmitted, OrderFilled, PositionLiquidated, FundingPaid, KillRequested),
        ),
    )
}  # fmt: skip
"""The typed tables by name (the events table, one row per event, is `guard.journal.export.EVENTS`)."""
