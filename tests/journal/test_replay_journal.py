"""Replay's batched journal: written in large pages, and its chain and rows are the daemon journal's."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

from guard.events import AccountFunded, Event, SessionEnded
from guard.journal.chain import chain_hash, chain_rows, encode_event, read_entries, verify
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


def test_chain_rows_hash_as_chain_hash_does() -> None:
    """The rows' hashes are `chain_hash` of their text (the reader's check), for payloads of every size and for
    text beyond ASCII."""
    events: list[Event] = [AccountFunded(i, "USDT", Decimal(i) / 7) for i in range(1, 200)]
    events += [SessionEnded(i, "é" * i + "✓" * (i % 5)) for i in range(300)]
    prev, seq = "ab" * 32, 41
    rows = chain_rows(prev, seq, events)
    assert [r[0] for r in rows] == list(range(seq + 1, seq + 1 + len(events)))
    for row, event in zip(rows, events, strict=True):
        seq_, at, type_name, payload, prev_hash, digest = row
        assert (at, type_name, payload) == (event.at, type(event).__name__, encode_event(event))
        assert prev_hash == prev
        assert digest == chain_hash(prev, seq_, type_name, payload)
        prev = digest
    assert chain_rows(prev, seq, []) == []


def test_every_journal_verifies_and_tells_the_same_entries(tmp_path: Path) -> None:
    """The daemon's journal (threaded and inline) and replay's batched one write the same rows for the same
    appends, and each verifies with the reader's checks."""
    groups: list[list[Event]] = [_events(3), [], [SessionEnded(9, "bye")], _events(5000)]
    told: dict[str, list[int]] = {}
    paths = {"threaded": tmp_path / "t.db", "inline": tmp_path / "i.db", "batched": tmp_path / "b.db"}
    for name, path in paths.items():
        journal = (
            ReplayJournal(path, lambda events: None)
            if name == "batched"
            else Journal(path, threaded=name == "threaded")
        )
        seqs = told[name] = []
        journal.subscribe(lambda entries, seqs=seqs: seqs.extend(e.seq for e in entries))
        receipts = [journal.append(events, durable=True) for events in groups]
        journal.close()
        assert [r.result(5) for r in receipts] == [3, 0, 4, 5004]
        assert verify(path).ok
    assert told["threaded"] == told["inline"] == told["batched"] == list(range(1, 5005))
    rows = {}
    for name, path in paths.items():
        conn = sqlite3.connect(path)
        rows[name] = conn.execute("SELECT seq, at, type, payload, prev_hash, hash FROM events ORDER BY seq").fetchall()
        conn.close()
    assert rows["threaded"] == rows["inline"] == rows["batched"]
    assert len(rows["batched"]) == 5004
