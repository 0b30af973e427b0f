"""Random sessions of proposals, decisions, price moves, fills, liquidations, kills, re-arms and restarts:
the safety invariants hold after every step."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.approval.machine import GuardMachine

EXAMPLES = 1000


@pytest.mark.timeout(900)  # a thousand sessions, each on its own SQLite file: minutes on a busy disk
def test_invariants_hold_after_every_step_of_a_thousand_random_sessions() -> None:
    """The journal auditor checks invariants 1, 2, 3, 4, 8 and 9 after every step (a violation fails the run,
    shrunk to a minimal session); at least a thousand sessions must have run."""
    sessions = 0

    class Counted(GuardMachine):
        def __init__(self) -> None:
            nonlocal sessions
            super().__init__()
            sessions += 1

    run_state_machine_as_test(
        Counted,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    assert sessions >= EXAMPLES
