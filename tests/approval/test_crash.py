"""A session SIGKILLed at random moments loses no committed decision, sends nothing twice or unapproved,
keeps its hash chain, and restarts HALTED with exactly the state its journal describes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.approval.crash import crash_once

RUNS = 25


@pytest.mark.parametrize("seed", range(RUNS))
def test_sigkill_at_random_point_then_restart_is_consistent(tmp_path: Path, seed: int) -> None:
    """Kill -9 mid-session, restart: every invariant holds and the rebuilt state equals a replay."""
    outcome = crash_once(tmp_path, seed)
    assert outcome.violations == ()
    assert outcome.events > 5
