"""One plain sentence per journaled event, for the operator's event log and `guard journal tail`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from guard import codec
from guard.events import (
    AccountFunded,
    AcknowledgmentRecorded,
    ApprovalCounted,
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
from guard.wording import count


def _queued(e: ProposalQueued) -> str:
    p = e.proposal
    return f"{p.id} proposed: {p.side.value} {p.qty} {p.symbol} at {p.leverage}x, confidence {p.confidence:.0%}"


def _decided(e: DecisionRecorded) -> str:
    verb = {"approve": "approved", "override": "overridden", "reject": "rejected"}[e.kind.value]
    diff = f" ({'; '.join(e.diff)})" if e.diff else ""
    why = f": {e.reason}" if e.reason else ""
    return f"{e.proposal_id} {verb} by {e.operator}{diff}{why}"


def _plain(text: str) -> str:
    """A journaled limit value as written (older journals kept numbers as quoted JSON strings: "\\"50000\\"")."""
    if text.startswith('"'):
        try:
            return str(json.loads(text))
        except ValueError:
            return text
    return text


def _amended(e: OrderAmendRequested) -> str:
    changes = []
    if e.new_price != e.old_price:
        changes.append(f"price {e.old_price} -> {e.new_price}")
    if e.new_qty != e.old_qty:
        changes.append(f"qty {e.old_qty} -> {e.new_qty}")
    why = f": {e.reason}" if e.reason else ""
    return f"order {e.client_order_id} amended by {e.operator} ({', '.join(changes)}), now {e.replacement}{why}"


def _filled(e: OrderFilled) -> str:
    f = e.fill
    return f"filled {f.side.value} {f.qty} {f.symbol} at {f.price} (fee {f.fee:.2f}) [{f.client_order_id}]"


_TEXT: dict[type, Callable[[Any], str]] = {
    SessionStarted: lambda e: "daemon started" + ("" if e.previous_clean else " after an unclean exit"),
    SessionEnded: lambda e: f"daemon stopped: {e.reason}",
    AccountFunded: lambda e: f"paper account funded with {e.amount} {e.asset}",
    ProposalQueued: _queued,
    ProposalRefused: lambda e: f"proposal for {e.request.symbol} refused: {e.reason}",
    ProposalRepriced: lambda e: f"{e.proposal.id} re-priced at {e.proposal.price} ({e.reason}): review it again",
    DecisionRecorded: _decided,
    ApprovalCounted: lambda e: f"{e.proposal_id}: first of two approvals, by {e.operator}",
    CommandRefused: lambda e: f"{e.command} by {e.operator} refused: {e.reason}",
    ProposalExpired: lambda e: f"{e.proposal_id} expired: {e.reason}",
    ProposalKilled: lambda e: f"{e.proposal_id} killed",
    ProposalFailed: lambda e: f"{e.proposal_id} failed: {e.reason}",
    OrderSubmitted: lambda e: (
        f"sending {e.request.purpose.value} {e.request.side.value} {e.request.qty} {e.request.symbol}"
        f"{' reduce-only' if e.request.reduce_only else ''} [{e.request.client_order_id}]"
    ),
    OrderFilled: _filled,
    OrderCancelled: lambda e: f"order {e.client_order_id} cancelled: {e.reason}",
    OrderRejected: lambda e: f"order {e.client_order_id} rejected: {e.reason}",
    OrderUnknown: lambda e: f"order {e.client_order_id} outcome UNKNOWN: {e.reason}",
    FundingPaid: lambda e: f"funding {e.amount:+.2f} on {e.symbol} at rate {e.rate}",
    PositionLiquidated: lambda e: f"LIQUIDATED {e.qty} {e.symbol} at {e.price}: lost {e.loss:.2f}",
    TradingStateChanged: lambda e: f"trading {e.previous.value} -> {e.state.value} ({e.reason})",
    KillRequested: lambda e: f"KILL by {e.operator}: {e.reason}",
    KillCompleted: lambda e: (
        f"kill done in {e.elapsed_ms:.0f} ms: {count(e.orders_cancelled, 'order')} cancelled, "
        f"{count(e.positions_flattened, 'position')} flattened, "
        + ("flat verified" if e.flat else "NOT FLAT: " + "; ".join(e.problems))
    ),
    AcknowledgmentRecorded: lambda e: f"{e.kind.value.replace('_', ' ')} acknowledged by {e.operator}",
    ThrottleTripped: lambda e: f"order throttle tripped: {e.orders_in_window} orders in a minute (limit {e.limit})",
    ThrottleReenabled: lambda e: f"order throttle re-enabled by {e.operator}",
    RiskLimitChanged: lambda e: (
        f"risk.{e.key} {_plain(e.old)} -> {_plain(e.new)} by {e.operator}" + (f": {e.reason}" if e.reason else "")
    ),
    OrderCancelRequested: lambda e: (
        f"cancel of order {e.client_order_id} asked by {e.operator}" + (f": {e.reason}" if e.reason else "")
    ),
    OrderAmendRequested: _amended,
    ModelPaused: lambda e: f"model paused by {e.operator}: {e.reason}",
    ModelResumed: lambda e: f"model resumed by {e.operator}",
    SourcePaused: lambda e: f"source {e.source} PAUSED ({e.cause}): {e.reason}",
    SourceResumed: lambda e: f"source {e.source} resumed by {e.operator}" + (f": {e.reason}" if e.reason else ""),
    OperatorPresenceLost: lambda e: (
        f"no operator heartbeat for {e.silent_seconds:.0f} s: pending proposals expired, positions: {e.policy}"
    ),
    FeedHealthChanged: lambda e: f"{e.symbol} market data " + ("recovered" if e.healthy else f"UNHEALTHY: {e.reason}"),
    DeadmanApplied: lambda e: f"dead-man policy {e.policy} applied: {count(e.orders, 'order')} sent, {e.filled} filled",
    JournalFailed: lambda e: f"JOURNAL FAILING, trading HALTED: {e.error}",
    JournalRecovered: lambda e: (
        f"journal writing again after {(e.at - e.failed_at) / 1000:.0f} s; "
        f"{count(e.events_not_recorded, 'event')} left out meanwhile (bars, feed health, refusals); re-arm when ready"
    ),
}


def describe_event(event: Event) -> str:
    """A short sentence saying what happened."""
    text = _TEXT.get(type(event))
    if text is not None:
        return text(event)
    plain = codec.to_plain(event)
    plain.pop("at", None)
    return type(event).__name__ + " " + " ".join(f"{k}={json.dumps(v)}" for k, v in plain.items() if v)
