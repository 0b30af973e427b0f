"""The daemon on a sandbox venue, in its own process: killed with working orders, and what its logs and journal hold.

One scenario runs once for the module: the simulated exchange in this process, `guard daemon` in a child with the
sandbox broker and API keys in its environment, two resting orders approved through the control API (one of them
through an injected 5xx and failing lookups, so error paths log and journal venue answers), then SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from guard.api.client import ApiClient
from guard.api.protocol import Approve, Propose
from guard.config import load_config
from guard.domain import Side
from guard.journal.chain import read_entries
from guard.paths import StatePaths
from guard.sim.books import SimOrder
from guard.sim.private import DeadmanFired
from guard.sim.private_faults import PrivateFault
from tests.api.support import wait_until
from tests.broker.sandbox_support import BTC, ETH, simulated_exchange

ROOT = Path(__file__).resolve().parents[2]
KEY = "DEMOKEY-5f0c2a9e7b3d41c8a6e2"
SECRET = "DEMOSECRET-c93e1b7a5d2f48e6b0a4"
COUNTDOWN = 2.0


@dataclass(frozen=True)
class DaemonRun:
    killed_at_ms: int
    fired: tuple[DeadmanFired, ...]
    orders: tuple[SimOrder, ...]
    logs: str
    journal_bytes: bytes
    journal_text: str


async def _approve_resting(client: ApiClient, symbol: str, price: Decimal) -> str:
    """Propose and approve a limit buy far below the market; returns the proposal id."""
    async with asyncio.timeout(60):
        while True:  # the daemon needs a first price from its feed before it takes a proposal
            # A fresh id each try: a repeated id would get its first answer again (invariant 13).
            command_id = f"p-{uuid.uuid4().hex[:8]}"
            propose = Propose(command_id, symbol, Side.BUY, _size(symbol), Decimal(2), limit_price=price)
            reply = await client.command(propose, "ops")
            if reply.ok:
                break
            assert "price" in reply.reason or "market data" in reply.reason, reply.reason
            await asyncio.sleep(0.2)
    pid = str(reply.data["proposal_id"])
    approved = await client.command(Approve(f"a-{pid}", pid, int(reply.data["version"])), "ops")
    assert approved.ok or "UNKNOWN" in approved.reason or "SUBMITTED" in approved.reason, approved.reason
    return pid


def _size(symbol: str) -> Decimal:
    return Decimal("0.002") if symbol == BTC else Decimal("0.05")


def _config(home: Path, sim_url: str) -> Path:
    path = home / "config.toml"
    path.write_text(
        f'[guard]\nstate_dir = "{home}"\n'
        f'[exchange]\nid = "sim"\nsymbols = ["{BTC}", "{ETH}"]\nbroker = "sandbox"\ntimeout_seconds = 1.0\n'
        f"recv_window_seconds = 1.0\norder_lookups = 3\ndeadman_seconds = {COUNTDOWN}\nreconcile_seconds = 0.5\n"
        f'[sim]\nurl = "{sim_url}"\n[model]\nenabled = false\n[feed]\nstale_after_seconds = 60.0\n'
        '[log]\nlevel = "debug"\nformat = "json"\n'
    )
    return path


async def _scenario(home: Path) -> DaemonRun:
    async with simulated_exchange() as sim:
        sim.private.register(KEY, SECRET)
        config = _config(home, sim.url)
        env = {k: v for k, v in os.environ.items() if k != "GUARD_HOME"}
        env.update(GUARD_SANDBOX_API_KEY=KEY, GUARD_SANDBOX_API_SECRET=SECRET, PYTHONUNBUFFERED="1")
        log_path = home / "daemon.log"
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "guard",
            "--config",
            str(config),
            "daemon",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert proc.stdout is not None
        logs = asyncio.ensure_future(proc.stdout.read())
        account = sim.private.account(KEY)
        try:
            client = ApiClient(load_config(config).api, StatePaths(home), timeout=10.0)
            # Up once the venue's dead-man switch is armed on both symbols.
            await wait_until(lambda: len({j for key, j in sim.private.countdowns if key == KEY}) == 2, within=60)
            now = sim.market.sync()
            prices = {s: Decimal(str(sim.market.mark(j, now)[0])) for j, s in enumerate(sim.market.symbols)}
            await _approve_resting(client, BTC, (prices[BTC] * Decimal("0.9")).quantize(Decimal("0.1")))
            # The second order meets a 5xx after the venue took it, and lookups that fail for a while.
            sim.private.inject(PrivateFault.ERROR_AFTER_ACCEPT)
            sim.private.inject(PrivateFault.LOOKUP_ERRORS, count=4)
            await _approve_resting(client, ETH, (prices[ETH] * Decimal("0.9")).quantize(Decimal("0.01")))
            await wait_until(lambda: len(account.open_orders(algo=False)) == 2, within=20)
            killed_at_ms = int(time.time() * 1000)
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            await wait_until(lambda: not account.open_orders(algo=False), within=COUNTDOWN + 5, every=0.01)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        text = (await logs).decode()
        await asyncio.to_thread(log_path.write_text, text)
        events = [e.event for e in read_entries(home / "journal.db")]
        journal = await asyncio.to_thread(lambda: b"".join(p.read_bytes() for p in home.glob("journal.db*")))
        return DaemonRun(
            killed_at_ms=killed_at_ms,
            fired=tuple(f for f in sim.private.stats.deadman_fired if f.api_key == KEY),
            orders=tuple(account.orders.values()),
            logs=text,
            journal_bytes=journal,
            journal_text=json.dumps([repr(e) for e in events]),
        )


@pytest.fixture(scope="module")
def killed_daemon(tmp_path_factory: pytest.TempPathFactory) -> DaemonRun:
    home = tmp_path_factory.mktemp("sandbox-daemon")
    return asyncio.run(_scenario(home))


def test_daemon_sigkilled_with_working_orders_venue_deadman_cancels_them_in_time(killed_daemon: DaemonRun) -> None:
    """After SIGKILL the venue's own dead-man switch cancels the daemon's working orders within its countdown + 1 s."""
    run = killed_daemon
    assert {f.symbol for f in run.fired} == {BTC, ETH}
    assert sum(f.cancelled for f in run.fired) == 2
    assert all(o.status == "CANCELED" for o in run.orders if o.kind == "LIMIT")
    latest = max(f.at_ms for f in run.fired)
    assert latest - run.killed_at_ms <= (COUNTDOWN + 1) * 1000


def test_daemon_sandbox_keys_in_environment_never_reach_a_log_line_or_the_journal(killed_daemon: DaemonRun) -> None:
    """The API key and secret from the environment appear in no log line and no journal event, error paths included."""
    run = killed_daemon
    assert "order_outcome_ambiguous" in run.logs and "sandbox_broker_connected" in run.logs
    assert "OrderSubmitted" in run.journal_text
    for secret in (KEY, SECRET):
        assert secret not in run.logs
        assert secret not in run.journal_text
        assert secret.encode() not in run.journal_bytes
