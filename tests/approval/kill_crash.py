"""SIGKILL a guard at a random moment 0-50 ms after its kill switch was pulled, restart it on its journal, and
check that the restart finishes the kill: flat, nothing open, KillCompleted on record, re-arm accepted.

Shared by tests/approval/test_kill_crash.py (a few runs) and `python -m bench crash` (200 runs).
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

from guard.approval.desk import REARM_PHRASE
from guard.events import KillCompleted, KillRequested, OperatorPresenceLost
from guard.journal.audit import JournalAuditor
from guard.journal.chain import read_entries, verify
from tests.builders import START_PRICES, make_desk

ROOT = Path(__file__).resolve().parents[2]
RESUME_ATTEMPTS = 20


@dataclass(frozen=True)
class KillCrashOutcome:
    told_halted: bool
    """The session said HALTED (the halt was durably journaled) before it died."""
    kill_journaled: bool
    resumed: bool
    """The restart found the kill unfinished and finished it."""
    violations: tuple[str, ...]


def kill_crash_once(workdir: Path, seed: int) -> KillCrashOutcome:
    rng = random.Random(seed)
    path = workdir / f"kill-crash-{seed}.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.approval.kill_crash_session", str(path), str(seed)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "KILLING":
        proc.kill()
        proc.wait()
        return KillCrashOutcome(False, False, False, (f"session did not reach its kill: {line!r}",))
    time.sleep(rng.uniform(0.0, 0.05))
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    told_halted = "HALTED" in out.split()
    return asyncio.run(_restart_and_check(path, told_halted))


async def _restart_and_check(path: Path, told_halted: bool) -> KillCrashOutcome:
    problems: list[str] = []
    report = verify(path)
    if not report.ok:
        problems.append(f"journal broken: {report.problem}")
    events = [e.event for e in read_entries(path)]
    kill_journaled = any(isinstance(e, KillRequested) for e in events)
    if told_halted and not kill_journaled:
        problems.append("the operator was told HALTED but the kill is not in the journal")
    desk = await make_desk(path, marks=dict(START_PRICES))
    resumed = desk.kill_unfinished
    try:
        if not kill_journaled:
            # Never acknowledged: the operator's client (`guard kill`) sends it again to the restarted guard.
            await desk.kill("crash", "kill re-sent after the restart")
        for _ in range(RESUME_ATTEMPTS):
            if not desk.kill_unfinished:
                break
            await desk.finish_interrupted_kill()
        if desk.kill_unfinished:
            problems.append("the restarted guard did not complete the kill")
        else:
            completed = [e for e in desk.journal.events() if isinstance(e, KillCompleted)]
            if not completed or not completed[-1].flat:
                problems.append(f"the last KillCompleted is not flat: {completed[-1:]}")
            if desk.state.account.positions:
                problems.append(f"positions left after the kill completed: {sorted(desk.state.account.positions)}")
            if await desk.broker.positions():
                problems.append("the paper venue still holds positions after the kill completed")
            if desk.state.open_orders() or await desk.broker.open_orders():
                problems.append("orders still open after the kill completed")
            rearm = await desk.rearm("crash", REARM_PHRASE)
            if not rearm.ok:
                problems.append(f"re-arm refused after the kill completed: {rearm.reason}")
        try:
            JournalAuditor().feed(desk.journal.events())
        except AssertionError as e:
            problems.append(f"invariant broken: {e}")
    finally:
        desk.journal.close()
    return KillCrashOutcome(told_halted, kill_journaled, resumed, tuple(problems))


def deadman_crash_once(workdir: Path, seed: int) -> tuple[str, ...]:
    """SIGKILL 0-20 ms after the dead-man switch fired with the flatten policy; the restart must flatten."""
    rng = random.Random(seed)
    path = workdir / f"deadman-crash-{seed}.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.approval.kill_crash_session", str(path), str(seed), "deadman"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "DEADMAN":
        proc.kill()
        proc.wait()
        return (f"session did not reach the dead-man switch: {line!r}",)
    time.sleep(rng.uniform(0.0, 0.02))
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return asyncio.run(_restart_after_deadman(path))


async def _restart_after_deadman(path: Path) -> tuple[str, ...]:
    problems: list[str] = []
    desk = await make_desk(path, marks=dict(START_PRICES))
    try:
        policy_recorded = any(isinstance(e, OperatorPresenceLost) for e in desk.journal.events())
        await desk.finish_interrupted_deadman()
        if desk.deadman_unfinished:
            problems.append("the dead-man policy is still unfinished after the restart")
        if policy_recorded and desk.state.account.positions:
            problems.append(f"positions left after the flatten policy: {sorted(desk.state.account.positions)}")
    finally:
        desk.journal.close()
    return tuple(problems)
