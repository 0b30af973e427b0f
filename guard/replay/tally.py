"""Replay's count of what the journal recorded: the figures of `ReplayStats`, and the auditor's findings.

The replay's journal hands every event to a `Tally` as it is appended. Each event type has one handler
(looked up by type, not tried in turn): the journal appends about eleven events per proposal, and this
runs for every one of them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from guard.approval.records import ProposalRecord
from guard.domain import OrderPurpose, Position, ProposalStatus, TradingState
from guard.events import (
    DecisionRecorded,
    Event,
    FundingPaid,
    ModelPaused,
    OrderFilled,
    OrderSubmitted,
    PositionLiquidated,
    ProposalQueued,
    ProposalRefused,
    TradingStateChanged,
)
from guard.journal.audit import JournalAuditor
from guard.replay.result import ReplayStats

_Route = tuple[Callable[[JournalAuditor, Any], None] | None, Callable[["Tally", Any], None] | None]
"""An event type's rule in the auditor and handler in the tally."""


class Tally:
    """Counts events into `stats` and checks each against the safety invariants (`JournalAuditor`).

    Args:
        max_leverage: the configured conservative leverage limit, for the auditor.
    """

    def __init__(self, stats: ReplayStats, max_leverage: Decimal) -> None:
        self.stats = stats
        self.violations: list[str] = []
        """What the auditor found, in journal order."""
        self.reducing_at: int | None = None
        """When trading last latched REDUCING."""
        self._auditor = JournalAuditor(max_leverage)
        self._routes: dict[type, _Route] = {}
        """Per event type: the auditor's rule and this tally's handler (either may be None)."""
        self._purpose: dict[str, str] = {}
        self._held: dict[str, tuple[Decimal, Decimal]] = {}
        """Per symbol held: (signed qty, leverage), as of the last `held` call."""

    def __call__(self, events: Sequence[Event]) -> None:
        self.stats.events += len(events)
        auditor = self._auditor
        routes = self._routes
        for event in events:
            kind = type(event)
            route = routes.get(kind)
            if route is None:
                route = routes[kind] = (JournalAuditor.rule_for(kind), _HANDLERS.get(kind))
            rule, handler = route
            if rule is not None:
                try:
                    rule(auditor, event)
                except AssertionError as e:
                    self.violations.append(str(e) or kind.__name__)
            if handler is not None:
                handler(self, event)

    def held(self, positions: Iterable[Position]) -> None:
        """Take the positions held now: one opened from flat (or flipped) counts at its leverage."""
        opened = self.stats.positions_opened
        previous = self._held
        for p in positions:
            old = previous.get(p.symbol)
            if old is None or (old[0] > 0) != (p.qty > 0):
                key = leverage_key(p.leverage)
                opened[key] = opened.get(key, 0) + 1
        self._held = {p.symbol: (p.qty, p.leverage) for p in positions}

    def by_leverage(self, proposals: Iterable[ProposalRecord]) -> dict[str, dict[str, float]]:
        """Proposals, approvals, positions opened and liquidations per leverage."""
        rows: dict[str, dict[str, float]] = {}

        def row(key: str) -> dict[str, float]:
            r = rows.get(key)
            if r is None:
                r = rows[key] = {"proposals": 0, "approved": 0, "positions": 0, "liquidated": 0}
            return r

        for record in proposals:
            r = row(leverage_key(record.proposal.leverage))
            r["proposals"] += 1
            r["approved"] += record.decision is not None and record.status is not ProposalStatus.REJECTED
        for key, count in self.stats.positions_opened.items():
            row(key)["positions"] = count
        for key, count in self.stats.liquidated.items():
            row(key)["liquidated"] = count
        return dict(sorted(rows.items(), key=lambda kv: float(kv[0])))

    # --- one handler per event type ---------------------------------------------------

    def _queued(self, e: ProposalQueued) -> None:
        self.stats.proposals += 1

    def _refused(self, e: ProposalRefused) -> None:
        self.stats.refused += 1

    def _decided(self, e: DecisionRecorded) -> None:
        if e.executes is None:
            self.stats.rejected += 1
        else:
            self.stats.approved += 1

    def _submitted(self, e: OrderSubmitted) -> None:
        request = e.request
        self._purpose[request.client_order_id] = _PURPOSES[request.purpose]

    def _filled(self, e: OrderFilled) -> None:
        stats = self.stats
        stats.fills += 1
        purpose = self._purpose.get(e.fill.client_order_id, "")
        if purpose == "entry":
            stats.entries_filled += 1
        elif purpose == "stop":
            stats.stops += 1
        elif purpose == "take_profit":
            stats.take_profits += 1
        stats.markers.append((e.at, purpose or "fill", e.fill.symbol))

    def _liquidated(self, e: PositionLiquidated) -> None:
        stats = self.stats
        stats.liquidations += 1
        key = leverage_key(self._held.get(e.symbol, (Decimal(0), Decimal(0)))[1])
        stats.liquidated[key] = stats.liquidated.get(key, 0) + 1
        stats.markers.append((e.at, "liquidation", e.symbol))

    def _funding(self, e: FundingPaid) -> None:
        self.stats.funding_payments += 1

    def _state_changed(self, e: TradingStateChanged) -> None:
        if e.state is TradingState.REDUCING:
            self.stats.reducing_latches += 1
            self.reducing_at = e.at
        elif e.previous is TradingState.REDUCING and e.state is TradingState.ACTIVE:
            self.stats.rearms += 1

    def _model_paused(self, e: ModelPaused) -> None:
        self.stats.model_paused = e.reason
        self.stats.model_pauses += 1


_PURPOSES = {purpose: purpose.value for purpose in OrderPurpose}
"""Each purpose's name, looked up (an enum's `.value` is a descriptor call)."""

_HANDLERS: Mapping[type, Callable[[Tally, Any], None]] = {
    ProposalQueued: Tally._queued,
    ProposalRefused: Tally._refused,
    DecisionRecorded: Tally._decided,
    OrderSubmitted: Tally._submitted,
    OrderFilled: Tally._filled,
    PositionLiquidated: Tally._liquidated,
    FundingPaid: Tally._funding,
    TradingStateChanged: Tally._state_changed,
    ModelPaused: Tally._model_paused,
}


@functools.cache  # a replay's proposals carry a handful of distinct leverages
def leverage_key(leverage: Decimal) -> str:
    """A leverage as the tables show it: 3, 2.5 (no trailing zeros; equal leverages alike, 3.0 as 3)."""
    return f"{leverage.normalize():f}"
