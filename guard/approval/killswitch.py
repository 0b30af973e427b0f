"""The kill switch: HALTED at once, then cancel everything, flatten, and check that it is flat.

Blocking new orders and getting flat are measured separately (CME does the same): the state
is HALTED in memory before the first await, so nothing submitted afterwards can pass the
execution gate; cancels and reduce-only flattening then bypass every risk check, because a
check must never block the way out. Kill is idempotent: a second kill re-runs the clean-up.

With `cancel_stops=False` resting stops and take-profits are kept working until the positions
they protect are confirmed flat, so a flatten that fails (a venue erroring) does not leave a
naked position. On a venue, `sweep()` keeps finishing a kill that left work undone for as long
as trading stays HALTED (the venue watch calls it; on the paper venue the daemon does, through
`ApprovalDesk.sweep_kill`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from guard import collector
from guard.approval.execution import Execution, order_id, reducing_order, symbol_tag
from guard.approval.recorder import Recorder
from guard.broker.base import Answer
from guard.clock import Clock
from guard.domain import OrderPurpose, OrderRequest, OrderType, Position, ProposalStatus, TradingState
from guard.errors import GuardError, JournalError
from guard.events import (
    Event,
    KillCompleted,
    KillRequested,
    OrderCancelled,
    OrderFilled,
    ProposalKilled,
    TradingStateChanged,
)

log = structlog.get_logger(__name__)

_KILLABLE = (ProposalStatus.PENDING, ProposalStatus.APPROVED, ProposalStatus.OVERRIDDEN)
KILL_REASON = "kill switch: "
"""How a halt by the kill switch begins its reason (the sweep knows its own halts by it)."""
_PROTECTIVE = frozenset({OrderPurpose.STOP, OrderPurpose.TAKE_PROFIT})
ANSWER_HEAD_START_S = 0.005
"""How long the clean-up waits, at most, for the killing operator's reply to be written: "HALTED" reaches
them before the flatten's work takes the event loop, and a console that stopped reading costs only this."""


@dataclass(frozen=True, slots=True)
class KillReport:
    """What a kill did and how long each part took (milliseconds from the call)."""

    halted_ms: float
    """Until the state was HALTED in memory: nothing can be submitted from here on."""
    recorded_ms: float
    """Until the halt was durably journaled."""
    flat_ms: float | None
    """Until positions were re-read and found flat (None if they were not)."""
    proposals_killed: int
    orders_cancelled: int
    positions_flattened: int
    flat: bool
    problems: tuple[str, ...]


class KillSwitch:
    def __init__(
        self,
        recorder: Recorder,
        execution: Execution,
        clock: Clock,
        attempts: int = 5,
        retry_seconds: float = 0.2,
        cancel_stops: bool = True,
        answer_head_start_s: float = ANSWER_HEAD_START_S,
    ) -> None:
        self._recorder = recorder
        self._execution = execution
        self._clock = clock
        self._attempts = attempts
        self._retry_seconds = retry_seconds
        self._cancel_stops = cancel_stops
        self._answer_head_start_s = answer_head_start_s
        self._cleanup = asyncio.Lock()
        self._pulled = False
        self._resuming = False
        self._active = 0
        """Kills running in this process (a resume never competes with one)."""
        self.resume_problems: tuple[str, ...] = ()
        """What kept the last attempt to finish an interrupted kill from getting flat."""

    async def kill(
        self,
        operator: str,
        reason: str,
        on_halted: asyncio.Future[None] | None = None,
        answered: asyncio.Future[None] | None = None,
    ) -> KillReport:
        """Pull the kill switch. `on_halted` resolves once HALTED is durably journaled (before clean-up);
        the clean-up then waits for `answered` (the operator's reply written) for at most the head start."""
        # No cyclic collection while a kill runs: one over a long session's state stalls the loop for tens of
        # milliseconds (measured: kill -> flat p99 70-90 ms with it, 21 ms without; bench/core.py). A kill takes
        # milliseconds; what it leaves is collected afterwards.
        self._active += 1
        try:
            with collector.paused():
                return await self._kill(operator, reason, on_halted, answered)
        finally:
            self._active -= 1

    async def _kill(
        self,
        operator: str,
        reason: str,
        on_halted: asyncio.Future[None] | None,
        answered: asyncio.Future[None] | None,
    ) -> KillReport:
        started = self._clock.monotonic()
        state = self._recorder.state
        now = self._recorder.now()
        events: list[Event] = [KillRequested(now, operator, reason)]
        if state.trading_state is not TradingState.HALTED:
            events.append(
                TradingStateChanged(now, state.trading_state, TradingState.HALTED, f"{KILL_REASON}{reason}", operator)
            )
        killed = [r.proposal.id for r in state.proposals.values() if r.status in _KILLABLE]
        events += [ProposalKilled(now, pid) for pid in killed]
        log.warning("kill_switch_pulled", operator=operator, reason=reason, proposals_killed=len(killed))
        problems: list[str] = []
        try:
            # Kept even while the journal is failing: the halt and the clean-up happen, and are written later.
            receipt = self._recorder.record(events, durable=True, failing="keep")
        except JournalError as e:
            receipt = None
            problems.append(str(e))
        halted_ms = (self._clock.monotonic() - started) * 1000
        if receipt is not None:
            try:
                await receipt
            except JournalError as e:
                problems.append(str(e))
        recorded_ms = (self._clock.monotonic() - started) * 1000
        if on_halted is not None and not on_halted.done():
            on_halted.set_result(None)
            if answered is not None:
                await asyncio.wait({answered}, timeout=self._answer_head_start_s)

        self._pulled = True
        async with self._cleanup:
            cancelled, flattened, flat = await self._clean_up(state.kill_count, problems)
        flat_ms = (self._clock.monotonic() - started) * 1000 if flat else None
        try:
            await self._recorder.commit(
                [
                    KillCompleted(
                        self._recorder.now(),
                        flat,
                        cancelled,
                        flattened,
                        (self._clock.monotonic() - started) * 1000,
                        tuple(problems),
                    )
                ],
                failing="keep",
            )
        except JournalError as e:
            problems.append(str(e))
        report = KillReport(halted_ms, recorded_ms, flat_ms, len(killed), cancelled, flattened, flat, tuple(problems))
        log.warning(
            "kill_completed",
            operator=operator,
            flat=flat,
            orders_cancelled=cancelled,
            positions_flattened=flattened,
            halted_ms=round(halted_ms, 3),
            recorded_ms=round(recorded_ms, 3),
            flat_ms=None if flat_ms is None else round(flat_ms, 3),
            problems=list(problems),
        )
        return report

    async def sweep(self) -> KillReport | None:
        """Finish a kill that left work undone: while HALTED by the kill switch, cancel what is still
        open, flatten what is still held, re-read, and journal the outcome (a KillCompleted).

        Returns None when there is nothing to do: trading is not HALTED by a kill, a kill is
        still cleaning up, the venue cannot be read right now (the next sweep tries again; an
        unreadable venue is never taken as flat), or nothing is open and nothing held.
        """
        state = self._recorder.state
        if state.trading_state is not TradingState.HALTED:
            self._pulled = False
            return None
        by_kill = self._pulled or state.state_reason.startswith(KILL_REASON)
        if not by_kill or state.kill_in_progress or self._cleanup.locked():
            return None
        broker = self._execution.broker
        try:
            still_open = list(await broker.open_orders())
            held = [p for p in await broker.positions() if p.qty != 0]
        except GuardError as e:
            log.warning("kill_sweep_venue_unreadable", error=str(e))
            return None
        if not still_open and not held and not state.open_orders():
            return None
        started = self._clock.monotonic()
        problems: list[str] = []
        async with self._cleanup:
            cancelled, flattened, flat = await self._clean_up(state.kill_count, problems, sweep=state.events_applied)
        elapsed = (self._clock.monotonic() - started) * 1000
        try:
            await self._recorder.commit(
                [KillCompleted(self._recorder.now(), flat, cancelled, flattened, elapsed, tuple(problems))],
                failing="keep",
            )
        except JournalError as e:
            problems.append(str(e))
        log.warning(
            "kill_sweep_completed",
            flat=flat,
            orders_cancelled=cancelled,
            positions_flattened=flattened,
            problems=list(problems),
        )
        return KillReport(0.0, 0.0, elapsed if flat else None, 0, cancelled, flattened, flat, tuple(problems))

    @property
    def resuming(self) -> bool:
        """True while this process finishes a kill that an earlier process journaled and did not complete."""
        return self._resuming

    async def resume(self) -> KillReport | None:
        """Finish a kill that a previous process journaled but did not complete (it died mid-kill): cancel
        what is open, flatten what is held with reduce-only orders, re-read, and journal KillCompleted once
        flat. Invariant 11: a kill, once journaled, is finished.

        Returns None when no kill is unfinished. When positions are not confirmed flat, nothing is journaled
        as completed: the kill stays in progress (re-arm stays refused) and the caller tries again.
        """
        state = self._recorder.state
        if not state.kill_in_progress or self._active or self._cleanup.locked():
            return None
        self._resuming = True
        self._pulled = True
        started = self._clock.monotonic()
        problems: list[str] = []
        async with self._cleanup:
            cancelled, flattened, flat = await self._clean_up(state.kill_count, problems, sweep=state.events_applied)
        elapsed = (self._clock.monotonic() - started) * 1000
        self.resume_problems = tuple(problems)
        if flat:
            try:
                await self._recorder.commit(
                    [KillCompleted(self._recorder.now(), flat, cancelled, flattened, elapsed, tuple(problems))],
                    failing="keep",
                )
            except JournalError as e:
                problems.append(str(e))
            self._resuming = False
        log.warning(
            "kill_resumed",
            flat=flat,
            orders_cancelled=cancelled,
            positions_flattened=flattened,
            problems=list(problems),
        )
        return KillReport(0.0, 0.0, elapsed if flat else None, 0, cancelled, flattened, flat, tuple(problems))

    async def _clean_up(self, kill_no: int, problems: list[str], sweep: int | None = None) -> tuple[int, int, bool]:
        """Cancel, flatten, confirm flat. Returns (orders cancelled, positions flattened, flat)."""
        cancelled = await self._cancel_all(problems, keep_protective=not self._cancel_stops)
        flattened, flat = await self._flatten(kill_no, problems, sweep)
        if not self._cancel_stops:
            if flat:
                cancelled += await self._cancel_all(problems)  # they protect nothing now
            else:
                problems.append("stops and take-profits left working: positions are not confirmed flat")
        return cancelled, flattened, flat

    async def _cancel_all(self, problems: list[str], keep_protective: bool = False) -> int:
        """Cancel what the venue says is open, and what the journal says is open."""
        broker = self._execution.broker
        try:
            listed = await broker.open_orders()
            venue_open = {r.client_order_id for r in listed if not (keep_protective and _protects(r))}
        except GuardError as e:
            problems.append(f"could not list open orders: {e}")
            venue_open = set()
        known_open = {
            o.request.client_order_id
            for o in self._recorder.state.open_orders()
            if not (keep_protective and _protects(o.request))
        }
        cids = sorted(venue_open | known_open)
        if not cids:
            return 0
        # All at once and journaled in one commit: a venue gets its cancels in parallel.
        try:
            answers = await self._execution.cancel_many(cids, "kill switch")
        except JournalError as e:
            # The kill switch always wins: cancel even when it can no longer be recorded.
            problems.append(f"journal failed; cancelling unrecorded: {e}")
            answers = await self._execution.broker.cancel_many(cids, "kill switch")
        cancelled = 0
        for cid, answer in zip(cids, answers, strict=True):
            if isinstance(answer, GuardError):
                problems.append(f"could not cancel {cid}: {answer}")
            else:
                cancelled += sum(isinstance(r, OrderCancelled) for r in answer)
        return cancelled

    async def _flatten(self, kill_no: int, problems: list[str], sweep: int | None = None) -> tuple[int, bool]:
        """Send reduce-only market orders until a fresh read of positions says flat."""
        broker = self._execution.broker
        flattened = 0
        stalled = False
        for attempt in range(self._attempts):
            try:
                positions = [p for p in await broker.positions() if p.qty != 0]
            except GuardError as e:
                # A failed read is never taken to mean flat.
                problems.append(f"could not read positions (attempt {attempt + 1}): {e}")
                await asyncio.sleep(self._retry_seconds)
                continue
            if not positions:
                return flattened, True
            if stalled:  # back off from a venue that is failing; a partial fill (a thin book) goes on at once
                await asyncio.sleep(self._retry_seconds)
            filled = await self._flatten_once(kill_no, attempt, positions, problems, sweep)
            flattened += filled
            stalled = filled < len(positions)
        try:
            still_open = [p.symbol for p in await broker.positions() if p.qty != 0]
        except GuardError as e:
            problems.append(f"could not confirm flat: {e}")
            return flattened, False
        if still_open:
            problems.append(f"still open after {self._attempts} attempts: {', '.join(still_open)}")
        return flattened, not still_open

    async def _flatten_once(
        self, kill_no: int, attempt: int, positions: list[Position], problems: list[str], sweep: int | None
    ) -> int:
        """One reduce-only market order per position, all at once and journaled together. Returns how
        many filled."""
        journal_id = self._recorder.state.journal_id
        # A sweep's orders need ids of their own: a client order id is never used twice.
        kill = f"K{kill_no}" if sweep is None else f"K{kill_no}s{sweep}"
        requests = [
            reducing_order(order_id(journal_id, f"{kill}-{symbol_tag(p.symbol)}-{attempt}"), p, OrderPurpose.FLATTEN)
            for p in positions
        ]
        answers: list[Answer]
        try:
            answers = list(await self._execution.send_many(requests))
        except JournalError as e:
            problems.append(f"journal failed; flattening unrecorded: {e}")
            answers = await self._execution.broker.submit_many(requests)
        except GuardError as e:  # guard built an invalid order: a bug, recorded as such; never flat by it
            problems.append(f"could not flatten: {e}")
            return 0
        filled = 0
        for position, answer in zip(positions, answers, strict=True):
            if isinstance(answer, GuardError):
                problems.append(f"could not flatten {position.symbol}: {answer}")
            elif any(isinstance(r, OrderFilled) for r in answer):
                filled += 1
            else:
                problems.append(f"flatten order for {position.symbol} did not fill: {_why(answer)}")
        return filled


def _protects(request: OrderRequest) -> bool:
    """A resting stop or take-profit (guard's own, or a reduce-only trigger order found at the venue)."""
    return request.purpose in _PROTECTIVE or (
        request.reduce_only and request.order_type in (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET)
    )


def _why(reports: Sequence[object]) -> str:
    reasons = [getattr(r, "reason", "") for r in reports if getattr(r, "reason", "")]
    return "; ".join(reasons) or "no answer"
