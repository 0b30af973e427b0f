"""Trade-id sequencing, closed bars exactly once, and bars built from trades."""

from __future__ import annotations

from guard.domain import Side, Trade
from guard.feed.sequence import BarBuilder, BarTracker, TradeSequencer

T0 = 1_767_225_600_000
SYM = "BTC/USDT:USDT"


def test_sequencer_consecutive_ids_no_gap() -> None:
    """Consecutive ids are next in order; a jump reports how many are missing."""
    seq = TradeSequencer(sequential=True)
    for tid in ("10", "11", "12"):
        assert seq.missing_before(tid) == 0
        seq.accept(tid)
    assert seq.missing_before("16") == 3


def test_sequencer_repeat_is_duplicate_late_is_out_of_order() -> None:
    """An id seen before is a duplicate; an older id never seen is out of order."""
    seq = TradeSequencer(sequential=True)
    seq.accept("10")
    seq.skip_to(15)
    assert seq.missing_before("10") == "duplicate trade"
    assert seq.missing_before("12") == "out-of-order trade"
    assert seq.missing_before("x") == "malformed: trade id"


def test_sequencer_non_sequential_only_duplicates() -> None:
    """Where ids are not consecutive, only exact repeats are recognised."""
    seq = TradeSequencer(sequential=False)
    seq.accept("abc")
    assert seq.missing_before("zzz") == 0
    assert seq.missing_before("abc") == "duplicate trade"


def _row(t: int, c: float = 100.0) -> list[float]:
    return [t, 100.0, 101.0, 99.0, c, 5.0]


def test_bar_tracker_closes_each_bar_once_in_order() -> None:
    """Updates of the open bar emit nothing; the next interval closes it exactly once."""
    tracker = BarTracker(SYM, "1m", 60_000)
    assert tracker.feed(_row(T0)).closed is None
    assert tracker.feed(_row(T0, 100.5)).closed is None
    step = tracker.feed(_row(T0 + 60_000))
    assert step.closed is not None and step.closed.open_time == T0 and step.closed.close == 100.5
    assert step.closed.closed
    assert tracker.feed(_row(T0)).reject == "duplicate bar"
    assert tracker.feed(_row(T0 - 60_000)).reject == "out-of-order bar"


def test_bar_tracker_gap_asks_refetch_with_fallback() -> None:
    """A jump of several intervals asks to refetch the held bar and the missed ones."""
    tracker = BarTracker(SYM, "1m", 60_000)
    tracker.feed(_row(T0))
    step = tracker.feed(_row(T0 + 4 * 60_000))
    assert step.refetch == (T0, T0 + 3 * 60_000)
    assert step.fallback is not None and not step.fallback.complete


def test_bar_tracker_refuses_impossible_bars() -> None:
    """NaN, high < low, close outside the range and misaligned times are refused with reasons."""
    tracker = BarTracker(SYM, "1m", 60_000)
    assert tracker.feed([T0, 100.0, 101.0, 99.0, float("nan"), 1.0]).reject == "nan close"
    assert tracker.feed([T0, 100.0, 98.0, 99.0, 99.0, 1.0]).reject == "high < low"
    assert tracker.feed([T0, 100.0, 101.0, 99.0, 105.0, 1.0]).reject == "close outside [low, high]"
    assert tracker.feed([T0 + 5, 100.0, 101.0, 99.0, 100.0, 1.0]).reject == "bar time not aligned to 1m"
    assert tracker.feed([T0, 100.0, 101.0, 99.0, 100.0, -1.0]).reject == "negative volume"


def _trade(i: int, t: int, price: float) -> Trade:
    return Trade(SYM, str(i), t, price, 0.5, Side.BUY)


def test_bar_builder_builds_bars_from_trades() -> None:
    """Trades of one minute become one bar, closed by the first trade of a later minute."""
    builder = BarBuilder(SYM, "1m", 60_000)
    assert builder.add(_trade(1, T0 + 1, 100.0)) is None
    assert builder.add(_trade(2, T0 + 2, 103.0)) is None
    assert builder.add(_trade(3, T0 + 3, 98.0)) is None
    bar = builder.add(_trade(4, T0 + 60_001, 99.0))
    assert bar is not None
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (100.0, 103.0, 98.0, 98.0, 1.5)
    assert bar.complete


def test_bar_builder_hole_marks_bar_incomplete() -> None:
    """A bar whose trades had an unfilled hole is emitted with complete=False."""
    builder = BarBuilder(SYM, "1m", 60_000)
    builder.add(_trade(1, T0 + 1, 100.0))
    builder.taint()
    bar = builder.add(_trade(9, T0 + 60_001, 99.0))
    assert bar is not None and not bar.complete
