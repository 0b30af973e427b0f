"""`guard journal verify|export|tail` read a real journal as an operator would."""

from __future__ import annotations

import csv
import sqlite3
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from guard.cli import main
from guard.events import AccountFunded, SessionEnded
from guard.journal.store import Journal


@pytest.fixture
def journal_file(guard_home: Path) -> Path:
    path = guard_home / "journal.db"
    journal = Journal(path, threaded=False)
    journal.append(
        [AccountFunded(1_767_225_600_000, "USDT", Decimal(10_000)), SessionEnded(1_767_225_601_000, "x")], durable=True
    )
    journal.close()
    return path


def test_journal_verify_intact_exits_0(journal_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An intact journal verifies with exit code 0 and the event count."""
    assert main(["journal", "verify"]) == 0
    assert "2 events, hash chain intact" in capsys.readouterr().out


def test_journal_verify_tampered_exits_1(journal_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A tampered journal fails verification with exit code 1 and names the event."""
    conn = sqlite3.connect(journal_file)
    conn.executescript("DROP TRIGGER events_no_update; UPDATE events SET at = 5 WHERE seq = 2;")
    conn.close()
    assert main(["journal", "verify"]) == 1
    assert "event 2" in capsys.readouterr().err


def test_journal_export_csv_and_parquet(journal_file: Path, tmp_path: Path) -> None:
    """Export writes every event with its sequence, type, payload and hashes, as CSV or Parquet."""
    csv_path, parquet_path = tmp_path / "j.csv", tmp_path / "j.parquet"
    assert main(["journal", "export", "--format", "csv", "--out", str(csv_path)]) == 0
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["type"] for r in rows] == ["AccountFunded", "SessionEnded"]
    assert rows[0]["time"] == "2026-01-01T00:00:00.000Z"
    assert main(["journal", "export", "--format", "parquet", "--out", str(parquet_path)]) == 0
    table = pq.read_table(parquet_path)
    assert table.column("seq").to_pylist() == [1, 2]
    assert table.column("hash").to_pylist() == [r["hash"] for r in rows]


def test_journal_tail_prints_last_events(journal_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """tail -n 1 prints the last event on one line."""
    assert main(["journal", "tail", "-n", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "SessionEnded" in out[0] and 'reason="x"' in out[0]


def test_journal_commands_without_journal_exit_2(guard_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With no journal in the state directory, the commands say where they looked."""
    assert main(["journal", "verify"]) == 2
    assert "no journal at" in capsys.readouterr().err
