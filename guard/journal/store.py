"""The journal: an append-only SQLite event store, the source of truth for audit and restart.

Each row holds one event with its sequence number and a hash chain (each row's hash covers
the previous row's hash), so a changed, removed or reordered row is detected by `verify()`.
Writes happen on one worker thread in group commits; `append()` assigns sequence numbers and
hashes at once, on the caller's thread, and returns a receipt that completes when the rows
are committed. Durable appends (operator decisions, orders) commit with synchronous=FULL.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from guard import codec
from guard.errors import DecodeError, JournalCorrupt, JournalError
from guard.events import EVENT_TYPES, Event

log = structlog.get_logger(__name__)

GENESIS_HASH = "0" * 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    type      TEXT    NOT NULL,
    payload   TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
"""

CHECKPOINT_IDLE_S = 0.005
"""The writer copies the WAL back into the database once it has been idle this long, so a checkpoint (two
fsyncs and a page copy, 2-3 ms) lands between commands instead of inside one."""
CHECKPOINT_AFTER_ROWS = 256
"""...and once at least this many rows were committed since the last one (an idle checkpoint of a few
pages would double the fsyncs of a quiet daemon)."""
WAL_HARD_LIMIT_PAGES = 16384
"""SQLite's own checkpoint, inline in a commit, only if the journal is never idle that long: 64 MB of WAL, about
2,500 approvals back to back (each commits ~3 pages twice). SQLite's default, 4 MB, put a 2.5-3.3 ms checkpoint
inside one approval in 170 during a burst."""
WAL_KEPT_BYTES = 4 * 1024 * 1024
"""A WAL that a burst grew beyond this is cut back to it once checkpointed, so the file does not stay at its
high-water mark."""

_INSERT = "INSERT INTO events (seq, at, type, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)"


@dataclass(frozen=True, slots=True)
class Entry:
    """One journaled event with its place in the chain."""

    seq: int
    event: Event
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    events: int
    ok: bool
    problem: str = ""
    first_bad_seq: int | None = None


class Receipt:
    """Completes when the appended events are committed. Await it, or call `result()`."""

    __slots__ = ("_future", "last_seq")

    def __init__(self, future: concurrent.futures.Future[int], last_seq: int) -> None:
        self._future = future
        self.last_seq = last_seq

    def done(self) -> bool:
        return self._future.done()

    def result(self, timeout: float | None = None) -> int:
        return self._future.result(timeout)

    def __await__(self) -> Generator[Any, None, int]:
        if self._future.done():
            # Still an await point, as a threaded commit is: other tasks (a kill) may run here.
            yield
            return self._future.result()
        return (yield from asyncio.wrap_future(self._future).__await__())


def chain_hash(prev_hash: str, seq: int, type_name: str, payload: str) -> str:
    return hashlib.sha256(f"{prev_hash}|{seq}|{type_name}|{payload}".encode()).hexdigest()


@dataclass(slots=True)
class _Batch:
    rows: list[tuple[int, int, str, str, str, str]]
    events: Sequence[Event]
    durable: bool
    future: concurrent.futures.Future[int]


Subscriber = Callable[[list[Entry]], None]


class Journal:
    """Append-only event store. One writer per file (the daemon holds the lock file)."""

    def __init__(
        self, path: Path | str, synchronous: str = "full", threaded: bool = True, batch_rows: int = 0
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
        """
        if batch_rows and threaded:
            raise ValueError("batch_rows needs threaded=False: the daemon's commits are never deferred")
        self._batch_rows = batch_rows
        self._buffer: list[_Batch] = []
        self._buffered = 0
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._synchronous = synchronous.upper()
        self._lock = threading.Lock()
        self._failed: JournalError | None = None
        self._closed = False
        self._inline: sqlite3.Connection | None = None
        self._sync_now: dict[int, str] = {}
        self._subscribers: list[Subscriber] = []
        """The synchronous level each connection is set to, so it is switched only when it changes."""
        try:
            conn = self._connect()
            conn.executescript(_SCHEMA)
            row = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        except sqlite3.DatabaseError as e:
            raise JournalError(f"cannot open the journal {self.path}: {e}") from e
        self.last_seq: int = row[0] if row else 0
        self.last_hash: str = row[1] if row else GENESIS_HASH
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

    # --- writing ---------------------------------------------------------------------

    def append(self, events: Sequence[Event], *, durable: bool) -> Receipt:
        """Give events their sequence numbers and hashes now; commit them soon.

        Raises:
            JournalError: the journal failed earlier or is closed; nothing more can be recorded.
        """
        if self._failed is not None:
            raise self._failed
        if self._closed:
            raise JournalError("the journal is closed")
        with self._lock:
            rows = []
            seq, prev = self.last_seq, self.last_hash
            for event in events:
                seq += 1
                type_name = type(event).__name__
                payload = encode_event(event)
                digest = chain_hash(prev, seq, type_name, payload)
                rows.append((seq, event.at, type_name, payload, prev, digest))
                prev = digest
            self.last_seq, self.last_hash = seq, prev
            future: concurrent.futures.Future[int] = concurrent.futures.Future()
            batch = _Batch(rows, list(events), durable, future)
            if self._inline is not None and self._batch_rows:
                self._notify([batch])
                self._buffer.append(batch)
                self._buffered += len(rows)
                if self._buffered >= self._batch_rows:
                    self.flush()
            elif self._inline is not None:
                self._commit(self._inline, [batch])
            else:
                self._queue.put(batch)
        return Receipt(future, seq)

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call `subscriber` with each committed batch of entries, in commit order.

        It runs on the writer thread (or inline), before the batch's receipts complete, so
        whatever it schedules happens before the appender resumes: hop to the event loop with
        `loop.call_soon_threadsafe` and views go out before replies.
        """
        self._subscribers.append(subscriber)

    def flush(self) -> None:
        """Write the rows a `batch_rows` journal holds back (a no-op otherwise).

        Raises:
            JournalError: the write failed; nothing more can be recorded.
        """
        if not self._buffer or self._inline is None:
            return
        batches, self._buffer, self._buffered = self._buffer, [], 0
        if self._failed is not None:
            raise self._failed
        if not self._write(self._inline, batches):
            assert self._failed is not None
            raise self._failed

    def close(self) -> None:
        """Commit what is queued, then stop the writer."""
        if self._closed:
            return
        if self._buffer:
            self.flush()
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        if self._inline is not None:
            self._inline.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        return conn

    def _writer(self) -> None:
        conn = self._connect()
        conn.execute(f"PRAGMA wal_autocheckpoint={WAL_HARD_LIMIT_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit={WAL_KEPT_BYTES}")
        unchecked_rows = 0
        try:
            while True:
                idle_checkpoint = unchecked_rows >= CHECKPOINT_AFTER_ROWS
                try:
                    first = self._queue.get(timeout=CHECKPOINT_IDLE_S if idle_checkpoint else None)
                except queue.Empty:
                    self._checkpoint(conn)
                    unchecked_rows = 0
                    continue
                if first is None:
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
                self._commit(conn, batches)
                unchecked_rows += sum(len(b.rows) for b in batches)
                if stop:
                    return
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        """Copy committed WAL pages into the database (PASSIVE: never waits on a reader). Committed rows are
        safe in the WAL either way, so a failure here is only logged; SQLite retries at its hard limit."""
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as e:
            log.warning("journal_checkpoint_failed", error=str(e), path=str(self.path))

    def _commit(self, conn: sqlite3.Connection, batches: list[_Batch]) -> None:
        if self._failed is not None:
            for b in batches:
                _settle(b.future, error=self._failed)
            return
        if not self._write(conn, batches):
            assert self._failed is not None
            for b in batches:
                _settle(b.future, error=self._failed)
            return
        self._notify(batches)

    def _write(self, conn: sqlite3.Connection, batches: list[_Batch]) -> bool:
        """One transaction for these batches; False (and the journal failed) when SQLite refused it."""
        sync = "FULL" if self._synchronous == "FULL" and any(b.durable for b in batches) else "NORMAL"
        try:
            if sync != self._sync_now.get(id(conn)):
                conn.execute(f"PRAGMA synchronous={sync}")
                self._sync_now[id(conn)] = sync
            conn.execute("BEGIN IMMEDIATE")
            for b in batches:
                conn.executemany(_INSERT, b.rows)
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self._failed = JournalError(f"journal write failed: {e}; nothing more can be recorded")
            log.critical("journal_write_failed", error=str(e), path=str(self.path))
            return False
        return True

    def _notify(self, batches: list[_Batch]) -> None:
        """Tell subscribers, then complete the receipts (in that order: views go out before replies)."""
        if self._subscribers:
            entries = [
                Entry(row[0], event, row[4], row[5])
                for b in batches
                for row, event in zip(b.rows, b.events, strict=True)
            ]
            for subscriber in self._subscribers:
                try:
                    subscriber(entries)
                except Exception:  # a subscriber's bug must not make a commit look failed
                    log.exception("journal_subscriber_failed")
        for b in batches:
            _settle(b.future, result=b.rows[-1][0] if b.rows else 0)

    # --- reading ---------------------------------------------------------------------

    def entries(self, after_seq: int = 0) -> Iterator[Entry]:
        """Committed events in order, decoded. Raises JournalCorrupt on a row that cannot be read."""
        yield from read_entries(self.path, after_seq)

    def events(self, after_seq: int = 0) -> list[Event]:
        return [e.event for e in self.entries(after_seq)]


def read_entries(path: Path | str, after_seq: int = 0) -> Iterator[Entry]:
    """Read a journal file without opening it for writing."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise JournalError(f"cannot read the journal {path}: {e}") from e
    try:
        rows = conn.execute(
            "SELECT seq, type, payload, prev_hash, hash FROM events WHERE seq > ? ORDER BY seq", (after_seq,)
        )
        for seq, type_name, payload, prev_hash, digest in rows:
            yield Entry(seq, decode_event(seq, type_name, payload), prev_hash, digest)
    except sqlite3.Error as e:
        raise JournalError(f"cannot read the journal {path}: {e}") from e
    finally:
        conn.close()


def encode_event(event: Event) -> str:
    """An event's payload as the journal stores it (and the hash chain covers): its JSON, tag included."""
    return codec.encode(event).decode()


def decode_event(seq: int, type_name: str, payload: str | bytes) -> Event:
    """A row's payload as the event its `type` column names.

    Rows written before events were tagged (sorted keys, no "type" inside) decode the same way:
    the class comes from the column, and a "type" inside the payload, when there is one, must agree.
    """
    cls = EVENT_TYPES.get(type_name)
    if cls is None:
        raise JournalCorrupt(f"event {seq}: unknown event type {type_name!r}")
    try:
        return codec.decode(cls, payload, root=f"event {seq} ({type_name})")  # type: ignore[return-value]
    except DecodeError as e:
        raise JournalCorrupt(f"event {seq}: {e}") from e


def verify(path: Path | str) -> VerifyReport:
    """Check every row: contiguous sequence, decodable payload, and an unbroken hash chain."""
    path = Path(path)
    if not path.exists():
        return VerifyReport(0, False, f"no journal at {path}")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    count = 0
    prev = GENESIS_HASH
    try:
        rows = conn.execute("SELECT seq, at, type, payload, prev_hash, hash FROM events ORDER BY seq")
        for seq, at, type_name, payload, prev_hash, digest in rows:
            count += 1
            if seq != count:
                return VerifyReport(count - 1, False, f"sequence jumps from {count - 1} to {seq}", seq)
            if prev_hash != prev:
                return VerifyReport(count - 1, False, f"event {seq} does not follow event {seq - 1}", seq)
            if chain_hash(prev_hash, seq, type_name, payload) != digest:
                return VerifyReport(count - 1, False, f"event {seq} was altered (hash mismatch)", seq)
            try:
                event = decode_event(seq, type_name, payload)
            except JournalCorrupt as e:
                return VerifyReport(count - 1, False, str(e), seq)
            if event.at != at:
                return VerifyReport(count - 1, False, f"event {seq} was altered (time column changed)", seq)
            prev = digest
    except sqlite3.DatabaseError as e:
        return VerifyReport(count, False, f"unreadable journal: {e}")
    finally:
        conn.close()
    return VerifyReport(count, True)


def _settle(future: concurrent.futures.Future[int], result: int = 0, error: BaseException | None = None) -> None:
    """Complete a receipt's future. A waiter cancelled at shutdown cancels it too (asyncio.wrap_future): the
    rows are committed all the same, and the writer thread must not die of the InvalidStateError."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except concurrent.futures.InvalidStateError:
        pass
