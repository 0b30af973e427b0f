"""Feed health on a test clock: stale after the threshold, every condition clears by itself."""

from __future__ import annotations

from guard.clock import TestClock
from guard.domain import FeedHealth
from guard.feed.health import HealthBoard
from guard.feed.pacing import RateGate

SYM = "BTC/USDT:USDT"


def _board(clock: TestClock, gate: RateGate | None = None) -> tuple[HealthBoard, list[FeedHealth]]:
    seen: list[FeedHealth] = []
    board = HealthBoard([SYM], clock, stale_after=5.0, hold=2.0, rate_limited=(gate or RateGate(clock)).remaining)
    board.add_listener(seen.append)
    return board, seen


def test_health_stale_after_threshold_then_clears_on_event() -> None:
    """No event for longer than stale_after makes the symbol stale; the next event clears it."""
    clock = TestClock()
    board, seen = _board(clock)
    board.event(SYM)
    clock.advance(4.9)
    board.check()
    assert board.snapshot(SYM).healthy
    clock.advance(0.2)
    board.check()
    assert seen[-1].reason == "stale: no data for 5.1 s" and not seen[-1].healthy
    board.event(SYM)
    assert seen[-1].healthy and seen[-1].last_event_age_seconds == 0.0


def test_health_refusal_holds_then_expires() -> None:
    """A refused event keeps the symbol unhealthy for the hold time, counted, then it clears."""
    clock = TestClock()
    board, seen = _board(clock)
    board.event(SYM)
    board.rejected(SYM, "nan price")
    assert seen[-1].reason == "invalid data: nan price" and seen[-1].rejected == 1
    clock.advance(2.5)
    board.event(SYM)
    assert board.snapshot(SYM).healthy


def test_health_precedence_stale_rate_limit_stream_gap() -> None:
    """Stale wins over rate limiting, which wins over a failing stream, which wins over a gap."""
    clock = TestClock()
    gate = RateGate(clock)
    board, _ = _board(clock, gate)
    board.event(SYM)
    board.gap_found(SYM, 12, "trades")
    assert board.snapshot(SYM).reason == "gap in trades: 12 missing, backfilling"
    board.stream_failed(SYM, "trades", "disconnected")
    assert board.snapshot(SYM).reason == "disconnected (trades)"
    gate.close_for(3.0)
    assert board.snapshot(SYM).reason == "rate limited: retry in 3.0 s"
    clock.advance(6.0)
    assert board.snapshot(SYM).reason.startswith("stale")
    board.event(SYM)
    board.stream_ok(SYM, "trades")
    board.gap_closed(SYM, 12, 0, "trades")
    assert board.snapshot(SYM).healthy and board.snapshot(SYM).gaps == 1


def test_health_unrecovered_gap_reported_then_clears() -> None:
    """A gap that could not be filled is reported for the hold time."""
    clock = TestClock()
    board, _ = _board(clock)
    board.event(SYM)
    board.gap_found(SYM, 5, "bars")
    board.gap_closed(SYM, 5, 5, "bars")
    assert board.snapshot(SYM).reason == "gap in bars: 5 unrecovered"
    clock.advance(2.1)
    board.event(SYM)
    assert board.snapshot(SYM).healthy


async def test_health_wait_until_wakes_on_change() -> None:
    """wait_until returns as soon as a change makes the predicate true."""
    clock = TestClock()
    board, _ = _board(clock)
    board.event(SYM)
    board.rejected(SYM, "crossed book")
    health = await board.wait_until(lambda h: h[SYM].rejected == 1, 1.0)
    assert not health[SYM].healthy
