"""Replay's journal handed to a writer process: the same rows as inline, and every failure of the writer loud."""

from __future__ import annotations

import io
import json
import logging
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog

from guard.errors import JournalError
from guard.events import AccountFunded, Event, SessionEnded
from guard.journal.anchor import anchor_path, read_anchor
from guard.journal.chain import GENESIS_HASH, verify
from guard.journal.offload import WriterProcess
from guard.journal.store import Journal
from guard.logs import configure
from guard.replay.inline import BATCH_ROWS, ReplayJournal

Rows = list[tuple[int, int, str, str, str, str]]


def _groups() -> list[list[Event]]:
    """Appends of every size (empty ones too), payloads beyond ASCII, more rows than two batches."""
    groups: list[list[Event]] = []
    for i in range(1, 3500):
        groups.append([AccountFunded(i * 10 + k, "USDT", Decimal(i) / 7) for k in range(i % 7)])
        if i % 100 == 0:
            groups.append([SessionEnded(i, "é" * (i % 13) + "✓")])
    return groups


def _rows(path: Path) -> Rows:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT seq, at, type, payload, prev_hash, hash FROM events ORDER BY seq").fetchall()
    finally:
        conn.close()


def _journal(path: Path, offload_after: int | None) -> ReplayJournal:
    return ReplayJournal(path, lambda events: None, offload_after=offload_after)


def test_offloaded_journals_write_the_inline_rows_and_anchor(tmp_path: Path) -> None:
    """Inline, offloaded from the start and handed over mid-way: every column of every row is the same, the
    receipts and `last_seq` are the same as they go, and each journal verifies against its anchor."""
    groups = _groups()
    assert sum(map(len, groups)) > 2 * BATCH_ROWS
    rows: dict[str, Rows] = {}
    seqs: dict[str, list[int]] = {}
    for name, offload_after in (("inline", None), ("from the start", 0), ("handed over", BATCH_ROWS + 1)):
        path = tmp_path / f"{name}.db"
        journal = _journal(path, offload_after)
        seqs[name] = []
        for events in groups:
            receipt = journal.append(events, durable=False)
            seqs[name] += [receipt.result(), receipt.last_seq, journal.last_seq]
        assert journal.offloaded == (offload_after is not None)
        journal.close()
        rows[name] = _rows(path)
        assert verify(path).ok
        anchor = read_anchor(anchor_path(path))
        assert anchor is not None
        assert (anchor.seq, anchor.hash, anchor.first_hash) == (rows[name][-1][0], rows[name][-1][5], rows[name][0][5])
        assert journal.last_hash == rows[name][-1][5]
    assert rows["inline"] == rows["from the start"] == rows["handed over"]
    assert seqs["inline"] == seqs["from the start"] == seqs["handed over"]


def test_a_journal_reopened_is_continued_by_its_writer(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    first = Journal(path, threaded=False)
    first.append([AccountFunded(1, "USDT", Decimal(1))], durable=True)
    first.close()
    again = _journal(path, 0)
    again.append([SessionEnded(2, "bye")], durable=False)
    again.close()
    assert [r[0] for r in _rows(path)] == [1, 2]
    assert verify(path).ok


def test_a_writer_that_dies_fails_the_next_flush_and_is_reaped(tmp_path: Path) -> None:
    journal = _journal(tmp_path / "j.db", 0)
    process = journal._process
    assert process is not None
    process._proc.kill()
    process._proc.wait()
    with pytest.raises(JournalError, match="writer process failed"):
        for i in range(BATCH_ROWS):
            journal.append([AccountFunded(i, "USDT", Decimal(i))], durable=False)
    assert journal.closed
    with pytest.raises(JournalError, match="closed"):
        journal.append([SessionEnded(1, "bye")], durable=False)
    journal.close()
    assert process._proc.returncode is not None


def test_a_full_disk_in_the_writer_fails_the_close(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    Journal(path, threaded=False).close()
    writer = WriterProcess(path, "NORMAL", 2, 0, GENESIS_HASH)
    writer.send([(i, "AccountFunded", b'{"type":"AccountFunded"}' * 100) for i in range(1000)])
    with pytest.raises(JournalError, match="full"):
        writer.close()


def test_a_bad_frame_fails_the_close(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    Journal(path, threaded=False).close()
    writer = WriterProcess(path, "NORMAL", None, 0, GENESIS_HASH)
    stdin = writer._proc.stdin
    assert stdin is not None
    stdin.write(b"\x03\x00\x00\x00abc")
    with pytest.raises(JournalError, match="Expected `array`"):
        writer.close()
    assert _rows(path) == []


def test_the_writer_exits_when_the_replay_goes_away(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    Journal(path, threaded=False).close()
    writer = WriterProcess(path, "NORMAL", None, 0, GENESIS_HASH)
    writer.send([(1, "SessionEnded", b'{"type":"SessionEnded","at":1,"reason":"x"}')])
    proc = writer._proc
    assert proc.stdin is not None
    proc.stdin.close()  # what the writer sees when the replay's process dies
    assert proc.wait(timeout=30) == 1
    assert proc.stdout is not None and proc.stdout.read() == b""
    assert [r[0] for r in _rows(path)] == [1]  # each frame was committed as it came


def test_an_offloaded_journal_takes_no_subscribers_and_a_subscribed_one_stays_inline(tmp_path: Path) -> None:
    offloaded = _journal(tmp_path / "a.db", 0)
    with pytest.raises(JournalError):
        offloaded.subscribe(lambda entries: None)
    offloaded.close()
    subscribed = _journal(tmp_path / "b.db", 1)
    told: list[int] = []
    subscribed.subscribe(lambda entries: told.extend(e.seq for e in entries))
    subscribed.append([AccountFunded(i, "USDT", Decimal(i)) for i in range(BATCH_ROWS + 1)], durable=False)
    assert not subscribed.offloaded
    subscribed.close()
    assert told == list(range(1, BATCH_ROWS + 2))


def test_the_writer_process_loads_nothing_heavy() -> None:
    code = "import sys, guard.journal.offload; print(sorted(m for m in sys.modules if m.startswith('guard')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert eval(loaded) == [
        "guard",
        "guard.errors",
        "guard.journal",
        "guard.journal.database",
        "guard.journal.links",
        "guard.journal.offload",
    ]
    heavy = "import sys, guard.journal.offload; print(sorted({'structlog', 'numpy', 'torch'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", heavy], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_a_ctrl_c_leaves_the_writer_to_finish(tmp_path: Path) -> None:
    """A Ctrl-C reaches the writer too (the same process group): the replay's close must still find it."""
    journal = _journal(tmp_path / "j.db", 0)
    process = journal._process
    assert process is not None
    journal.append([AccountFunded(1, "USDT", Decimal(1))], durable=False)
    journal.flush()  # the writer is surely running its own code once it has written a frame
    journal.append([SessionEnded(2, "bye")], durable=False)
    deadline = time.monotonic() + 30
    while not _rows(tmp_path / "j.db") and time.monotonic() < deadline:
        time.sleep(0.01)
    process._proc.send_signal(signal.SIGINT)
    journal.close()
    assert [r[0] for r in _rows(tmp_path / "j.db")] == [1, 2]


def test_a_journal_stopped_while_a_frame_was_on_its_way_closes_a_frame_short_and_says_so(tmp_path: Path) -> None:
    """A Ctrl-C while a frame is handed to the writer loses that frame, its events already counted. Closing the
    stopped replay's journal keeps what the writer wrote (whole frames, verified) and logs the shortfall instead of
    raising it over the Ctrl-C; a plain close would have raised it."""
    path = tmp_path / "j.db"
    journal = _journal(path, 0)
    process = journal._process
    assert process is not None
    journal.append([AccountFunded(1, "USDT", Decimal(1))], durable=False)
    journal.flush()
    journal.append([SessionEnded(2, "bye")], durable=False)

    def interrupted(encoded: list[Any]) -> None:
        raise KeyboardInterrupt

    process.send = interrupted  # type: ignore[method-assign]  # the Ctrl-C lands inside the hand-over
    with pytest.raises(KeyboardInterrupt):
        journal.flush()
    stream, handlers = io.StringIO(), logging.getLogger().handlers[:]
    configure(level="warning", fmt="json", stream=stream)
    try:
        journal.close_after_stop()
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers[:] = handlers
    logs = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["event"], e["level"]) for e in logs] == [("replay_journal_ended_short", "warning")]
    assert "wrote up to event 1, not 2" in logs[0]["error"]
    assert journal.closed and process._proc.returncode == 0
    assert [r[0] for r in _rows(path)] == [1]
    assert verify(path).ok
