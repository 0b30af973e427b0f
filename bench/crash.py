"""Crash safety: a busy session SIGKILLed at a random moment, then restarted on its journal (see
tests/approval/crash.py). Counts acknowledged decisions lost, unapproved or duplicate orders, broken chains,
and restarts whose rebuilt state differs from a replay of the journal. Then a guard SIGKILLed at a random moment
0-50 ms after its kill switch was pulled, with positions and resting stops open (tests/approval/kill_crash.py):
the restart must finish the kill (flat, nothing open) and accept a re-arm afterwards."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def run(quick: bool = False) -> Iterable[dict[str, Any]]:
    yield from _busy_sessions(20 if quick else 200, quick)
    yield from _interrupted_kills(20 if quick else 200, quick)


def _busy_sessions(runs: int, quick: bool) -> Iterable[dict[str, Any]]:
    from tests.approval.crash import crash_once

    violations: list[str] = []
    acknowledged = 0
    events = 0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(runs):
            outcome = crash_once(Path(tmp), 10_000 + seed)
            acknowledged += outcome.acknowledged
            events += outcome.events
            violations += [f"run {seed}: {v}" for v in outcome.violations]
    yield {
        "figure": "SIGKILL crash runs",
        "value": runs,
        "unit": "runs",
        "target": ">= 200",
        "met": runs >= 200 if not quick else None,
        "note": f"{acknowledged} acknowledged decisions and {events} journaled events across all runs",
    }
    yield {
        "figure": "crash violations",
        "value": len(violations),
        "unit": "violations",
        "target": "0",
        "met": not violations,
        "note": "; ".join(violations[:3]) or "none",
    }


def _interrupted_kills(runs: int, quick: bool) -> Iterable[dict[str, Any]]:
    from tests.approval.kill_crash import kill_crash_once

    violations: list[str] = []
    told = journaled = resumed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(runs):
            outcome = kill_crash_once(Path(tmp), 40_000 + seed)
            told += outcome.told_halted
            journaled += outcome.kill_journaled
            resumed += outcome.resumed
            violations += [f"run {seed}: {v}" for v in outcome.violations]
    left_open = sum("left" in v or "still" in v or "did not complete" in v for v in violations)
    refused = sum("re-arm refused" in v for v in violations)
    yield {
        "figure": "SIGKILL 0-50 ms after a kill, then restart",
        "value": runs,
        "unit": "runs",
        "target": ">= 200",
        "met": runs >= 200 if not quick else None,
        "note": (
            f"the operator had been told HALTED in {told}; the kill was journaled in {journaled}; the restart found it "
            f"unfinished and completed it in {resumed}; in {runs - journaled} the process died before the kill was "
            "durable (nobody was told HALTED) and the kill was sent again to the restarted guard"
        ),
    }
    yield {
        "figure": "runs left with a position or open order after the restart reported the kill completed",
        "value": left_open,
        "unit": "runs",
        "target": "0",
        "met": left_open == 0,
    }
    yield {
        "figure": "runs where RE-ARM was refused after the kill completed",
        "value": refused,
        "unit": "runs",
        "target": "0",
        "met": refused == 0,
    }
    yield {
        "figure": "interrupted-kill violations (any)",
        "value": len(violations),
        "unit": "violations",
        "target": "0",
        "met": not violations,
        "note": "; ".join(violations[:3]) or "none",
    }
