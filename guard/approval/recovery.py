"""Starting, stopping and surviving: the state rebuilt from the journal, what a crash left open settled, the
journal failing and writing again, and the dead-man policy applied (or finished after a crash).

A kill that a dead process journaled and did not finish is completed by the kill switch
(`KillSwitch.resume`); the daemon calls that before it serves anything (invariant 11).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable

import structlog

from guard.approval.execution import Execution, order_id, reducing_order, symbol_tag
from guard.approval.recorder import Recorder
from guard.approval.settings import DeskSettings
from guard.broker.base import Broker
from guard.domain import OrderPurpose, OrderRequest, ProposalStatus, TradingState
from guard.errors import JournalFailing
from guard.events import (
    AccountFunded,
    DeadmanApplied,
    Event,
    JournalFailed,
    JournalRecovered,
    OperatorPresenceLost,
    OrderFilled,
    ProposalExpired,
    ProposalFailed,
    SessionEnded,
    SessionStarted,
    TradingStateChanged,
)
from guard.journal.store import Journal

log = structlog.get_logger(__name__)

JournalListener = Callable[[JournalFailing | None], None]


class Recovery:
    """The desk's session: start, stop, the journal's health, and the dead-man policy."""

    def __init__(
        self,
        journal: Journal,
        broker: Broker,
        recorder: Recorder,
        execution: Execution,
        settings: DeskSettings,
    ) -> None:
        self._journal = journal
        self._broker = broker
        self._recorder = recorder
        self._state = recorder.state
        self._execution = execution
        self._specs = recorder.state.specs
        self._settings = settings
        self._journal_failed_at: int | None = None
        self.journal_listeners: list[JournalListener] = []
        """Told, on the event loop, after the desk has halted for a failing journal or recorded its recovery."""

    async def start(self) -> None:
        """Rebuild state from the journal, settle what a crash left open, and open a session."""
        state = self._state
        replayed = 0
        for entry in self._journal.checked_entries():  # refuses a broken, cut or rolled-back journal first
            state.apply(entry.event)
            replayed += 1
        now = self._recorder.now()
        first_run = state.events_applied == 0
        clean = not state.session_open
        events: list[Event] = [
            SessionStarted(
                now, os.getpid(), self._settings.config_hash, clean, state.journal_id or secrets.token_hex(3)
            )
        ]
        if first_run:
            events.append(AccountFunded(now, "USDT", self._settings.starting_balance))
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
        await self._recorder.commit(events, failing="keep")
        loop = asyncio.get_running_loop()

        def told(error: JournalFailing | None) -> None:  # on the journal's writer thread
            loop.call_soon_threadsafe(self._journal_health, error)

        self._journal.on_health(told)
        reports = await self._broker.recover(
            state.account.copy(),
            [(o.request, o.remaining) for o in state.open_orders()],
            set(state.orders),
            [o.request for o in state.orders_in_doubt()],
        )
        await self._execution.record_reports(reports)
        log.info(
            "desk_started",
            trading_state=state.trading_state.value,
            previous_clean=clean,
            events_replayed=replayed,
            journal=str(self._journal.path),
            kill_unfinished=state.kill_in_progress,
        )

    async def stop(self, reason: str) -> None:
        """End the session cleanly: pending proposals expire; positions are left as they are."""
        now = self._recorder.now()
        events: list[Event] = [
            ProposalExpired(now, r.proposal.id, f"the daemon stopped ({reason})") for r in self._state.pending()
        ]
        events.append(SessionEnded(now, reason))
        await self._recorder.commit(events, failing="keep")
        log.info("desk_stopped", reason=reason)

    # --- the journal failing -------------------------------------------------------------

    def _journal_health(self, error: JournalFailing | None) -> None:
        """Told on the event loop when the journal starts failing, and when it writes again."""
        recorder = self._recorder
        now = self._recorder.now()
        if error is not None:
            self._journal_failed_at = now
            state = self._state
            events: list[Event] = [JournalFailed(now, str(error))]
            if state.trading_state is not TradingState.HALTED:
                events.append(
                    TradingStateChanged(
                        now, state.trading_state, TradingState.HALTED, f"journal failing: {error}", "guard"
                    )
                )
            recorder.record(events, durable=True, failing="keep")
            log.critical("trading_halted_journal_failing", error=str(error))
        else:
            failed_at = self._journal_failed_at or now
            dropped, recorder.dropped = recorder.dropped, 0
            recorder.record([JournalRecovered(now, failed_at, dropped)], durable=True, failing="keep")
            log.warning("journal_recovered", failed_for_ms=now - failed_at, events_not_recorded=dropped)
        for listener in self.journal_listeners:
            listener(error)

    # --- the dead-man switch -------------------------------------------------------------

    async def operators_absent(self, silent_seconds: float, policy: str) -> None:
        """No operator heartbeat for too long: pending proposals expire and open positions follow the policy
        ("hold" leaves them, "reduce" halves them, "flatten" closes them, with reduce-only orders that pass
        every trading state)."""
        now = self._recorder.now()
        events: list[Event] = [OperatorPresenceLost(now, silent_seconds, policy)]
        events += [
            ProposalExpired(now, r.proposal.id, f"no operator heartbeat for {silent_seconds:.0f} s")
            for r in self._state.pending()
        ]
        await self._recorder.commit(events, failing="keep")
        log.warning("operator_presence_lost", silent_seconds=round(silent_seconds, 1), policy=policy)
        if policy != "hold":
            await self._apply_deadman(policy)

    async def _apply_deadman(self, policy: str) -> None:
        """Send the dead-man policy's reduce-only orders, then record that it was applied (a restart finishes a
        policy that was recorded and not applied)."""
        state = self._state
        n = state.events_applied
        orders: list[OrderRequest] = []
        for position in list(state.account.positions.values()):
            qty = None if policy == "flatten" else self._specs[position.symbol].round_qty(abs(position.qty) / 2)
            if qty is not None and qty <= 0:
                continue
            cid = order_id(state.journal_id, f"D{n}-{symbol_tag(position.symbol)}")
            orders.append(reducing_order(cid, position, OrderPurpose.DEADMAN, qty))
        answers = await self._execution.send_many(orders) if orders else []
        filled = sum(any(isinstance(r, OrderFilled) for r in a) for a in answers)
        await self._recorder.commit([DeadmanApplied(self._recorder.now(), policy, len(orders), filled)], failing="keep")

    async def finish_interrupted_deadman(self) -> None:
        """Apply a dead-man policy that was recorded by a process that died before applying it. A "reduce"
        whose orders were already sent is not reduced again: halving twice is not what the policy said."""
        policy = self._state.deadman_pending
        if not policy:
            return
        if policy == "reduce" and self._state.deadman_orders:
            await self._recorder.commit([DeadmanApplied(self._recorder.now(), policy, 0, 0)], failing="keep")
            return
        log.warning("deadman_resumed", policy=policy)
        await self._apply_deadman(policy)
