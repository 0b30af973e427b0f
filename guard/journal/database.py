"""The SQLite file behind the journal: its schema, how a connection is set up, one transaction of rows.

The table is append-only by trigger; a connection runs in WAL mode; the writer's connection
checkpoints only at a hard limit (the journal checkpoints when idle, `guard.journal.store`);
`write_rows` writes batches of rows in one transaction, or none of them, and says why not.
Nothing here logs or imports more than SQLite: replay's writer process (`guard.journal.offload`) loads it.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from guard.errors import JournalFailing

Row = tuple[int, int, str, str, str, str]
"""One journal row: (seq, at, type, payload, prev_hash, hash)."""

SCHEMA = """
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

WAL_HARD_LIMIT_PAGES = 16384
"""SQLite's own checkpoint, inline in a commit, only if the journal is never idle that long: 64 MB of WAL, about
2,500 approvals back to back (each commits ~3 pages twice). SQLite's default, 4 MB, put a 2.5-3.3 ms checkpoint
inside one approval in 170 during a burst."""
WAL_KEPT_BYTES = 4 * 1024 * 1024
"""A WAL that a burst grew beyond this is cut back to it once checkpointed, so the file does not stay at its
high-water mark."""
NO_PAGE_LIMIT = 1_073_741_823
"""SQLite's own ceiling on a database's pages (what `PRAGMA max_page_count` is without a limit)."""

_INSERT = "INSERT INTO events (seq, at, type, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)"


def connect(path: Path, synchronous: str, page_size: int | None = None) -> sqlite3.Connection:
    """A connection in WAL mode at the given `synchronous` level, usable from any one thread at a time.

    Args:
        page_size: the page size of a database this connection creates (SQLite's default, 4096, if None);
            it cannot change once the file is in WAL mode, so an existing journal keeps its own.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    if page_size is not None:
        conn.execute(f"PRAGMA page_size={int(page_size)}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


def connect_writer(path: Path, synchronous: str) -> sqlite3.Connection:
    """The writer's connection: SQLite checkpoints only at the hard limit, and trims the WAL after."""
    conn = connect(path, synchronous)
    conn.execute(f"PRAGMA wal_autocheckpoint={WAL_HARD_LIMIT_PAGES}")
    conn.execute(f"PRAGMA journal_size_limit={WAL_KEPT_BYTES}")
    return conn


def write_rows(
    conn: sqlite3.Connection,
    batches: Iterable[Sequence[Row]],
    *,
    synchronous: str,
    page_limit: int | None,
    settings: dict[int, tuple[str, int]],
) -> JournalFailing | None:
    """Write every batch of rows in one transaction; the error when SQLite refused it (nothing of it is written).

    Args:
        synchronous: the level of this transaction ("FULL" for a durable one, else "NORMAL").
        page_limit: the most pages the database may hold, or None for no limit.
        settings: the (synchronous, page limit) each connection is set to, by `id(conn)`, so the
            pragmas run only when they change.
    """
    pages = page_limit or NO_PAGE_LIMIT
    try:
        if (synchronous, pages) != settings.get(id(conn)):
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute(f"PRAGMA max_page_count={int(pages)}")
            settings[id(conn)] = (synchronous, pages)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(_INSERT, itertools.chain.from_iterable(batches))
        conn.execute("COMMIT")
    except sqlite3.Error as e:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        return JournalFailing(f"journal write failed: {e}")
    return None
