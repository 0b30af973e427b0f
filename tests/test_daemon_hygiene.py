"""The daemon's state directory is private and SIGHUP is a daemon's SIGHUP: reopen the log, never die."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from guard.api.client import ApiClient
from guard.config import load_config

REPO = Path(__file__).resolve().parents[1]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_state_is_private_and_sighup_reopens_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 0755 state dir and a 0644 log are tightened at start (0700 / 0600, the journal's files too); SIGHUP
    after a rotation reopens daemon.log and the daemon goes on answering."""
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    log = home / "daemon.log"
    log.touch(mode=0o644)
    log.chmod(0o644)
    monkeypatch.setenv("GUARD_HOME", str(home))
    config = tmp_path / "config.toml"
    config.write_text("[model]\nenabled = false\n", encoding="utf-8")
    client = ApiClient.from_config(load_config(config))
    with open(log, "ab") as out:  # noqa: ASYNC230 - before the daemon exists
        proc = subprocess.Popen(  # noqa: ASYNC220 - the daemon under test runs in its own process
            [sys.executable, "-m", "guard", "--config", str(config), "daemon", "--log-format", "json"],
            cwd=REPO,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        async with asyncio.timeout(60):
            while await client.health() is None:
                assert proc.poll() is None, log.read_text()
                await asyncio.sleep(0.1)
        assert _mode(home) == 0o700
        for name in ("journal.db", "journal.db-wal", "journal.db.anchor", "daemon.log", "daemon.pid", "token"):
            assert _mode(home / name) == 0o600, name
        assert "state_file_permissions_tightened" in log.read_text()

        os.rename(log, home / "daemon.log.1")
        proc.send_signal(signal.SIGHUP)
        async with asyncio.timeout(10):
            while not log.exists() or "log_reopened" not in log.read_text():  # noqa: ASYNC110 - another process
                await asyncio.sleep(0.05)
        assert proc.poll() is None
        assert await client.health() is not None
        assert _mode(log) == 0o600
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0
