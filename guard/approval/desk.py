"""The approval desk: proposals in, human decisions recorded, approved orders out.

A model (or a test, or a script) may *propose*; only an operator's approve or override,
durably journaled first, sends an order; the kill switch always wins. Risk checks run when a
proposal is queued and again at decision time. Business refusals come back as values
(`CommandResult.ok is False`, with the reason); malformed commands raise `InvalidCommand`
before anything is recorded.

The desk is a facade over parts that each own one seam: `validation` (bad input), `Market`
(marks, feed health, PnL), `Gate` (why not), `pricing` (pure), `Decisions` (the queue and
decisions on it), `Controls` (re-arm, acknowledgments, limits, pause, close), `Recovery` (start,
stop, the journal failing, the dead-man policy), and the record, execution and kill switch beneath them. Nothing outside
`guard.approval` reaches into those parts: the rest of guard uses the methods and read-only
properties below.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog
from msgspec.structs import replace

from guard.approval.answers import CommandResult, refuse
from guard.approval.controls import ACKNOWLEDGMENT_PHRASES, REARM_PHRASE, Controls
from guard.approval.decisions import Decisions
from guard.approval.execution import Execution
from guard.approval.gate import Gate
from guard.approval.killswitch import KillReport, KillSwitch
from guard.approval.market import Market
from guard.approval.orders import Amendment, Orders
from guard.approval.protection import Protection
from guard.approval.recorder import Recorder
from guard.approval.records import CommandRecord, OrderRecord, ProposalRecord
from guard.approval.recovery import JournalListener, Recovery
from guard.approval.settings import DeskSettings
from guard.approval.sources import Sources, is_source
from guard.approval.state import GuardState
from guard.approval.validation import (
    check_prices,
    validate_edits,
    validate_operator,
    validate_positive,
    validate_request,
)
from guard.approval.venue_watch import Alert, VenueWatch, WatchedVenue
from guard.broker.base import Broker
from guard.broker.ledger import Bookings
from guard.clock import Clock
from guard.config import RiskSection
from guard.domain import (
    ACTIVE,
    REDUCING,
    AcknowledgmentKind,
    Bar,
    FeedHealth,
    MarketEvent,
    MarketSpec,
    OverrideEdits,
    Proposal,
    ProposalRequest,
)
from guard.events import BarRecorded, CommandAnswered, CommandReceived, FeedHealthChanged, TradingStateChanged
from guard.journal.store import Journal, Subscriber

__all__ = ["ACKNOWLEDGMENT_PHRASES", "REARM_PHRASE", "ApprovalDesk", "CommandResult", "DeskSettings"]

log = structlog.get_logger(__name__)


class ApprovalDesk:
    """The core guard. Built by the daemon (or a test) and driven through these methods."""

    def __init__(
        self,
        journal: Journal,
        broker: Broker,
        specs: Mapping[str, MarketSpec],
        settings: DeskSettings,
        clock: Clock,
        bookings: Bookings | None = None,
    ) -> None:
        """
        Args:
            bookings: the paper venue's ledger's (`PaperBroker.account.bookings`), so the fold books each fill
                once; None for a venue elsewhere.
        """
        self.specs = specs
        self.settings = settings
        self.clock = clock
        self.broker = broker
        self.state = GuardState(specs, settings.risk, bookings=bookings)
        """The folded journal: read it, never change it (only recorded events do)."""
        # The parts beneath the facade. guard itself goes through the methods below; tests and benchmarks that
        # inject faults or time one part reach them directly.
        self.journal = journal
        self.recorder = Recorder(journal, self.state, clock)
        self.execution = Execution(self.recorder, broker)
        self.kill_switch = KillSwitch(
            self.recorder, self.execution, clock, cancel_stops=settings.operators.kill_cancels_stops
        )
        self._market = Market(self.state, clock)
        self.marks: Mapping[str, Decimal] = self._market.marks
        """The latest price per symbol (mark price > last trade > bar close)."""
        self.feed_health: Mapping[str, FeedHealth] = self._market.feed_health
        """The feed's latest health report per symbol."""
        self._gate = Gate(journal, self.state, self._market, specs, settings, clock)
        self._decisions = Decisions(self.recorder, self.execution, self._gate, self._market, settings)
        self._controls = Controls(self.recorder, self.execution, self.kill_switch, self._gate, settings)
        self._orders = Orders(self.recorder, self.execution, self._gate, self._market.marks)
        self._recovery = Recovery(journal, broker, self.recorder, self.execution, settings)
        self.sources = Sources(self.recorder, self._gate.journal_refusal)
        """Proposal sources: their grading, pauses and pace."""
        self._protection = Protection(self.recorder, self.execution)
        # Every entry fill, on whichever road it reaches the journal, gets the proposal's stop and take-profit.
        self.execution.follow_up = self._protection
        self.journal_listeners: list[JournalListener] = self._recovery.journal_listeners
        """Told, on the event loop, after the desk has halted for a failing journal or recorded its recovery."""

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Rebuild state from the journal, settle what a crash left open, and open a session; an entry that
        filled without its stop and take-profit (while the daemon was down, or before a crash) gets them."""
        await self._recovery.start()
        await self._protection.protect_missing("restart: filled without its stop or take-profit")

    async def stop(self, reason: str = "shutdown") -> None:
        """End the session cleanly: pending proposals expire; positions are left as they are."""
        await self._recovery.stop(reason)

    @property
    def kill_unfinished(self) -> bool:
        """A kill was journaled and not completed (by a process that died mid-kill, or by this one)."""
        return self.state.kill_in_progress

    @property
    def deadman_unfinished(self) -> str:
        """The dead-man policy ("reduce" or "flatten") a dead process recorded and did not apply, or ""."""
        return self.state.deadman_pending

    def prices_missing_to_flatten(self) -> list[str]:
        """Symbols held without a known price: a paper venue cannot flatten them until the feed gives one."""
        if not self.broker.needs_marks:
            return []
        return [s for s in self.state.account.positions if s not in self.marks]

    async def finish_interrupted_kill(self) -> KillReport | None:
        """Complete a kill that was journaled and not completed: the first thing a restarted daemon does
        (invariant 11). Returns None when there is none; a report with `flat` False when it must be tried again."""
        return await self.kill_switch.resume()

    async def finish_interrupted_deadman(self) -> None:
        """Apply a dead-man policy a process recorded and died before applying."""
        await self._recovery.finish_interrupted_deadman()

    @property
    def last_seq(self) -> int:
        """The sequence number of the last event on record."""
        return self.journal.last_seq

    @property
    def journal_path(self) -> Path:
        """Where the journal is."""
        return self.journal.path

    def subscribe(self, listener: Subscriber) -> None:
        """Call `listener` with every batch of entries once committed (on the journal's writer thread)."""
        self.journal.subscribe(listener)

    # --- market data -----------------------------------------------------------------

    async def on_market(self, event: MarketEvent) -> None:
        """Feed the paper venue and the marks; latch REDUCING when the daily loss limit is hit."""
        reports = self.broker.on_market(event)
        self._market.update(event)
        if reports:
            await self.execution.record_reports(reports)
        if isinstance(event, Bar) and event.closed:
            await self.sources.on_bar(event)
        state = self.state
        if state.trading_state is not ACTIVE:
            return
        limit = state.limits.daily_loss_limit
        pnl = self._market.daily_pnl()
        if -pnl >= limit:
            reason = f"daily loss limit: lost {-pnl:.2f} today, the limit is {limit}"
            now = self.clock.now_ms()
            changed = TradingStateChanged(now, state.trading_state, REDUCING, reason, "guard")
            await self.recorder.commit([changed], failing="keep")
            log.warning("daily_loss_limit_reached", loss=str(-pnl), limit=str(limit))

    def fast_forward_mark(self, event: MarketEvent) -> None:
        """Take an event's price as the mark, without working the venue or the daily loss check.

        Replay's lean path only: it calls this for events it has shown could change nothing
        else (see `guard.replay.engine`), so the marks stay exactly what `on_market` would set.
        """
        self._market.update(event)

    # --- command ids (invariant 13: a command id is executed at most once) ----------------

    def command_seen(self, credential: str, command_id: str) -> CommandRecord | None:
        """What is on record for this credential's command id (received, and its answer once it has one)."""
        return self.state.commands.get((credential, command_id))

    def command_received(self, credential: str, command_id: str, command: str, *, keep: bool = False) -> None:
        """Record a command before carrying it out. Not waited on: the command's own durable commit carries it
        to disk before any effect (the WAL is written in order); a crash before that loses both, so a resend
        runs it as new. `keep`: recorded even while the journal fails (a kill)."""
        self.recorder.record(
            [CommandReceived(self.clock.now_ms(), credential, command_id, command)],
            durable=False,
            failing="keep" if keep else "drop",
        )

    def command_answered(self, credential: str, command_id: str, ok: bool, reason: str, data: str) -> None:
        """Record the answer a command got, for a repeat of its id."""
        self.recorder.record(
            [CommandAnswered(self.clock.now_ms(), credential, command_id, ok, reason, data)],
            durable=False,
            failing="keep",
        )

    async def refuse(self, operator: str, command: str, reason: str) -> CommandResult:
        """Journal a command refused before it reached the desk's rules (a scope a credential lacks), and say so."""
        return await refuse(self.recorder, operator, command, None, reason)

    def record_bar(self, bar: Bar) -> None:
        """Put a closed bar the daemon acted on on record (left out while the journal fails)."""
        self.recorder.record([BarRecorded(self.clock.now_ms(), bar)], durable=False, failing="drop")

    def set_feed_health(self, health: FeedHealth) -> bool:
        """Invariant 6: an unhealthy feed stops new proposals and blocks approvals on that symbol.

        Takes effect at once. Returns True when the symbol changed between healthy and not,
        which `record_feed_health` journals.
        """
        return self._market.set_health(health)

    async def record_feed_health(self, health: FeedHealth) -> None:
        """Apply a feed health report and journal it when the symbol turned unhealthy or recovered."""
        if self.set_feed_health(health):
            await self.recorder.commit(
                [FeedHealthChanged(self.clock.now_ms(), health.symbol, health.healthy, health.reason)],
                durable=False,
                failing="drop",
            )
            log.warning("feed_health_changed", symbol=health.symbol, healthy=health.healthy, reason=health.reason)

    def daily_pnl(self) -> Decimal:
        """Realized and unrealized PnL since 00:00 UTC."""
        return self._market.daily_pnl()

    def unrealized_pnl(self) -> Decimal:
        """Unrealized PnL of the positions that have a mark."""
        return self._market.unrealized_pnl()

    # --- what operators see ----------------------------------------------------------

    @property
    def operator_present(self) -> bool:
        """False while no operator is attached: nothing new is proposed, so nothing can execute."""
        return self._gate.operator_present

    @operator_present.setter
    def operator_present(self, present: bool) -> None:
        self._gate.operator_present = present

    def approvable(self, record: ProposalRecord) -> str:
        """Why an operator could not approve this proposal now ("" if they could). Changes nothing."""
        return self._gate.approvable(record)

    def needs_two(self, p: Proposal) -> bool:
        """Whether four-eyes applies to this proposal."""
        return self._gate.needs_two(p)

    def limits(self) -> RiskSection:
        """The config's risk limits with any changed at run time (journaled) applied."""
        return self.state.limits

    def model_acknowledged(self) -> bool:
        """A model-proposals acknowledgment is on record for this config and model."""
        return self._gate.model_acknowledged()

    def leverage_acknowledged(self) -> bool:
        """A leverage acknowledgment is on record for this config."""
        return self._gate.leverage_acknowledged()

    # --- proposals and decisions -----------------------------------------------------

    async def propose(self, request: ProposalRequest) -> CommandResult:
        """Price, check and queue a proposal, or refuse it with the reason."""
        validate_request(request, self.specs)
        if request.sigma == 0 and (sigma := self._market.sigma_per_second(request.symbol)) is not None:
            # A proposal with no model (a person's, a source's) is judged on the market's own volatility.
            request = replace(request, sigma=sigma)
        check_prices(
            request.symbol,
            self.marks.get(request.symbol),
            stop=request.stop,
            take_profit=request.take_profit,
            limit_price=request.limit_price,
        )
        if is_source(request.source):
            return await self._propose_for_source(request)
        return await self._decisions.propose(request)

    async def _propose_for_source(self, request: ProposalRequest) -> CommandResult:
        """A source's proposal: refused while it is paused or past its pace, graded once queued, with the
        market's novelty against guard's model as context."""
        refused = await self.sources.admit(request)
        if refused is not None:
            return refused
        novelty = self.sources.market_novelty(request.symbol)
        if novelty is not None:
            request = replace(request, novelty=novelty)
        result = await self._decisions.propose(request)
        if result.ok and result.proposal is not None:
            self.sources.grade(result.proposal)
        return result

    async def resume_source(self, source: str, operator: str, reason: str = "") -> CommandResult:
        """Let a paused proposal source propose again: a person's call, journaled."""
        validate_operator(operator)
        return await self.sources.resume(source, operator, reason)

    async def expire_due(self) -> int:
        """Expire proposals nobody answered in time: no answer means no. Returns how many."""
        return await self._decisions.expire_due()

    async def approve(
        self,
        proposal_id: str,
        operator: str,
        *,
        version: int | None = None,
        reason: str = "",
        confirm_novel: bool = False,
        credential: str = "",
    ) -> CommandResult:
        """Approve the proposal as shown; it executes once the approval is durably journaled. `credential`: who
        spoke, as their token says (four-eyes counts credentials); the operator's name stands for it when absent."""
        validate_operator(operator)
        return await self._decisions.approve(proposal_id, operator, version, reason, confirm_novel, credential)

    async def override(
        self,
        proposal_id: str,
        operator: str,
        edits: OverrideEdits,
        *,
        version: int | None = None,
        reason: str = "",
        confirm_risk_increase: bool = False,
        confirm_novel: bool = False,
        credential: str = "",
    ) -> CommandResult:
        """Approve with edits. An edit that adds risk needs `confirm_risk_increase`."""
        validate_edits(edits)
        validate_operator(operator)
        record = self.state.proposals.get(proposal_id)
        if record is not None:
            symbol = record.proposal.symbol
            check_prices(
                symbol,
                self.marks.get(symbol),
                stop=edits.stop,
                take_profit=edits.take_profit,
                limit_price=edits.limit_price,
            )
        return await self._decisions.override(
            proposal_id, operator, edits, version, reason, confirm_risk_increase, confirm_novel, credential
        )

    async def reject(self, proposal_id: str, operator: str, *, reason: str = "", credential: str = "") -> CommandResult:
        """Reject the proposal: it never executes."""
        validate_operator(operator)
        return await self._decisions.reject(proposal_id, operator, reason, credential)

    async def operators_absent(self, silent_seconds: float, policy: str) -> None:
        """The dead-man switch: no operator heartbeat for too long.

        Nothing new is proposed, pending proposals expire, and open positions follow the policy:
        "hold" leaves them, "reduce" halves them, "flatten" closes them (reduce-only orders that,
        like the kill switch's, pass every trading state). The daemon stays like this when an
        operator returns, until they act.
        """
        self.operator_present = False
        await self._recovery.operators_absent(silent_seconds, policy)

    # --- the kill switch and operator controls ---------------------------------------

    async def kill(
        self,
        operator: str,
        reason: str = "",
        on_halted: asyncio.Future[None] | None = None,
        answered: asyncio.Future[None] | None = None,
    ) -> KillReport:
        """HALTED at once; pending proposals KILLED; orders cancelled; positions flattened and verified.

        Args:
            on_halted: resolved as soon as the halt is durably journaled, before the clean-up.
            answered: resolved by the caller once it has told the operator; the clean-up gives that a
                few milliseconds' head start.
        """
        return await self.kill_switch.kill(operator or "unknown", reason or "no reason given", on_halted, answered)

    async def sweep_kill(self) -> KillReport | None:
        """While HALTED by the kill switch, finish what a kill left undone; None when there is nothing to do."""
        return await self.kill_switch.sweep()

    def watch_venue(self, venue: WatchedVenue, period: float, alert: Alert | None = None) -> VenueWatch:
        """The watch that keeps the journal and a real venue in agreement (start it after `start()`)."""
        return VenueWatch(venue, self.recorder, self.execution, self.kill_switch, period, alert)

    async def rearm(self, operator: str, acknowledgment: str, reason: str = "") -> CommandResult:
        """Leave HALTED or REDUCING. Needs the typed phrase RE-ARM; nothing else ever does this."""
        validate_operator(operator)
        result = await self._controls.rearm(operator, acknowledgment, reason)
        if result.ok:  # fills learnt while HALTED got no protection; a position still held gets it now
            await self._protection.protect_missing("re-armed: filled while HALTED")
        return result

    async def acknowledge(self, operator: str, kind: AcknowledgmentKind, text: str) -> CommandResult:
        """Record a typed risk acknowledgment, bound to this config (and model)."""
        validate_operator(operator)
        return await self._controls.acknowledge(operator, kind, text)

    async def reenable_throttle(self, operator: str, reason: str = "") -> CommandResult:
        """Let entries through again after the order throttle tripped."""
        validate_operator(operator)
        return await self._controls.reenable_throttle(operator, reason)

    async def set_risk_limit(
        self, operator: str, key: str, value: Any, reason: str = "", *, confirm_risk_increase: bool = False
    ) -> CommandResult:
        """Change one risk limit at run time, validated like the config file and journaled; a change that adds
        risk needs `confirm_risk_increase`."""
        validate_operator(operator)
        return await self._controls.set_risk_limit(operator, key, value, reason, confirm_risk_increase)

    async def pause_model(self, operator: str, reason: str) -> CommandResult:
        """Stop taking the model's proposals until someone resumes it."""
        return await self._controls.pause_model(operator, reason)

    async def resume_model(self, operator: str, reason: str = "") -> CommandResult:
        """Take the model's proposals again."""
        return await self._controls.resume_model(operator, reason)

    # --- resting orders ----------------------------------------------------------------

    def resting_orders(self) -> list[OrderRecord]:
        """Orders working at the venue (limit entries, stops, take-profits), oldest first."""
        return self._orders.resting()

    async def cancel_order(self, order: str, operator: str, reason: str = "", credential: str = "") -> CommandResult:
        """Cancel a resting order, named by its id, its short id or its proposal's id; journaled with who and why."""
        validate_operator(operator)
        return await self._orders.cancel(order, operator, reason, credential)

    async def amend_order(
        self,
        order: str,
        operator: str,
        *,
        price: Decimal | None = None,
        qty: Decimal | None = None,
        reason: str = "",
        credential: str = "",
    ) -> CommandResult:
        """Move a resting order's price or lower its quantity: cancelled, then replaced through the broker."""
        validate_operator(operator)
        for name, value in (("price", price), ("qty", qty)):
            if value is not None:
                validate_positive(name, value)
        return await self._orders.amend(order, operator, Amendment(price, qty), reason, credential)

    async def close_position(
        self, symbol: str, operator: str, qty: Decimal | None = None, reason: str = ""
    ) -> CommandResult:
        """Close (or with `qty`, reduce) a position with a reduce-only market order."""
        validate_operator(operator)
        if qty is not None:
            validate_positive("qty", qty)
        return await self._controls.close_position(symbol, operator, qty, reason)
