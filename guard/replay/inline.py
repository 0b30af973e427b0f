"""Running the desk inline: a journal that never makes anyone wait, and coroutines driven to their end.

Replay drives the very `ApprovalDesk` the daemon runs. Its journal commits inline with rows
batched (nothing leaves the process, so nothing needs to wait for a commit), and its broker
answers at once; so every await inside the desk finishes immediately, and replay runs each
desk call to completion on its own thread instead of turning an event loop once per await.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import structlog

from guard import collector
from guard.errors import JournalError
from guard.events import Event
from guard.journal.chain import encode_events
from guard.journal.links import Encoded
from guard.journal.offload import FRAME_ROWS, WriterProcess
from guard.journal.receipt import Receipt
from guard.journal.store import Journal, Subscriber

log = structlog.get_logger(__name__)

T = TypeVar("T")

BATCH_ROWS = 4096
PAGE_SIZE = 65536
"""The replay's journal is written in SQLite's largest pages: a quarter of the WAL frames and write calls of
4 KiB pages, which made writing a row 4.5 -> 2.9 us. The daemon's journal keeps small pages: its commits are a
few rows each, fsynced, and a larger page would be more bytes to sync for each."""


OFFLOAD_AFTER_ROWS = 8192
"""A replay whose journal reaches this many events hands the rest to a writer process (`guard.journal.offload`),
which links and writes them on the other core while the replay's thread only encodes them: in a 200k-bar replay
the thread then spends ~1.5 us per event on its journal instead of ~9. Shorter replays (and the tests) stay
inline, with no process to start."""


class ReplayJournal(Journal):
    """The replay's journal: inline, synchronous=NORMAL, batched commits; it hands every appended
    event to the replay's counters and auditor as it is appended (no subscriber `Entry` objects).

    Past `offload_after` events (None: never) its rows are linked and written by a writer process: from then
    on `last_seq` is known at once but `last_hash` only once the journal is closed, the anchor is written at
    the close, and it takes no subscribers (they are told hashes at once). A journal with subscribers stays
    inline. A failure of the writer raises `JournalError` at the next flush or at the close.
    """

    def __init__(
        self, path: Path, on_events: Callable[[Sequence[Event]], None], offload_after: int | None = OFFLOAD_AFTER_ROWS
    ) -> None:
        super().__init__(
            path,
            synchronous="normal",
            threaded=False,
            batch_rows=BATCH_ROWS,
            page_size=PAGE_SIZE,
            on_events=on_events,
        )
        self._offload_after = offload_after
        self._process: WriterProcess | None = None
        self._encoded: list[Encoded] = []
        """The encoded events not sent to the writer yet."""
        if offload_after is not None and self.last_seq >= offload_after:
            self._offload()

    @property
    def offloaded(self) -> bool:
        """Whether a writer process links and writes the rows (from the event after the hand-over on)."""
        return self._process is not None

    def subscribe(self, subscriber: Subscriber) -> None:
        if self._process is not None:
            raise JournalError("the replay's journal was handed to its writer process: it has no hashes to tell")
        super().subscribe(subscriber)

    def append(self, events: Sequence[Event], *, durable: bool) -> Receipt:
        if self._process is None:
            return super().append(events, durable=durable)
        if self._closed:
            raise JournalError("the journal is closed")
        encoded = self._encoded
        encoded += encode_events(events)
        seq = self.last_seq = self.last_seq + len(events)
        if len(encoded) >= FRAME_ROWS:
            self.flush()
        if self._on_events is not None:
            self._on_events(events)
        return Receipt(None, seq, seq if events else 0)

    def flush(self) -> None:
        writer = self._process
        if writer is None:
            super().flush()
            if self._offload_after is not None and self.last_seq >= self._offload_after and not self._subscribers:
                self._offload()
            return
        encoded, self._encoded = self._encoded, []
        if encoded:
            try:
                writer.send(encoded)
            except JournalError:
                self._closed = True  # as a failed inline write: a replay's journal is not retried
                raise
        if self._inline is not None:
            # Closed once the writer holds the database open too (the first frame is long after it started):
            # the last connection to close checkpoints the whole WAL, and that is the writer's work.
            self._inline.close()
            self._inline = None

    def close(self) -> None:
        writer = self._process
        if writer is None:
            self._offload_after = None  # a journal being closed is not handed over
            super().close()
            return
        if self._closed:
            return
        try:
            self.flush()
        except JournalError:
            self._anchor.close()
            raise
        self._closed = True
        try:
            seq, digest, first_hash = writer.close()
        finally:
            if self._inline is not None:
                self._inline.close()
                self._inline = None
        if seq != self.last_seq:
            self._anchor.close()
            raise JournalError(f"the journal's writer process wrote up to event {seq}, not {self.last_seq}")
        self.last_hash = digest
        self._first_hash = self._first_hash or first_hash
        if seq:
            self._anchor_at(seq, digest)
        self._anchor.close()

    def close_after_stop(self) -> None:
        """`close` for a replay that stopped before its end (Ctrl-C, a failure): what the journal holds stays and
        verifies (its writer commits whole frames). An error closing it is logged, not raised over the reason the
        replay stopped: a Ctrl-C in the middle of handing the writer a frame leaves it a frame short."""
        try:
            self.close()
        except JournalError as e:
            log.warning("replay_journal_ended_short", path=str(self.path), error=str(e))

    def _offload(self) -> None:
        """From the next event on, encode only: a writer process links and writes the rows."""
        self._process = WriterProcess(self.path, self._synchronous, self.page_limit, self.last_seq, self.last_hash)


def run_to_end(coro: Coroutine[Any, Any, T]) -> T:
    """Run a replay's coroutine (`ReplayEngine.run`) on an event loop of its own, as a command does: Ctrl-C stops it
    where it is.

    Not `asyncio.run`: its first Ctrl-C only cancels the task, and a replay, which never yields, noticed that only
    at its end (a long one ran to its last bar first). A bare loop leaves Ctrl-C to Python's own KeyboardInterrupt,
    raised in the replay's loop at once; the replay closes its journal on the way out.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run one desk coroutine to its end on this thread, without an event-loop turn per await.

    Every await inside the desk finishes at once or yields bare (a committed `Receipt` still
    yields once). Anything that would really wait (a future, a sleep) has no place in a replay:
    it raises instead of hanging.
    """
    try:
        while True:
            if coro.send(None) is not None:
                coro.close()
                raise RuntimeError("replay: the desk awaited something that was not ready")
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


YOUNG_EVERY = 5_000
"""Bar closes worked between two young-generation collections while a replay runs."""


class YoungCollections:
    """While a replay runs: only young garbage collections, every `YOUNG_EVERY` steps.

    A replay keeps tens of thousands of records alive (every proposal and order it journaled,
    folded into the desk's state), nearly all without reference cycles. Python's full
    collections re-scan all of them each time the heap grows by a quarter: about a seventh of a
    long replay's time. Young collections still reclaim the short-lived cycles; the automatic
    collector (process-wide) is restored as it was when the replay ends.
    """

    def __init__(self) -> None:
        self._steps = 0

    def step(self) -> None:
        self._steps += 1
        if self._steps % YOUNG_EVERY == 0:
            gc.collect(1)

    @staticmethod
    @contextlib.contextmanager
    def running() -> Iterator[YoungCollections]:
        with collector.paused():
            yield YoungCollections()
