"""Reconnect pacing: exponential backoff with jitter, bounded, and the shared Retry-After gate."""

from __future__ import annotations

import random

from guard.clock import TestClock
from guard.feed.pacing import Backoff, RateGate


def test_backoff_doubles_with_jitter_within_bounds() -> None:
    """Each delay lies in [ceiling/2, ceiling], the ceiling doubles, and never exceeds the maximum."""
    backoff = Backoff(initial=0.5, maximum=8.0, floor=0.05, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    for attempt, delay in enumerate(delays):
        ceiling = min(8.0, 0.5 * 2**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == len(delays)  # jittered, not lock-step
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_backoff_respects_rate_limit_floor() -> None:
    """The delay is never shorter than the venue's minimum spacing between requests."""
    backoff = Backoff(initial=0.001, maximum=1.0, floor=0.05, rng=random.Random(2))
    assert backoff.next_delay() == 0.05


def test_rate_gate_closes_for_longest_retry_after() -> None:
    """The gate stays closed for the longest Retry-After it was given, and opens as time passes."""
    clock = TestClock()
    gate = RateGate(clock)
    assert gate.remaining() == 0.0
    gate.close_for(2.0)
    gate.close_for(1.0)
    assert gate.remaining() == 2.0
    clock.advance(1.5)
    assert gate.remaining() == 0.5
    clock.advance(0.5)
    assert gate.remaining() == 0.0
