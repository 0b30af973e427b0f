"""Journals written before msgspec (sorted keys, Decimals as strings, no "type" inside a payload) still load."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from guard.approval.state import GuardState
from guard.events import EVENT_TYPES
from guard.journal.chain import decode_event, read_entries, verify
from guard.journal.store import Journal
from tests.builders import specs_for

FIXTURES = Path(__file__).parent / "fixtures"


def test_store_journal_written_before_msgspec_verifies_decodes_and_rebuilds_its_state(tmp_path: Path) -> None:
    """The fixture journal (made by the hand-written codec) verifies, every row decodes, and folding it
    gives exactly the state snapshot the old code recorded beside it."""
    path = tmp_path / "journal.db"
    shutil.copy(FIXTURES / "v1_journal.db", path)
    report = verify(path)
    assert report.ok, report.problem
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT seq, type, payload FROM events ORDER BY seq").fetchall()
    # The fixture covers every event type the old code had; these came after it.
    added_since = {"JournalFailed", "JournalRecovered", "DeadmanApplied", "CommandReceived", "CommandAnswered"}
    added_since |= {"OrderCancelRequested", "OrderAmendRequested", "SourcePaused", "SourceResumed"}
    assert {type_name for _, type_name, _ in rows} == set(EVENT_TYPES) - added_since
    assert all('"type"' not in payload[:9] for _, _, payload in rows)  # written before events were tagged
    for seq, type_name, payload in rows:
        assert type(decode_event(seq, type_name, payload)).__name__ == type_name
    state = GuardState(specs_for())
    for entry in read_entries(path):
        state.apply(entry.event)
    recorded = json.loads((FIXTURES / "v1_snapshot.json").read_text(encoding="utf-8"))
    assert json.loads(json.dumps(state.snapshot())) == recorded


def test_store_old_journal_takes_new_events_and_still_verifies(tmp_path: Path) -> None:
    """Appending to a journal written by the old codec chains on from its last hash: the whole file verifies,
    old rows and new, and the new rows read back as what was appended."""
    path = tmp_path / "journal.db"
    shutil.copy(FIXTURES / "v1_journal.db", path)
    old = [e.event for e in read_entries(path)]
    journal = Journal(path, threaded=False)
    journal.append(old[-3:], durable=True).result()
    journal.close()
    assert verify(path).ok
    assert [e.event for e in read_entries(path)] == [*old, *old[-3:]]
