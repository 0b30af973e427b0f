"""The journal is append-only, hash-chained, durable, and tells when it has been tampered with."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from guard.domain import TradingState
from guard.errors import JournalCorrupt, JournalFailing
from guard.events import AccountFunded, SessionEnded, TradingStateChanged
from guard.journal.chain import GENESIS_HASH, read_entries, verify
from guard.journal.database import WAL_KEPT_BYTES
from guard.journal.store import CHECKPOINT_AFTER_ROWS, CHECKPOINT_IDLE_S, Journal


def _events(n: int) -> list:
    return [AccountFunded(i, "USDT", Decimal(i)) for i in range(1, n + 1)]


async def test_append_then_read_back_in_order(tmp_path: Path) -> None:
    """Appended events come back decoded, in order, with contiguous sequence numbers."""
    journal = Journal(tmp_path / "j.db")
    receipt = journal.append(_events(3), durable=True)
    assert await receipt == 3
    journal.append([SessionEnded(9, "bye")], durable=False)
    journal.close()
    entries = list(read_entries(tmp_path / "j.db"))
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert entries[0].prev_hash == GENESIS_HASH
    assert entries[1].prev_hash == entries[0].hash
    assert entries[3].event == SessionEnded(9, "bye")


async def test_a_waiter_cancelled_before_its_commit_does_not_stop_the_writer(tmp_path: Path) -> None:
    """A client that stops waiting (a task cancelled at shutdown) still has its events recorded, and the
    writer goes on recording what follows."""
    journal = Journal(tmp_path / "j.db")
    waiters = [asyncio.ensure_future(journal.append(_events(1), durable=True)) for _ in range(50)]
    await asyncio.sleep(0)  # each waiter has wrapped its receipt's future; cancelling it cancels that future
    for waiter in waiters:
        waiter.cancel()
    assert await journal.append([SessionEnded(9, "after")], durable=True) == 51
    journal.close()
    assert len(list(read_entries(tmp_path / "j.db"))) == 51


def test_reopen_continues_the_chain(tmp_path: Path) -> None:
    """A reopened journal continues the sequence and the hash chain."""
    path = tmp_path / "j.db"
    first = Journal(path, threaded=False)
    first.append(_events(2), durable=True)
    first.close()
    second = Journal(path, threaded=False)
    assert second.last_seq == 2
    second.append(_events(1), durable=True)
    second.close()
    report = verify(path)
    assert report.ok and report.events == 3


def test_journal_refuses_update_and_delete(tmp_path: Path) -> None:
    """The table itself refuses UPDATE and DELETE: the journal is append-only."""
    path = tmp_path / "j.db"
    Journal(path, threaded=False).append(_events(1), durable=True)
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE events SET payload = '{}' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM events")
    conn.close()


def _tamper(path: Path, sql: str) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(f"DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete; {sql}")
    conn.close()


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        (
            'UPDATE events SET payload = replace(payload, \'"amount":"2"\', \'"amount":"200"\') WHERE seq = 2',
            "event 2 was altered",
        ),
        ("DELETE FROM events WHERE seq = 2", "sequence jumps from 1 to 3"),
        ("UPDATE events SET prev_hash = hash WHERE seq = 3", "event 3 does not follow event 2"),
        ("UPDATE events SET type = 'Nonsense' WHERE seq = 1", "event 1 was altered"),
    ],
)
def test_verify_detects_tampering(tmp_path: Path, sql: str, problem: str) -> None:
    """An altered, removed or re-linked row breaks verification, naming the first bad event."""
    path = tmp_path / "j.db"
    journal = Journal(path, threaded=False)
    journal.append(_events(4), durable=True)
    journal.close()
    assert verify(path).ok
    _tamper(path, sql)
    report = verify(path)
    assert not report.ok
    assert problem in report.problem


def test_read_entries_refuses_undecodable_payload(tmp_path: Path) -> None:
    """A row whose payload no longer fits its event type is reported as corrupt, not half-read."""
    path = tmp_path / "j.db"
    Journal(path, threaded=False).append(_events(1), durable=True)
    _tamper(path, "UPDATE events SET payload = '{\"at\": 1}' WHERE seq = 1")
    with pytest.raises(JournalCorrupt, match="event 1"):
        list(read_entries(path))


def test_unwritable_journal_keeps_what_it_could_not_write_and_fails_each_receipt(tmp_path: Path) -> None:
    """When a commit fails, that receipt fails (nothing is recorded silently), the journal turns failing,
    and what is appended meanwhile is kept in order; once it can write again every kept row is written."""
    path = tmp_path / "j.db"
    journal = Journal(path, threaded=False)
    journal.append(_events(1), durable=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TRIGGER block BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk says no'); END;")
    conn.close()
    receipt = journal.append(_events(1), durable=True)
    with pytest.raises(JournalFailing, match="disk says no"):
        receipt.result()
    assert journal.failing is not None
    later = journal.append([TradingStateChanged(1, TradingState.ACTIVE, TradingState.HALTED, "x", "y")], durable=True)
    with pytest.raises(JournalFailing, match="kept in memory"):
        later.result()
    assert journal.kept == 2
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER block")
    conn.close()
    journal.close()  # one more try, which now succeeds
    assert journal.failing is None
    report = verify(path)
    assert report.ok and report.events == 3
    kinds = [type(e.event).__name__ for e in read_entries(path)]
    assert kinds == ["AccountFunded", "AccountFunded", "TradingStateChanged"]


async def test_threaded_writer_group_commits_preserve_order(tmp_path: Path) -> None:
    """Many appends in flight commit in the order they were appended."""
    journal = Journal(tmp_path / "j.db")
    receipts = [journal.append(_events(1), durable=i % 2 == 0) for i in range(200)]
    assert [await r for r in receipts] == list(range(1, 201))
    journal.close()
    assert verify(tmp_path / "j.db").events == 200


def _rows_in_database_file(path: Path, scratch: Path) -> int:
    """Rows in the database file itself, leaving out what sits only in its write-ahead log."""
    scratch.mkdir(exist_ok=True)
    shutil.copy(path, scratch / path.name)
    with sqlite3.connect(scratch / path.name) as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


async def test_writer_checkpoints_when_idle_once_enough_rows_are_waiting(tmp_path: Path) -> None:
    """The WAL is copied into the database between commands (so no command waits on it), and only
    once enough rows wait: a quiet daemon does not pay two extra fsyncs per event."""
    path = tmp_path / "j.db"
    journal = Journal(path)
    await journal.append(_events(10), durable=True)
    await asyncio.sleep(CHECKPOINT_IDLE_S * 20)
    assert _rows_in_database_file(path, tmp_path / "a") == 0
    await journal.append(_events(CHECKPOINT_AFTER_ROWS), durable=True)
    rows = 0
    for _ in range(200):
        await asyncio.sleep(CHECKPOINT_IDLE_S * 2)
        rows = _rows_in_database_file(path, tmp_path / "b")
        if rows:
            break
    assert rows == CHECKPOINT_AFTER_ROWS + 10
    journal.close()


async def test_a_burst_of_commits_leaves_the_checkpoint_to_the_pause_after_it(tmp_path: Path) -> None:
    """Commits back to back, never idle, grow the WAL past SQLite's default checkpoint point (1,000 pages)
    without SQLite checkpointing inside one of them (which would reset the WAL and keep it at that size);
    the pause after the burst checkpoints, and the next write cuts the file back."""
    path = tmp_path / "j.db"
    wal = tmp_path / "j.db-wal"
    idle = 0.5  # a pause is half a second of nothing: a loaded machine stalling this test's thread is not one
    journal = Journal(path, checkpoint_idle_s=idle)

    def burst() -> None:
        for _ in range(3000):
            journal.append(_events(1), durable=True).result()

    await asyncio.to_thread(burst)
    # ~3,300 frames of 4 KB. Checkpointed at 1,000 pages, the file would stay at ~4.1 MB; half again more
    # leaves room for one checkpoint in a pause that the machine, not the burst, made.
    assert wal.stat().st_size > 1.5 * 1000 * 4096
    for _ in range(40):
        await asyncio.sleep(idle)
        try:
            if _rows_in_database_file(path, tmp_path / "copy") == 3000:
                break
        except sqlite3.DatabaseError:  # copied while the checkpoint was writing the file: look again
            continue
    await journal.append(_events(1), durable=True)
    assert wal.stat().st_size <= WAL_KEPT_BYTES
    journal.close()
    assert verify(path).events == 3001


def test_verify_missing_file_is_not_ok(tmp_path: Path) -> None:
    """Verifying a journal that does not exist says so."""
    report = verify(tmp_path / "missing.db")
    assert not report.ok and "no journal" in report.problem
