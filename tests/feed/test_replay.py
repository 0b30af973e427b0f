"""The replay source: history files back as the same market events, in time order."""

from __future__ import annotations

from pathlib import Path

from guard.domain import Bar, MarkPrice
from guard.feed.history import write_bars
from guard.feed.replay import ReplayFeed
from guard.sim.process import generate_history

T0 = 1_767_225_600_000


async def test_replay_merges_files_in_time_order_with_marks(tmp_path: Path) -> None:
    """Bars of several files come out merged by time, each followed by its close as the mark."""
    history = generate_history(("BTC/USDT:USDT", "ETH/USDT:USDT"), T0, 50)
    write_bars(tmp_path / "btc.csv", history["BTC/USDT:USDT"])
    write_bars(tmp_path / "eth.parquet", history["ETH/USDT:USDT"])
    feed = ReplayFeed([tmp_path / "btc.csv", tmp_path / "eth.parquet"])
    events = [e async for e in feed.events()]
    bars = [e for e in events if isinstance(e, Bar)]
    assert len(feed) == 100 and len(bars) == 100
    assert [b.open_time for b in bars] == sorted(b.open_time for b in bars)
    assert bars[0].symbol == "BTC/USDT:USDT" and bars[1].symbol == "ETH/USDT:USDT"
    mark = events[1]
    assert isinstance(mark, MarkPrice) and mark.mark == bars[0].close and mark.timestamp == T0 + 59_999
    assert all(h.healthy for h in feed.health().values())


def test_replay_from_memory_without_marks_is_fast() -> None:
    """Bars already in memory replay synchronously at well over 200k bars per second."""
    import time

    bars = generate_history(("BTC/USDT:USDT",), T0, 100_000)["BTC/USDT:USDT"]
    feed = ReplayFeed([bars], marks=False)
    started = time.perf_counter()
    count = sum(1 for _ in feed.iter_events())
    assert count == 100_000
    assert count / (time.perf_counter() - started) > 200_000
