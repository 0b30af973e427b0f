"""A daemon whose state directory sits on a real filesystem that fills up: it stays up, HALTED with the reason on
the API, the market pump and every other task keep running, the kill still flattens, and once space returns the
meanwhile is journaled and trading waits for a person to re-arm."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from guard.api.client import ApiClient
from guard.api.protocol import Approve, Kill, Propose, Rearm
from guard.approval.desk import REARM_PHRASE
from guard.daemon import running
from guard.domain import Side, TradingState
from guard.events import JournalFailed, JournalRecovered, KillCompleted
from guard.journal.chain import read_entries, verify
from tests.api.support import wait_until
from tests.builders import daemon_config

FILESYSTEM_BYTES = 8 * 1024 * 1024


@contextlib.contextmanager
def small_filesystem(where: Path) -> Iterator[Path]:
    """A real 8 MB tmpfs mounted for the test (needs root; skipped where the machine does not allow it)."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={FILESYSTEM_BYTES}", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(path: Path) -> None:
    """Write until the filesystem says no space is left."""
    with open(path, "wb") as f:
        chunk = b"\0" * 65536
        with contextlib.suppress(OSError):
            while True:
                f.write(chunk)
                f.flush()
                os.fsync(f.fileno())


async def test_daemon_stays_up_through_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Full filesystem: HALTED 'journal failing', commands refused, kill flattens, space back + re-arm resumes."""
    with small_filesystem(tmp_path / "small") as mount:
        home = mount / "home"
        monkeypatch.setenv("GUARD_HOME", str(home))
        config = daemon_config(sim={"speed": 240.0})
        client = ApiClient.from_config(config)
        async with running(config) as daemon:
            desk = daemon.desk
            assert desk is not None
            await wait_until(lambda: "BTC/USDT:USDT" in desk.marks)
            propose = Propose("p", "BTC/USDT:USDT", Side.BUY, Decimal("0.01"), Decimal(2))
            proposed = await client.command(propose, "alice")
            assert proposed.ok, proposed.reason
            approved = await client.command(Approve("a", proposed.data["proposal_id"], 1), "alice")
            assert approved.ok, approved.reason
            assert desk.state.account.positions

            filler = mount / "filler"
            fill(filler)
            # Closed bars arrive four times a second: one of their writes finds the disk full.
            await wait_until(lambda: desk.state.trading_state is TradingState.HALTED, within=20)
            status = (await client.snapshot()).status
            assert status.trading_state is TradingState.HALTED and "journal failing" in status.state_reason
            refused = await client.command(Rearm("r0", REARM_PHRASE), "alice")
            assert not refused.ok and "journal is failing" in refused.reason

            killed = await client.command(Kill("k", "disk full"), "alice")
            assert killed.ok
            await wait_until(lambda: not desk.state.account.positions and not desk.state.kill_in_progress)
            # The market pump survived the failed writes: prices still move.
            marks = dict(desk.marks)
            await wait_until(lambda: desk.marks != marks, within=20)

            filler.unlink()
            await wait_until(lambda: desk.journal.failing is None, within=20)
            await wait_until(lambda: "writes again" in desk.state.state_reason)
            assert (await client.snapshot()).status.trading_state is TradingState.HALTED
            rearmed = await client.command(Rearm("r1", REARM_PHRASE, "space freed"), "alice")
            assert rearmed.ok, rearmed.reason
            journal = daemon.paths.journal
        assert verify(journal).ok
        events = [e.event for e in read_entries(journal)]
        order = [type(e) for e in events if isinstance(e, (JournalFailed, KillCompleted, JournalRecovered))]
        assert order[:3] == [JournalFailed, KillCompleted, JournalRecovered]
