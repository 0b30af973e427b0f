"""Every proposal's end, read from the journal: what became of each one, counted so the counts add up.

A proposal the desk queued ends in exactly one fate: its entry filled (and then, maybe, its stop or
take-profit closed it, or a liquidation did), the operator rejected it, the desk refused the decision
on it (the collar, four-eyes, novelty, a risk check by name...) until it expired, it expired with no
decision, the broker refused its entry, or the kill switch ended it. A request the desk would not even
queue is counted apart, with the desk's reason. Everything is derived from the journal's events, never
from counters kept on the side, so the report says what the record says.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path

from guard.domain import ZERO, DecisionKind, OrderPurpose, Side
from guard.events import (
    ApprovalCounted,
    CommandRefused,
    DecisionRecorded,
    Event,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    PositionLiquidated,
    ProposalExpired,
    ProposalFailed,
    ProposalKilled,
    ProposalQueued,
    ProposalRefused,
)
from guard.journal.chain import read_entries


class Fate(StrEnum):
    """How a proposal ended."""

    FILLED = "filled"
    """The entry filled; the position was closed by another order (detail "closed by another order": another
    proposal's exit or entry) or is still open at the end ("open at the end")."""
    STOPPED = "stopped"
    TAKE_PROFIT = "take-profit"
    LIQUIDATED = "liquidated"
    REJECTED = "rejected by the operator"
    REFUSED = "refused by the desk"
    """The desk refused the decision on it (detail: why) and it then expired."""
    EXPIRED = "expired"
    """No decision came in time (or the session ended first)."""
    BROKER = "refused by the broker"
    KILLED = "killed"
    FAILED = "failed"
    PENDING = "pending"
    """Nothing ended it before the journal ends (a replay's desk expires these when it stops)."""
    NOT_QUEUED = "not queued"
    """The desk refused to queue the request at all (detail: why)."""


FATE_ORDER = tuple(Fate)
"""The order fates are reported in."""

EVENT_TYPES = frozenset(
    t.__name__
    for t in (
        ProposalQueued,
        ProposalRefused,
        CommandRefused,
        ApprovalCounted,
        DecisionRecorded,
        ProposalExpired,
        ProposalKilled,
        ProposalFailed,
        OrderSubmitted,
        OrderRejected,
        OrderFilled,
        PositionLiquidated,
    )
)
"""The journal events a fate is read from."""


@dataclass(frozen=True, slots=True)
class ProposalEnd:
    """One proposal and its end."""

    proposal_id: str
    """"" for a request the desk never queued (it has no id)."""
    at: int
    symbol: str
    side: Side
    fate: Fate
    detail: str
    """The category within the fate: which refusal, which rejection, which expiry ("" when none)."""
    reason: str
    """The reason as journaled."""


@dataclass(frozen=True, slots=True)
class Fates:
    """Every proposal's end, in the order the proposals were made."""

    ends: tuple[ProposalEnd, ...]

    @property
    def queued(self) -> int:
        """Proposals the desk queued (everything but NOT_QUEUED)."""
        return sum(1 for e in self.ends if e.fate is not Fate.NOT_QUEUED)

    def counts(self) -> dict[str, int]:
        """Proposals per fate, in report order, fates that never happened left out."""
        counter = Counter(e.fate for e in self.ends)
        return {f.value: counter[f] for f in FATE_ORDER if counter[f]}

    def details(self) -> dict[str, dict[str, int]]:
        """Per fate, proposals per detail (the refusals by name, the rejections by reason...)."""
        out: dict[str, dict[str, int]] = {}
        for fate in FATE_ORDER:
            counter = Counter(e.detail for e in self.ends if e.fate is fate and e.detail)
            if counter:
                out[fate.value] = dict(counter.most_common())
        return out


_CHECKS = re.compile(r"(?:blocked by risk checks: |; )([a-z_]+): ")


def desk_refusal(reason: str) -> str:
    """The name of a desk's refusal (of a decision, or to queue), from its journaled reason (else the reason)."""
    if reason.startswith("blocked by risk checks: "):
        return "risk check: " + ", ".join(dict.fromkeys(_CHECKS.findall(reason)))
    for needle, name in (
        ("bps since", "collar"),
        ("is already past", "collar (price past a barrier)"),
        ("four-eyes", "four-eyes"),
        ("novel", "novel"),
        ("model expired", "model age"),
        ("HALTED", "trading halted"),
        ("not healthy", "feed"),
        ("journal is failing", "journal failing"),
        ("version", "stale version"),
        ("increases risk", "risk increase unconfirmed"),
        ("the model is paused", "model paused"),
        ("queue is full", "queue full"),
        ("REDUCING", "trading reducing"),
        ("acknowledgment", "no acknowledgment"),
        ("market minimum", "below the market minimum"),
        ("no operator is attached", "no operator"),
        ("no market price", "no price yet"),
    ):
        if needle in reason:
            return name
    return reason


def operator_reason(reason: str) -> str:
    """The category of an operator's rejection (the scripted operators' reasons have fixed wording)."""
    if "novel" in reason:
        return "novel"
    if "confidence" in reason:
        return "confidence"
    if match := re.search(r"checks not all passing \(([^)]*)\)", reason):
        return "checks: " + match.group(1)
    if "never approves" in reason:
        return "never approves"
    return "operator"


def expiry_reason(reason: str) -> str:
    """Why a proposal expired with no decision attempt."""
    if reason.startswith("the daemon stopped"):
        return "session ended"
    if reason.startswith("no decision within"):
        return "no decision in time"
    return reason


@dataclass(slots=True)
class _Open:
    proposal_id: str
    at: int
    symbol: str
    side: Side
    fate: Fate = Fate.PENDING
    detail: str = ""
    reason: str = ""
    refused: str = ""
    """The desk's last refusal of a decision on it (its raw reason), "" when none stands."""


class FateFold:
    """Folds journal events, in order, into every proposal's end."""

    def __init__(self) -> None:
        self._proposals: dict[str, _Open] = {}
        self._order: list[_Open] = []
        self._orders: dict[str, tuple[str, OrderPurpose]] = {}
        self._position: dict[str, Decimal] = {}
        self._holding: dict[str, list[str]] = {}
        """Per symbol: proposals whose entry filled into the position open now."""

    def feed(self, events: Iterable[Event]) -> None:
        for event in events:
            self.step(event)

    def step(self, e: Event) -> None:
        if isinstance(e, ProposalQueued):
            p = e.proposal
            self._proposals[p.id] = _Open(p.id, e.at, p.symbol, p.side)
            self._order.append(self._proposals[p.id])
        elif isinstance(e, ProposalRefused):
            r = e.request
            self._order.append(_Open("", e.at, r.symbol, r.side, Fate.NOT_QUEUED, desk_refusal(e.reason), e.reason))
        elif isinstance(e, CommandRefused):
            if (record := self._live(e.proposal_id)) is not None:
                record.refused = e.reason
        elif isinstance(e, ApprovalCounted):
            if (record := self._live(e.proposal_id)) is not None:
                record.refused = "four-eyes: waiting for a second operator's approval"
        elif isinstance(e, DecisionRecorded):
            if (record := self._live(e.proposal_id)) is not None and e.kind is DecisionKind.REJECT:
                self._end(record, Fate.REJECTED, operator_reason(e.reason), e.reason)
            elif record is not None:
                record.refused, record.detail = "", "approved; the entry had not filled when the journal ends"
        elif isinstance(e, ProposalExpired):
            if (record := self._live(e.proposal_id)) is not None:
                if record.refused:
                    self._end(record, Fate.REFUSED, desk_refusal(record.refused), record.refused)
                else:
                    self._end(record, Fate.EXPIRED, expiry_reason(e.reason), e.reason)
        elif isinstance(e, ProposalKilled):
            if (record := self._live(e.proposal_id)) is not None:
                self._end(record, Fate.KILLED, "", "the kill switch")
        elif isinstance(e, ProposalFailed):
            if (record := self._live(e.proposal_id)) is not None:
                self._end(record, Fate.FAILED, "", e.reason)
        elif isinstance(e, OrderSubmitted):
            if e.request.proposal_id is not None:
                self._orders[e.request.client_order_id] = (e.request.proposal_id, e.request.purpose)
        elif isinstance(e, OrderRejected):
            pid, purpose = self._orders.get(e.client_order_id, ("", None))
            if purpose is OrderPurpose.ENTRY and (record := self._live(pid)) is not None:
                self._end(record, Fate.BROKER, _broker_reason(e.reason), e.reason)
        elif isinstance(e, OrderFilled):
            self._filled(e)
        elif isinstance(e, PositionLiquidated):
            for pid in self._holding.pop(e.symbol, []):
                if (held := self._proposals[pid]).fate is Fate.FILLED:
                    self._end(held, Fate.LIQUIDATED, "", f"liquidated at {e.price}")
            self._position[e.symbol] = ZERO

    def _filled(self, e: OrderFilled) -> None:
        fill = e.fill
        before = self._position.get(fill.symbol, ZERO)
        after = before + fill.qty * fill.side.sign
        self._position[fill.symbol] = after
        if after == 0 or (before != 0 and (after > 0) != (before > 0)):  # flat or flipped: that position is closed
            for held in self._holding.pop(fill.symbol, []):
                if (closed := self._proposals[held]).fate is Fate.FILLED:
                    closed.detail = "closed by another order"
        pid, purpose = self._orders.get(fill.client_order_id, ("", None))
        record = self._proposals.get(pid)
        if record is None:
            return
        if purpose is OrderPurpose.ENTRY and record.fate is Fate.PENDING:
            self._end(record, Fate.FILLED, "open at the end", f"entry filled at {fill.price}")
            if after != 0:
                self._holding.setdefault(fill.symbol, []).append(pid)
        elif purpose is OrderPurpose.STOP and record.fate is Fate.FILLED:
            self._end(record, Fate.STOPPED, "", f"stopped at {fill.price}")
        elif purpose is OrderPurpose.TAKE_PROFIT and record.fate is Fate.FILLED:
            self._end(record, Fate.TAKE_PROFIT, "", f"take-profit at {fill.price}")

    def _live(self, pid: str | None) -> _Open | None:
        record = self._proposals.get(pid or "")
        return record if record is not None and record.fate is Fate.PENDING else None

    @staticmethod
    def _end(record: _Open, fate: Fate, detail: str, reason: str) -> None:
        record.fate, record.detail, record.reason = fate, detail, reason

    def result(self) -> Fates:
        return Fates(
            tuple(ProposalEnd(r.proposal_id, r.at, r.symbol, r.side, r.fate, r.detail, r.reason) for r in self._order)
        )


def _broker_reason(reason: str) -> str:
    if "spot cannot go short" in reason:
        return "spot sell without holdings"
    if reason.startswith("insufficient margin"):
        return "insufficient margin"
    return reason


def read_fates(journal: Path | str) -> Fates:
    """Every proposal's end, as the journal at `journal` records it."""
    fold = FateFold()
    fold.feed(entry.event for entry in read_entries(journal, types=EVENT_TYPES))
    return fold.result()


def fates_plain(fates: Fates) -> Mapping[str, object]:
    """The fates as JSON-ready values: counts, counts per detail, and every proposal's end."""
    return {
        "queued": fates.queued,
        "not_queued": len(fates.ends) - fates.queued,
        "counts": fates.counts(),
        "details": fates.details(),
        "proposals": [
            {
                "id": e.proposal_id,
                "at": e.at,
                "symbol": e.symbol,
                "side": e.side.value,
                "fate": e.fate.value,
                "detail": e.detail,
                "reason": e.reason,
            }
            for e in fates.ends
        ],
    }
