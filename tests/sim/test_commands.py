"""`guard sim` as a user starts it: a real process that serves ccxt until stopped."""

from __future__ import annotations

import json
import re
import signal
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from guard.cli import main


def test_guard_sim_serves_until_terminated(tmp_path: Path) -> None:
    """`guard sim` prints its address, answers the Binance API there, and stops cleanly on SIGTERM."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "guard", "sim", "--port", "0", "--scenario", "trend", "--speed", "5"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        assert url, line
        with urllib.request.urlopen(f"{url.group(1)}/fapi/v1/exchangeInfo", timeout=10) as r:
            info = json.loads(r.read())
        assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
        token = (tmp_path / ".guard" / "sim.token").read_text().strip()
        assert stat.S_IMODE((tmp_path / ".guard" / "sim.token").stat().st_mode) == 0o600
        state = urllib.request.Request(f"{url.group(1)}/_sim/state", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(state, timeout=10) as r:
            assert json.loads(r.read())["scenario"] == "trend"
        with pytest.raises(urllib.error.HTTPError, match="401"):
            urllib.request.urlopen(f"{url.group(1)}/_sim/state", timeout=10)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_guard_sim_unknown_scenario_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown scenario is bad input: exit 2 naming the allowed ones, before anything starts."""
    assert main(["sim", "--scenario", "moon"]) == 2
    assert "must be one of calm, trend" in capsys.readouterr().err
