"""The safety invariants under random sessions: the hypothesis state machine of tests/approval/machine.py, run
far longer than the test suite runs it. Every example is a fresh journal; every step is checked."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from guard.logs import configure


def run(quick: bool = False) -> Iterable[dict[str, Any]]:
    from tests.approval.machine import GuardMachine

    configure(level="error")
    examples = 500 if quick else 10_000
    ran = {"n": 0}

    class Counted(GuardMachine):
        def __init__(self) -> None:
            super().__init__()
            ran["n"] += 1

    started = time.monotonic()
    violations = 0
    failure = ""
    try:
        run_state_machine_as_test(
            Counted,
            settings=settings(
                max_examples=examples,
                stateful_step_count=25,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
    except AssertionError as e:  # hypothesis has shrunk it to a minimal failing session
        violations = 1
        failure = str(e).splitlines()[0][:200]
    elapsed = time.monotonic() - started
    yield {
        "figure": "invariant state machine: examples run",
        "value": ran["n"],
        "unit": "examples",
        "target": ">= 10,000",
        "met": ran["n"] >= 10_000 if not quick else None,
        "note": f"{ran['n']} random sessions of up to 25 steps in {elapsed:.0f} s; invariants 1, 2, 3, 4, 8, 9 "
        "checked after every step",
    }
    yield {
        "figure": "invariant state machine: violations",
        "value": violations,
        "unit": "violations",
        "target": "0",
        "met": violations == 0,
        "note": failure or "none",
    }
