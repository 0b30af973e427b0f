"""One proposal per idea: a signal repeating what is already pending moves that proposal, never queues another.

The model says "buy BTC" on bar after bar while the operator is still reading its first proposal. Each
repeat of the same idea (the model, one symbol, one side) re-prices the pending proposal as a new
version when something the operator would weigh has changed (size or leverage by a fifth, a stop or
take-profit's distance by a quarter, the price past the collar, confidence by 5 points, novelty);
otherwise, and for STEADY_MS after each version, the pending version stands as it is: a card that changed
every bar could never be approved.

A proposal marked a duplicate of an older one is judged again once that older one has ended: it gets a new version with
fresh checks, so nothing stays marked for a reason that is gone, and an approval of the version the
operator saw marked is refused (it is no longer the current one). Pure functions: the desk journals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from guard.approval.pricing import moved
from guard.approval.records import ProposalRecord
from guard.domain import MarketSpec, Proposal, ProposalRequest, ProposalStatus, Verdict

STEADY_MS = 10_000
"""A version stands at least this long before a repeat of its idea may replace it: a card must stay still long
enough for a person to read it and decide (a third of the default time-to-live)."""
CONFIDENCE_STEP = 0.05
"""A change of confidence at least this large is worth a new version."""
SIZE_STEP = Decimal("0.2")
"""A change of quantity or leverage by at least this fraction is worth a new version (the sizing policy moves
them with every point of confidence: smaller moves are noise to a person reading the card)."""
DISTANCE_STEP = Decimal("0.25")
"""A stop or take-profit whose distance from the price changed by at least this fraction is worth a new version
(they follow the price bar by bar; the price itself counts once it passes the collar)."""
IDEA_SOURCES = frozenset({"model"})
"""Sources whose repeated signals refresh their pending proposal. A person's or an outside source's second
proposal for the same symbol and side stays a proposal of its own (marked duplicate while the first is pending)."""


def standing_idea(pending: Iterable[ProposalRecord], request: ProposalRequest) -> ProposalRecord | None:
    """The pending proposal this request repeats (same source, symbol and side), or None."""
    if request.source not in IDEA_SOURCES:
        return None
    for record in pending:
        p = record.proposal
        if p.source == request.source and p.symbol == request.symbol and p.side is request.side:
            return record
    return None


def what_moved(standing: Proposal, candidate: Proposal, collar_bps: float, spec: MarketSpec) -> str:
    """What the repeated signal changed that the operator would weigh, in words ("" when nothing did).

    Args:
        standing: the pending version.
        candidate: the repeated signal priced as its next version.
        spec: the market's spec (the collar judges prices on its tick).
    """
    changes = [
        f"{name} {getattr(standing, name)} -> {getattr(candidate, name)}"
        for name in ("qty", "leverage")
        if abs(getattr(candidate, name) - getattr(standing, name)) >= SIZE_STEP * getattr(standing, name)
    ]
    changes += [
        f"{name} {getattr(standing, name)} -> {getattr(candidate, name)}"
        for name in ("order_type", "limit_price")
        if getattr(standing, name) != getattr(candidate, name)
    ]
    for name in ("stop", "take_profit"):
        before, after = _distance(standing, getattr(standing, name)), _distance(candidate, getattr(candidate, name))
        if (before is None) != (after is None) or (
            before is not None and after is not None and abs(after - before) >= DISTANCE_STEP * before
        ):
            changes.append(f"{name} {getattr(standing, name)} -> {getattr(candidate, name)}")
    if abs(candidate.confidence - standing.confidence) >= CONFIDENCE_STEP:
        changes.append(f"confidence {standing.confidence:.0%} -> {candidate.confidence:.0%}")
    if candidate.novel != standing.novel:
        changes.append("now NOVEL" if candidate.novel else "no longer novel")
    move = moved(standing, candidate.price, collar_bps, spec)
    if move is not None:
        changes.append(move.why)
    return "; ".join(changes)


def _distance(p: Proposal, level: Decimal | None) -> Decimal | None:
    """How far a stop or take-profit sits from the proposal's price, as a fraction of it."""
    return None if level is None else abs(level - p.price) / p.price


def duplicate_of(p: Proposal) -> str:
    """The id of the proposal `p` was marked a duplicate of when priced ("" when it was not)."""
    for check in p.checks:
        if check.name == "duplicate" and check.verdict is Verdict.BLOCK:
            # The check's own wording: "duplicates P000001 (BTC/USDT:USDT buy), still pending".
            return check.reason.split(" ", 2)[1] if check.reason.startswith("duplicates ") else ""
    return ""


def to_judge_again(pending: Iterable[ProposalRecord], proposals: Mapping[str, ProposalRecord]) -> list[ProposalRecord]:
    """Pending proposals marked duplicates of one that is no longer pending: their marks must be judged again.

    Args:
        proposals: every proposal on record, by id.
    """
    out = []
    for record in pending:
        older = proposals.get(duplicate_of(record.proposal))
        if older is not None and older.status is not ProposalStatus.PENDING:
            out.append(record)
    return out
