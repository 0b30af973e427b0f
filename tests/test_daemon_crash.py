"""A real `guard daemon` SIGKILLed a few milliseconds after a kill over its API: the restarted daemon finishes
the kill before anything else (flat, nothing open, KillCompleted on record), and then accepts a re-arm."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from guard.api.client import ApiClient
from guard.api.protocol import Approve, Kill, Propose, Rearm
from guard.approval.desk import REARM_PHRASE
from guard.approval.state import GuardState
from guard.config import load_config
from guard.domain import Side
from guard.events import KillCompleted, KillRequested
from guard.journal.chain import read_entries, verify
from guard.markets import default_spec

REPO = Path(__file__).resolve().parents[1]


def _start(config: Path, home: Path) -> subprocess.Popen[bytes]:
    with open(home / "test-daemon.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "guard", "--config", str(config), "daemon", "--log-format", "json"],
            cwd=REPO,
            env={**os.environ, "GUARD_HOME": str(home)},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


async def _up(client: ApiClient, proc: subprocess.Popen[bytes]) -> None:
    async with asyncio.timeout(60):
        while await client.health() is None:
            assert proc.poll() is None, "the daemon exited while starting"
            await asyncio.sleep(0.1)


async def _open_positions(client: ApiClient) -> int:
    opened = 0
    for n, (symbol, qty) in enumerate((("BTC/USDT:USDT", "0.01"), ("ETH/USDT:USDT", "0.5"))):
        async with asyncio.timeout(30):
            while True:
                # A fresh id each try: a repeated id would get its first answer again (invariant 13).
                propose = Propose(f"p{n}-{uuid.uuid4().hex[:8]}", symbol, Side.BUY, Decimal(qty), Decimal(2))
                reply = await client.command(propose, "alice")
                if reply.ok:
                    break
                await asyncio.sleep(0.2)  # no market price yet
        approved = await client.command(Approve(f"a{n}", reply.data["proposal_id"], reply.data["version"]), "alice")
        assert approved.ok, approved.reason
        opened += 1
    return opened


@pytest.mark.parametrize("seed", range(2))
async def test_daemon_killed_mid_kill_finishes_the_kill_when_restarted(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kill over the API, SIGKILL 4-8 ms later, restart: the kill completes flat and re-arm is accepted."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("GUARD_HOME", str(home))
    config = tmp_path / "config.toml"
    config.write_text("[model]\nenabled = false\n\n[sim]\nspeed = 60.0\n", encoding="utf-8")
    client = ApiClient.from_config(load_config(config))
    proc = _start(config, home)
    try:
        await _up(client, proc)
        assert await _open_positions(client) == 2
        kill = asyncio.ensure_future(client.command(Kill("k1", "crash drill"), "alice"))
        await asyncio.sleep(random.Random(seed).uniform(0.004, 0.008))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        await asyncio.gather(kill, return_exceptions=True)

        restarted = _start(config, home)
        try:
            await _up(client, restarted)
            killed = any(isinstance(e.event, KillRequested) for e in read_entries(home / "journal.db"))
            if not killed:  # the kill never reached the journal: the operator was not told HALTED; send it again
                assert (await client.command(Kill("k2", "sent again"), "alice")).ok
            async with asyncio.timeout(30):
                while (snapshot := await client.snapshot()).status.kill_in_progress or snapshot.positions:  # noqa: ASYNC110 - polls another process
                    await asyncio.sleep(0.1)
            rearm = await client.command(Rearm("r1", REARM_PHRASE), "alice")
            assert rearm.ok, rearm.reason
        finally:
            restarted.send_signal(signal.SIGTERM)
            restarted.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    journal = home / "journal.db"
    assert verify(journal).ok
    state = GuardState({s: default_spec(s) for s in ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT")})
    for entry in read_entries(journal):
        state.apply(entry.event)
    assert not state.account.positions and not state.open_orders()
    completed = [e.event for e in read_entries(journal) if isinstance(e.event, KillCompleted)]
    assert completed and completed[-1].flat
