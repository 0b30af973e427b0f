"""What the operator may do right now, and why not: the words behind every greyed-out key.

A pure function of what the console knows. The daemon decides whether a proposal can be approved
(`ProposalView.can_approve` / `why_not`); this adds only what the console itself knows: whether it
is connected (and for how long), whether a decision on the proposal is already on its way, whether
the proposal under the cursor just changed by itself, and whether it is on screen yet.

Nothing typed while the daemon is out of reach runs, nor in the moment after it comes back (the
screen just changed under the operator's hands): every key but the kill switch and help waits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from guard.api.protocol import ProposalView, StatusView
from guard.domain import TradingState, Verdict

DECISIONS = ("approve", "override", "reject")
ALWAYS = frozenset({"kill", "help"})
"""Actions that never wait: the kill switch (it has its own ways past a dead link) and reading the keys."""
OFFLINE = "not connected to the daemon: what you see is stale, and no key but KILL does anything until it is back"


@dataclass(frozen=True, slots=True)
class Facts:
    """What the console knows at this moment."""

    link_up: bool
    status: StatusView | None
    view: ProposalView | None
    """The proposal under the cursor."""
    in_flight: Mapping[str, str]
    """Proposal id -> the decision already sent on it ("approval", "override", "rejection")."""
    cursor_moved_by_itself: bool
    """The proposal under the cursor changed without the operator (the one they saw left, or was re-priced)."""
    has_positions: bool
    has_daemon: bool = True
    just_connected: bool = False
    """The console (re)connected a moment ago: the screen just changed from stale to live."""
    on_screen: bool = True
    """The card shows the selected proposal at its current version (a key refers to what was drawn)."""


def needs_leverage_acknowledgment(view: ProposalView, leverage_acknowledged: bool) -> bool:
    """Whether the daemon blocked this proposal only for want of the leverage acknowledgment."""
    if leverage_acknowledged or view.can_approve:
        return False
    blocks = [c for c in view.proposal.checks if c.verdict is Verdict.BLOCK]
    return bool(blocks) and all(c.name == "leverage" and "acknowledg" in c.reason for c in blocks)


def why_not(action: str, facts: Facts) -> str:
    """Why `action` is unavailable, in words ("" when it is available)."""
    if action in ALWAYS:
        return ""
    if not facts.link_up:
        return OFFLINE
    if facts.just_connected:
        return "the console just reconnected: look first"
    if action in DECISIONS:
        return _why_not_decide(action, facts)
    status = facts.status
    if action in ("rearm", "pause_model", "close_position", "reenable_throttle", "acknowledge"):
        if status is None:
            return "the daemon has not sent its state yet"
        if action == "rearm" and status.trading_state is TradingState.ACTIVE:
            return "trading is already ACTIVE"
        if action == "pause_model" and not status.model.loaded:
            return f"no model is loaded ({status.model.reason})"
        if action == "close_position" and not facts.has_positions:
            return "no open position"
        if action == "close_position" and status.trading_state is TradingState.HALTED:
            return "trading is HALTED: the kill switch owns positions"
        if action == "reenable_throttle" and not status.throttle_latched:
            return "the order throttle is not tripped"
    if action in ("model_card", "performance") and not facts.has_daemon:
        return "not connected to a daemon"
    return ""


def _why_not_decide(action: str, facts: Facts) -> str:
    view = facts.view
    if view is None:
        return "no pending proposal selected"
    pid = view.proposal.id
    if pid in facts.in_flight:
        return f"your {facts.in_flight[pid]} of {pid} is on its way to the daemon"
    if facts.cursor_moved_by_itself:
        return "the proposal under the cursor just changed by itself: read it first"
    if not facts.on_screen:
        return f"{pid} v{view.proposal.version} is not on the screen yet: look, then press again"
    if action == "reject":
        return ""
    leverage_acknowledged = facts.status.leverage_acknowledged if facts.status else True
    if action == "approve" and needs_leverage_acknowledgment(view, leverage_acknowledged):
        return ""  # a offers the leverage acknowledgment instead
    if not view.can_approve:
        return view.why_not or "the daemon says it cannot be approved now"
    return ""


def status_key(status: StatusView | None) -> tuple[object, ...]:
    """The parts of the status that change what the operator may do (not equity, not the clock)."""
    if status is None:
        return ()
    model = status.model
    return (
        status.trading_state,
        status.state_reason,
        status.kill_in_progress,
        status.needs_acknowledgment,
        status.leverage_acknowledged,
        status.throttle_latched,
        status.operators,
        tuple((f.symbol, f.healthy) for f in status.feeds),
        (model.loaded, model.paused, model.reason),
    )
