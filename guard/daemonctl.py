"""Drive a daemon from another process: start it in the background, wait for it, stop it, pull its kill switch.

What `guard up | down | kill` (and the benchmarks) do to a daemon they do not run themselves. The daemon's
lock on its state directory says whether one runs; its pidfile says which process to signal.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guard import preflight
from guard.api.client import ApiClient
from guard.api.protocol import Kill, Reply
from guard.config import Config
from guard.errors import DaemonError
from guard.lockfile import daemon_running
from guard.paths import StatePaths

START_TIMEOUT = 60.0
"""Seconds a starting daemon has to answer on its API."""
STOP_TIMEOUT = 30.0
"""Seconds a daemon has to end its session after SIGTERM."""
KILL_API_TIMEOUT = 1.0
"""Seconds the kill switch waits on the API before it signals the daemon instead."""
EXITED_GRACE = 3.0
"""Seconds after the start before a daemon that holds no lock counts as exited (it takes the lock at once)."""


def start_background(config: Config, config_path: Path | None) -> subprocess.Popen[bytes] | None:
    """Start the daemon detached, logging as JSON to the state directory's log, unless one runs.

    Returns:
        The process it started, or None when a daemon already held the state directory.

    Raises:
        ConfigError: the machine cannot run this config (every problem named); nothing is started.
    """
    paths = StatePaths(config.state_dir)
    if daemon_running(paths):
        return None
    preflight.require(config)  # what the daemon would die on, said here and all at once
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    command = [sys.executable, "-m", "guard"]
    if config_path is not None:
        command += ["--config", str(config_path)]
    command += ["daemon", "--log-format", "json"]
    # The log is the operator's alone (0600), like everything else in the state directory.
    fd = os.open(paths.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as log_file:
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, start_new_session=True, close_fds=True
        )


async def wait_until_up(
    config: Config, within: float = START_TIMEOUT, process: subprocess.Popen[bytes] | None = None, since: int = 0
) -> dict[str, Any]:
    """Wait until the daemon answers /health; return its answer.

    Args:
        process: the daemon just started, if this process started it: its exit is then seen at once.
        since: where in the log this start began (the log is appended to: older errors are not its cause).

    Raises:
        DaemonError: the daemon exited while starting (saying why, from its log), or did not answer in time.
    """
    client = ApiClient.from_config(config, timeout=2.0)
    paths = StatePaths(config.state_dir)
    started = time.monotonic()
    deadline = started + within
    while time.monotonic() < deadline:
        health = await client.health()
        if health is not None:
            return health
        if process is not None:
            exited = process.poll() is not None
        else:  # someone else's daemon: gone once it no longer holds its lock (after a grace to take it)
            exited = not daemon_running(paths) and time.monotonic() > started + EXITED_GRACE
        if exited:
            raise DaemonError(f"the daemon exited while starting; see {paths.log}: {await _exit_reason(paths, since)}")
        await asyncio.sleep(0.2)
    raise DaemonError(f"the daemon did not come up within {within:g} s; see {paths.log}")


EXIT_REASON_SECONDS = 3.0
"""The daemon releases its lock, then logs why it stopped: how long to wait for that line."""


async def _exit_reason(paths: StatePaths, since: int) -> str:
    deadline = time.monotonic() + EXIT_REASON_SECONDS
    while time.monotonic() < deadline:
        reason = _last_error(paths, since)
        if reason:
            return reason
        await asyncio.sleep(0.1)  # a file written by another process: there is nothing to wait on but time
    return _last_error(paths, since) or _last_line(paths, since)


def log_size(paths: StatePaths) -> int:
    """Where the daemon's log ends now: a start's own lines begin here."""
    try:
        return paths.log.stat().st_size
    except OSError:
        return 0


def stop(config: Config, within: float = STOP_TIMEOUT) -> int | None:
    """Stop the daemon gracefully (SIGTERM) and wait until it has let go of the state directory.

    Returns:
        The pid of the daemon stopped, or None when none was running.

    Raises:
        DaemonError: its pid cannot be read, or it did not stop within `within` seconds.
    """
    paths = StatePaths(config.state_dir)
    if not daemon_running(paths):
        return None
    pid = _pid(paths)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + within
    while daemon_running(paths) and time.monotonic() < deadline:
        time.sleep(0.1)
    if daemon_running(paths):
        raise DaemonError(f"the daemon (pid {pid}) did not stop within {within:g} s")
    return pid


@dataclass(frozen=True, slots=True)
class KillOutcome:
    """How a kill from another process reached the daemon: the API's reply, or a signal."""

    reply: Reply | None
    """The daemon's reply over the API; None when the API did not answer."""
    signalled_pid: int | None = None
    """The daemon signalled with SIGUSR1 because its API did not answer in time."""
    api_error: str = ""
    """Why the API did not answer, when it did not."""


def kill(config: Config, operator: str, reason: str) -> KillOutcome:
    """Pull the kill switch: over the API, or by SIGUSR1 when the API does not answer within a second.

    The daemon halts and flattens on either; the signal works while its API or event loop is stuck.

    Raises:
        DaemonError: no daemon is running, so there is nothing to kill.
    """
    client = ApiClient.from_config(config, timeout=KILL_API_TIMEOUT, operator=operator)
    # A fresh command id each time: a second kill must never be taken for a repeat of the first.
    command = Kill(f"cli-kill-{uuid.uuid4().hex[:12]}", reason)
    try:
        reply = asyncio.run(asyncio.wait_for(client.command(command, operator), KILL_API_TIMEOUT))
    except (DaemonError, TimeoutError) as e:
        paths = StatePaths(config.state_dir)
        if not daemon_running(paths):
            raise DaemonError("no guard daemon is running: there is nothing to kill") from e
        pid = _pid(paths)
        os.kill(pid, signal.SIGUSR1)
        return KillOutcome(None, signalled_pid=pid, api_error=str(e) or f"no answer within {KILL_API_TIMEOUT:g} s")
    return KillOutcome(reply)


def _log_lines(paths: StatePaths, since: int) -> list[str]:
    try:
        with open(paths.log, "rb") as log_file:
            log_file.seek(since)
            return log_file.read().decode("utf-8", errors="replace").splitlines()[-50:]
    except OSError:
        return []


def _last_error(paths: StatePaths, since: int = 0) -> str:
    """The last error the daemon logged since `since` (its log is JSON lines), or ""."""
    for line in reversed(_log_lines(paths, since)):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("level") in ("error", "critical"):
            return str(record.get("error") or record.get("event"))
    return ""


def _last_line(paths: StatePaths, since: int) -> str:
    lines = _log_lines(paths, since)
    return lines[-1][:200] if lines else ""


def _pid(paths: StatePaths) -> int:
    try:
        return int(paths.pidfile.read_text(encoding="utf-8").strip())
    except (OSError, ValueError) as e:
        raise DaemonError(f"cannot read the daemon's pid from {paths.pidfile}") from e
