"""Random sessions of proposals, decisions, price moves, fills, liquidations, kills, re-arms and restarts:
the safety invariants hold after every step."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from tests.approval.machine import GuardMachine

TestInvariants = GuardMachine.TestCase
TestInvariants.settings = settings(
    max_examples=1000,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
