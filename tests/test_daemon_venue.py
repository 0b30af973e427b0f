"""A daemon on its embedded sandbox venue, killed with SIGKILL: the venue's positions survive with the journal's."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from guard.api.client import ApiClient
from guard.api.protocol import Approve, Propose, Snapshot
from guard.config import load_config
from guard.domain import Side, TradingState

ROOT = Path(__file__).resolve().parents[1]
BTC = "BTC/USDT:USDT"


def _guard(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GUARD_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "guard", "--config", str(home / "config.toml"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=90,
    )


async def _open_position(client: ApiClient) -> None:
    reply = await client.command(Propose("p", BTC, Side.BUY, Decimal("0.01"), Decimal("2")), "alice")
    assert reply.ok, reply.reason
    pid = reply.data["proposal_id"]
    approved = await client.command(Approve("a", pid, 1), "alice")
    assert approved.ok, approved.reason


async def _settled(client: ApiClient) -> Snapshot:
    """The snapshot once the restarted daemon's venue watch has had a few rounds to compare."""
    await asyncio.sleep(3.0)  # exchange.reconcile_seconds is 1 s here: a difference is confirmed on its second round
    return await client.snapshot()


def test_venue_sigkill_keeps_the_embedded_venues_positions_no_phantom(guard_home: Path) -> None:
    """A position opened on the embedded sandbox venue, then kill -9 and `guard up`: the venue still holds it, the
    journal agrees, and nothing reports a difference (before, the venue came back empty: a phantom position)."""
    (guard_home / "config.toml").write_text(
        '[model]\nenabled = false\n[sim]\nspeed = 60.0\n[exchange]\nbroker = "sandbox"\nreconcile_seconds = 1.0\n'
    )
    assert _guard(guard_home, "up", "--no-tui").returncode == 0
    client = ApiClient.from_config(load_config(guard_home / "config.toml"))
    try:
        asyncio.run(_open_position(client))
        os.kill(int((guard_home / "daemon.pid").read_text()), signal.SIGKILL)
        time.sleep(0.5)
        up = _guard(guard_home, "up", "--no-tui")
        assert up.returncode == 0, up.stderr
        snapshot = asyncio.run(_settled(client))
    finally:
        _guard(guard_home, "down")
    (held,) = snapshot.positions
    assert (held.position.symbol, held.position.qty) == (BTC, Decimal("0.010"))
    assert snapshot.status.trading_state is TradingState.HALTED and "unclean exit" in snapshot.status.state_reason
    assert not [a for a in snapshot.alerts if a.kind == "venue"], snapshot.alerts
