"""The live tracker: proposals scored at their horizon, and a broken model paused."""

from __future__ import annotations

import math
import random

import pytest

from guard.domain import Bar, Side, Signal
from guard.model.tracker import ClaimBucket, LiveTracker

BAR_MS = 60_000
BARRIER = 0.01
HORIZON_BARS = 10
CLAIMS = (ClaimBucket(0.55, 0.6, 500, 0.575, 0.57), ClaimBucket(0.6, 0.7, 400, 0.62, 0.62))


def _signal(t: int, side: Side, confidence: float = 0.62) -> Signal:
    return Signal(
        symbol="W/USDT:USDT",
        timestamp=t,
        price=100.0,
        probabilities=(0.25, 0.13, 0.62),
        side=side,
        confidence=confidence,
        novelty=0.3,
        novel=False,
        sigma=BARRIER / math.sqrt(HORIZON_BARS),
        horizon_seconds=HORIZON_BARS * 60,
        model_id="m",
        model_age_days=1.0,
        barrier=BARRIER,
        bar_seconds=60,
    )


def _bars(t: int, outcome: str) -> list[Bar]:
    """The bars after a proposal at t: the up or down barrier is touched in bar 3, or neither."""
    bars = []
    for j in range(HORIZON_BARS):
        high, low = 100.2, 99.8
        if j == 3 and outcome == "up":
            high = 100 * math.exp(BARRIER * 1.1)
        if j == 3 and outcome == "down":
            low = 100 * math.exp(-BARRIER * 1.1)
        bars.append(Bar("W/USDT:USDT", "1m", t + j * BAR_MS, 100.0, high, low, 100.0, 1.0))
    return bars


def _run(side: Side, proposals: int, seed: int) -> tuple[LiveTracker, int | None]:
    """A world where the buy side comes true 62 % of the time, as claimed; return when paused."""
    tracker = LiveTracker("m", CLAIMS)
    rng = random.Random(seed)
    for i in range(proposals):
        t = i * (HORIZON_BARS + 2) * BAR_MS
        tracker.record(_signal(t, side), proposal_id=f"p{i}")
        u = rng.random()
        outcome = "up" if u < 0.62 else "down" if u < 0.87 else "flat"
        for bar in _bars(t, outcome):
            tracker.on_bar(bar)
        if tracker.decision().pause:
            return tracker, i + 1
    return tracker, None


def test_tracker_inverted_model_is_paused_within_bounded_proposals() -> None:
    """A model that says the opposite of the truth, with the same confidence, is paused within 100 proposals."""
    tracker, paused_after = _run(Side.SELL, 1000, seed=1)
    assert paused_after is not None and paused_after <= 100
    reason = tracker.decision().reason
    assert reason.startswith("live record below its claim:") and "claimed 62%" in reason


def test_tracker_model_performing_as_claimed_is_not_paused() -> None:
    """The same world and claims, with the model on the right side, runs 1000 proposals unpaused."""
    tracker, paused_after = _run(Side.BUY, 1000, seed=1)
    assert paused_after is None
    report = tracker.report()
    assert report.scored == 1000 and report.pending == 0
    assert report.hit_rate == pytest.approx(0.62, abs=0.07)
    assert report.brier == pytest.approx(0.62 * 0.38**2 + 0.38 * 0.62**2, abs=0.03)


def test_tracker_report_sets_live_buckets_beside_claims() -> None:
    """The report shows each confidence bucket's live hit rate beside the card's claim."""
    tracker, _ = _run(Side.BUY, 50, seed=2)
    report = tracker.report()
    high = next(b for b in report.buckets if b.lo == 0.6)
    low = next(b for b in report.buckets if b.lo == 0.55)
    assert high.live_count == 50 and high.claimed_hit_rate == 0.62 and high.live_hit_rate is not None
    assert low.live_count == 0 and low.live_hit_rate is None
    assert report.claimed_brier == pytest.approx(0.62 * 0.38**2 + 0.38 * 0.62**2)


def test_tracker_scores_at_horizon_from_prices() -> None:
    """Trade prices settle a proposal too: a touch of the take-profit is a hit, the horizon a miss."""
    tracker = LiveTracker("m")
    tracker.record(_signal(0, Side.BUY), "win")
    tracker.record(_signal(0, Side.SELL), "lose")
    settled = tracker.on_price("W/USDT:USDT", 30_000, 100 * math.exp(BARRIER))
    assert {(s.proposal_id, s.hit) for s in settled} == {("win", True), ("lose", False)}
    tracker.record(_signal(60_000, Side.BUY), "late")
    assert tracker.on_price("W/USDT:USDT", 60_000 + HORIZON_BARS * BAR_MS, 100.0)[0].hit is False


def test_tracker_ignores_bars_before_the_proposal() -> None:
    """A bar that closed before the proposal was made cannot settle it."""
    tracker = LiveTracker("m")
    tracker.record(_signal(10 * BAR_MS, Side.BUY))
    assert tracker.on_bar(Bar("W/USDT:USDT", "1m", 9 * BAR_MS, 100, 200, 100, 150, 1)) == []
    assert tracker.report().pending == 1


def test_tracker_reset_clears_pause_but_keeps_record() -> None:
    """After an operator reset the model may propose again; the record is kept."""
    tracker, _ = _run(Side.SELL, 200, seed=3)
    assert tracker.decision().pause
    tracker.reset()
    assert not tracker.decision().pause and tracker.report().scored > 0


def test_tracker_refuses_a_signal_without_side() -> None:
    """Only proposals (signals with a side) can be tracked."""
    with pytest.raises(ValueError, match="without a side"):
        LiveTracker("m").record(_signal(0, None))  # type: ignore[arg-type]


def test_a_closed_bar_given_by_its_values_settles_as_the_bar_does() -> None:
    by_bar, by_values = LiveTracker("m"), LiveTracker("m")
    rng = random.Random(5)
    for k in range(40):
        t = k * 20 * BAR_MS
        side = rng.choice([Side.BUY, Side.SELL])
        for tracker in (by_bar, by_values):
            tracker.record(_signal(t, side), f"p{k}")
        for bar in _bars(t, rng.choice(["up", "down", "none"])):
            close = bar.open_time + BAR_MS
            settled = by_values.on_closed_bar(bar.symbol, bar.open_time, close, bar.high, bar.low)
            assert by_bar.on_bar(bar) == settled
    assert by_bar.report() == by_values.report()
