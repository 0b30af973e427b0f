"""Record events: journal them and fold them into the state, in one step and one order.

Events are applied to the in-memory state the moment they are appended (so a kill is
visible at once to everything on the event loop) and committed right after; callers await
the receipt before anything leaves the process (an order to a broker, an acknowledgment to an
operator).

When the journal fails (a full disk, an I/O error) every caller says what its events are:
- "refuse": an operator's command that needs a durable record. Refused (JournalFailing is raised)
  and, when the journal is already known to fail, nothing is recorded at all.
- "keep": what happened and must be on record (the kill switch's work, what a broker reported,
  expiries, halts). Applied to the state, kept by the journal until it writes again; never raises.
- "drop": what the record can do without (closed bars, feed health, refused commands). Counted
  and left out while the journal fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import structlog

from guard.approval.state import GuardState
from guard.clock import Clock
from guard.errors import JournalError, JournalFailing
from guard.events import Event
from guard.journal.chain import Entry
from guard.journal.receipt import Receipt
from guard.journal.store import Journal

log = structlog.get_logger(__name__)

Listener = Callable[[Sequence[Entry]], None]
WhenFailing = Literal["refuse", "keep", "drop"]


class Recorder:
    def __init__(self, journal: Journal, state: GuardState, clock: Clock) -> None:
        self.journal = journal
        self.state = state
        self.clock = clock
        self.dropped = 0
        """Events left out while the journal was failing (closed bars, feed health, refusals)."""

    def now(self) -> int:
        return self.clock.now_ms()

    def record(self, events: Sequence[Event], *, durable: bool, failing: WhenFailing = "refuse") -> Receipt | None:
        """Append and apply. Returns the receipt, or None when the events were dropped (journal failing).

        Raises:
            JournalFailing: `failing="refuse"` and the journal is failing: nothing was recorded.
            JournalError: the journal is closed.
        """
        error = self.journal.failing
        if error is not None and events:
            if failing == "refuse":
                raise error
            if failing == "drop":
                self.dropped += len(events)
                return None
        receipt = self.journal.append(events, durable=durable)
        apply = self.state.apply
        for event in events:
            apply(event)
        return receipt

    async def commit(self, events: Sequence[Event], *, durable: bool = True, failing: WhenFailing = "refuse") -> int:
        """Record and wait until committed. Returns the last sequence number.

        With `failing="keep"` or `"drop"` this never raises for a failing journal: it returns once the events
        are committed, kept for later, or dropped.

        Raises:
            JournalFailing: `failing="refuse"` and the journal failed; if it failed during this commit, the
                events are applied and kept (the caller records what it did instead, e.g. an order not sent).
        """
        receipt = self.record(events, durable=durable, failing=failing)
        if receipt is None:
            return self.journal.last_seq
        try:
            return await receipt
        except JournalFailing:
            if failing == "refuse":
                raise
            return receipt.last_seq

    async def commit_followed(self, events: Sequence[Event], follow: Callable[[], Sequence[Event]]) -> int:
        """Commit what happened (kept while the journal is failing, so this never raises for it) together with
        the events `follow` derives from the state those leave (the intents of the orders they make owed): all
        applied in order, then appended as one durable batch. Returns the last sequence number.

        Raises:
            JournalError: the journal is closed (nothing was applied).
        """
        journal = self.journal
        if journal.closed:
            raise JournalError("the journal is closed")
        apply = self.state.apply
        for event in events:
            apply(event)
        more = follow()
        for event in more:
            apply(event)
        if not events and not more:
            return journal.last_seq
        receipt = journal.append([*events, *more], durable=True)
        try:
            return await receipt
        except JournalFailing:
            return receipt.last_seq
