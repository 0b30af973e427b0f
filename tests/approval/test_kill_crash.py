"""A kill interrupted by a crash is finished by the restart (invariant 11): SIGKILL 0-50 ms after the kill,
restart, and the kill completes: flat, nothing open, and re-arm accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.approval.kill_crash import deadman_crash_once, kill_crash_once

RUNS = 8


@pytest.mark.parametrize("seed", range(RUNS))
def test_sigkill_during_a_kill_then_restart_finishes_the_kill(tmp_path: Path, seed: int) -> None:
    """Kill -9 within 50 ms of the kill switch, restart: the kill ends flat and re-arm is accepted."""
    outcome = kill_crash_once(tmp_path, 20_000 + seed)
    assert outcome.violations == ()


@pytest.mark.parametrize("seed", range(4))
def test_sigkill_while_the_deadman_switch_flattens_then_restart_flattens(tmp_path: Path, seed: int) -> None:
    """Kill -9 within 20 ms of the dead-man switch's flatten, restart: the policy is applied and the book is flat."""
    assert deadman_crash_once(tmp_path, 50_000 + seed) == ()
