"""Pacing toward the venue: reconnect backoff with jitter, and a shared Retry-After gate.

Rate limits are per IP, so when the venue answers 429 (or 418) with Retry-After, every
stream and request of the feed waits, not just the one that was refused.
"""

from __future__ import annotations

import asyncio
import random

from guard.clock import Clock


class RateGate:
    """Closed while the venue has asked us to wait; everyone awaits `wait()` before calling it."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._open_at = 0.0
        self.closures = 0

    def close_for(self, seconds: float) -> None:
        """Keep the gate closed for at least `seconds` more."""
        open_at = self._clock.monotonic() + seconds
        if open_at > self._open_at:
            self._open_at = open_at
            self.closures += 1

    def remaining(self) -> float:
        """Seconds until the gate opens (0 when open)."""
        return max(0.0, self._open_at - self._clock.monotonic())

    async def wait(self) -> None:
        """Return once the venue lets us in again (at once when it already does)."""
        # Sleeping until a known instant, not polling a flag; the loop re-checks because
        # the gate may have been pushed further out meanwhile.
        while (left := self.remaining()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(left)


class Backoff:
    """Exponential backoff with "equal jitter": half the delay fixed, half random.

    Args:
        initial: first delay in seconds.
        maximum: the delay never exceeds this (the config's max_reconnect_delay_seconds).
        floor: the delay is never below this (the venue's rateLimit between requests).
        rng: the jitter's source (a private `random.Random`, seedable in tests).
    """

    def __init__(self, initial: float, maximum: float, floor: float, rng: random.Random) -> None:
        self._initial = initial
        self._maximum = maximum
        self._floor = floor
        self._rng = rng
        self.attempts = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; each call doubles the ceiling."""
        ceiling = min(self._maximum, self._initial * (2.0 ** min(self.attempts, 30)))
        self.attempts += 1
        delay = ceiling / 2 + self._rng.uniform(0, ceiling / 2)
        return min(self._maximum, max(self._floor, delay))

    def reset(self) -> None:
        """Start over from the first delay (after a success)."""
        self.attempts = 0
