"""Replay's batched journal: written in large pages, and its chain and rows are the daemon journal's."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

from guard.events import AccountFunded, Event, SessionEnded
from guard.journal.chain import read_entries, verify
from guard.journal.store import Journal
from guard.replay.inline import PAGE_SIZE, ReplayJournal


def _events(n: int) -> list[Event]:
    return [AccountFunded(i, "USDT", Decimal(i)) for i in range(1, n + 1)]


def _page_size(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()


def test_replay_journal_is_written_in_large_pages_and_verifies(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    seen: list[Event] = []
    journal = ReplayJournal(path, seen.extend)
    journal.append(_events(3), durable=True)
    journal.append([SessionEnded(9, "bye")], durable=False)
    journal.close()
    assert _page_size(path) == PAGE_SIZE
    assert seen == [*_events(3), SessionEnded(9, "bye")]
    assert [e.event for e in read_entries(path)] == seen
    assert verify(path).ok


def test_a_journal_keeps_the_page_size_it_was_created_with(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    first = Journal(path, threaded=False)
    first.append(_events(2), durable=True)
    first.close()
    again = Journal(path, threaded=False, page_size=PAGE_SIZE)
    again.append(_events(1), durable=True)
    again.close()
    assert _page_size(path) == 4096
    assert verify(path).ok
