"""Restart reconciliation: a process SIGKILLed between sending an order and recording the answer."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from guard.domain import OrderStatus, TradingState
from guard.events import OrderAccepted, OrderSubmitted
from guard.exchanges import SIM_API_KEY
from guard.journal.chain import read_entries
from guard.sim.private_faults import PrivateFault
from tests.api.support import wait_until
from tests.broker.sandbox_support import SLOW_ANSWERS, sandbox_desk, simulated_exchange

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("fault", "hold"),
    [
        (PrivateFault.TIMEOUT_AFTER_ACCEPT, 30.0),
        (PrivateFault.TIMEOUT_BEFORE_ACCEPT, 1.5),
    ],
    ids=["accepted-then-killed", "killed-then-accepted-late"],
)
async def test_sandbox_sigkill_between_send_and_record_restart_finds_order_once(
    tmp_path: Path, fault: PrivateFault, hold: float
) -> None:
    """SIGKILL while the venue holds the answer; the restart looks the order up (waiting out its recvWindow when the
    venue takes it late), records it from the venue, and never sends it again."""
    path = tmp_path / "journal.db"
    async with simulated_exchange() as sim:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.broker.sandbox_session",
            str(path),
            sim.url,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            ready = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().split()
            assert ready[:1] == ["READY"], ready
            cid = f"g{ready[1]}-R1"
            sim.private.inject(fault, cid, hold_seconds=hold)
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
            await wait_until(lambda: bool(sim.private.stats.faults_fired), within=20, every=0.005)  # at the venue
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        accepted_before_restart = sim.private.books.orders_created(SIM_API_KEY, cid)
        assert accepted_before_restart == (1 if fault is PrivateFault.TIMEOUT_AFTER_ACCEPT else 0)
        events = [e.event for e in read_entries(path)]
        assert [e.request.client_order_id for e in events if isinstance(e, OrderSubmitted)] == [cid]
        assert not any(isinstance(e, OrderAccepted) for e in events)  # died before recording any answer

        async with sandbox_desk(path, sim, settings=SLOW_ANSWERS) as desk:
            record = desk.state.orders[cid]
            assert record.status is OrderStatus.FILLED
            assert record.filled == record.request.qty
            assert desk.state.trading_state is TradingState.HALTED  # unclean exit: review, then re-arm
            venue = sim.private.account(SIM_API_KEY).positions
            assert set(desk.state.account.positions) == {record.request.symbol}
            assert [p.qty for p in venue.values() if p.qty] == [record.filled]
        assert sim.private.books.orders_created(SIM_API_KEY, cid) == 1
        events = [e.event for e in read_entries(path)]
        assert len([e for e in events if isinstance(e, OrderSubmitted)]) == 1
