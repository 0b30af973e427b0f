"""Keeping the journal and a real venue in agreement while the daemon runs.

`VenueWatch` runs beside the desk on a venue (the sandbox broker). At start (right after
`ApprovalDesk.start()` has let the broker settle every order in doubt) it records what is still
unresolved as UNKNOWN, and compares the venue with the journal: an open order guard did not send,
or a position the journal does not hold, is reported — a log line, an operator alert, and trading
moved to REDUCING with the reason — never adopted and never ignored. Then, every `period` seconds,
it records fills and ends of resting orders, keeps resolving orders in doubt, compares positions
again (a difference must be seen twice: a fill may land between two reads), and while the kill
switch has trading HALTED it re-checks that nothing is open or held, retrying the clean-up until
it is. The venue's own calls (ccxt) stay in `guard.broker.sandbox`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import structlog

from guard.approval.execution import Execution
from guard.approval.killswitch import KillSwitch
from guard.approval.recorder import Recorder
from guard.broker.base import BrokerReport
from guard.domain import ZERO, OrderStatus, Position, TradingState
from guard.errors import ExchangeUnavailable, GuardError
from guard.events import Event, OrderUnknown, TradingStateChanged
from guard.wording import count

if TYPE_CHECKING:
    from guard.broker.venue_records import VenueOrder

log = structlog.get_logger(__name__)

Alert = Callable[[str, str, str], None]
"""(level, kind, text): how the daemon puts something in front of an operator."""

MAX_SWEEP_BACKOFF_SECONDS = 60.0


class WatchedVenue(Protocol):
    """What the watch reads from a venue (the sandbox broker)."""

    async def poll(self) -> list[BrokerReport]: ...

    def busy(self) -> bool: ...

    async def venue_open_orders(self, *, every_symbol: bool = False) -> list[VenueOrder]: ...

    async def positions(self) -> Sequence[Position]: ...


class VenueWatch:
    """Keeps the journal and the venue in agreement while the daemon runs (built by `ApprovalDesk.watch_venue`).

    Args:
        venue: the broker the desk sends through.
        period: seconds between two rounds (`exchange.reconcile_seconds`).
        alert: puts a discrepancy in front of the operators (the daemon's hub).
    """

    def __init__(
        self,
        venue: WatchedVenue,
        recorder: Recorder,
        execution: Execution,
        kill_switch: KillSwitch,
        period: float,
        alert: Alert | None = None,
    ) -> None:
        self._venue = venue
        self._recorder = recorder
        self._state = recorder.state
        self._execution = execution
        self._kill_switch = kill_switch
        self._period = period
        self.alert = alert
        self.discrepancies: list[str] = []
        """Every disagreement between venue and journal reported so far, for the daemon to show."""
        self._reported: set[str] = set()
        self._suspects: set[str] = set()

    async def start(self) -> list[str]:
        """After `desk.start()`: orders still in doubt become UNKNOWN; the venue is compared with the journal.

        Returns:
            The discrepancies found (also logged, alerted, and journaled as a move to REDUCING).
        """
        pending = [o for o in self._state.orders_in_doubt() if o.status is OrderStatus.SENDING]
        if pending:
            now = self._recorder.now()
            events: list[Event] = [
                OrderUnknown(now, o.request.client_order_id, "not resolved at restart: the venue did not answer")
                for o in pending
            ]
            events += self._reducing(f"{count(len(pending), 'order')} in doubt after restart")
            await self._recorder.commit(events)
        try:
            problems = await self.compare(every_symbol=True)
        except GuardError as e:
            problems = [f"could not compare the venue with the journal: {e}"]
        await self._report(problems)
        return problems

    async def run(self) -> None:
        """Poll, resolve, compare and — while HALTED by a kill — finish the kill, until cancelled."""
        backoff = self._period
        due = 0.0
        while True:
            await asyncio.sleep(self._period)
            await self.check()
            if self._state.trading_state is not TradingState.HALTED:
                backoff, due = self._period, 0.0
                continue
            due -= self._period
            if due > 0:
                continue
            report = await self._kill_switch.sweep()
            if report is not None and (not report.flat or report.problems):
                # A clean-up that keeps failing is retried (and journaled) less and less often, never given up.
                due = backoff
                backoff = min(backoff * 2, MAX_SWEEP_BACKOFF_SECONDS)
            else:
                backoff, due = self._period, 0.0

    async def check(self) -> None:
        """One round: record what the venue did, then compare positions and orders."""
        try:
            reports = await self._venue.poll()
        except ExchangeUnavailable as e:
            log.warning("venue_poll_failed", error=str(e))
            return
        await self._execution.record_reports(reports)
        if self._venue.busy() or self._state.orders_in_doubt():
            return  # a fill may be at the venue and not yet in the journal: compare next time
        try:
            problems = await self.compare()
        except GuardError as e:
            log.warning("venue_compare_failed", error=str(e))
            return
        # Seen twice in a row, or it may be a fill that landed between two reads.
        confirmed = [p for p in problems if p in self._suspects]
        self._suspects = set(problems)
        await self._report(confirmed)

    async def compare(self, *, every_symbol: bool = False) -> list[str]:
        """Where the venue and the journal disagree: orders guard did not send, positions it does not hold.

        Raises:
            ExchangeUnavailable: the venue could not be read (never taken to mean "nothing there").
        """
        orders = await self._venue.venue_open_orders(every_symbol=every_symbol)
        positions = await self._venue.positions()
        state = self._state
        problems = [
            f"{o.symbol}: open {o.side.value} order {o.client_order_id} ({o.qty - o.executed}) at the venue "
            "was not sent by this guard"
            for o in orders
            if o.client_order_id not in state.orders
        ]
        venue = {p.symbol: p.qty for p in positions}
        journal = {s: p.qty for s, p in state.account.positions.items()}
        for symbol in sorted(set(venue) | set(journal)):
            held, expected = venue.get(symbol, ZERO), journal.get(symbol, ZERO)
            if held != expected:
                problems.append(f"{symbol}: the venue holds a position of {held}, the journal {expected}")
        return problems

    async def _report(self, problems: Sequence[str]) -> None:
        fresh = [p for p in problems if p not in self._reported]
        if not fresh:
            return
        self._reported.update(fresh)
        self.discrepancies += fresh
        for problem in fresh:
            log.error("venue_discrepancy", problem=problem, action="review at the venue, then re-arm")
            if self.alert is not None:
                self.alert("critical", "venue", problem)
        events = self._reducing(f"the venue and the journal disagree: {fresh[0]}")
        if events:
            await self._recorder.commit(events)

    def _reducing(self, reason: str) -> list[Event]:
        state = self._state
        if state.trading_state is not TradingState.ACTIVE:
            return []
        return [TradingStateChanged(self._recorder.now(), state.trading_state, TradingState.REDUCING, reason, "guard")]
