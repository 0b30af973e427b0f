"""Time, as a port: the system clock in production, a clock tests and replay move by hand."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock time in milliseconds since the Unix epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never go backwards (for measuring latency)."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


class TestClock:
    """A clock that moves only when told to: tests, replay and drills own time."""

    __test__ = False  # not a pytest test class

    def __init__(self, start_ms: int = 1_767_225_600_000) -> None:  # 2026-01-01T00:00:00Z
        self._now_ms = start_ms
        self._start_ms = start_ms

    def now_ms(self) -> int:
        return self._now_ms

    def monotonic(self) -> float:
        return (self._now_ms - self._start_ms) / 1000.0

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now_ms += round(seconds * 1000)

    def set(self, now_ms: int) -> None:
        if now_ms < self._now_ms:
            raise ValueError("a clock does not go backwards")
        self._now_ms = now_ms
