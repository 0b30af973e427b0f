"""An independent auditor of the journal: reads events in order and checks the safety invariants.

It shares no code with the desk's state machine, so a bug there cannot hide itself here. Used
by the invariant tests, by every drill and every replay ("any invariant violation" in their
reports). It checks invariants 1 (approval journaled before the order), 2 (one entry order per
proposal, client order ids never reused), 3 (nothing approved after it expired or ended),
4 (nothing but escape or reduce-only orders filled while HALTED) and 8 (leverage cap and
acknowledgment).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from guard.domain import ACTIVE, HALTED, HARD_LEVERAGE_CAP, AcknowledgmentKind, DecisionKind, OrderPurpose, TradingState
from guard.events import (
    AcknowledgmentRecorded,
    DecisionRecorded,
    Event,
    OrderFilled,
    OrderSubmitted,
    ProposalExpired,
    ProposalKilled,
    ProposalQueued,
    TradingStateChanged,
)

ESCAPES = frozenset({OrderPurpose.FLATTEN, OrderPurpose.DEADMAN})


class InvariantViolation(AssertionError):
    """The journal shows a safety invariant broken (an AssertionError, so property tests shrink it)."""


def _require(condition: bool, message: str) -> None:
    # Explicit, not `assert`: the auditor runs in drills and replays, where -O must not disable it.
    if not condition:
        raise InvariantViolation(message)


@dataclass
class JournalAuditor:
    """Feed it every event of a journal in order; it raises InvariantViolation at the first breach.

    Attributes:
        conservative_leverage: the configured conservative limit (risk.max_leverage).
    """

    conservative_leverage: Decimal = Decimal(3)
    approved: dict[str, DecisionRecorded] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)
    entries: dict[str, str] = field(default_factory=dict)
    """proposal id -> entry client order id"""
    sent: dict[str, OrderSubmitted] = field(default_factory=dict)
    filled: dict[str, Decimal] = field(default_factory=dict)
    leverage_acknowledged: bool = False
    state: TradingState = ACTIVE
    seen: int = 0

    def feed(self, events: list[Event]) -> None:
        """Check events in journal order."""
        for event in events:
            self.seen += 1
            self.check(event)

    def violations(self, events: list[Event]) -> list[str]:
        """Check events and collect every violation instead of stopping at the first."""
        found = []
        for event in events:
            self.seen += 1
            try:
                self.check(event)
            except InvariantViolation as e:
                found.append(str(e))
        return found

    def check(self, e: Event) -> None:
        """Check one event against what came before it."""
        rule = _RULES.get(type(e))
        if rule is not None:
            rule(self, e)

    def _queued(self, e: ProposalQueued) -> None:
        _require(e.proposal.id not in self.approved, f"{e.proposal.id} queued after it was approved")

    def _decided(self, e: DecisionRecorded) -> None:
        if e.kind is not DecisionKind.REJECT:
            # Invariant 3: never approve what had expired.
            _require(e.at < e.shown.expires_at, f"{e.proposal_id} approved after expiry")
            _require(e.proposal_id not in self.ended, f"{e.proposal_id} approved after it ended")
            self.approved[e.proposal_id] = e

    def _ended(self, e: ProposalExpired | ProposalKilled) -> None:
        self.ended.add(e.proposal_id)

    def _acknowledged(self, e: AcknowledgmentRecorded) -> None:
        if e.kind is AcknowledgmentKind.LEVERAGE:
            self.leverage_acknowledged = True

    def _state_changed(self, e: TradingStateChanged) -> None:
        self.state = e.state

    def _filled(self, e: OrderFilled) -> None:
        cid = e.fill.client_order_id
        _require(cid in self.sent, f"fill for unknown order {cid}")
        request = self.sent[cid].request
        self.filled[cid] = self.filled.get(cid, Decimal(0)) + e.fill.qty
        _require(self.filled[cid] <= request.qty, f"{cid} filled more than ordered")
        if self.state is HALTED:
            # Invariant 4: while HALTED only the way out fills.
            _require(request.purpose in ESCAPES or request.reduce_only, f"{cid} filled while HALTED")

    def _submitted(self, e: OrderSubmitted) -> None:
        r = e.request
        # Invariant 2: a client order id is used once, ever.
        _require(r.client_order_id not in self.sent, f"client order id {r.client_order_id} reused")
        self.sent[r.client_order_id] = e
        # Invariant 8: never above the hard cap; above the conservative limit only with an acknowledgment.
        _require(r.leverage <= HARD_LEVERAGE_CAP, f"{r.client_order_id} at {r.leverage}x, above the hard cap")
        if r.purpose is OrderPurpose.ENTRY and r.leverage > min(self.conservative_leverage, Decimal(5)):
            _require(self.leverage_acknowledged, f"{r.client_order_id} at {r.leverage}x without acknowledgment")
        if r.purpose is OrderPurpose.ENTRY:
            pid = r.proposal_id
            _require(pid is not None, f"entry order {r.client_order_id} names no proposal")
            assert pid is not None
            # Invariant 1: an approval or override is journaled before the order.
            _require(pid in self.approved, f"order for {pid} without a journaled approval")
            # Invariant 2: at most one entry order per proposal.
            _require(pid not in self.entries, f"second entry order for {pid}")
            self.entries[pid] = r.client_order_id
            executes = self.approved[pid].executes
            _require(
                executes is not None and r.qty == executes.qty and r.leverage == executes.leverage,
                f"entry order for {pid} differs from what was approved",
            )


_RULES: dict[type, Callable[[JournalAuditor, Any], None]] = {
    ProposalQueued: JournalAuditor._queued,
    DecisionRecorded: JournalAuditor._decided,
    ProposalExpired: JournalAuditor._ended,
    ProposalKilled: JournalAuditor._ended,
    AcknowledgmentRecorded: JournalAuditor._acknowledged,
    TradingStateChanged: JournalAuditor._state_changed,
    OrderSubmitted: JournalAuditor._submitted,
    OrderFilled: JournalAuditor._filled,
}
"""The events the invariants concern, each with its rule (looked up by type: a replay audits every event)."""
