"""The queue and the decisions on it: proposals priced and queued, then approved, overridden or rejected.

No order leaves before the operator's approve or override is durably journaled with the order's
intent (invariant 1); an approval re-checks everything at the moment of the decision (the gate), and
four-eyes asks a second, different operator for large or leveraged orders.
"""

from __future__ import annotations

import structlog

from guard.approval.answers import CommandResult, outcome, refuse
from guard.approval.execution import Execution, order_id
from guard.approval.gate import Gate
from guard.approval.ideas import STEADY_MS, duplicate_of, standing_idea, to_judge_again, what_moved
from guard.approval.market import Market
from guard.approval.pricing import apply_edits, price_proposal, shifted
from guard.approval.recorder import Recorder
from guard.approval.records import ProposalRecord
from guard.approval.settings import DeskSettings
from guard.domain import (
    ENTRY_PURPOSE,
    HALTED,
    ORDER_OPEN,
    PENDING,
    PROPOSAL_FILLED,
    PROPOSAL_SUBMITTED,
    DecisionKind,
    OrderRequest,
    OverrideEdits,
    Proposal,
    ProposalRequest,
    ProposalStatus,
)
from guard.events import (
    ApprovalCounted,
    DecisionRecorded,
    ProposalExpired,
    ProposalQueued,
    ProposalRefused,
    ProposalRepriced,
    ThrottleTripped,
)

log = structlog.get_logger(__name__)

# Enum members read at every proposal, as module globals (3.11's `EnumType.__getattr__` makes `ProposalStatus.FILLED`
# a slow lookup; `guard.domain` has the shared ones); `._value_` below reads a member's text without the descriptor.
_APPROVE = DecisionKind.APPROVE

_DECIDABLE = CommandResult(True)
"""`_decidable`'s answer when the decision may go on (an immutable value: one for every decision)."""


class Decisions:
    """Queues proposals and carries out the operators' decisions on them."""

    def __init__(
        self,
        recorder: Recorder,
        execution: Execution,
        gate: Gate,
        market: Market,
        settings: DeskSettings,
    ) -> None:
        self._recorder = recorder
        self._state = recorder.state
        self._execution = execution
        self._gate = gate
        self._market = market
        self._specs = recorder.state.specs
        self._settings = settings
        self._versioned_at: dict[str, int] = {}
        """Proposal id -> when a repeated signal last made a new version of it (ms)."""

    # --- the queue -------------------------------------------------------------------

    async def propose(self, request: ProposalRequest) -> CommandResult:
        """Price, check and queue a proposal, or refuse it with the reason. A model's signal for a symbol and
        side it already has a proposal pending on moves that proposal instead (`guard.approval.ideas`)."""
        standing = standing_idea(self._state.pending(), request)
        refusal = self._gate.queue_refusal(request, replacing=standing is not None)
        now = self._recorder.now()
        if not refusal and standing is not None:
            return await self._repeat(standing, request)
        if refusal:
            await self._recorder.commit([ProposalRefused(now, request, refusal)], durable=False, failing="drop")
            log.info("proposal_refused", symbol=request.symbol, side=request.side._value_, reason=refusal)
            return CommandResult(False, refusal)
        proposal = self._price(
            request,
            pid=f"P{self._state.proposal_count + 1:06d}",
            version=1,
            created_at=now,
            expires_at=now + round(self._settings.approval.ttl_seconds * 1000),
        )
        await self._recorder.commit([ProposalQueued(now, proposal)], durable=False)
        log.info(
            "proposal_queued",
            proposal_id=proposal.id,
            symbol=proposal.symbol,
            side=proposal.side._value_,
            qty=str(proposal.qty),
            leverage=str(proposal.leverage),
            confidence=proposal.confidence,
            blocked=proposal.blocked,
        )
        return CommandResult(True, "", proposal, PENDING)

    async def _repeat(self, standing: ProposalRecord, request: ProposalRequest) -> CommandResult:
        """The same idea again: a new version of the pending proposal when something the operator weighs
        changed (the operator sees it move), else the pending version stands and nothing is queued."""
        p = standing.proposal
        now = self._recorder.now()
        candidate = self._price(
            request, pid=p.id, version=p.version + 1, created_at=p.created_at, expires_at=p.expires_at
        )
        steady = now - self._versioned_at.get(p.id, p.created_at) < STEADY_MS
        changed = "" if steady else what_moved(p, candidate, self._settings.approval.collar_bps, self._specs[p.symbol])
        if not changed:
            log.debug("signal_repeats_pending", proposal_id=p.id, version=p.version)
            return CommandResult(
                False, f"{p.id} v{p.version} is pending for this idea: nothing changed", p, standing.status
            )
        await self._recorder.commit([ProposalRepriced(now, candidate, f"a new signal: {changed}")], durable=False)
        self._versioned_at[p.id] = now
        log.info("proposal_refreshed", proposal_id=p.id, version=candidate.version, changed=changed)
        return CommandResult(True, "", candidate, ProposalStatus.PENDING)

    async def judge_duplicates_again(self) -> int:
        """Give a proposal marked a duplicate of one that has ended a new version with fresh checks (the mark
        goes, or names the proposal it duplicates now). Returns how many were judged again."""
        state = self._state
        if state.trading_state is HALTED or self._gate.journal_refusal():
            return 0
        stale = [r for r in to_judge_again(state.pending(), state.proposals) if r.proposal.symbol in self._market.marks]
        if not stale:  # after every decision: usually nothing to judge again
            return 0
        now = self._recorder.now()
        events = []
        for record in stale:
            p = record.proposal
            again = self._price(p, pid=p.id, version=p.version + 1, created_at=p.created_at, expires_at=p.expires_at)
            older = state.proposals[duplicate_of(p)]
            why = f"{older.proposal.id} ended ({older.status.value}): checked again"
            events.append(ProposalRepriced(now, again, why))
        if events:
            await self._recorder.commit(events, durable=False)
            log.info("duplicates_judged_again", proposals=[e.proposal.id for e in events])
        return len(events)

    async def expire_due(self) -> int:
        """Expire proposals nobody answered in time: no answer means no. Returns how many."""
        now = self._recorder.now()
        due = [r for r in self._state.pending() if r.proposal.expires_at <= now]
        if not due:
            return 0
        ttl = self._settings.approval.ttl_seconds
        await self._recorder.commit(
            [ProposalExpired(now, r.proposal.id, f"no decision within {ttl:g} s: no answer means no") for r in due],
            durable=False,
            failing="keep",
        )
        await self.judge_duplicates_again()
        return len(due)

    def _price(
        self, request: ProposalRequest | Proposal, *, pid: str, version: int, created_at: int, expires_at: int
    ) -> Proposal:
        """Price a request, or a proposal's next version, at today's mark."""
        return price_proposal(
            request,
            pid=pid,
            version=version,
            mark=self._market.marks[request.symbol],
            spec=self._specs[request.symbol],
            created_at=created_at,
            expires_at=expires_at,
            ttl_seconds=self._settings.approval.ttl_seconds,
            context=self._gate.context(request.symbol, request.side),
            limits=self._state.limits,
        )

    # --- decisions -------------------------------------------------------------------

    async def approve(
        self,
        proposal_id: str,
        operator: str,
        version: int | None,
        reason: str,
        confirm_novel: bool,
        credential: str = "",
    ) -> CommandResult:
        """Approve the proposal as shown; it executes once the approval is durably journaled. Four-eyes counts
        `credential`s (the operator's name stands for one when none is given)."""
        credential = credential or operator
        record, refusal = await self._decidable(proposal_id, operator, "approve", version)
        if record is None:
            return refusal
        p = record.proposal
        if why := await self._rule(p, confirm_novel):
            return await refuse(self._recorder, operator, "approve", proposal_id, why)
        if self._gate.needs_two(p):
            if credential in record.approvals:
                return await refuse(
                    self._recorder,
                    operator,
                    "approve",
                    proposal_id,
                    "four-eyes: the second approval must come from a different operator's own credential"
                    + (" (the shared token counts once, whoever holds it)" if credential == "shared" else ""),
                )
            if not record.approvals:
                await self._recorder.commit(
                    [ApprovalCounted(self._recorder.now(), p.id, p.version, operator, reason, credential)]
                )
                log.info("approval_counted", proposal_id=p.id, operator=operator, needed=2)
                return CommandResult(
                    True, "approval 1 of 2 recorded: a second, different operator must approve", p, record.status
                )
        decision = DecisionRecorded(
            self._recorder.now(), p.id, _APPROVE, operator, reason, shown=p, credential=credential
        )
        return await self._execute(decision)

    async def override(
        self,
        proposal_id: str,
        operator: str,
        edits: OverrideEdits,
        version: int | None,
        reason: str,
        confirm_risk_increase: bool,
        confirm_novel: bool,
        credential: str = "",
    ) -> CommandResult:
        """Approve with edits. An edit that adds risk needs `confirm_risk_increase`."""
        record, refusal = await self._decidable(proposal_id, operator, "override", version)
        if record is None:
            return refusal
        p = record.proposal
        edit = apply_edits(p, edits)
        edited = self._price(
            edit.request, pid=p.id, version=p.version + 1, created_at=p.created_at, expires_at=p.expires_at
        )
        if edit.riskier and not confirm_risk_increase:
            why = f"this edit increases risk ({'; '.join(edit.riskier)}): confirm the increase to proceed"
        else:
            why = await self._rule(edited, confirm_novel)
            if not why and self._gate.needs_two(edited):
                why = (
                    "four-eyes: an override this large needs two approvals; approve the proposal as shown, or reduce it"
                )
        if why:
            return await refuse(self._recorder, operator, "override", proposal_id, why)
        decision = DecisionRecorded(
            self._recorder.now(),
            p.id,
            DecisionKind.OVERRIDE,
            operator,
            reason,
            shown=p,
            edits=edits,
            diff=edit.diff,
            result=edited,
            confirmed_risk_increase=bool(edit.riskier),
            credential=credential,
        )
        return await self._execute(decision)

    async def reject(self, proposal_id: str, operator: str, reason: str, credential: str = "") -> CommandResult:
        """Reject the proposal: it never executes."""
        record, refusal = await self._decidable(proposal_id, operator, "reject", None)
        if record is None:
            return refusal
        p = record.proposal
        await self._recorder.commit(
            [
                DecisionRecorded(
                    self._recorder.now(), p.id, DecisionKind.REJECT, operator, reason, shown=p, credential=credential
                )
            ]
        )
        log.info("decision_recorded", proposal_id=p.id, kind="reject", operator=operator, reason=reason)
        await self.judge_duplicates_again()
        return CommandResult(True, "rejected", p, ProposalStatus.REJECTED)

    async def _decidable(
        self, proposal_id: str, operator: str, command: str, version: int | None
    ) -> tuple[ProposalRecord | None, CommandResult]:
        """The pending record to decide on, or the refusal that says why not."""
        record = self._state.proposals.get(proposal_id)
        why = self._gate.journal_refusal()
        if not why:
            why = f"no proposal {proposal_id}" if record is None else self._gate.record_refusal(record, version)
        if not why and record is not None and (why := self._gate.expiry_refusal(record.proposal)):
            await self.expire_due()
        if record is None or why:
            return None, await refuse(self._recorder, operator, command, proposal_id, why)
        return record, _DECIDABLE

    async def _rule(self, p: Proposal, confirm_novel: bool) -> str:
        """The gate's ruling on a decision, with what it implies recorded: a proposal the market moved away
        from is re-priced for a second look; the order beyond the throttle's limit latches the throttle."""
        ruling = self._gate.rule(p, confirm_novel)
        if ruling.moved is not None:
            now = self._recorder.now()
            moved = ruling.moved
            repriced = self._price(
                shifted(p, moved.mark, self._specs[p.symbol]),
                pid=p.id,
                version=p.version + 1,
                created_at=p.created_at,
                expires_at=p.expires_at,
            )
            await self._recorder.commit([ProposalRepriced(now, repriced, moved.why)])
            return moved.refusal(p, repriced)
        if ruling.trips_throttle:
            # The order beyond the limit latches the throttle: entries stay off until a person re-enables them.
            now = self._recorder.now()
            count = self._state.orders_last_minute(now)
            limit = self._state.limits.max_orders_per_minute
            await self._recorder.commit([ThrottleTripped(now, count, limit)])
            log.warning("throttle_tripped", orders_in_window=count, limit=limit)
        return ruling.refusal

    # --- execution -------------------------------------------------------------------

    async def _execute(self, decision: DecisionRecorded) -> CommandResult:
        """Journal the decision with the order's intent in one durable commit, then send it."""
        p = decision.executes
        assert p is not None
        request = entry_request(self._state.journal_id, p)
        log.info(
            "decision_recorded",
            proposal_id=p.id,
            kind=decision.kind._value_,
            operator=decision.operator,
            reason=decision.reason,
            diff=list(decision.diff),
            confidence=p.confidence,
            price=str(p.price),
        )
        # An entry that fills (now or later) gets the proposal's stop and take-profit: `guard.approval.protection`.
        reports = await self._execution.send(request, preceding=[decision])
        status = self._state.proposals[p.id].status
        await self.judge_duplicates_again()
        entry = self._state.orders.get(request.client_order_id)
        if status is PROPOSAL_SUBMITTED and entry is not None and entry.status is ORDER_OPEN:
            # A limit order the venue took and that rests on its book: placed, which is what was asked.
            return CommandResult(True, f"placed, resting at {request.limit_price}", p, status)
        return CommandResult(status is PROPOSAL_FILLED, outcome(status, reports), p, status)


def entry_request(journal_id: str, p: Proposal) -> OrderRequest:
    """The entry order of an approved proposal; its client order id derives from the proposal's (invariant 2)."""
    return OrderRequest(
        client_order_id=order_id(journal_id, f"{p.id}-E"),
        symbol=p.symbol,
        side=p.side,
        qty=p.qty,
        order_type=p.order_type,
        purpose=ENTRY_PURPOSE,
        leverage=p.leverage,
        limit_price=p.limit_price,
        proposal_id=p.id,
    )
