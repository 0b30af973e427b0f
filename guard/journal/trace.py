"""What happened to one proposal, read from the journal in one pass: the fold behind `guard journal show`.

The journal is the record of truth, so the story is assembled from it alone: the proposal as
first queued and every later version (re-priced, overridden), the model hash it was judged
under (the acknowledgment that bound the session's config to a model), each refusal of a
command on it, the approvals counted and the decision (who, when, why, what was shown), the
orders sent for it and their outcomes, the fills, and the position the entry opened or changed,
followed to its end (closed, stopped, taken profit, liquidated, killed) whatever order ended it.

The fold keeps only what concerns the proposal; every other event costs a dictionary look-up,
so a journal of a million events (nearly all closed bars) is read once at the speed of decoding.
The story's values are `guard.journal.proposal_trace`; how it is printed lives in `guard.journal.story`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guard.domain import (
    ZERO,
    AcknowledgmentKind,
    DecisionKind,
    Fill,
    OrderPurpose,
    OrderRequest,
    OrderStatus,
    Proposal,
    ProposalStatus,
)
from guard.errors import BadInput
from guard.events import (
    AcknowledgmentRecorded,
    ApprovalCounted,
    CommandRefused,
    DecisionRecorded,
    FundingPaid,
    KillRequested,
    OrderAccepted,
    OrderAmendRequested,
    OrderCancelled,
    OrderCancelRequested,
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
    SessionStarted,
)
from guard.journal.chain import Entry, last_seq, read_entries
from guard.journal.phrases import done_by, ending, levels, order_text, purpose_name, side_word
from guard.journal.positions import PositionBook, PositionEnd, PositionLife, PositionUpdate
from guard.journal.proposal_trace import ModelBinding, OrderTrace, ProposalTrace, Step, Version

_ID = re.compile(r"[Pp]?0*(\d{1,9})")


class ProposalNotFound(BadInput):
    """No proposal with this id in the journal; says which is the last one there."""

    def __init__(self, proposal_id: str, last_id: str, path: Path) -> None:
        self.proposal_id = proposal_id
        self.last_id = last_id
        last = f"the last proposal there is {last_id}" if last_id else "it holds no proposal yet"
        super().__init__(f"no proposal {proposal_id} in the journal {path}: {last}")


def parse_proposal_id(text: str) -> str:
    """`P000123` from `P000123`, `p123` or `123`.

    Raises:
        BadInput: not a proposal id.
    """
    match = _ID.fullmatch(text.strip())
    if match is None:
        raise BadInput(f"{text!r} is not a proposal id: P followed by digits, e.g. P000123")
    return f"P{int(match.group(1)):06d}"


@dataclass(slots=True)
class _Order:
    request: OrderRequest
    seq: int
    at: int
    venue_id: str = ""
    status: OrderStatus = OrderStatus.SENDING
    fills: list[Fill] = field(default_factory=list)
    ended_at: int | None = None
    reason: str = ""

    def frozen(self) -> OrderTrace:
        return OrderTrace(
            self.request, self.seq, self.at, self.venue_id, self.status, tuple(self.fills), self.ended_at, self.reason
        )


class _Tracer:
    """The one pass: each event type that can concern the proposal has a handler; the rest are skipped."""

    def __init__(self, proposal_id: str) -> None:
        self.pid = proposal_id
        self.last_id = ""
        self.events = 0
        self.session: SessionStarted | None = None
        self.model_ack: AcknowledgmentRecorded | None = None
        self.book = PositionBook()
        self.versions: list[Version] = []
        self.model: ModelBinding | None = None
        self.approvals: list[ApprovalCounted] = []
        self.decision: DecisionRecorded | None = None
        self.refusals: list[CommandRefused] = []
        self.orders: dict[str, _Order] = {}
        self.lives: dict[int, PositionLife | None] = {}
        """Lifecycles this proposal's entry touched: None while open (read from the book at the end)."""
        self.status = ProposalStatus.PENDING
        self.status_at = 0
        self.status_reason = ""
        self.kill: KillRequested | None = None
        self.steps: list[Step] = []
        self._seq = 0
        self._handlers: dict[type, Callable[[Any], None]] = {t: getattr(self, name) for t, name in _HANDLED.items()}

    def feed(self, entries: Iterable[Entry]) -> None:
        handlers = self._handlers
        for entry in entries:
            handler = handlers.get(type(entry.event))
            if handler is not None:
                self._seq = entry.seq
                handler(entry.event)
            self.events = max(self.events, entry.seq)

    def result(self, path: Path) -> ProposalTrace:
        if not self.versions:
            raise ProposalNotFound(self.pid, self.last_id, path)
        open_lives = {life.number: life for life in self.book.open_lives()}
        lives = tuple(life if life is not None else open_lives[n] for n, life in self.lives.items())
        return ProposalTrace(
            proposal_id=self.pid,
            versions=tuple(self.versions),
            model=self.model,
            approvals=tuple(self.approvals),
            decision=self.decision,
            refusals=tuple(self.refusals),
            orders=tuple(o.frozen() for o in self.orders.values()),
            positions=lives,
            status=self.status,
            status_at=self.status_at,
            status_reason=self.status_reason,
            kill=self.kill,
            steps=tuple(self.steps),
            journal_events=self.events,
        )

    # --- helpers ---------------------------------------------------------------------------

    def _step(self, at: int, kind: str, text: str) -> None:
        self.steps.append(Step(self._seq, at, kind, text))

    def _set_status(self, status: ProposalStatus, at: int, reason: str = "") -> None:
        self.status, self.status_at, self.status_reason = status, at, reason

    def _mine(self, client_order_id: str) -> _Order | None:
        return self.orders.get(client_order_id)

    # --- the session and the model --------------------------------------------------------

    def _session(self, e: SessionStarted) -> None:
        self.session = e

    def _acknowledged(self, e: AcknowledgmentRecorded) -> None:
        if e.kind is AcknowledgmentKind.MODEL_PROPOSALS:
            self.model_ack = e

    def _binding(self, p: Proposal) -> ModelBinding | None:
        if p.source != "model":
            return None
        config_hash = self.session.config_hash if self.session is not None else ""
        ack = self.model_ack
        # The desk takes model proposals only under an acknowledgment for this config and model: the latest
        # one recorded for the session's config names the model hash the proposal was judged under.
        if ack is None or ack.config_hash != config_hash:
            return ModelBinding(p.model_id, "", "", None, config_hash)
        return ModelBinding(p.model_id, ack.model_hash, ack.operator, ack.at, config_hash)

    # --- the proposal ----------------------------------------------------------------------

    def _queued(self, e: ProposalQueued) -> None:
        pid = e.proposal.id
        if pid > self.last_id:
            self.last_id = pid
        if pid != self.pid:
            return
        p = e.proposal
        self.versions.append(Version(self._seq, e.at, "queued", "", p))
        self.model = self._binding(p)
        self._set_status(ProposalStatus.PENDING, e.at)
        self._step(e.at, "queued", f"queued by {p.source} as version {p.version}")

    def _repriced(self, e: ProposalRepriced) -> None:
        p = e.proposal
        if p.id != self.pid:
            return
        self.versions.append(Version(self._seq, e.at, "repriced", e.reason, p))
        self._step(e.at, "repriced", f"re-priced as version {p.version} at {p.price} ({e.reason}){levels(p)}")

    def _refused(self, e: CommandRefused) -> None:
        if e.proposal_id == self.pid:
            self.refusals.append(e)
            self._step(e.at, "refused", f"{e.command} by {e.operator} refused: {e.reason}")

    def _approval(self, e: ApprovalCounted) -> None:
        if e.proposal_id == self.pid:
            self.approvals.append(e)
            why = f": {e.reason}" if e.reason else ""
            self._step(e.at, "approval", f"approval 1 of 2 (four-eyes) by {e.operator} on version {e.version}{why}")

    def _decided(self, e: DecisionRecorded) -> None:
        if e.proposal_id != self.pid:
            return
        self.decision = e
        verb = {DecisionKind.APPROVE: "approved", DecisionKind.OVERRIDE: "overridden", DecisionKind.REJECT: "rejected"}
        counted = [a.operator for a in self.approvals if a.version == e.shown.version]
        second = f", the second of two approvals (first: {counted[-1]})" if counted else ""
        diff = f" [{'; '.join(e.diff)}]" if e.diff else ""
        confirmed = " (risk increase confirmed)" if e.confirmed_risk_increase else ""
        why = f': "{e.reason}"' if e.reason else ""
        self._step(
            e.at,
            "decision",
            f"{verb[e.kind]} by {e.operator} on version {e.shown.version}{second}{diff}{confirmed}{why}",
        )
        if e.kind is DecisionKind.REJECT:
            self._set_status(ProposalStatus.REJECTED, e.at, e.reason)
            return
        kind = ProposalStatus.APPROVED if e.kind is DecisionKind.APPROVE else ProposalStatus.OVERRIDDEN
        self._set_status(kind, e.at, e.reason)
        if e.result is not None:
            self.versions.append(Version(self._seq, e.at, "overridden", "; ".join(e.diff), e.result))

    def _expired(self, e: ProposalExpired) -> None:
        if e.proposal_id == self.pid:
            self._set_status(ProposalStatus.EXPIRED, e.at, e.reason)
            self._step(e.at, "expired", f"expired: {e.reason}")

    def _killed(self, e: ProposalKilled) -> None:
        if e.proposal_id != self.pid:
            return
        self.kill = self.book.last_kill
        who = f" (KILL by {self.kill.operator}: {self.kill.reason})" if self.kill else ""
        self._set_status(ProposalStatus.KILLED, e.at, self.kill.reason if self.kill else "")
        self._step(e.at, "killed", f"killed while pending by the kill switch{who}")

    def _failed(self, e: ProposalFailed) -> None:
        if e.proposal_id == self.pid:
            self._set_status(ProposalStatus.FAILED, e.at, e.reason)
            self._step(e.at, "failed", f"failed: {e.reason}")

    def _kill_requested(self, e: KillRequested) -> None:
        self.book.apply(self._seq, e)

    # --- orders, fills, the position --------------------------------------------------------

    def _submitted(self, e: OrderSubmitted) -> None:
        self.book.apply(self._seq, e)
        r = e.request
        if r.proposal_id != self.pid:
            return
        self.orders[r.client_order_id] = _Order(r, self._seq, e.at)
        if r.purpose is OrderPurpose.ENTRY:
            self._set_status(ProposalStatus.SUBMITTED, e.at)
        self._step(e.at, "order", f"{purpose_name(r.purpose)} order sent: {order_text(r)} [{r.client_order_id}]")

    def _accepted(self, e: OrderAccepted) -> None:
        order = self._mine(e.client_order_id)
        if order is None:
            return
        order.venue_id = e.venue_order_id
        if order.status in (OrderStatus.SENDING, OrderStatus.UNKNOWN):
            order.status = OrderStatus.OPEN
        purpose = purpose_name(order.request.purpose)
        self._step(e.at, "accepted", f"{purpose} order accepted by the venue as {e.venue_order_id}")

    def _filled(self, e: OrderFilled) -> None:
        updates = self.book.apply(self._seq, e)
        f = e.fill
        order = self._mine(f.client_order_id)
        if order is not None:
            order.fills.append(f)
            order.status = OrderStatus.FILLED if e.remaining == 0 else OrderStatus.PARTIALLY_FILLED
            rest = f", {e.remaining} still open" if e.remaining else ""
            self._step(
                e.at,
                "fill",
                f"{purpose_name(order.request.purpose)} filled: {f.side.value} {f.qty} at {f.price}, "
                f"fee {f.fee} ({f.liquidity.value}){rest}",
            )
            if order.request.purpose is OrderPurpose.ENTRY:
                self._set_status(ProposalStatus.FILLED, e.at)
                for update in updates:
                    self.lives.setdefault(update.life, None)
        self._follow(updates, e.at)

    def _position_event(self, e: PositionLiquidated | FundingPaid) -> None:
        self._follow(self.book.apply(self._seq, e), e.at)

    def _follow(self, updates: list[PositionUpdate], at: int) -> None:
        for update in updates:
            if update.life not in self.lives:
                continue
            if update.ended is not None:
                self.lives[update.life] = update.ended
                if update.ended.end is PositionEnd.KILLED and self.kill is None:
                    self.kill = self.book.last_kill
            kind = "liquidated" if update.ended and update.ended.end is PositionEnd.LIQUIDATED else "position"
            self._step(at, "funding" if update.change is None else kind, self._position_text(update))

    def _position_text(self, update: PositionUpdate) -> str:
        change = update.change
        symbol = update.symbol
        position = f"position #{update.life}"
        if change is None:
            return f"funding {update.funding:+} on {position} ({symbol})"
        after = change.qty_after
        if update.ended is not None:
            return f"{position} " + ending(update.ended, self.book.last_kill)
        now = f"{side_word(after)} {abs(after)} {symbol}"
        if change.client_order_id in self.orders and change.purpose is OrderPurpose.ENTRY:
            if abs(after) == change.qty:
                return f"{position} opened: {now} at {change.price}"
            return f"{position} now {now} (this entry: {change.qty} at {change.price})"
        by = done_by(change.purpose, change.proposal_id, change.client_order_id)
        return f"{position} now {now}: {change.qty} at {change.price} by {by}"

    def _cancel_asked(self, e: OrderCancelRequested) -> None:
        if (order := self._mine(e.client_order_id)) is not None:
            why = f": {e.reason}" if e.reason else ""
            self._step(e.at, "cancel", f"{purpose_name(order.request.purpose)} order cancel asked by {e.operator}{why}")

    def _amend_asked(self, e: OrderAmendRequested) -> None:
        if (order := self._mine(e.client_order_id)) is not None:
            why = f": {e.reason}" if e.reason else ""
            self._step(
                e.at,
                "amend",
                f"{purpose_name(order.request.purpose)} order amended by {e.operator} (price {e.old_price} -> "
                f"{e.new_price}, qty {e.old_qty} -> {e.new_qty}) as {e.replacement}{why}",
            )

    def _cancelled(self, e: OrderCancelled) -> None:
        self._ended(e.client_order_id, e.at, OrderStatus.CANCELLED, e.reason, "cancelled")

    def _rejected(self, e: OrderRejected) -> None:
        self._ended(e.client_order_id, e.at, OrderStatus.REJECTED, e.reason, "rejected")

    def _unknown(self, e: OrderUnknown) -> None:
        order = self._mine(e.client_order_id)
        if order is not None:
            order.status, order.reason = OrderStatus.UNKNOWN, e.reason
            self._step(e.at, "unknown", f"{purpose_name(order.request.purpose)} order outcome UNKNOWN: {e.reason}")

    def _ended(self, cid: str, at: int, status: OrderStatus, reason: str, word: str) -> None:
        order = self._mine(cid)
        if order is None:
            return
        filled = sum((f.qty for f in order.fills), ZERO)
        order.status = OrderStatus.FILLED if filled == order.request.qty else status
        order.ended_at, order.reason = at, reason
        self._step(at, word, f"{purpose_name(order.request.purpose)} order {word}: {reason}")
        if order.request.purpose is OrderPurpose.ENTRY and filled == 0:
            self._set_status(ProposalStatus.FAILED, at, reason)


_HANDLED: dict[type, str] = {
    SessionStarted: "_session",
    AcknowledgmentRecorded: "_acknowledged",
    ProposalQueued: "_queued",
    ProposalRepriced: "_repriced",
    CommandRefused: "_refused",
    ApprovalCounted: "_approval",
    DecisionRecorded: "_decided",
    ProposalExpired: "_expired",
    ProposalKilled: "_killed",
    ProposalFailed: "_failed",
    OrderSubmitted: "_submitted",
    OrderAccepted: "_accepted",
    OrderFilled: "_filled",
    OrderCancelled: "_cancelled",
    OrderCancelRequested: "_cancel_asked",
    OrderAmendRequested: "_amend_asked",
    OrderRejected: "_rejected",
    OrderUnknown: "_unknown",
    PositionLiquidated: "_position_event",
    FundingPaid: "_position_event",
    KillRequested: "_kill_requested",
}
"""Which `_Tracer` method reads each event type a proposal's story can be made of."""

TRACE_TYPES = frozenset(cls.__name__ for cls in _HANDLED)
"""The only event types `trace` reads from the journal (the others, closed bars above all, are not decoded)."""


def trace(path: Path | str, proposal_id: str) -> ProposalTrace:
    """Read the journal at `path` once and return the story of `proposal_id`.

    Raises:
        ProposalNotFound: the journal has no such proposal (the error names the last one it has).
        JournalError: the journal cannot be read.
        JournalCorrupt: a row cannot be decoded.
    """
    path = Path(path)
    tracer = _Tracer(proposal_id)
    tracer.events = last_seq(path)
    tracer.feed(read_entries(path, types=TRACE_TYPES))
    return tracer.result(path)
