"""The approval desk: proposals in, human decisions recorded, approved orders out.

A model (or a test, or a script) may *propose*; only an operator's approve or override,
durably journaled first, sends an order; the kill switch always wins. Risk checks run when a
proposal is queued and again at decision time. Business refusals come back as values
(`CommandResult.ok is False`, with the reason); malformed commands raise `InvalidCommand`
before anything is recorded.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog
from msgspec.structs import fields, replace

from guard import codec
from guard.approval.execution import Execution, reducing_order, symbol_tag
from guard.approval.killswitch import KillReport, KillSwitch
from guard.approval.recorder import Recorder
from guard.approval.state import GuardState, ProposalRecord
from guard.broker.base import Broker
from guard.clock import Clock
from guard.config import ApprovalSection, Config, OperatorsSection, RiskSection, replace_setting
from guard.domain import (
    HARD_LEVERAGE_CAP,
    ONE,
    ZERO,
    AcknowledgmentKind,
    Bar,
    DecisionKind,
    FeedHealth,
    MarketEvent,
    MarketSpec,
    MarkPrice,
    OrderPurpose,
    OrderRequest,
    OrderType,
    OverrideEdits,
    Proposal,
    ProposalRequest,
    ProposalStatus,
    Side,
    Ticker,
    TradingState,
    Verdict,
)
from guard.errors import ConfigError, InvalidCommand, JournalFailing
from guard.events import (
    AccountFunded,
    AcknowledgmentRecorded,
    ApprovalCounted,
    CommandRefused,
    DeadmanApplied,
    DecisionRecorded,
    Event,
    FeedHealthChanged,
    JournalFailed,
    JournalRecovered,
    ModelPaused,
    ModelResumed,
    OperatorPresenceLost,
    OrderFilled,
    ProposalExpired,
    ProposalFailed,
    ProposalQueued,
    ProposalRefused,
    ProposalRepriced,
    RiskLimitChanged,
    SessionEnded,
    SessionStarted,
    ThrottleReenabled,
    ThrottleTripped,
    TradingStateChanged,
)
from guard.journal.store import Journal
from guard.risk.checks import RiskContext, increases_risk, proposal_liquidation_price, run_checks
from guard.risk.liquidation import liquidation_distance_sigma, p_liquidation

log = structlog.get_logger(__name__)

REARM_PHRASE = "RE-ARM"
"""What an operator types to leave HALTED or REDUCING."""

PRICE_SANITY_MULTIPLE = 10
"""A proposal's limit, stop or take-profit lies within this factor of the market price, either way."""

ACKNOWLEDGMENT_PHRASES: Mapping[AcknowledgmentKind, str] = {
    AcknowledgmentKind.MODEL_PROPOSALS: "I UNDERSTAND THE MODEL CAN BE WRONG",
    AcknowledgmentKind.LEVERAGE: "I UNDERSTAND LEVERAGE CAN LIQUIDATE ME",
}
"""What an operator types to record each risk acknowledgment."""


@dataclass(frozen=True, slots=True)
class DeskSettings:
    """The parts of the config the desk needs, and what acknowledgments bind to."""

    approval: ApprovalSection
    risk: RiskSection
    operators: OperatorsSection
    starting_balance: Decimal
    config_hash: str
    model_hash: str = ""
    novelty_policy: str = "confirm"

    @classmethod
    def from_config(cls, config: Config, model_hash: str = "") -> DeskSettings:
        return cls(
            approval=config.approval,
            risk=config.risk,
            operators=config.operators,
            starting_balance=config.paper.starting_balance,
            config_hash=config.hash(),
            model_hash=model_hash,
            novelty_policy=config.model.novelty_policy,
        )


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The answer to an operator command. `ok` is False for a refusal, with the reason."""

    ok: bool
    reason: str = ""
    proposal: Proposal | None = None
    status: ProposalStatus | None = None


def typed_matches(typed: str, phrase: str) -> bool:
    return " ".join(typed.split()).upper() == phrase


class ApprovalDesk:
    """The core guard. Built by the daemon (or a test) and driven through these methods."""

    def __init__(
        self,
        journal: Journal,
        broker: Broker,
        specs: Mapping[str, MarketSpec],
        settings: DeskSettings,
        clock: Clock,
    ) -> None:
        self.specs = specs
        self.settings = settings
        self.clock = clock
        self.journal = journal
        self.broker = broker
        self.state = GuardState(specs)
        self.recorder = Recorder(journal, self.state, clock)
        self.execution = Execution(self.recorder, broker)
        self.kill_switch = KillSwitch(
            self.recorder, self.execution, clock, cancel_stops=settings.operators.kill_cancels_stops
        )
        self.marks: dict[str, Decimal] = {}
        self._mark_source: dict[str, int] = {}
        self.feed_health: dict[str, FeedHealth] = {}
        self._pending_index: tuple[int, dict[tuple[str, Side], tuple[Proposal, ...]]] = (-1, {})
        self.operator_present = True
        """False while no operator is attached: nothing new is proposed, so nothing can execute."""
        self.started = False
        self._journal_failed_at: int | None = None
        self.journal_listeners: list[Callable[[JournalFailing | None], None]] = []
        """Told, on the event loop, after the desk has halted for a failing journal or recorded its recovery."""

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Rebuild state from the journal, settle what a crash left open, and open a session."""
        replayed = 0
        for entry in self.journal.checked_entries():  # refuses a broken, cut or rolled-back journal first
            self.state.apply(entry.event)
            replayed += 1
        state = self.state
        now = self.clock.now_ms()
        first_run = state.events_applied == 0
        clean = not state.session_open
        events: list[Event] = [
            SessionStarted(now, os.getpid(), self.settings.config_hash, clean, state.journal_id or secrets.token_hex(3))
        ]
        if first_run:
            events.append(AccountFunded(now, "USDT", self.settings.starting_balance))
        if not clean and state.trading_state is not TradingState.HALTED:
            events.append(
                TradingStateChanged(
                    now,
                    state.trading_state,
                    TradingState.HALTED,
                    "unclean exit: the previous session ended without a clean shutdown; review, then re-arm",
                    "guard",
                )
            )
        for record in state.pending():
            events.append(ProposalExpired(now, record.proposal.id, "the daemon restarted before anyone decided"))
        for record in state.proposals.values():
            if record.status in (ProposalStatus.APPROVED, ProposalStatus.OVERRIDDEN):
                events.append(
                    ProposalFailed(now, record.proposal.id, "interrupted by a restart before it was sent: not executed")
                )
        await self.recorder.commit(events, failing="keep")
        loop = asyncio.get_running_loop()
        self.journal.on_health(lambda error: loop.call_soon_threadsafe(self._journal_health, error))
        reports = await self.broker.recover(
            state.account.copy(),
            [(o.request, o.remaining) for o in state.open_orders()],
            set(state.orders),
            [o.request for o in state.orders_in_doubt()],
        )
        await self.execution.record_reports(reports)
        self.started = True
        log.info(
            "desk_started",
            trading_state=state.trading_state.value,
            previous_clean=clean,
            events_replayed=replayed,
            journal=str(self.journal.path),
            kill_unfinished=state.kill_in_progress,
        )

    @property
    def kill_unfinished(self) -> bool:
        """A kill was journaled and not completed (by a process that died mid-kill, or by this one)."""
        return self.state.kill_in_progress

    def prices_missing_to_flatten(self) -> list[str]:
        """Symbols held without a known price: a paper venue cannot flatten them until the feed gives one."""
        if not self.broker.needs_marks:
            return []
        return [s for s in self.state.account.positions if s not in self.marks]

    async def finish_interrupted_kill(self) -> KillReport | None:
        """Complete a kill that was journaled and not completed: the first thing a restarted daemon does
        (invariant 11). Returns None when there is none; a report with `flat` False when it must be tried again."""
        return await self.kill_switch.resume()

    # --- the journal failing -------------------------------------------------------------

    def _journal_health(self, error: JournalFailing | None) -> None:
        """Told on the event loop when the journal starts failing, and when it writes again."""
        if error is not None:
            self._journal_failed_at = self.clock.now_ms()
            state = self.state
            events: list[Event] = [JournalFailed(self._journal_failed_at, str(error))]
            if state.trading_state is not TradingState.HALTED:
                events.append(
                    TradingStateChanged(
                        self._journal_failed_at,
                        state.trading_state,
                        TradingState.HALTED,
                        f"journal failing: {error}",
                        "guard",
                    )
                )
            self.recorder.record(events, durable=True, failing="keep")
            log.critical("trading_halted_journal_failing", error=str(error))
        else:
            failed_at = self._journal_failed_at or self.clock.now_ms()
            dropped, self.recorder.dropped = self.recorder.dropped, 0
            self.recorder.record(
                [JournalRecovered(self.clock.now_ms(), failed_at, dropped)], durable=True, failing="keep"
            )
            log.warning("journal_recovered", failed_for_ms=self.clock.now_ms() - failed_at, events_not_recorded=dropped)
        for listener in self.journal_listeners:
            listener(error)

    def _journal_refusal(self) -> str:
        """Why no command that needs a durable record can run now ("" while the journal writes)."""
        error = self.journal.failing
        if error is None:
            return ""
        return f"the journal is failing ({error}): nothing can be recorded, so only the kill switch works"

    async def stop(self, reason: str = "shutdown") -> None:
        """End the session cleanly: pending proposals expire; positions are left as they are."""
        now = self.clock.now_ms()
        events: list[Event] = [
            ProposalExpired(now, r.proposal.id, f"the daemon stopped ({reason})") for r in self.state.pending()
        ]
        events.append(SessionEnded(now, reason))
        await self.recorder.commit(events, failing="keep")
        self.started = False
        log.info("desk_stopped", reason=reason)

    # --- market data -----------------------------------------------------------------

    async def on_market(self, event: MarketEvent) -> None:
        """Feed the paper venue and the marks; latch REDUCING when the daily loss limit is hit."""
        reports = self.broker.on_market(event)
        self._update_mark(event)
        if reports:
            await self.execution.record_reports(reports)
        await self._check_daily_loss()

    def fast_forward_mark(self, event: MarketEvent) -> None:
        """Take an event's price as the mark, without working the venue or the daily loss check.

        Replay's lean path only: it calls this for events it has shown could change nothing
        else (see `guard.replay.engine`), so the marks stay exactly what `on_market` would set.
        """
        self._update_mark(event)

    def set_feed_health(self, health: FeedHealth) -> bool:
        """Invariant 6: an unhealthy feed stops new proposals and blocks approvals on that symbol.

        Takes effect at once. Returns True when the symbol changed between healthy and not,
        which `record_feed_health` journals.
        """
        previous = self.feed_health.get(health.symbol)
        self.feed_health[health.symbol] = health
        if previous is None:
            return not health.healthy
        return previous.healthy != health.healthy

    async def record_feed_health(self, health: FeedHealth) -> None:
        """Apply a feed health report and journal it when the symbol turned unhealthy or recovered."""
        if self.set_feed_health(health):
            await self.recorder.commit(
                [FeedHealthChanged(self.clock.now_ms(), health.symbol, health.healthy, health.reason)],
                durable=False,
                failing="drop",
            )
            log.warning("feed_health_changed", symbol=health.symbol, healthy=health.healthy, reason=health.reason)

    def approvable(self, record: ProposalRecord) -> str:
        """Why an operator could not approve this proposal now ("" if they could). Changes nothing.

        A price past the collar is not a reason: approving re-prices it for a second look.
        """
        p = record.proposal
        state = self.state
        if record.status is not ProposalStatus.PENDING:
            return f"{p.id} is {record.status.value}"
        if state.trading_state is TradingState.HALTED:
            return f"trading is HALTED ({state.state_reason})"
        feed = self.feed_health.get(p.symbol)
        if feed is not None and not feed.healthy:
            return f"market data for {p.symbol} is not healthy: {feed.reason}"
        if p.symbol not in self.marks:
            return f"no market price for {p.symbol}"
        blocked = [
            f"{c.name}: {c.reason}"
            for c in run_checks(p, self._risk_context(p), self.limits())
            if c.verdict is Verdict.BLOCK
        ]
        return "blocked by risk checks: " + "; ".join(blocked) if blocked else ""

    def needs_two(self, p: Proposal) -> bool:
        """Whether four-eyes applies to this proposal."""
        return self._needs_two(p)

    def _update_mark(self, event: MarketEvent) -> None:
        # A mark price beats a last trade price beats a bar close.
        if isinstance(event, MarkPrice):
            rank, price = 3, event.mark
        elif isinstance(event, Ticker):
            rank, price = 2, event.last
        elif isinstance(event, Bar):
            rank, price = 1, event.close
        else:
            return
        if rank >= self._mark_source.get(event.symbol, 0):
            self._mark_source[event.symbol] = rank
            self.marks[event.symbol] = Decimal(str(price))

    def daily_pnl(self) -> Decimal:
        unrealized = sum(
            (p.unrealized_pnl(self.marks[s]) for s, p in self.state.account.positions.items() if s in self.marks),
            ZERO,
        )
        return self.state.daily.today(self.clock.now_ms()) + unrealized

    async def _check_daily_loss(self) -> None:
        state = self.state
        if state.trading_state is not TradingState.ACTIVE:
            return
        limit = self.limits().daily_loss_limit
        pnl = self.daily_pnl()
        if -pnl >= limit:
            await self.recorder.commit(
                [
                    TradingStateChanged(
                        self.clock.now_ms(),
                        state.trading_state,
                        TradingState.REDUCING,
                        f"daily loss limit: lost {-pnl:.2f} today, the limit is {limit}",
                        "guard",
                    )
                ],
                failing="keep",
            )
            log.warning("daily_loss_limit_reached", loss=str(-pnl), limit=str(limit))

    # --- proposals -------------------------------------------------------------------

    async def propose(self, request: ProposalRequest) -> CommandResult:
        """Price, check and queue a proposal, or refuse it with the reason."""
        self._validate_request(request)
        refusal = self._refuse_proposal(request)
        now = self.clock.now_ms()
        if refusal:
            await self.recorder.commit([ProposalRefused(now, request, refusal)], durable=False, failing="drop")
            log.info("proposal_refused", symbol=request.symbol, side=request.side.value, reason=refusal)
            return CommandResult(False, refusal)
        proposal = self._price(
            pid=f"P{self.state.proposal_count + 1:06d}",
            version=1,
            request=request,
            created_at=now,
            expires_at=now + round(self.settings.approval.ttl_seconds * 1000),
        )
        await self.recorder.commit([ProposalQueued(now, proposal)], durable=False)
        log.info(
            "proposal_queued",
            proposal_id=proposal.id,
            symbol=proposal.symbol,
            side=proposal.side.value,
            qty=str(proposal.qty),
            leverage=str(proposal.leverage),
            confidence=proposal.confidence,
            blocked=proposal.blocked,
        )
        return CommandResult(True, "", proposal, ProposalStatus.PENDING)

    def _validate_request(self, r: ProposalRequest) -> None:
        if r.symbol not in self.specs:
            raise InvalidCommand(f"unknown symbol {r.symbol!r}; known: {', '.join(self.specs)}")
        _positive("qty", r.qty)
        _leverage(r.leverage)
        for name in ("stop", "take_profit", "limit_price"):
            value = getattr(r, name)
            if value is not None:
                _positive(name, value)
        self._check_prices(r.symbol, stop=r.stop, take_profit=r.take_profit, limit_price=r.limit_price)
        if r.order_type is OrderType.LIMIT and r.limit_price is None:
            raise InvalidCommand("a limit proposal needs a limit price")
        if r.order_type not in (OrderType.MARKET, OrderType.LIMIT):
            raise InvalidCommand(f"a proposal is a market or limit order, not {r.order_type}")
        for name in ("confidence", "novelty"):
            value = getattr(r, name)
            if not (math.isfinite(value) and 0 <= value <= 1):
                raise InvalidCommand(f"{name} must be between 0 and 1, got {value!r}")
        if not (math.isfinite(r.sigma) and r.sigma >= 0):
            raise InvalidCommand(f"sigma must be a non-negative number, got {r.sigma!r}")
        if not (math.isfinite(r.horizon_seconds) and r.horizon_seconds > 0):
            raise InvalidCommand(f"horizon_seconds must be positive, got {r.horizon_seconds!r}")

    def _check_prices(self, symbol: str, **prices: Decimal | None) -> None:
        """A limit, stop or take-profit within PRICE_SANITY_MULTIPLE of the market price (once there is one):
        anything further is a typo or an attack, and its arithmetic (a re-price, a collar) can overflow."""
        mark = self.marks.get(symbol)
        if mark is None or mark <= 0:
            return
        low, high = mark / PRICE_SANITY_MULTIPLE, mark * PRICE_SANITY_MULTIPLE
        for name, value in prices.items():
            if value is not None and not low <= value <= high:
                raise InvalidCommand(
                    f"{name} {value} is more than {PRICE_SANITY_MULTIPLE}x away from the market price {mark} "
                    f"of {symbol}: allowed {low:.6g} to {high:.6g}"
                )

    def _refuse_proposal(self, r: ProposalRequest) -> str:
        state = self.state
        journal = self._journal_refusal()
        if journal:
            return journal
        if state.trading_state is TradingState.HALTED:
            return f"trading is HALTED ({state.state_reason})"
        if not self.operator_present:
            return "no operator is attached: nobody could approve it"
        if r.source == "model":
            if state.model_paused:
                return f"the model is paused: {state.model_pause_reason}"
            if not self.model_acknowledged():
                return "model proposals need a typed risk acknowledgment on record for this config and model"
            if r.novel and self.settings.novelty_policy == "suppress":
                return "novel — the model is guessing (suppressed by model.novelty_policy)"
        if len(state.pending()) >= self.settings.approval.max_pending:
            return f"the queue is full ({self.settings.approval.max_pending} pending)"
        if r.symbol not in self.marks:
            return f"no market price for {r.symbol} yet"
        feed = self.feed_health.get(r.symbol)
        if feed is not None and not feed.healthy:
            return f"market data for {r.symbol} is not healthy: {feed.reason}"
        if state.trading_state is TradingState.REDUCING and increases_risk(
            r.side, r.qty, state.account.position(r.symbol)
        ):
            return "trading is REDUCING: only proposals that reduce a position are taken"
        if self.specs[r.symbol].round_qty(r.qty) < self.specs[r.symbol].min_qty:
            return f"quantity {r.qty} is below the market minimum {self.specs[r.symbol].min_qty}"
        return ""

    def _price(
        self, *, pid: str, version: int, request: ProposalRequest | Proposal, created_at: int, expires_at: int
    ) -> Proposal:
        """Price a proposal at today's mark: liquidation price, P(liquidation), risk checks."""
        spec = self.specs[request.symbol]
        mark = spec.round_price(self.marks[request.symbol])
        qty = spec.round_qty(request.qty)
        entry = request.limit_price or mark
        liquidation = proposal_liquidation_price(spec, request.side, qty, entry, request.leverage)
        horizon = self.settings.approval.ttl_seconds + request.horizon_seconds
        draft = Proposal(
            id=pid,
            version=version,
            symbol=request.symbol,
            side=request.side,
            qty=qty,
            leverage=request.leverage,
            order_type=request.order_type,
            limit_price=request.limit_price,
            stop=request.stop,
            take_profit=request.take_profit,
            price=mark,
            liquidation_price=liquidation,
            p_liquidation=p_liquidation(request.side, entry, liquidation, request.sigma, horizon),
            liquidation_distance_sigma=liquidation_distance_sigma(entry, liquidation, request.sigma, horizon),
            confidence=request.confidence,
            novelty=request.novelty,
            novel=request.novel,
            sigma=request.sigma,
            horizon_seconds=request.horizon_seconds,
            model_id=request.model_id,
            why=request.why,
            source=request.source,
            created_at=created_at,
            expires_at=expires_at,
            checks=(),
        )
        return replace(draft, checks=run_checks(draft, self._risk_context(draft), self.limits()))

    def _pending_like(self, p: Proposal) -> tuple[Proposal, ...]:
        """Pending proposals for the same symbol and side (what the duplicate check needs), indexed once
        per state change so checking a thousand pending proposals stays linear."""
        version = self.state.events_applied
        if self._pending_index[0] != version:
            index: dict[tuple[str, Side], list[Proposal]] = {}
            for r in self.state.pending():
                index.setdefault((r.proposal.symbol, r.proposal.side), []).append(r.proposal)
            self._pending_index = (version, {k: tuple(v) for k, v in index.items()})
        return self._pending_index[1].get((p.symbol, p.side), ())

    def _risk_context(self, p: Proposal) -> RiskContext:
        state = self.state
        return RiskContext(
            trading_state=state.trading_state,
            positions=state.account.positions,
            marks=self.marks,
            pending=self._pending_like(p),
            leverage_acknowledged=self.leverage_acknowledged(),
            throttle_latched=state.throttle_latched,
            orders_last_minute=state.orders_last_minute(self.clock.now_ms()),
            daily_pnl=self.daily_pnl(),
            feed=self.feed_health.get(p.symbol),
            spec=self.specs[p.symbol],
        )

    def limits(self) -> RiskSection:
        """The config's risk limits with any changed at run time (journaled) applied."""
        limits = self.settings.risk
        for key, value in self.state.risk_limits.items():
            limits = replace_setting(limits, "risk", key, json.loads(value))
        return limits

    async def expire_due(self) -> int:
        """Expire proposals nobody answered in time: no answer means no. Returns how many."""
        now = self.clock.now_ms()
        due = [r for r in self.state.pending() if r.proposal.expires_at <= now]
        if not due:
            return 0
        ttl = self.settings.approval.ttl_seconds
        await self.recorder.commit(
            [ProposalExpired(now, r.proposal.id, f"no decision within {ttl:g} s: no answer means no") for r in due],
            durable=False,
            failing="keep",
        )
        return len(due)

    # --- decisions -------------------------------------------------------------------

    async def approve(
        self,
        proposal_id: str,
        operator: str,
        *,
        version: int | None = None,
        reason: str = "",
        confirm_novel: bool = False,
    ) -> CommandResult:
        """Approve the proposal as shown; it executes once the approval is durably journaled."""
        record, refusal = await self._decidable(proposal_id, operator, "approve", version)
        if record is None:
            return refusal
        p = record.proposal
        refusal_text = await self._gate(p, operator, confirm_novel)
        if refusal_text:
            return await self._refuse(operator, "approve", proposal_id, refusal_text)
        if self._needs_two(p):
            if operator in record.approvals:
                return await self._refuse(
                    operator,
                    "approve",
                    proposal_id,
                    "four-eyes: the second approval must come from a different operator",
                )
            if not record.approvals:
                await self.recorder.commit([ApprovalCounted(self.clock.now_ms(), p.id, p.version, operator, reason)])
                log.info("approval_counted", proposal_id=p.id, operator=operator, needed=2)
                return CommandResult(
                    True, "approval 1 of 2 recorded: a second, different operator must approve", p, record.status
                )
        decision = DecisionRecorded(self.clock.now_ms(), p.id, DecisionKind.APPROVE, operator, reason, shown=p)
        return await self._execute(record, decision)

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
    ) -> CommandResult:
        """Approve with edits. An edit that adds risk needs `confirm_risk_increase`."""
        _validate_edits(edits)
        record, refusal = await self._decidable(proposal_id, operator, "override", version)
        if record is None:
            return refusal
        p = record.proposal
        self._check_prices(p.symbol, stop=edits.stop, take_profit=edits.take_profit, limit_price=edits.limit_price)
        edited, diff, riskier = self._edited(p, edits)
        if riskier and not confirm_risk_increase:
            return await self._refuse(
                operator,
                "override",
                proposal_id,
                f"this edit increases risk ({'; '.join(riskier)}): confirm the increase to proceed",
            )
        refusal_text = await self._gate(edited, operator, confirm_novel)
        if refusal_text:
            return await self._refuse(operator, "override", proposal_id, refusal_text)
        if self._needs_two(edited):
            return await self._refuse(
                operator,
                "override",
                proposal_id,
                "four-eyes: an override this large needs two approvals; approve the proposal as shown, or reduce it",
            )
        decision = DecisionRecorded(
            self.clock.now_ms(),
            p.id,
            DecisionKind.OVERRIDE,
            operator,
            reason,
            shown=p,
            edits=edits,
            diff=tuple(diff),
            result=edited,
            confirmed_risk_increase=bool(riskier),
        )
        return await self._execute(record, decision)

    async def reject(self, proposal_id: str, operator: str, *, reason: str = "") -> CommandResult:
        record, refusal = await self._decidable(proposal_id, operator, "reject", None)
        if record is None:
            return refusal
        p = record.proposal
        await self.recorder.commit(
            [DecisionRecorded(self.clock.now_ms(), p.id, DecisionKind.REJECT, operator, reason, shown=p)]
        )
        log.info("decision_recorded", proposal_id=p.id, kind="reject", operator=operator, reason=reason)
        return CommandResult(True, "rejected", p, ProposalStatus.REJECTED)

    async def _decidable(
        self, proposal_id: str, operator: str, command: str, version: int | None
    ) -> tuple[ProposalRecord | None, CommandResult]:
        """The pending record to decide on, or the refusal that says why not."""
        _operator(operator)
        journal = self._journal_refusal()
        if journal:
            return None, await self._refuse(operator, command, proposal_id, journal)
        record = self.state.proposals.get(proposal_id)
        if record is None:
            return None, await self._refuse(operator, command, proposal_id, f"no proposal {proposal_id}")
        if record.status is not ProposalStatus.PENDING:
            return None, await self._refuse(
                operator, command, proposal_id, f"{proposal_id} is {record.status.value}, not PENDING"
            )
        if version is not None and version != record.proposal.version:
            return None, await self._refuse(
                operator,
                command,
                proposal_id,
                f"you decided on version {version}, but {proposal_id} is now version {record.proposal.version}: "
                "review it again",
            )
        if record.proposal.expires_at <= self.clock.now_ms():
            await self.expire_due()
            return None, await self._refuse(operator, command, proposal_id, f"{proposal_id} expired")
        return record, CommandResult(True)

    async def _gate(self, p: Proposal, operator: str, confirm_novel: bool) -> str:
        """Everything that must hold at the moment of a decision; "" when the order may go."""
        state = self.state
        if state.trading_state is TradingState.HALTED:
            return f"trading is HALTED ({state.state_reason}): re-arm first"
        feed = self.feed_health.get(p.symbol)
        if feed is not None and not feed.healthy:
            return f"approvals on {p.symbol} are blocked: market data is not healthy ({feed.reason})"
        mark = self.marks.get(p.symbol)
        if mark is None:
            return f"no market price for {p.symbol}"
        moved_bps = abs(mark - p.price) / p.price * 10_000
        collar = self.settings.approval.collar_bps
        passed = _trigger_passed(p, mark)
        if moved_bps > Decimal(str(collar)) or passed:
            repriced = self._price(
                pid=p.id,
                version=p.version + 1,
                request=self._shifted(p, mark),
                created_at=p.created_at,
                expires_at=p.expires_at,
            )
            why = f"the market passed its {passed}" if passed else f"moved {moved_bps:.0f} bps"
            await self.recorder.commit([ProposalRepriced(self.clock.now_ms(), repriced, why)])
            again = f"re-priced at {repriced.price} as version {repriced.version}; review and approve again"
            if passed:
                # Within the collar, but the fill would meet its own stop or take-profit at once.
                return f"the price ({mark}) is already past {p.id}'s {passed}: {again}"
            return f"the price moved {moved_bps:.0f} bps since {p.id} was priced (collar {collar:g} bps): {again}"
        if p.novel and self.settings.novelty_policy == "confirm" and not confirm_novel:
            return "novel — the model is guessing: approving needs the novelty confirmation"
        limits = self.limits()
        checks = run_checks(p, self._risk_context(p), limits)
        blocked = [f"{c.name}: {c.reason}" for c in checks if c.verdict is Verdict.BLOCK]
        if not state.throttle_latched and any(c.name == "throttle" and c.verdict is Verdict.BLOCK for c in checks):
            # The order beyond the limit latches the throttle: entries stay off until a person re-enables them.
            count = state.orders_last_minute(self.clock.now_ms())
            await self.recorder.commit([ThrottleTripped(self.clock.now_ms(), count, limits.max_orders_per_minute)])
            log.warning("throttle_tripped", orders_in_window=count, limit=limits.max_orders_per_minute)
        if blocked:
            return "blocked by risk checks: " + "; ".join(blocked)
        return ""

    def _shifted(self, p: Proposal, mark: Decimal) -> Proposal:
        """Move a market proposal's stop and take-profit with the price, keeping their distances."""
        if p.order_type is not OrderType.MARKET:
            return p
        spec = self.specs[p.symbol]
        ratio = mark / p.price
        return replace(
            p,
            stop=spec.round_price(p.stop * ratio) if p.stop else None,
            take_profit=spec.round_price(p.take_profit * ratio) if p.take_profit else None,
        )

    async def _refuse(self, operator: str, command: str, proposal_id: str | None, reason: str) -> CommandResult:
        await self.recorder.commit(
            [CommandRefused(self.clock.now_ms(), operator, command, proposal_id, reason)],
            durable=False,
            failing="drop",
        )
        log.info("command_refused", operator=operator, command=command, proposal_id=proposal_id, reason=reason)
        record = self.state.proposals.get(proposal_id or "")
        return CommandResult(False, reason, record.proposal if record else None, record.status if record else None)

    def _needs_two(self, p: Proposal) -> bool:
        ops = self.settings.operators
        return (ops.four_eyes_notional > 0 and p.notional >= ops.four_eyes_notional) or (
            ops.four_eyes_leverage > 0 and p.leverage >= Decimal(str(ops.four_eyes_leverage))
        )

    async def _execute(self, record: ProposalRecord, decision: DecisionRecorded) -> CommandResult:
        """Journal the decision with the order's intent in one durable commit, then send it."""
        p = decision.executes
        assert p is not None
        request = self._entry_request(p)
        log.info(
            "decision_recorded",
            proposal_id=p.id,
            kind=decision.kind.value,
            operator=decision.operator,
            reason=decision.reason,
            diff=list(decision.diff),
            confidence=p.confidence,
            price=str(p.price),
        )
        reports = await self.execution.send(request, preceding=[decision])
        filled = sum((r.fill.qty for r in reports if isinstance(r, OrderFilled)), ZERO)
        if filled > 0:
            await self._protect(p, request.client_order_id, filled)
        status = self.state.proposals[p.id].status
        return CommandResult(status is ProposalStatus.FILLED, _outcome(status, reports), p, status)

    def _entry_request(self, p: Proposal) -> OrderRequest:
        return OrderRequest(
            client_order_id=f"g{self.state.journal_id}-{p.id}-E",
            symbol=p.symbol,
            side=p.side,
            qty=p.qty,
            order_type=p.order_type,
            purpose=OrderPurpose.ENTRY,
            leverage=p.leverage,
            limit_price=p.limit_price,
            proposal_id=p.id,
        )

    async def _protect(self, p: Proposal, entry_id: str, qty: Decimal) -> None:
        """Rest the proposal's stop and take-profit as reduce-only orders on the filled quantity."""
        orders = [
            OrderRequest(
                client_order_id=f"{entry_id[:-2]}-{suffix}",
                symbol=p.symbol,
                side=p.side.opposite,
                qty=qty,
                order_type=order_type,
                purpose=purpose,
                leverage=p.leverage,
                trigger_price=trigger,
                reduce_only=True,
                proposal_id=p.id,
            )
            for suffix, order_type, trigger, purpose in (
                ("S", OrderType.STOP_MARKET, p.stop, OrderPurpose.STOP),
                ("T", OrderType.TAKE_PROFIT_MARKET, p.take_profit, OrderPurpose.TAKE_PROFIT),
            )
            if trigger is not None
        ]
        if orders:
            await self.execution.send_many(orders)

    # --- overrides -------------------------------------------------------------------

    def _edited(self, p: Proposal, edits: OverrideEdits) -> tuple[Proposal, list[str], list[str]]:
        """The overridden proposal, what changed, and which changes add risk."""
        changes: dict[str, Any] = {}
        diff: list[str] = []
        riskier: list[str] = []
        for name in ("qty", "leverage", "stop", "take_profit", "limit_price"):
            new = getattr(edits, name)
            old = getattr(p, name)
            if new is None or new == old:
                continue
            changes[name] = new
            diff.append(f"{name} {old} -> {new}")
            if name in ("qty", "leverage") and new > old:
                riskier.append(f"{name} {old} -> {new}")
            if name == "stop" and old is not None and abs(new - p.price) > abs(old - p.price):
                riskier.append(f"wider stop {old} -> {new}")
        if "limit_price" in changes:
            changes["order_type"] = OrderType.LIMIT
        request = replace(p, **changes)
        edited = self._price(
            pid=p.id, version=p.version + 1, request=request, created_at=p.created_at, expires_at=p.expires_at
        )
        return edited, diff, riskier

    # --- operator presence -------------------------------------------------------------

    async def operators_absent(self, silent_seconds: float, policy: str) -> None:
        """The dead-man switch: no operator heartbeat for too long.

        Nothing new is proposed, pending proposals expire, and open positions follow the policy:
        "hold" leaves them, "reduce" halves them, "flatten" closes them (reduce-only orders that,
        like the kill switch's, pass every trading state). The daemon stays like this when an
        operator returns, until they act.
        """
        self.operator_present = False
        now = self.clock.now_ms()
        events: list[Event] = [OperatorPresenceLost(now, silent_seconds, policy)]
        events += [
            ProposalExpired(now, r.proposal.id, f"no operator heartbeat for {silent_seconds:.0f} s")
            for r in self.state.pending()
        ]
        await self.recorder.commit(events, failing="keep")
        log.warning("operator_presence_lost", silent_seconds=round(silent_seconds, 1), policy=policy)
        if policy != "hold":
            await self._apply_deadman(policy)

    async def _apply_deadman(self, policy: str) -> None:
        """Send the dead-man policy's reduce-only orders, then record that it was applied (a restart finishes a
        policy that was recorded and not applied)."""
        n = self.state.events_applied
        orders = []
        for position in list(self.state.account.positions.values()):
            qty = None if policy == "flatten" else self.specs[position.symbol].round_qty(abs(position.qty) / 2)
            if qty is not None and qty <= 0:
                continue
            cid = f"g{self.state.journal_id}-D{n}-{symbol_tag(position.symbol)}"
            orders.append(reducing_order(cid, position, OrderPurpose.DEADMAN, qty))
        answers = await self.execution.send_many(orders) if orders else []
        filled = sum(any(isinstance(r, OrderFilled) for r in a) for a in answers)
        await self.recorder.commit([DeadmanApplied(self.clock.now_ms(), policy, len(orders), filled)], failing="keep")

    @property
    def deadman_unfinished(self) -> str:
        """The dead-man policy ("reduce" or "flatten") a dead process recorded and did not apply, or ""."""
        return self.state.deadman_pending

    async def finish_interrupted_deadman(self) -> None:
        """Apply a dead-man policy that was recorded by a process that died before applying it. A "reduce"
        whose orders were already sent is not reduced again: halving twice is not what the policy said."""
        policy = self.state.deadman_pending
        if not policy:
            return
        if policy == "reduce" and self.state.deadman_orders:
            await self.recorder.commit([DeadmanApplied(self.clock.now_ms(), policy, 0, 0)], failing="keep")
            return
        log.warning("deadman_resumed", policy=policy)
        await self._apply_deadman(policy)

    # --- the kill switch and what surrounds it ----------------------------------------

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

    async def rearm(self, operator: str, acknowledgment: str, reason: str = "") -> CommandResult:
        """Leave HALTED or REDUCING. Needs the typed phrase RE-ARM; nothing else ever does this."""
        _operator(operator)
        state = self.state
        if state.trading_state is TradingState.ACTIVE:
            return await self._refuse(operator, "rearm", None, "trading is already ACTIVE")
        journal = self._journal_refusal()
        if journal:
            return await self._refuse(operator, "rearm", None, journal)
        if state.kill_in_progress:
            if self.kill_switch.resuming:
                problems = "; ".join(self.kill_switch.resume_problems)
                return await self._refuse(
                    operator,
                    "rearm",
                    None,
                    "the kill interrupted by the restart is still being completed"
                    + (f" (last attempt: {problems})" if problems else ""),
                )
            return await self._refuse(operator, "rearm", None, "the kill switch is still cleaning up")
        if not typed_matches(acknowledgment, REARM_PHRASE):
            return await self._refuse(operator, "rearm", None, f"type {REARM_PHRASE} exactly to re-arm")
        await self.recorder.commit(
            [
                TradingStateChanged(
                    self.clock.now_ms(),
                    state.trading_state,
                    TradingState.ACTIVE,
                    f"re-armed by {operator}" + (f": {reason}" if reason else ""),
                    operator,
                )
            ]
        )
        log.warning("trading_rearmed", operator=operator, reason=reason)
        return CommandResult(True, "ACTIVE")

    async def acknowledge(self, operator: str, kind: AcknowledgmentKind, text: str) -> CommandResult:
        """Record a typed risk acknowledgment, bound to this config (and model)."""
        _operator(operator)
        if journal := self._journal_refusal():
            return await self._refuse(operator, f"acknowledge {kind.value}", None, journal)
        phrase = ACKNOWLEDGMENT_PHRASES[kind]
        if not typed_matches(text, phrase):
            return await self._refuse(operator, f"acknowledge {kind.value}", None, f'type "{phrase}" exactly')
        await self.recorder.commit(
            [
                AcknowledgmentRecorded(
                    self.clock.now_ms(), kind, operator, phrase, self.settings.config_hash, self.settings.model_hash
                )
            ]
        )
        log.info("acknowledgment_recorded", kind=kind.value, operator=operator)
        return CommandResult(True, f"{kind.value} acknowledged")

    def model_acknowledged(self) -> bool:
        ack = self.state.acknowledgments.get(AcknowledgmentKind.MODEL_PROPOSALS)
        return (
            ack is not None
            and ack.config_hash == self.settings.config_hash
            and ack.model_hash == self.settings.model_hash
        )

    def leverage_acknowledged(self) -> bool:
        ack = self.state.acknowledgments.get(AcknowledgmentKind.LEVERAGE)
        return ack is not None and ack.config_hash == self.settings.config_hash

    async def reenable_throttle(self, operator: str, reason: str = "") -> CommandResult:
        _operator(operator)
        if journal := self._journal_refusal():
            return await self._refuse(operator, "reenable_throttle", None, journal)
        if not self.state.throttle_latched:
            return await self._refuse(operator, "reenable_throttle", None, "the throttle is not tripped")
        await self.recorder.commit([ThrottleReenabled(self.clock.now_ms(), operator, reason)])
        return CommandResult(True, "throttle re-enabled")

    async def set_risk_limit(self, operator: str, key: str, value: Any, reason: str = "") -> CommandResult:
        """Change one risk limit at run time, validated like the config file and journaled."""
        _operator(operator)
        if journal := self._journal_refusal():
            return await self._refuse(operator, "set_risk_limit", None, journal)
        try:
            new_limits = replace_setting(self.limits(), "risk", key, value)
        except ConfigError as e:
            raise InvalidCommand(str(e)) from e
        old = codec.to_plain(getattr(self.limits(), key))
        new = codec.to_plain(getattr(new_limits, key))
        await self.recorder.commit(
            [RiskLimitChanged(self.clock.now_ms(), operator, key, json.dumps(old), json.dumps(new), reason)]
        )
        log.warning("risk_limit_changed", operator=operator, key=key, old=str(old), new=str(new), reason=reason)
        return CommandResult(True, f"risk.{key} {old} -> {new}")

    async def pause_model(self, operator: str, reason: str) -> CommandResult:
        if journal := self._journal_refusal():
            return await self._refuse(operator, "pause_model", None, journal)
        await self.recorder.commit([ModelPaused(self.clock.now_ms(), operator, reason)])
        return CommandResult(True, "model paused")

    async def resume_model(self, operator: str, reason: str = "") -> CommandResult:
        if journal := self._journal_refusal():
            return await self._refuse(operator, "resume_model", None, journal)
        if not self.state.model_paused:
            return await self._refuse(operator, "resume_model", None, "the model is not paused")
        await self.recorder.commit([ModelResumed(self.clock.now_ms(), operator, reason)])
        return CommandResult(True, "model resumed")

    async def close_position(
        self, symbol: str, operator: str, qty: Decimal | None = None, reason: str = ""
    ) -> CommandResult:
        """Close (or with `qty`, reduce) a position with a reduce-only market order."""
        _operator(operator)
        if qty is not None:
            _positive("qty", qty)
        if journal := self._journal_refusal():
            return await self._refuse(operator, "close", None, journal)
        position = self.state.account.position(symbol)
        if position is None:
            return await self._refuse(operator, "close", None, f"no open position in {symbol}")
        if self.state.trading_state is TradingState.HALTED:
            return await self._refuse(operator, "close", None, "trading is HALTED: the kill switch owns positions")
        n = self.state.close_count + 1
        request = reducing_order(f"g{self.state.journal_id}-C{n}", position, OrderPurpose.CLOSE, qty)
        reports = await self.execution.send(request)
        log.info("position_close_sent", symbol=symbol, operator=operator, qty=str(request.qty), reason=reason)
        filled = any(isinstance(r, OrderFilled) for r in reports)
        return CommandResult(filled, _outcome(None, reports))


def _trigger_passed(p: Proposal, mark: Decimal) -> str:
    """Which of a market proposal's stop and take-profit the mark has already reached ("" if neither): its
    entry would fill at the mark and the protective order would fire at once."""
    if p.order_type is not OrderType.MARKET:
        return ""
    buying = p.side is Side.BUY
    if p.stop is not None and (mark <= p.stop if buying else mark >= p.stop):
        return f"stop {p.stop}"
    if p.take_profit is not None and (mark >= p.take_profit if buying else mark <= p.take_profit):
        return f"take-profit {p.take_profit}"
    return ""


def _outcome(status: ProposalStatus | None, reports: Sequence[Any]) -> str:
    reasons = [r.reason for r in reports if getattr(r, "reason", "")]
    text = status.value if status else ("filled" if any(isinstance(r, OrderFilled) for r in reports) else "not filled")
    return f"{text}: {'; '.join(reasons)}" if reasons else text


def _validate_edits(edits: OverrideEdits) -> None:
    if edits.qty is not None:
        _positive("qty", edits.qty)
    if edits.leverage is not None:
        _leverage(edits.leverage)
    for name in ("stop", "take_profit", "limit_price"):
        value = getattr(edits, name)
        if value is not None:
            _positive(name, value)
    if all(getattr(edits, f.name) is None for f in fields(edits)):
        raise InvalidCommand("the override changes nothing: approve instead")


def _positive(name: str, value: Decimal) -> None:
    if not value.is_finite() or value <= 0:
        raise InvalidCommand(f"{name} must be a positive number, got {value}")


def _leverage(value: Decimal) -> None:
    if not value.is_finite() or value < ONE or value > HARD_LEVERAGE_CAP:
        raise InvalidCommand(f"leverage must be between 1x and the hard cap of {HARD_LEVERAGE_CAP}x, got {value}x")


def _operator(operator: str) -> None:
    if not operator or not operator.strip() or len(operator) > 64:
        raise InvalidCommand("every command needs an operator id (1 to 64 characters)")
