"""Record events: journal them and fold them into the state, in one step and one order.

Events are applied to the in-memory state the moment they are appended (so a kill is
visible at once to everything on the event loop) and committed right after; callers await
the receipt before anything leaves the process (an order to a broker, an acknowledgment to an
operator). If the journal fails, the recorder fails closed: it halts trading in memory and
every later record raises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog

from guard.approval.state import GuardState
from guard.clock import Clock
from guard.domain import TradingState
from guard.errors import JournalError
from guard.events import Event, TradingStateChanged
from guard.journal.store import Entry, Journal, Receipt

log = structlog.get_logger(__name__)

Listener = Callable[[Sequence[Entry]], None]


class Recorder:
    def __init__(self, journal: Journal, state: GuardState, clock: Clock) -> None:
        self.journal = journal
        self.state = state
        self.clock = clock

    def now(self) -> int:
        return self.clock.now_ms()

    def record(self, events: Sequence[Event], *, durable: bool) -> Receipt:
        """Append and apply. Raises JournalError (after halting in memory) if the journal is broken."""
        if not events:
            return self.journal.append([], durable=False)
        try:
            receipt = self.journal.append(events, durable=durable)
        except JournalError:
            self._halt_in_memory()
            raise
        for event in events:
            self.state.apply(event)
        return receipt

    async def commit(self, events: Sequence[Event], *, durable: bool = True) -> int:
        """Record and wait until committed. Returns the last sequence number."""
        receipt = self.record(events, durable=durable)
        try:
            return await receipt
        except JournalError:
            self._halt_in_memory()
            raise

    def _halt_in_memory(self) -> None:
        """Nothing is safe unrecorded: stop trading even though the halt itself cannot be journaled."""
        if self.state.trading_state is not TradingState.HALTED:
            log.critical("trading_halted_journal_failed")
            self.state.apply(
                TradingStateChanged(
                    self.now(),
                    self.state.trading_state,
                    TradingState.HALTED,
                    "the journal cannot be written",
                    "guard",
                )
            )
