"""The journal: an append-only SQLite event store, the source of truth for audit and restart.

Each row holds one event with its sequence number and a hash chain (see `guard.journal.chain`).
Writes happen on one worker thread in group commits (the SQLite side is `guard.journal.database`);
`append()` assigns sequence numbers and hashes at once, on the caller's thread, and returns a receipt
that completes when the rows are committed. Durable appends (operator decisions, orders) commit with
synchronous=FULL. After each commit the anchor file (`guard.journal.anchor`) records how far the journal reached.

A failed write (a full disk, an I/O error, a read-only filesystem) does not end the journal: it turns
*failing*. The rows that could not be written are kept in memory, in order, and new appends join them;
their receipts fail at once (so nobody waits on a disk that may never come back), listeners hear of the
failure, and the writer retries. When a retry succeeds, every kept row is written in one transaction and
listeners hear the journal is healthy again. What to keep while failing is the caller's choice (see
`guard.approval.recorder`): the journal keeps whatever it is given.
"""

from __future__ import annotations

import concurrent.futures
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from guard.errors import JournalError, JournalFailing, JournalRefused
from guard.events import Event
from guard.journal.anchor import AnchorPoint, AnchorWriter, anchor_path, read_anchor
from guard.journal.chain import (
    GENESIS_HASH,
    BrokenChain,
    Entry,
    chain_rows,
    checked_entries,
    read_entries,
)
from guard.journal.database import SCHEMA, Row, connect, connect_writer, write_rows
from guard.journal.receipt import Receipt as Receipt, settle_future  # Receipt: what append returns

log = structlog.get_logger(__name__)

CHECKPOINT_IDLE_S = 0.005
"""The writer copies the WAL back into the database once it has been idle this long, so a checkpoint (two
fsyncs and a page copy, 2-3 ms) lands between commands instead of inside one."""
CHECKPOINT_AFTER_ROWS = 256
"""...and once at least this many rows were committed since the last one (an idle checkpoint of a few
pages would double the fsyncs of a quiet daemon)."""
RETRY_SECONDS = 0.5
"""How often a failing journal tries to write what it keeps."""


@dataclass(slots=True)
class _Batch:
    """One append of a journal that commits it (the daemon's, or an inline one), until it is committed."""

    rows: list[Row]
    events: Sequence[Event]
    durable: bool
    future: concurrent.futures.Future[int]
    notified: bool = field(default=False)


Subscriber = Callable[[list[Entry]], object]
"""Told each committed batch of entries (what it returns is ignored)."""
HealthListener = Callable[[JournalFailing | None], None]
"""Told (on the writer's thread) when the journal starts failing (the error) and when it is healthy again (None)."""


def checkpoint(conn: sqlite3.Connection, path: Path) -> None:
    """Copy committed WAL pages into the database (PASSIVE: never waits on a reader). Committed rows are
    safe in the WAL either way, so a failure here is only logged; SQLite retries at its hard limit."""
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error as e:
        log.warning("journal_checkpoint_failed", error=str(e), path=str(path))


class Journal:
    """Append-only event store. One writer per file (the daemon holds the lock file)."""

    def __init__(
        self,
        path: Path | str,
        synchronous: str = "full",
        threaded: bool = True,
        batch_rows: int = 0,
        page_limit: int | None = None,
        checkpoint_idle_s: float = CHECKPOINT_IDLE_S,
        page_size: int | None = None,
        on_events: Callable[[Sequence[Event]], None] | None = None,
    ) -> None:
        """Open (creating if needed) the journal at `path`.

        Args:
            synchronous: "full" fsyncs every durable commit; "normal" survives a process crash
                but not a power loss.
            threaded: commit on a worker thread (the daemon); False commits inline (tools, tests
                that drive time by hand, replay).
            batch_rows: inline only, and only for runs where nothing leaves the process (replay):
                rows are written in one transaction per this many rows (and at `flush()` and
                `close()`), while receipts and subscribers complete at once. A crash loses the
                unwritten tail, which a replay rebuilds by running again. 0 writes every append.
            page_limit: the most database pages the journal may hold (SQLite's `max_page_count`),
                or None for no limit. It makes a full disk reproducible in tests and drills, and
                can be changed while the journal runs (`page_limit` attribute).
            checkpoint_idle_s: how long the writer waits idle before it checkpoints (`CHECKPOINT_IDLE_S`;
                a test on a loaded machine raises it, so a stall of the test's own thread is not a pause).
            page_size: the SQLite page size of a journal this creates (None: SQLite's 4096); an existing
                journal keeps its own.
            on_events: told each append's events once they have their place in the chain, on the
                appender's thread (replay's counters; no `Entry` objects are made for it).
        """
        self._checkpoint_idle_s = checkpoint_idle_s
        if batch_rows and threaded:
            raise ValueError("batch_rows needs threaded=False: the daemon's commits are never deferred")
        self._batch_rows = batch_rows
        self._buffer: list[Row] = []
        """A `batch_rows` journal's rows not written yet."""
        self._buffer_durable = False
        self._on_events = on_events
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._synchronous = synchronous.upper()
        self.page_limit = page_limit
        self._lock = threading.Lock()
        self._failure: JournalFailing | None = None
        self._backlog: list[_Batch] = []
        self._last_retry = 0.0
        self._closed = False
        self._inline: sqlite3.Connection | None = None
        self._settings: dict[int, tuple[str, int]] = {}
        """The synchronous level and page limit each connection is set to, so they are set only when they change."""
        self._subscribers: list[Subscriber] = []
        self._health_listeners: list[HealthListener] = []
        self.anchor_at_open: AnchorPoint | None = read_anchor(anchor_path(self.path))
        """How far the journal had reached when it was last written, by its anchor (None: no anchor)."""
        try:
            conn = connect(self.path, self._synchronous, page_size)
            conn.executescript(SCHEMA)
            row = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
            first = conn.execute("SELECT hash FROM events WHERE seq = 1").fetchone()
        except sqlite3.DatabaseError as e:
            raise JournalError(f"cannot open the journal {self.path}: {e}") from e
        self.last_seq: int = row[0] if row else 0
        self.last_hash: str = row[1] if row else GENESIS_HASH
        self._first_hash: str = first[0] if first else ""
        self._anchor = AnchorWriter(anchor_path(self.path))
        if threaded:
            conn.close()
            self._queue: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
            self._thread: threading.Thread | None = threading.Thread(
                target=self._writer, name="journal-writer", daemon=True
            )
            self._thread.start()
        else:
            self._inline = conn
            self._thread = None

    # --- health ----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the journal was closed (or a batched journal's write failed): nothing more can be appended."""
        return self._closed

    @property
    def failing(self) -> JournalFailing | None:
        """Why the journal cannot write right now, or None while it writes."""
        return self._failure

    def on_health(self, listener: HealthListener) -> None:
        """Call `listener` (on the writer's thread) when writes start failing and when they succeed again."""
        self._health_listeners.append(listener)

    @property
    def kept(self) -> int:
        """Events appended while failing and not yet written."""
        return sum(len(b.rows) for b in list(self._backlog))

    # --- writing ---------------------------------------------------------------------

    def append(self, events: Sequence[Event], *, durable: bool) -> Receipt:
        """Give events their sequence numbers and hashes now; commit them soon.

        While the journal is failing the events are kept, in order, to be written once it can write
        again, and the receipt fails at once with `JournalFailing`.

        Raises:
            JournalError: the journal is closed, or (replay's batched journal) a write failed.
        """
        if self._closed:
            raise JournalError("the journal is closed")
        with self._lock:
            rows = chain_rows(self.last_hash, self.last_seq, events)
            if rows:
                last = rows[-1]
                self.last_seq, self.last_hash = last[0], last[5]
                if not self._first_hash and rows[0][0] == 1:
                    self._first_hash = rows[0][5]
            seq = self.last_seq
            if self._batch_rows:  # subscribers are told at once; the rows wait for the next write
                if self._subscribers:
                    self._tell([Entry(r[0], e, r[4], r[5]) for r, e in zip(rows, events, strict=True)])
                buffer = self._buffer
                buffer += rows
                self._buffer_durable = self._buffer_durable or durable
                if len(buffer) >= self._batch_rows:
                    self.flush()
                receipt = Receipt(None, seq, seq if rows else 0)
            else:
                future: concurrent.futures.Future[int] = concurrent.futures.Future()
                receipt = Receipt(future, seq)
                batch = _Batch(rows, list(events), durable, future)
                if self._inline is not None:
                    if self._backlog and time.monotonic() - self._last_retry >= RETRY_SECONDS:
                        self._retry(self._inline)
                    self._commit(self._inline, [batch])
                else:
                    self._queue.put(batch)
        if self._on_events is not None:
            self._on_events(events)
        return receipt

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call `subscriber` with each committed batch of entries, in commit order.

        It runs on the writer thread (or inline), before the batch's receipts complete, so
        whatever it schedules happens before the appender resumes: hop to the event loop with
        `loop.call_soon_threadsafe` and views go out before replies. Batches kept while the journal
        is failing are passed on when they are kept (what the daemon did is shown at once), and
        not again when they are written.
        """
        self._subscribers.append(subscriber)

    def flush(self) -> None:
        """Write the rows a `batch_rows` journal holds back (a no-op otherwise).

        Raises:
            JournalError: the write failed; nothing more can be recorded.
        """
        if not self._buffer or self._inline is None:
            return
        rows, durable = self._buffer, self._buffer_durable
        self._buffer, self._buffer_durable = [], False
        error = self._write(self._inline, (rows,), durable)
        if error is not None:
            self._closed = True  # a replay's journal is not retried: the replay is run again
            raise error
        self._anchor_at(rows[-1][0], rows[-1][5])

    def close(self) -> None:
        """Commit what is queued (and, if failing, try once more to write what is kept), then stop."""
        if self._closed:
            return
        if self._buffer:
            self.flush()
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        if self._inline is not None:
            if self._backlog:
                self._retry(self._inline)
            self._inline.close()
        if self._backlog:
            log.critical(
                "journal_closed_with_events_unwritten",
                path=str(self.path),
                events=self.kept,
                error=str(self._failure),
            )
        self._anchor.close()

    def _writer(self) -> None:
        conn = connect_writer(self.path, self._synchronous)
        unchecked_rows = 0
        try:
            while True:
                if self._backlog:
                    timeout: float | None = RETRY_SECONDS
                elif unchecked_rows >= CHECKPOINT_AFTER_ROWS:
                    timeout = self._checkpoint_idle_s
                else:
                    timeout = None
                try:
                    first = self._queue.get(timeout=timeout)
                except queue.Empty:
                    if self._backlog:
                        conn = self._retry(conn)
                    else:
                        checkpoint(conn, self.path)
                        unchecked_rows = 0
                    continue
                if first is None:
                    if self._backlog:
                        conn = self._retry(conn)
                    return
                batches = [first]
                stop = False
                while len(batches) < 512:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    batches.append(nxt)
                if self._backlog and time.monotonic() - self._last_retry >= RETRY_SECONDS:
                    conn = self._retry(conn)
                self._commit(conn, batches)
                unchecked_rows += sum(len(b.rows) for b in batches)
                if stop:
                    if self._backlog:
                        conn = self._retry(conn)
                    return
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batches: list[_Batch]) -> None:
        if self._backlog:
            self._keep(batches)  # behind rows that are not written yet: the order of the chain is the order on disk
            return
        error = self._write_batches(conn, batches)
        if error is not None:
            self._start_failing(error)
            self._keep(batches)
            return
        self._anchor_to(batches)
        self._notify(batches)

    def _write_batches(self, conn: sqlite3.Connection, batches: list[_Batch]) -> JournalFailing | None:
        return self._write(conn, [b.rows for b in batches], any(b.durable for b in batches))

    def _write(self, conn: sqlite3.Connection, rows: Iterable[Sequence[Row]], durable: bool) -> JournalFailing | None:
        """One transaction for these lists of rows; the error when SQLite refused it (nothing of it is written)."""
        sync = "FULL" if self._synchronous == "FULL" and durable else "NORMAL"
        return write_rows(conn, rows, synchronous=sync, page_limit=self.page_limit, settings=self._settings)

    def _anchor_to(self, batches: list[_Batch]) -> None:
        last = next((b.rows[-1] for b in reversed(batches) if b.rows), None)
        if last is not None:
            self._anchor_at(last[0], last[5])

    def _anchor_at(self, seq: int, digest: str) -> None:
        """Record in the anchor that the journal reaches event `seq`, whose hash is `digest`."""
        if self._first_hash:
            self._anchor.write(AnchorPoint(seq, digest, self._first_hash))

    def _start_failing(self, error: JournalFailing) -> None:
        self._failure = error
        self._last_retry = time.monotonic()
        log.critical("journal_write_failed", error=str(error), path=str(self.path))
        self._tell_health(error)

    def _keep(self, batches: list[_Batch]) -> None:
        """Hold batches that cannot be written now: show them to subscribers, fail their receipts."""
        self._backlog.extend(batches)
        self._notify([b for b in batches if not b.notified], settle=False)
        error = JournalFailing(
            f"{self._failure}; the events are kept in memory and written when the journal can write again"
        )
        for b in batches:
            settle_future(b.future, error=error)

    def _retry(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        """Try to write everything kept, on a fresh connection (the old one may be broken by the failure)."""
        self._last_retry = time.monotonic()
        try:
            conn.close()
            conn = connect_writer(self.path, self._synchronous)
            self._settings.pop(id(conn), None)
        except sqlite3.Error as e:
            log.warning("journal_reopen_failed", error=str(e), path=str(self.path))
            return conn
        backlog = list(self._backlog)
        if self._write_batches(conn, backlog) is not None:
            return conn
        del self._backlog[: len(backlog)]
        self._anchor_to(backlog)
        self._failure = None
        log.warning("journal_writing_again", path=str(self.path), events_written=sum(len(b.rows) for b in backlog))
        self._tell_health(None)
        return conn

    def _tell_health(self, error: JournalFailing | None) -> None:
        for listener in self._health_listeners:
            try:
                listener(error)
            except Exception:  # a listener's bug must not stop the writer
                log.exception("journal_health_listener_failed")

    def _notify(self, batches: list[_Batch], settle: bool = True) -> None:
        """Tell subscribers, then complete the receipts (in that order: views go out before replies)."""
        if self._subscribers:
            self._tell(
                [
                    Entry(row[0], event, row[4], row[5])
                    for b in batches
                    for row, event in zip(b.rows, b.events, strict=True)
                ]
            )
        for b in batches:
            b.notified = True
            if settle:
                settle_future(b.future, result=b.rows[-1][0] if b.rows else 0)

    def _tell(self, entries: list[Entry]) -> None:
        for subscriber in self._subscribers:
            try:
                subscriber(entries)
            except Exception:  # a subscriber's bug must not make a commit look failed
                log.exception("journal_subscriber_failed")

    # --- reading ---------------------------------------------------------------------

    def entries(self, after_seq: int = 0) -> Iterator[Entry]:
        """Committed events in order, decoded. Raises JournalCorrupt on a row that cannot be read."""
        yield from read_entries(self.path, after_seq)

    def events(self, after_seq: int = 0) -> list[Event]:
        return [e.event for e in self.entries(after_seq)]

    def checked_entries(self) -> Iterator[Entry]:
        """Every committed event, each checked against the hash chain, and the journal checked to reach the
        point its anchor recorded. What the daemon rebuilds its state from: it never runs on a journal whose
        chain or length it cannot verify.

        Raises:
            JournalRefused: the chain is broken, the file cannot be read, the journal does not reach its
                anchor, or it holds events but has no anchor. The message says what is wrong and how to look.
        """
        anchor = self.anchor_at_open
        if anchor is None and self.last_seq > 0:
            raise JournalRefused(
                f"the journal {self.path} holds {self.last_seq} events but has no anchor "
                f"({anchor_path(self.path).name}), so whether committed events are missing cannot be checked. "
                "Check it with `guard journal verify`; if it is whole, `guard journal verify --adopt` anchors it."
            )
        try:
            yield from checked_entries(self.path, anchor)
        except BrokenChain as e:
            raise JournalRefused(
                f"the journal {self.path} cannot be trusted: {e}. Nothing was written to it. Inspect it with "
                "`guard journal verify` (and `guard journal export`); keep the file for the audit, and move it "
                "aside to start a new journal."
            ) from e
