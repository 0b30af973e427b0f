"""The journal is checked before it is trusted: a damaged, cut, rolled-back or swapped journal is refused
at start with a message saying what is wrong, and nothing is appended to it."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from guard.errors import JournalRefused
from guard.events import AccountFunded
from guard.journal.anchor import adopt, anchor_path, read_anchor
from guard.journal.chain import verify
from guard.journal.store import Journal

ROOT = Path(__file__).resolve().parents[2]


def _events(n: int, start: int = 1) -> list[AccountFunded]:
    return [AccountFunded(i, "USDT", Decimal(i)) for i in range(start, start + n)]


def _journal(path: Path, n: int) -> None:
    journal = Journal(path, threaded=False)
    journal.append(_events(n), durable=True)
    journal.close()


def _start_on(path: Path) -> int:
    """What a starting daemon does first: read every event through the checks. Returns how many it read."""
    journal = Journal(path, threaded=False)
    try:
        return sum(1 for _ in journal.checked_entries())
    finally:
        journal.close()


def _rows(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])


def test_whole_journal_starts(tmp_path: Path) -> None:
    """An intact journal that reaches its anchor is read in full."""
    path = tmp_path / "journal.db"
    _journal(path, 20)
    assert _start_on(path) == 20
    anchor = read_anchor(anchor_path(path))
    assert anchor is not None and anchor.seq == 20


def test_journal_with_a_flipped_byte_in_a_past_event_is_refused(tmp_path: Path) -> None:
    """One digit of a past event changed (as on a damaged disk, or by hand): refused, naming the event."""
    path = tmp_path / "journal.db"
    _journal(path, 20)
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP TRIGGER events_no_update; "
        'UPDATE events SET payload = replace(payload, \'"amount":"7"\', \'"amount":"8"\') WHERE seq = 7;'
    )
    conn.close()
    with pytest.raises(JournalRefused, match=r"event 7 was altered.*guard journal verify"):
        _start_on(path)
    assert _rows(path) == 20


def test_journal_cut_short_is_refused(tmp_path: Path) -> None:
    """Bytes cut from the end of the file: refused (the rows are gone or the file is unreadable)."""
    path = tmp_path / "journal.db"
    _journal(path, 400)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 100)
    with pytest.raises(JournalRefused, match="cannot be trusted"):
        _start_on(path)


def test_journal_swapped_for_an_older_copy_is_refused(tmp_path: Path) -> None:
    """An older copy of the same journal put back: it is a valid chain, but shorter than what was committed."""
    path = tmp_path / "journal.db"
    _journal(path, 10)
    shutil.copy(path, tmp_path / "old.db")
    journal = Journal(path, threaded=False)
    journal.append(_events(5, start=11), durable=True)
    journal.close()
    shutil.copy(tmp_path / "old.db", path)
    with pytest.raises(JournalRefused, match="ends at event 10, but event 15 had been committed: 5 committed"):
        _start_on(path)
    assert verify(path).ok is False


def test_journal_replaced_by_another_journal_is_refused(tmp_path: Path) -> None:
    """Another journal (same length or longer) in the place of this one: its first event differs."""
    path = tmp_path / "journal.db"
    _journal(path, 5)
    other = tmp_path / "other" / "journal.db"
    other.parent.mkdir()
    journal = Journal(other, threaded=False)
    journal.append(_events(9, start=100), durable=True)
    journal.close()
    shutil.copy(other, path)
    with pytest.raises(JournalRefused, match="not the journal the anchor was written for"):
        _start_on(path)


def test_journal_whose_wal_was_deleted_after_a_crash_is_refused(tmp_path: Path) -> None:
    """SIGKILL with committed events only in the WAL, then the WAL lost: SQLite reads a shorter, valid chain;
    the anchor says more was committed, so the journal is refused (and `verify` no longer says intact)."""
    path = tmp_path / "journal.db"
    script = textwrap.dedent(
        f"""
        import sys, time
        from decimal import Decimal
        from guard.events import AccountFunded
        from guard.journal.store import Journal
        j = Journal({str(path)!r})
        for i in range(1, 41):
            j.append([AccountFunded(i, "USDT", Decimal(i))], durable=True).result()
        print("READY", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    wal = path.with_name(path.name + "-wal")
    assert wal.exists() and wal.stat().st_size > 0
    os.unlink(wal)
    path.with_name(path.name + "-shm").unlink(missing_ok=True)
    with pytest.raises(JournalRefused, match="event 40 had been committed"):
        _start_on(path)
    report = verify(path)
    assert not report.ok and "missing" in report.problem


def test_journal_without_an_anchor_is_refused_until_adopted(tmp_path: Path) -> None:
    """A journal written before anchors existed (or whose anchor was deleted) cannot prove its length: refused,
    until a person has verified it and adopted it; then it starts."""
    path = tmp_path / "journal.db"
    _journal(path, 6)
    anchor_path(path).unlink()
    with pytest.raises(JournalRefused, match=r"no anchor.*guard journal verify --adopt"):
        _start_on(path)
    report = verify(path)
    assert report.ok and "no anchor" in report.note
    point = adopt(path)
    assert point is not None and point.seq == 6
    assert _start_on(path) == 6
