"""The guard's state, folded from journaled events and from nothing else.

Live operation and restart use the same `apply()`: whatever the daemon believes, a replay of
the journal believes too. That is what makes "a restart rebuilds the same state" checkable.
"""

from __future__ import annotations

import bisect
import json
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from guard import codec
from guard.approval.records import (
    COMMAND_WINDOW_MS,
    DAY_MS as DAY_MS,
    CommandRecord,
    DailyPnl,
    LiveOrders,
    OrderRecord,
    ProposalRecord,
)
from guard.broker.ledger import Account, Bookings
from guard.config import RiskSection, replace_setting
from guard.domain import (
    ACTIVE,
    CLOSE_PURPOSE,
    DEADMAN_PURPOSE,
    ENTRY_PURPOSE,
    HALTED,
    ORDER_CANCELLED,
    ORDER_FILLED,
    ORDER_OPEN,
    ORDER_PARTLY_FILLED,
    ORDER_REJECTED,
    ORDER_SENDING,
    ORDER_UNKNOWN,
    PENDING,
    PROPOSAL_FAILED,
    PROPOSAL_FILLED,
    PROPOSAL_SUBMITTED,
    AcknowledgmentKind,
    DecisionKind,
    MarketSpec,
    OrderPurpose,
    OrderStatus,
    ProposalStatus,
    TradingState,
)
from guard.errors import ConfigError, JournalCorrupt
from guard.events import (
    AccountFunded,
    AcknowledgmentRecorded,
    ApprovalCounted,
    BarRecorded,
    CommandAnswered,
    CommandReceived,
    CommandRefused,
    DeadmanApplied,
    DecisionRecorded,
    Event,
    FeedHealthChanged,
    FundingPaid,
    JournalFailed,
    JournalRecovered,
    KillCompleted,
    KillRequested,
    ModelPaused,
    ModelResumed,
    OperatorPresenceLost,
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
    ProposalRefused,
    ProposalRepriced,
    RiskLimitChanged,
    SessionEnded,
    SessionStarted,
    SourcePaused,
    SourceResumed,
    ThrottleReenabled,
    ThrottleTripped,
    TradingStateChanged,
)

THROTTLE_WINDOW_MS = 60_000
THROTTLED_PURPOSES = frozenset({OrderPurpose.ENTRY, OrderPurpose.CLOSE})
"""Orders a person asked for count against the throttle; the kill switch's and protective ones do not."""


@dataclass(slots=True)
class GuardState:
    """Everything the guard knows, rebuilt from the journal by applying its events in order."""

    specs: Mapping[str, MarketSpec]
    limits: RiskSection = field(default_factory=RiskSection)
    """The risk limits in force: the config's, with every change journaled since applied once, as it is folded
    (reading them is an attribute read, never a re-validation)."""
    account: Account = field(init=False)
    trading_state: TradingState = ACTIVE
    state_reason: str = ""
    proposals: dict[str, ProposalRecord] = field(default_factory=dict)
    proposal_count: int = 0
    orders: dict[str, OrderRecord] = field(default_factory=dict)
    close_count: int = 0
    acknowledgments: dict[AcknowledgmentKind, AcknowledgmentRecorded] = field(default_factory=dict)
    throttle_latched: bool = False
    order_times: deque[int] = field(default_factory=deque)
    kill_count: int = 0
    kill_in_progress: bool = False
    model_paused: bool = False
    model_pause_reason: str = ""
    paused_sources: dict[str, SourcePaused] = field(default_factory=dict)
    """Proposal sources paused (on their record, or for flooding) and not resumed since, by name."""
    session_open: bool = False
    sessions: int = 0
    daily: DailyPnl = field(default_factory=DailyPnl)
    deadman_pending: str = ""
    """A dead-man policy ("reduce", "flatten") recorded and not yet applied."""
    deadman_orders: int = 0
    """Dead-man orders submitted since the policy was recorded."""
    risk_limits: dict[str, str] = field(default_factory=dict)
    """Risk limits changed at run time (key -> new value as journaled), folded into `limits`."""
    limit_changes: dict[str, RiskLimitChanged] = field(default_factory=dict)
    """The last change of each risk limit changed at run time: who, when and why."""
    commands: dict[tuple[str, str], CommandRecord] = field(default_factory=dict)
    """Command ids received in the last COMMAND_WINDOW_MS, by (credential, id), oldest first (invariant 13)."""
    journal_id: str = ""
    """Short id of this journal (from its first event), part of every client order id."""
    last_at: int = 0
    events_applied: int = 0
    _pending_ids: dict[str, None] = field(default_factory=dict)
    """Ids that were PENDING when last looked at, in queue order: `pending()` stays linear in what is
    pending, not in every proposal ever made (a long replay makes tens of thousands)."""
    _pending_at: tuple[int, tuple[ProposalRecord, ...]] = field(default=(-1, ()), repr=False, compare=False)
    """`pending()` as it was after that many events applied: it changes only with an event."""
    bookings: Bookings | None = field(default=None, repr=False, compare=False)
    """Shared with the paper venue's ledger, so each fill is worked out once (`guard.broker.ledger.Bookings`)."""
    live: LiveOrders = field(default_factory=LiveOrders, repr=False, compare=False)
    """The orders not known to have ended, and the reduce-only ones among them by symbol and purpose."""

    def __post_init__(self) -> None:
        self.account = Account(self.specs, bookings=self.bookings)

    # --- reading ---------------------------------------------------------------------

    def pending(self) -> list[ProposalRecord]:
        """Proposals waiting for a decision, oldest first."""
        if not self._pending_ids:
            return []
        at, known = self._pending_at
        if at == self.events_applied:
            return list(known)
        live = [r for r in map(self.proposals.__getitem__, self._pending_ids) if r.status is PENDING]
        if len(live) != len(self._pending_ids):
            self._pending_ids = {r.proposal.id: None for r in live}
        if len(live) > 1:
            live.sort(key=_queue_order)
        self._pending_at = (self.events_applied, tuple(live))
        return live

    def live_orders(self) -> list[OrderRecord]:
        """Orders that have not ended (sending, open, partly filled, in doubt), in submission order."""
        return self.live.orders()

    def open_orders(self) -> list[OrderRecord]:
        return [o for o in self.live_orders() if o.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)]

    def orders_in_doubt(self) -> list[OrderRecord]:
        """Orders whose intent is journaled but whose outcome is not."""
        return [o for o in self.live_orders() if o.status in (OrderStatus.SENDING, OrderStatus.UNKNOWN)]

    def orders_last_minute(self, now_ms: int) -> int:
        return len(self.order_times) - bisect.bisect_right(self.order_times, now_ms - THROTTLE_WINDOW_MS)

    def snapshot(self) -> dict[str, Any]:
        """A plain, comparable picture of the whole state (restart and replay must agree on it)."""
        return {
            "trading_state": self.trading_state.value,
            "state_reason": self.state_reason,
            "proposals": {
                pid: {
                    "proposal": codec.to_plain(r.proposal),
                    "status": r.status.value,
                    "decided_by": r.decided_by,
                    "decision": r.decision.value if r.decision else None,
                    "reason": r.reason,
                    "entry_order": r.entry_order,
                    "approvals": list(r.approvals),
                }
                for pid, r in sorted(self.proposals.items())
            },
            "proposal_count": self.proposal_count,
            "orders": {
                cid: {
                    "request": codec.to_plain(o.request),
                    "status": o.status.value,
                    "filled": str(o.filled),
                    "venue_id": o.venue_id,
                    "reason": o.reason,
                }
                for cid, o in sorted(self.orders.items())
            },
            "account": self.account.snapshot(),
            "acknowledgments": {k.value: codec.to_plain(a) for k, a in sorted(self.acknowledgments.items())},
            "throttle_latched": self.throttle_latched,
            "order_times": list(self.order_times),
            "kill_count": self.kill_count,
            "model_paused": self.model_paused,
            "session_open": self.session_open,
            "sessions": self.sessions,
            "daily": [self.daily.day, str(self.daily.realized)],
            "risk_limits": dict(sorted(self.risk_limits.items())),
            "journal_id": self.journal_id,
            "close_count": self.close_count,
            # Only once there is one: a journal from before sources folds to the snapshot it always had.
            **({"paused_sources": sorted(self.paused_sources)} if self.paused_sources else {}),
        }

    # --- folding ---------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)
        if event.at > self.last_at:
            self.last_at = event.at
        self.events_applied += 1

    def _session_started(self, e: SessionStarted) -> None:
        self.journal_id = self.journal_id or e.journal_id
        self.session_open = True
        self.sessions += 1

    def _session_ended(self, e: SessionEnded) -> None:
        self.session_open = False

    def _funded(self, e: AccountFunded) -> None:
        self.account.deposit(e.amount)

    def _queued(self, e: ProposalQueued) -> None:
        self.proposals[e.proposal.id] = ProposalRecord(e.proposal)
        self._pending_ids[e.proposal.id] = None
        self.proposal_count += 1

    def _repriced(self, e: ProposalRepriced) -> None:
        record = self._proposal(e.proposal.id)
        record.proposal = e.proposal
        record.approvals = ()

    def _command_received(self, e: CommandReceived) -> None:
        commands = self.commands
        while commands:
            oldest = next(iter(commands.values()))
            if oldest.at > e.at - COMMAND_WINDOW_MS:
                break
            del commands[next(iter(commands))]
        commands[(e.credential, e.command_id)] = CommandRecord(e.at, e.command)

    def _command_answered(self, e: CommandAnswered) -> None:
        record = self.commands.get((e.credential, e.command_id))
        if record is not None:
            record.answered, record.ok, record.reason, record.data = True, e.ok, e.reason, e.data

    def _approval_counted(self, e: ApprovalCounted) -> None:
        record = self._proposal(e.proposal_id)
        record.approvals = (*record.approvals, e.approver)

    def _decided(self, e: DecisionRecorded) -> None:
        record = self._proposal(e.proposal_id)
        record.decision = e.kind
        record.decided_by = e.operator
        record.reason = e.reason
        if e.kind is DecisionKind.REJECT:
            record.status = ProposalStatus.REJECTED
        else:
            record.status = ProposalStatus.APPROVED if e.kind is DecisionKind.APPROVE else ProposalStatus.OVERRIDDEN
            if e.result is not None:
                record.proposal = e.result

    def _expired(self, e: ProposalExpired) -> None:
        record = self._proposal(e.proposal_id)
        record.status = ProposalStatus.EXPIRED
        record.reason = e.reason

    def _killed(self, e: ProposalKilled) -> None:
        self._proposal(e.proposal_id).status = ProposalStatus.KILLED

    def _failed(self, e: ProposalFailed) -> None:
        record = self._proposal(e.proposal_id)
        record.status = ProposalStatus.FAILED
        record.reason = e.reason

    def _submitted(self, e: OrderSubmitted) -> None:
        request = e.request
        order = self.orders[request.client_order_id] = OrderRecord(request, submitted_at=e.at)
        self.live.submitted(order)
        if request.purpose in THROTTLED_PURPOSES:
            if self.order_times and e.at < self.order_times[-1]:
                bisect.insort(self.order_times, e.at)  # kept sorted, so counting the window is a search
            else:
                self.order_times.append(e.at)
            while self.order_times and self.order_times[0] <= e.at - THROTTLE_WINDOW_MS:
                self.order_times.popleft()
        if request.purpose is CLOSE_PURPOSE:
            self.close_count += 1
        elif request.purpose is DEADMAN_PURPOSE:
            self.deadman_orders += 1
        if request.purpose is ENTRY_PURPOSE and request.proposal_id:
            record = self._proposal(request.proposal_id)
            if record.status is not PROPOSAL_FILLED:  # an amended entry's replacement, after a partial fill
                record.status = PROPOSAL_SUBMITTED
            record.entry_order = request.client_order_id

    def _accepted(self, e: OrderAccepted) -> None:
        order = self._order(e.client_order_id)
        order.venue_id = e.venue_order_id
        if order.status in (ORDER_SENDING, ORDER_UNKNOWN):
            order.status = ORDER_OPEN
            self.account.reserve_for(order.request)

    def _filled(self, e: OrderFilled) -> None:
        order = self._order(e.fill.client_order_id)
        order.filled += e.fill.qty
        order.status = ORDER_FILLED if e.remaining == 0 else ORDER_PARTLY_FILLED
        self.live.changed(order, self.orders)
        effect = self.account.apply_fill(e.fill, order.request.leverage)
        self.daily.add(e.at, effect.realized_pnl - e.fill.fee)
        if order.request.purpose is ENTRY_PURPOSE and order.request.proposal_id:
            self._proposal(order.request.proposal_id).status = PROPOSAL_FILLED

    def _order_ended(self, cid: str, status: OrderStatus, reason: str) -> None:
        order = self._order(cid)
        order.reason = reason
        order.status = ORDER_FILLED if order.filled == order.request.qty else status
        self.live.changed(order, self.orders)
        self.account.release(cid)
        if order.request.purpose is ENTRY_PURPOSE and order.request.proposal_id and order.filled == 0:
            record = self._proposal(order.request.proposal_id)
            if record.status is not PROPOSAL_FILLED:  # an earlier order of the proposal filled (amended)
                record.status = PROPOSAL_FAILED
                record.reason = reason

    def _cancelled(self, e: OrderCancelled) -> None:
        self._order_ended(e.client_order_id, ORDER_CANCELLED, e.reason)

    def _rejected(self, e: OrderRejected) -> None:
        self._order_ended(e.client_order_id, ORDER_REJECTED, e.reason)

    def _unknown(self, e: OrderUnknown) -> None:
        order = self._order(e.client_order_id)
        order.status = ORDER_UNKNOWN
        order.reason = e.reason
        self.live.changed(order, self.orders)

    def _funding(self, e: FundingPaid) -> None:
        self.account.apply_funding(e.symbol, e.amount)
        self.daily.add(e.at, e.amount)

    def _liquidated(self, e: PositionLiquidated) -> None:
        self.account.liquidate(e.symbol)
        self.daily.add(e.at, -e.loss)

    def _state_changed(self, e: TradingStateChanged) -> None:
        self.trading_state = e.state
        self.state_reason = e.reason

    def _kill_requested(self, e: KillRequested) -> None:
        self.kill_count += 1
        self.kill_in_progress = True

    def _kill_completed(self, e: KillCompleted) -> None:
        self.kill_in_progress = False

    def _acknowledged(self, e: AcknowledgmentRecorded) -> None:
        self.acknowledgments[e.kind] = e

    def _throttle_tripped(self, e: ThrottleTripped) -> None:
        self.throttle_latched = True

    def _throttle_reenabled(self, e: ThrottleReenabled) -> None:
        self.throttle_latched = False
        self.order_times.clear()

    def _limit_changed(self, e: RiskLimitChanged) -> None:
        try:
            # Decimals, not floats: a notional of 999999999.12345678 comes back exactly as it was set.
            self.limits = replace_setting(self.limits, "risk", e.key, json.loads(e.new, parse_float=Decimal))
        except (ConfigError, ValueError) as error:
            raise JournalCorrupt(f"risk limit change {e.key} = {e.new} cannot be applied: {error}") from None
        self.risk_limits[e.key] = e.new
        self.limit_changes[e.key] = e

    def _model_paused(self, e: ModelPaused) -> None:
        self.model_paused = True
        self.model_pause_reason = e.reason

    def _model_resumed(self, e: ModelResumed) -> None:
        self.model_paused = False
        self.model_pause_reason = ""

    def _source_paused(self, e: SourcePaused) -> None:
        self.paused_sources[e.source] = e

    def _source_resumed(self, e: SourceResumed) -> None:
        self.paused_sources.pop(e.source, None)

    def _presence_lost(self, e: OperatorPresenceLost) -> None:
        self.deadman_pending = "" if e.policy == "hold" else e.policy
        self.deadman_orders = 0

    def _deadman_applied(self, e: DeadmanApplied) -> None:
        self.deadman_pending = ""

    def _journal_recovered(self, e: JournalRecovered) -> None:
        if self.trading_state is HALTED and self.state_reason.startswith("journal failing"):
            self.state_reason = (
                "the journal failed and writes again; what happened meanwhile is on record: review, then re-arm"
            )

    def _proposal(self, proposal_id: str) -> ProposalRecord:
        try:
            return self.proposals[proposal_id]
        except KeyError:
            raise JournalCorrupt(f"event refers to unknown proposal {proposal_id}") from None

    def _order(self, client_order_id: str) -> OrderRecord:
        try:
            return self.orders[client_order_id]
        except KeyError:
            raise JournalCorrupt(f"event refers to unknown order {client_order_id}") from None


def _queue_order(record: ProposalRecord) -> tuple[int, str]:
    return record.proposal.created_at, record.proposal.id


def _noop(state: GuardState, event: Any) -> None:
    pass


_HANDLERS: dict[type, Callable[[GuardState, Any], None]] = {
    SessionStarted: GuardState._session_started,
    SessionEnded: GuardState._session_ended,
    AccountFunded: GuardState._funded,
    ProposalQueued: GuardState._queued,
    ProposalRefused: _noop,
    ProposalRepriced: GuardState._repriced,
    DecisionRecorded: GuardState._decided,
    ApprovalCounted: GuardState._approval_counted,
    CommandRefused: _noop,
    CommandReceived: GuardState._command_received,
    CommandAnswered: GuardState._command_answered,
    ProposalExpired: GuardState._expired,
    ProposalKilled: GuardState._killed,
    ProposalFailed: GuardState._failed,
    OrderSubmitted: GuardState._submitted,
    OrderAccepted: GuardState._accepted,
    OrderFilled: GuardState._filled,
    OrderCancelled: GuardState._cancelled,
    OrderRejected: GuardState._rejected,
    OrderUnknown: GuardState._unknown,
    OrderCancelRequested: _noop,
    OrderAmendRequested: _noop,
    FundingPaid: GuardState._funding,
    PositionLiquidated: GuardState._liquidated,
    TradingStateChanged: GuardState._state_changed,
    KillRequested: GuardState._kill_requested,
    KillCompleted: GuardState._kill_completed,
    AcknowledgmentRecorded: GuardState._acknowledged,
    ThrottleTripped: GuardState._throttle_tripped,
    ThrottleReenabled: GuardState._throttle_reenabled,
    RiskLimitChanged: GuardState._limit_changed,
    ModelPaused: GuardState._model_paused,
    ModelResumed: GuardState._model_resumed,
    SourcePaused: GuardState._source_paused,
    SourceResumed: GuardState._source_resumed,
    OperatorPresenceLost: GuardState._presence_lost,
    DeadmanApplied: GuardState._deadman_applied,
    FeedHealthChanged: _noop,
    BarRecorded: _noop,
    JournalFailed: _noop,
    JournalRecovered: GuardState._journal_recovered,
}
