"""`guard replay` end to end, on a plain CSV brought in with `guard history import`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from guard.sim.process import generate_history

ROOT = Path(__file__).resolve().parents[2]


def _guard(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GUARD_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "guard", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )


def test_replay_cli_on_imported_csv_writes_reports(guard_home: Path, tmp_path: Path) -> None:
    """A plain OHLCV CSV, imported with `guard history import`, replays end to end: exit 0, reports on disk."""
    bars = generate_history(["BTC/USDT:USDT"], 1_767_225_600_000, 1_500, scenario="trend", seed=31)["BTC/USDT:USDT"]
    plain = tmp_path / "BTCUSDT-1m.csv"
    plain.write_text(
        "timestamp,open,high,low,close,volume\n"
        + "".join(f"{b.open_time},{b.open!r},{b.high!r},{b.low!r},{b.close!r},{b.volume!r}\n" for b in bars)
    )
    imported = tmp_path / "btc.csv"
    result = _guard(guard_home, "history", "import", str(plain), "--out", str(imported))
    assert result.returncode == 0, result.stderr
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
