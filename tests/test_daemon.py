"""The daemon as a whole: the kill switch under stress, the dead-man switch, secrets, crashes and signals."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import structlog

from guard.api.client import ApiClient
from guard.api.protocol import AlertRaised, Approve, Kill, Reply, SetRiskLimit
from guard.approval.desk import ACKNOWLEDGMENT_PHRASES
from guard.daemon import Daemon, running
from guard.domain import AcknowledgmentKind, OrderPurpose, ProposalStatus, TradingState
from guard.events import OperatorPresenceLost, OrderSubmitted, SessionEnded, TradingStateChanged
from guard.journal.chain import read_entries
from guard.logs import SecretRedactor, configure
from tests.api.support import queue_proposal, wait_for, wait_until
from tests.builders import daemon_config, request

ROOT = Path(__file__).resolve().parents[1]


def journal_events(daemon: Daemon) -> list:
    return [e.event for e in read_entries(daemon.paths.journal)]


async def _kill_round_trip(client: ApiClient) -> tuple[Reply, float]:
    started = time.perf_counter()
    reply = await client.command(Kill("k", "under stress"), "alice")
    return reply, time.perf_counter() - started


async def test_kill_halts_fast_while_the_model_hangs(guard_home: Path) -> None:
    """With inference stuck for 60 s, the kill switch still answers in milliseconds and the loop keeps turning."""
    config = daemon_config(model={"enabled": True, "inference_timeout_seconds": 30.0}, sim={"speed": 120.0})
    async with running(config) as daemon:
        predictor = daemon._predictor
        assert predictor is not None
        hung = asyncio.Event()

        def hang(*args: object, **kwargs: object) -> list:
            daemon_loop.call_soon_threadsafe(hung.set)
            time.sleep(60)
            return []

        daemon_loop = asyncio.get_running_loop()
        predictor.runner.signals = hang  # fault injection: the real model's forward pass never returns
        await asyncio.wait_for(hung.wait(), 30)
        assert predictor.health().busy
        reply, seconds = await _kill_round_trip(ApiClient.from_config(config))
        assert reply.ok and daemon.desk.state.trading_state is TradingState.HALTED
        assert seconds < 0.5
        assert daemon.lag.max_ms < 250


async def test_acknowledging_the_model_weighs_the_newest_bars_at_once(guard_home: Path) -> None:
    """The model's view of the bars already closed is refused while nobody has acknowledged it; the
    acknowledgment brings it back at once instead of a bar later (the market here barely moves)."""
    config = daemon_config(model={"enabled": True}, sim={"speed": 0.2})  # a bar closes every 5 minutes
    async with running(config) as daemon:
        desk, pipeline = daemon.desk, daemon._pipeline
        assert desk is not None and daemon.hub is not None and pipeline is not None
        daemon.hub.presence.heard_from("alice")
        await wait_until(lambda: pipeline.stats().signals >= 3 and len(desk.marks) == 3)  # warm-up inferred
        assert pipeline.stats().refused >= 1 and not desk.state.pending()
        phrase = ACKNOWLEDGMENT_PHRASES[AcknowledgmentKind.MODEL_PROPOSALS]
        assert (await desk.acknowledge("alice", AcknowledgmentKind.MODEL_PROPOSALS, phrase)).ok
        await wait_until(lambda: bool(desk.state.pending()) or pipeline.stats().bars > 0)
        assert desk.state.pending() and pipeline.stats().bars == 0  # from the bars already in, not a new one


async def test_kill_halts_fast_while_the_exchange_answers_5xx(guard_home: Path) -> None:
    """With the exchange answering 503 to everything, the kill switch still halts at once."""
    async with running(daemon_config()) as daemon:
        await queue_proposal(daemon)
        daemon.sim.faults.server_errors(120.0, status=503)
        daemon.sim.faults.disconnect_storm(120.0, drop_after=0.1)
        await asyncio.sleep(1.0)
        reply, seconds = await _kill_round_trip(ApiClient.from_config(daemon.config))
        assert reply.ok and seconds < 0.5
        assert daemon.desk.state.trading_state is TradingState.HALTED
        assert all(r.status is not ProposalStatus.PENDING for r in daemon.desk.state.proposals.values())


async def test_deadman_fires_when_heartbeats_stop(guard_home: Path) -> None:
    """No heartbeat for the configured time: pending proposals expire, positions follow the policy, an alert says so."""
    config = daemon_config(operators={"heartbeat_timeout_seconds": 1.0, "deadman_policy": "flatten"})
    async with running(config) as daemon:
        client = ApiClient.from_config(config)
        async with client.connect("alice") as alice:
            filled = await queue_proposal(daemon)
            assert (await alice.send(Approve(alice.next_id(), filled, 1))).data["status"] == "FILLED"
            pending = await queue_proposal(daemon, symbol="ETH/USDT:USDT", qty="1")
            # Alice's console heartbeats every 5 s: longer than the 1 s timeout, so presence lapses.
            await wait_for(alice, lambda m: isinstance(m, AlertRaised) and m.alert.kind == "deadman", within=15)
        await wait_until(lambda: not daemon.desk.state.account.positions)
        events = journal_events(daemon)
        lost = [e for e in events if isinstance(e, OperatorPresenceLost)]
        assert lost and lost[0].policy == "flatten" and lost[0].silent_seconds >= 1.0
        assert daemon.desk.state.proposals[pending].status is ProposalStatus.EXPIRED
        assert any(isinstance(e, OrderSubmitted) and e.request.purpose is OrderPurpose.DEADMAN for e in events)
        assert daemon.desk.state.trading_state is TradingState.ACTIVE  # it stays as it is until someone acts
        refused = await daemon.desk.propose(request())
        assert not refused.ok and "no operator" in refused.reason


def test_api_key_in_environment_never_reaches_a_log_line(guard_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An exchange key in the environment is scrubbed from every log line, whatever field or text it hides in."""
    secret = "FAKEKEY-7f3a9c1e5b2d8f4a6c0e"
    monkeypatch.setenv("BINANCE_API_KEY", secret)
    stream = io.StringIO()
    redactor = configure("info", "json", SecretRedactor(), stream=stream)

    async def session() -> None:
        daemon = Daemon(daemon_config(), redactor=redactor, handle_signals=False)
        task = asyncio.ensure_future(daemon.run())
        await asyncio.wait_for(daemon.ready.wait(), 30)
        log = structlog.get_logger("test")
        log.info("leaky_request", url=f"https://api.example/?apiKey={secret}", headers={"X-MBX-APIKEY": secret})
        log.error("leaky_error", error=RuntimeError(f"signature rejected for {secret}"))
        daemon.stop()
        await task

    try:
        asyncio.run(session())
    finally:
        structlog.reset_defaults()
    text = stream.getvalue()
    assert "leaky_request" in text and "leaky_error" in text
    assert secret not in text
    assert text.count("[redacted]") >= 3


def test_api_key_in_config_file_is_refused_without_echo(tmp_path: Path) -> None:
    """A key pasted into config.toml is refused, and the error never prints it."""
    secret = "FAKEKEY-0a1b2c3d4e5f6a7b8c9d"
    config = tmp_path / "config.toml"
    config.write_text(f'[exchange]\nid = "binanceusdm"\napi_key = "{secret}"\n')
    for command in (["config", "check", str(config)], ["--config", str(config), "daemon"]):
        result = subprocess.run([sys.executable, "-m", "guard", *command], capture_output=True, text=True, cwd=ROOT)
        assert result.returncode == 2
        assert secret not in result.stdout + result.stderr
        assert "environment variables only" in result.stderr


def _guard(home: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GUARD_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "guard", "--config", str(home / "config.toml"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )


def _write_config(home: Path) -> None:
    (home / "config.toml").write_text("[model]\nenabled = false\n[sim]\nspeed = 60.0\n")


def test_kill_9_then_guard_up_restarts_halted_with_state_rebuilt(guard_home: Path) -> None:
    """kill -9 mid-session, then `guard up`: the daemon comes back HALTED, with what it had journaled."""
    _write_config(guard_home)
    assert _guard(guard_home, "up", "--no-tui").returncode == 0
    pid = int((guard_home / "daemon.pid").read_text())
    config = __import__("guard.config", fromlist=["load_config"]).load_config(guard_home / "config.toml")
    reply = asyncio.run(ApiClient.from_config(config).command(SetRiskLimit("r", "max_leverage", "2", "x"), "alice"))
    assert reply.ok
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    try:
        up = _guard(guard_home, "up", "--no-tui")
        assert up.returncode == 0, up.stderr
        assert "trading  HALTED (unclean exit" in up.stdout
        status = json.loads(_guard(guard_home, "status", "--json").stdout)
        assert status["status"]["trading_state"] == "HALTED"
        snapshot = asyncio.run(ApiClient.from_config(config).snapshot())
        assert snapshot.status.trading_state is TradingState.HALTED
    finally:
        assert _guard(guard_home, "down").returncode == 0
    events = [e.event for e in read_entries(guard_home / "journal.db")]
    assert any(isinstance(e, TradingStateChanged) and "unclean exit" in e.reason for e in events)
    assert isinstance(events[-1], SessionEnded)


def test_guard_kill_falls_back_to_signal_when_the_api_is_gone(guard_home: Path) -> None:
    """If the API cannot be reached, `guard kill` signals the daemon, which halts and flattens all the same."""
    _write_config(guard_home)
    assert _guard(guard_home, "up", "--no-tui").returncode == 0
    try:
        (guard_home / "guard.sock").rename(guard_home / "hidden.sock")
        result = _guard(guard_home, "kill", "--reason", "api gone")
        assert result.returncode == 0 and "SIGUSR1" in result.stdout
        (guard_home / "hidden.sock").rename(guard_home / "guard.sock")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            events = [e.event for e in read_entries(guard_home / "journal.db")]
            if any(isinstance(e, TradingStateChanged) and e.state is TradingState.HALTED for e in events):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the daemon did not halt on SIGUSR1")
    finally:
        _guard(guard_home, "down")


def test_sigterm_stops_gracefully_and_leaves_positions(guard_home: Path) -> None:
    """SIGTERM: the session ends cleanly (SessionEnded journaled) and the next start is not HALTED."""
    _write_config(guard_home)
    assert _guard(guard_home, "up", "--no-tui").returncode == 0
    assert _guard(guard_home, "down").returncode == 0
    events = [e.event for e in read_entries(guard_home / "journal.db")]
    assert isinstance(events[-1], SessionEnded)
    up = _guard(guard_home, "up", "--no-tui")
    try:
        assert "trading  ACTIVE" in up.stdout
    finally:
        _guard(guard_home, "down")


def test_second_daemon_on_same_state_refuses(guard_home: Path) -> None:
    """A lock keeps two daemons from ever sharing a state directory."""
    _write_config(guard_home)
    assert _guard(guard_home, "up", "--no-tui").returncode == 0
    try:
        second = _guard(guard_home, "daemon", timeout=30)
        assert second.returncode == 1 and "already running" in second.stderr
    finally:
        _guard(guard_home, "down")


def test_status_without_daemon_says_how_to_start(guard_home: Path) -> None:
    """`guard status` with no daemon gives a one-line hint, not a traceback."""
    _write_config(guard_home)
    result = _guard(guard_home, "status")
    assert result.returncode == 1
    assert "guard up" in result.stderr and "Traceback" not in result.stderr
