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
_ZERO = Decimal(0)
_FIVE = Decimal(5)


class InvariantViolation(AssertionError):
    """The journal shows a safety invariant broken (an AssertionError, so property tests shrink it)."""


# Explicit checks that raise, not `assert`: the auditor runs in drills and replays, where -O must not disable it.
# Each message is formatted only when its check fails (a replay audits every event).


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

    @staticmethod
    def rule_for(kind: type) -> Callable[[JournalAuditor, Any], None] | None:
        """The rule `check` applies to events of this type (None: nothing to check), for callers that route
        events by type themselves."""
        return _RULES.get(kind)

    def _queued(self, e: ProposalQueued) -> None:
        if e.proposal.id in self.approved:
            raise InvariantViolation(f"{e.proposal.id} queued after it was approved")

    def _decided(self, e: DecisionRecorded) -> None:
        if e.kind is not DecisionKind.REJECT:
            # Invariant 3: never approve what had expired.
            if e.at >= e.shown.expires_at:
                raise InvariantViolation(f"{e.proposal_id} approved after expiry")
            if e.proposal_id in self.ended:
                raise InvariantViolation(f"{e.proposal_id} approved after it ended")
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
        sent = self.sent.get(cid)
        if sent is None:
            raise InvariantViolation(f"fill for unknown order {cid}")
        request = sent.request
        filled = self.filled[cid] = self.filled.get(cid, _ZERO) + e.fill.qty
        if filled > request.qty:
            raise InvariantViolation(f"{cid} filled more than ordered")
        # Invariant 4: while HALTED only the way out fills.
        if self.state is HALTED and not (request.purpose in ESCAPES or request.reduce_only):
            raise InvariantViolation(f"{cid} filled while HALTED")

    def _submitted(self, e: OrderSubmitted) -> None:
        r = e.request
        cid = r.client_order_id
        # Invariant 2: a client order id is used once, ever.
        if cid in self.sent:
            raise InvariantViolation(f"client order id {cid} reused")
        self.sent[cid] = e
        # Invariant 8: never above the hard cap; above the conservative limit only with an acknowledgment.
        if r.leverage > HARD_LEVERAGE_CAP:
            raise InvariantViolation(f"{cid} at {r.leverage}x, above the hard cap")
        if r.purpose is not OrderPurpose.ENTRY:
            return
        if r.leverage > min(self.conservative_leverage, _FIVE) and not self.leverage_acknowledged:
            raise InvariantViolation(f"{cid} at {r.leverage}x without acknowledgment")
        pid = r.proposal_id
        if pid is None:
            raise InvariantViolation(f"entry order {cid} names no proposal")
        # Invariant 1: an approval or override is journaled before the order.
        approved = self.approved.get(pid)
        if approved is None:
            raise InvariantViolation(f"order for {pid} without a journaled approval")
        # Invariant 2: at most one entry order per proposal.
        if pid in self.entries:
            raise InvariantViolation(f"second entry order for {pid}")
        self.entries[pid] = cid
        executes = approved.executes
        if executes is None or r.qty != executes.qty or r.leverage != executes.leverage:
            raise InvariantViolation(f"entry order for {pid} differs from what was approved")


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
