"""Crash safety: a busy session SIGKILLed at a random moment, then restarted on its journal (see
tests/approval/crash.py). Counts acknowledged decisions lost, unapproved or duplicate orders, broken chains,
and restarts whose rebuilt state differs from a replay of the journal."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def run(quick: bool = False) -> Iterable[dict[str, Any]]:
    from tests.approval.crash import crash_once

    runs = 20 if quick else 200
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
