"""`guard up | down | status | kill` from a shell: what they print, how they end, and what they import."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from guard.cli.daemon import describe_status
from guard.domain import TradingState
from guard.events import TradingStateChanged
from guard.journal.chain import read_entries
from tests.cli.conftest import ROOT, Shell
from tests.tui import scenes

HEAVY = ("torch", "ccxt", "textual")
"""Libraries the kill switch and the status must never wait on."""

IMPORT_PROBE = """
import json, sys
from guard.cli import main
code = main(sys.argv[1:])
loaded = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def test_status_says_the_model_is_proposing_while_trading_is_active() -> None:
    assert "model    default-b5a14ef9b7, 1.2 days old — proposing" in describe_status(scenes.snapshot())


def test_status_says_a_healthy_model_does_not_propose_while_halted() -> None:
    text = describe_status(scenes.snapshot(TradingState.HALTED, "kill switch: drill"))
    assert "trading  HALTED (kill switch: drill)" in text
    assert "— not proposing while HALTED" in text and "— proposing" not in text


def _into_closed_pipe(shell: Shell, *args: str) -> subprocess.CompletedProcess[str]:
    """Run guard with stdout a pipe whose reader is gone, as in `guard status | head` once head has exited."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            shell.command(*args),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=shell.env,
            timeout=90,
        )
    finally:
        os.close(write_end)


def test_status_into_a_closed_pipe_exits_1_without_a_traceback(shell: Shell) -> None:
    """`guard status | head` (text or JSON): a reader that went away ends the command quietly, exit code 1."""
    for args in (("status",), ("status", "--json")):
        result = _into_closed_pipe(shell, *args)
        assert result.returncode == 1, result.stderr
        assert result.stderr == ""


def test_up_no_tui_into_a_closed_pipe_exits_1_without_a_traceback(shell: Shell) -> None:
    """`guard up --no-tui | head`: only the daemon's own line on stderr, no BrokenPipeError, exit code 1."""
    result = _into_closed_pipe(shell, "up", "--no-tui")
    assert result.returncode == 1, result.stderr
    assert result.stderr == "the guard daemon is already running...\n"


def test_status_output_ends_with_one_newline(shell: Shell) -> None:
    """`guard status` and `guard status --json` end their output with exactly one newline."""
    for args in (("status",), ("status", "--json")):
        result = shell.run(*args)
        assert result.returncode == 0, result.stderr
        assert result.stdout.endswith("\n") and not result.stdout.endswith("\n\n")
    assert json.loads(shell.run("status", "--json").stdout)["status"]["exchange"] == "sim"


def test_status_and_kill_import_no_torch_ccxt_or_textual(shell: Shell) -> None:
    """`guard status` and `guard kill`, run against a real daemon, never import torch, ccxt or textual."""
    for args in (("status",), ("status", "--json"), ("kill", "--reason", "import probe")):
        result = subprocess.run(
            [sys.executable, "-c", IMPORT_PROBE, "--config", str(shell.home / "config.toml"), *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=shell.env,
            timeout=90,
        )
        probe = json.loads(result.stderr.splitlines()[-1])
        assert probe["code"] == 0, result.stderr
        assert [name for name in HEAVY if name in probe["loaded"]] == []
        assert "aiohttp" in probe["loaded"]  # the probe did talk to the daemon over its API
    events = [e.event for e in read_entries(shell.home / "journal.db")]
    assert any(isinstance(e, TradingStateChanged) and e.state is TradingState.HALTED for e in events)


def test_kill_with_the_daemon_frozen_signals_it_and_says_why(shell: Shell) -> None:
    """With the daemon's process stopped (its API cannot answer), `guard kill` sends SIGUSR1, says why it did,
    and the daemon halts as soon as it runs again."""
    pid = int((shell.home / "daemon.pid").read_text())
    before = len(list(read_entries(shell.home / "journal.db")))
    os.kill(pid, signal.SIGSTOP)
    try:
        result = shell.run("kill", "--reason", "frozen daemon")
    finally:
        os.kill(pid, signal.SIGCONT)
    assert result.returncode == 0, result.stderr
    assert f"sent SIGUSR1 to the daemon (pid {pid})" in result.stdout
    assert "()" not in result.stdout and "1 s" in result.stdout  # why the API did not answer, never blank
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        events = [e.event for e in read_entries(shell.home / "journal.db")][before:]
        if any(type(e).__name__ == "KillCompleted" for e in events):
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the daemon did not complete the kill after SIGUSR1")
