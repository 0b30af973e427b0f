"""`guard up | down | daemon | status | kill`: run the daemon and talk to it from a shell."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from guard import codec, preflight
from guard.api.client import ApiClient
from guard.api.protocol import Kill, Snapshot, StatusView
from guard.config import Config, load_config
from guard.domain import TradingState
from guard.errors import DaemonError
from guard.lockfile import daemon_running
from guard.paths import StatePaths
from guard.wording import count

START_TIMEOUT = 60.0
KILL_API_TIMEOUT = 1.0


def operator_id(config: Config, given: str | None = None) -> str:
    return given or config.guard.operator or os.environ.get("USER") or getpass.getuser() or "operator"


def daemon(args: argparse.Namespace) -> int:
    from guard.daemon import run_daemon  # the heavy imports (ccxt, the model) only where they are needed

    config = load_config(args.config)
    return run_daemon(config, fmt=getattr(args, "log_format", None))


def start_background(config: Config, config_path: Any) -> subprocess.Popen[bytes] | None:
    """Start the daemon detached unless one runs. Returns the process it started, if it started one.

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
    with open(paths.log, "ab") as log_file:
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, start_new_session=True, close_fds=True
        )


async def wait_until_up(
    config: Config, within: float = START_TIMEOUT, process: subprocess.Popen[bytes] | None = None, since: int = 0
) -> dict[str, Any]:
    """The daemon's health once its API answers.

    Args:
        process: the daemon just started, if this process started it: its exit is then seen at once.
        since: where in the log this start began (the log is appended to: older errors are not its cause).

    Raises:
        DaemonError: it exited while starting (saying why, from its log), or did not come up in time.
    """
    client = ApiClient.from_config(config, timeout=2.0)
    paths = StatePaths(config.state_dir)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        health = await client.health()
        if health is not None:
            return health
        if process is not None:
            exited = process.poll() is not None
        else:  # someone else's daemon: gone once it no longer holds its lock (after a grace to take it)
            exited = not daemon_running(paths) and time.monotonic() > deadline - within + 3
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


def _log_size(paths: StatePaths) -> int:
    try:
        return paths.log.stat().st_size
    except OSError:
        return 0


def _log_lines(paths: StatePaths, since: int) -> list[str]:
    try:
        with open(paths.log, "rb") as log_file:
            log_file.seek(since)
            return log_file.read().decode("utf-8", errors="replace").splitlines()[-50:]
    except OSError:
        return []


def _last_error(paths: StatePaths, since: int = 0) -> str:
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


def up(args: argparse.Namespace) -> int:
    """Start the daemon if none runs, then attach the operator console."""
    config = load_config(args.config)
    since = _log_size(StatePaths(config.state_dir))
    started = start_background(config, args.config)
    print(("starting the guard daemon" if started else "the guard daemon is already running") + "...", file=sys.stderr)
    asyncio.run(wait_until_up(config, process=started, since=since))
    if getattr(args, "no_tui", False):
        return status(args)
    from guard.tui.app import run_tui

    return run_tui(config, operator_id(config, getattr(args, "operator", None)))


def down(args: argparse.Namespace) -> int:
    """Stop the daemon gracefully: pending proposals expire, positions are left as they are."""
    config = load_config(args.config)
    paths = StatePaths(config.state_dir)
    if not daemon_running(paths):
        print("no guard daemon is running", file=sys.stderr)
        return 0
    pid = _pid(paths)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while daemon_running(paths) and time.monotonic() < deadline:
        time.sleep(0.1)
    if daemon_running(paths):
        raise DaemonError(f"the daemon (pid {pid}) did not stop within 30 s")
    print("guard daemon stopped", file=sys.stderr)
    return 0


def kill(args: argparse.Namespace) -> int:
    """The kill switch from a shell: over the API, or by signal if the API does not answer in a second."""
    config = load_config(args.config)
    operator = operator_id(config, getattr(args, "operator", None))
    reason = args.reason or "guard kill from a shell"
    client = ApiClient.from_config(config, timeout=KILL_API_TIMEOUT)
    try:
        reply = asyncio.run(asyncio.wait_for(client.command(Kill("cli-kill", reason), operator), KILL_API_TIMEOUT))
    except (DaemonError, TimeoutError) as e:
        paths = StatePaths(config.state_dir)
        if not daemon_running(paths):
            raise DaemonError("no guard daemon is running: there is nothing to kill") from e
        pid = _pid(paths)
        os.kill(pid, signal.SIGUSR1)
        print(f"the API did not answer ({e}); sent SIGUSR1 to the daemon (pid {pid}): it halts and flattens")
        return 0
    if not reply.ok:
        print(f"kill refused: {reply.reason}", file=sys.stderr)
        return 1
    print(f"HALTED: kill switch pulled by {operator} ({reason}). Re-arm from the console (ctrl+r) when ready.")
    return 0


def status(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    snapshot = asyncio.run(ApiClient.from_config(config).snapshot())
    if getattr(args, "json", False):
        print(json.dumps(codec.to_plain(snapshot), indent=2))
        return 0
    print(describe_status(snapshot))
    return 0


def _model_activity(s: StatusView) -> str:
    """As the console's header says it: a model with nothing wrong still does not propose while HALTED."""
    if s.model.reason:
        return f" — not proposing: {s.model.reason}"
    return " — not proposing while HALTED" if s.trading_state is TradingState.HALTED else " — proposing"


def describe_status(snapshot: Snapshot) -> str:
    s = snapshot.status
    lines = [
        f"trading  {s.trading_state.value}" + (f" ({s.state_reason})" if s.state_reason else ""),
        f"account  equity {s.equity:.2f}  balance {s.balance:.2f}  free {s.free:.2f}  "
        f"unrealized {s.unrealized_pnl:+.2f}  today {s.daily_pnl:+.2f}",
        f"venue    {s.exchange} -> {s.broker} broker",
        f"operators {', '.join(s.operators) or 'none attached'}",
        "feeds    "
        + "  ".join(f"{f.symbol}: {'ok' if f.healthy else 'UNHEALTHY (' + f.reason + ')'}" for f in s.feeds),
        f"model    {s.model.model_id or 'none'}"
        + (f", {s.model.age_days:.1f} days old" if s.model.age_days is not None else "")
        + _model_activity(s),
        f"queue    {count(s.pending, 'pending proposal')}",
    ]
    for view in snapshot.positions:
        p = view.position
        pnl = f"{view.unrealized_pnl:+.2f}" if view.unrealized_pnl is not None else "?"
        lines.append(f"position {p.symbol} {p.qty} @ {p.entry_price:.2f} {p.leverage}x  PnL {pnl}")
    return "\n".join(lines)


def _pid(paths: StatePaths) -> int:
    try:
        return int(paths.pidfile.read_text(encoding="utf-8").strip())
    except (OSError, ValueError) as e:
        raise DaemonError(f"cannot read the daemon's pid from {paths.pidfile}") from e
