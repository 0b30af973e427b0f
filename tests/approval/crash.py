"""Crash a real session with SIGKILL at a random moment, restart it, and check what survived.

Shared by tests/approval/test_crash.py (25 runs) and `python -m bench crash` (200 runs).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from guard.approval.state import GuardState
from guard.domain import DecisionKind, TradingState
from guard.events import DecisionRecorded
from guard.journal.audit import JournalAuditor
from guard.journal.chain import read_entries, verify
from tests.builders import START_PRICES, make_desk

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class CrashOutcome:
    acknowledged: int
    events: int
    violations: tuple[str, ...]


def crash_once(workdir: Path, seed: int) -> CrashOutcome:
    """Run a session, SIGKILL it after a random delay, restart on its journal, and audit everything."""
    rng = random.Random(seed)
    path = workdir / f"crash-{seed}.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.approval.crash_session", str(path), str(seed)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    ready = proc.stdout.readline()
    if ready.strip() != "READY":
        proc.kill()
        return CrashOutcome(0, 0, (f"session did not start: {ready!r}",))
    time.sleep(rng.uniform(0.05, 0.6))
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    acks = [line.split() for line in out.splitlines() if line.startswith("ACK ")]
    return audit_after_crash(path, acks)


def audit_after_crash(path: Path, acks: list[list[str]]) -> CrashOutcome:
    violations: list[str] = []
    report = verify(path)
    if not report.ok:
        violations.append(f"journal chain broken: {report.problem}")
    events = [e.event for e in read_entries(path)]
    decided = {(e.proposal_id, e.kind) for e in events if isinstance(e, DecisionRecorded)}
    kinds = {"approve": DecisionKind.APPROVE, "override": DecisionKind.OVERRIDE, "reject": DecisionKind.REJECT}
    for _, command, pid in acks:
        if command in kinds and (pid, kinds[command]) not in decided:
            violations.append(f"acknowledged {command} of {pid} is not in the journal")
    try:
        JournalAuditor(conservative_leverage=__import__("decimal").Decimal(3)).feed(events)
    except AssertionError as e:
        violations.append(f"invariant broken before restart: {e}")
    violations += asyncio.run(_restart_and_compare(path))
    return CrashOutcome(len(acks), len(events), tuple(violations))


async def _restart_and_compare(path: Path) -> list[str]:
    problems = []
    desk = await make_desk(path, marks=START_PRICES)
    try:
        if desk.state.trading_state is not TradingState.HALTED:
            problems.append(f"restarted {desk.state.trading_state}, not HALTED")
        replayed = GuardState(desk.specs)
        for entry in read_entries(path):
            replayed.apply(entry.event)
        if replayed.snapshot() != desk.state.snapshot():
            problems.append("state rebuilt at restart differs from a replay of the journal")
        if desk.broker.account.snapshot() != desk.state.account.snapshot():
            problems.append("paper venue books differ from the journal's after restart")
        if desk.state.orders_in_doubt():
            problems.append("orders left in doubt after recovery")
        try:
            JournalAuditor().feed([e.event for e in read_entries(path)])
        except AssertionError as e:
            problems.append(f"invariant broken after restart: {e}")
        desk.state.account.check()
    finally:
        desk.journal.close()
    return problems
