"""`guard replay` end to end, on a plain CSV brought in with `guard history import`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from guard.events import SessionEnded
from guard.journal.chain import read_entries
from guard.sim.process import generate_history

ROOT = Path(__file__).resolve().parents[2]


def _guard(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GUARD_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "guard", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )


def _imported(home: Path, tmp_path: Path, bars: int) -> Path:
    """A plain OHLCV CSV of `bars` simulated 1-minute BTC bars, brought in with `guard history import`."""
    made = generate_history(["BTC/USDT:USDT"], 1_767_225_600_000, bars, scenario="trend", seed=31)["BTC/USDT:USDT"]
    plain = tmp_path / "BTCUSDT-1m.csv"
    plain.write_text(
        "timestamp,open,high,low,close,volume\n"
        + "".join(f"{b.open_time},{b.open!r},{b.high!r},{b.low!r},{b.close!r},{b.volume!r}\n" for b in made)
    )
    imported = tmp_path / "btc.csv"
    result = _guard(home, "history", "import", str(plain), "--out", str(imported))
    assert result.returncode == 0, result.stderr
    return imported


def test_replay_cli_on_imported_csv_writes_reports(guard_home: Path, tmp_path: Path) -> None:
    """A plain OHLCV CSV, imported with `guard history import`, replays end to end: exit 0, reports on disk."""
    imported = _imported(guard_home, tmp_path, 1_500)
    out = tmp_path / "replay"
    result = _guard(
        guard_home, "replay", str(imported), "--operator", "approve-all", "--leverage", "5", "--out", str(out), "--json"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["bars"] == 1_500 and report["proposals"] > 0 and report["violations"] == []
    assert report["leverage"] == "5" and report["operator"] == "approve-all"
    for name in ("report.md", "report.json", "equity.png", "journal.db"):
        assert (out / name).stat().st_size > 0
    verified = _guard(out, "journal", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_replay_cli_refuses_leverage_above_hard_cap(guard_home: Path, tmp_path: Path) -> None:
    """`--leverage 25` is bad input (exit 2) naming the hard cap, before anything is replayed."""
    result = _guard(guard_home, "replay", str(tmp_path / "none.csv"), "--operator", "never", "--leverage", "25")
    assert result.returncode == 2 and "hard cap of 20" in result.stderr


def test_replay_cli_stops_at_ctrl_c_mid_replay_with_its_journal_whole(guard_home: Path, tmp_path: Path) -> None:
    """Ctrl-C while a long replay runs stops it where it is: exit 130, no report, and the journal written so far
    verifies and ends before the replay's finish (under `asyncio.run` the first Ctrl-C only cancelled the task,
    which a replay notices at its end: it ran to its last bar first)."""
    imported = _imported(guard_home, tmp_path, 150_000)
    out = tmp_path / "replay"
    replay = subprocess.Popen(
        [sys.executable, "-m", "guard", "replay", str(imported), "--operator", "approve-all", "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "GUARD_HOME": str(guard_home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal's foreground job
    )
    try:
        deadline = time.monotonic() + 120
        while not _journaled(out / "journal.db") and replay.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        replay.send_signal(signal.SIGINT)
        _, stderr = replay.communicate(timeout=60)
    finally:
        replay.kill()
    assert replay.returncode == 130, stderr.decode()[-2000:]
    assert not (out / "report.md").exists()
    verified = _guard(out, "journal", "verify")
    assert verified.returncode == 0 and "hash chain intact" in verified.stdout, verified.stdout + verified.stderr
    events = [e.event for e in read_entries(out / "journal.db")]
    assert events and not (isinstance(events[-1], SessionEnded) and events[-1].reason == "replay finished")


def _journaled(path: Path) -> bool:
    """The replay's journal holds an event: the replay's loop has begun."""
    return path.exists() and bool(next(iter(read_entries(path)), None))
