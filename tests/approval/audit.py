"""An independent auditor of the journal: reads events in order and asserts the safety invariants.

It shares no code with the desk's state machine, so a bug there cannot hide itself here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from guard.domain import HARD_LEVERAGE_CAP, AcknowledgmentKind, DecisionKind, OrderPurpose, TradingState
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

ESCAPES = {OrderPurpose.FLATTEN, OrderPurpose.DEADMAN}


@dataclass
class JournalAuditor:
    conservative_leverage: Decimal = Decimal(3)
    approved: dict[str, DecisionRecorded] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)
    entries: dict[str, str] = field(default_factory=dict)
    """proposal id -> entry client order id"""
    sent: dict[str, OrderSubmitted] = field(default_factory=dict)
    filled: dict[str, Decimal] = field(default_factory=dict)
    leverage_acknowledged: bool = False
    state: TradingState = TradingState.ACTIVE
    seen: int = 0

    def feed(self, events: list[Event]) -> None:
        for event in events:
            self.seen += 1
            self.check(event)

    def check(self, e: Event) -> None:
        if isinstance(e, ProposalQueued):
            assert e.proposal.id not in self.approved
        elif isinstance(e, DecisionRecorded):
            if e.kind is not DecisionKind.REJECT:
                # Invariant 3: never approve what had expired.
                assert e.at < e.shown.expires_at, f"{e.proposal_id} approved after expiry"
                assert e.proposal_id not in self.ended, f"{e.proposal_id} approved after it ended"
                self.approved[e.proposal_id] = e
        elif isinstance(e, (ProposalExpired, ProposalKilled)):
            self.ended.add(e.proposal_id)
        elif isinstance(e, AcknowledgmentRecorded) and e.kind is AcknowledgmentKind.LEVERAGE:
            self.leverage_acknowledged = True
        elif isinstance(e, TradingStateChanged):
            self.state = e.state
        elif isinstance(e, OrderSubmitted):
            r = e.request
            # Invariant 2: a client order id is used once, ever.
            assert r.client_order_id not in self.sent, f"client order id {r.client_order_id} reused"
            self.sent[r.client_order_id] = e
            # Invariant 8: never above the hard cap; above the conservative limit only with an acknowledgment.
            assert r.leverage <= HARD_LEVERAGE_CAP
            if r.purpose is OrderPurpose.ENTRY and r.leverage > min(self.conservative_leverage, Decimal(5)):
                assert self.leverage_acknowledged, f"{r.client_order_id} at {r.leverage}x without acknowledgment"
            if r.purpose is OrderPurpose.ENTRY:
                pid = r.proposal_id
                assert pid is not None
                # Invariant 1: an approval or override is journaled before the order.
                assert pid in self.approved, f"order for {pid} without a journaled approval"
                # Invariant 2: at most one entry order per proposal.
                assert pid not in self.entries, f"second entry order for {pid}"
                self.entries[pid] = r.client_order_id
                decision = self.approved[pid]
                executes = decision.executes
                assert executes is not None and r.qty == executes.qty
                assert r.leverage == executes.leverage
            if r.purpose not in ESCAPES:
                # Invariant 4 (journal side): the gate may record the intent, but never a fill while HALTED.
                pass
        elif isinstance(e, OrderFilled):
            cid = e.fill.client_order_id
            assert cid in self.sent, f"fill for unknown order {cid}"
            request = self.sent[cid].request
            self.filled[cid] = self.filled.get(cid, Decimal(0)) + e.fill.qty
            assert self.filled[cid] <= request.qty, f"{cid} filled more than ordered"
            if self.state is TradingState.HALTED:
                assert request.purpose in ESCAPES or request.reduce_only, f"{cid} filled while HALTED"
