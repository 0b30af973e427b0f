"""A replay source: history files played back as the same market events, as fast as possible.

Bars of every file are merged into one time-ordered stream (ties: files in the order given).
Each closed bar is followed by a `MarkPrice` at its close time (the bar's close), so anything
that needs a mark (the paper broker, liquidation checks) works unchanged in replay.
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

from guard.domain import Bar, FeedHealth, MarketEvent, MarkPrice
from guard.feed.history import read_bars
from guard.timeframes import timeframe_ms


class ReplayFeed:
    """Replays bars from history files (or from memory).

    Args:
        sources: history file paths, or lists of bars already in memory.
        marks: follow every bar with its close as a `MarkPrice`.
    """

    def __init__(self, sources: Sequence[Path | str | Sequence[Bar]], *, marks: bool = True) -> None:
        self._series: list[list[Bar]] = []
        for source in sources:
            bars = read_bars(source) if isinstance(source, (str, Path)) else list(source)
            by_symbol: dict[str, list[Bar]] = {}
            for bar in bars:
                by_symbol.setdefault(bar.symbol, []).append(bar)
            self._series.extend(by_symbol.values())
        self._marks = marks
        self.symbols = tuple(dict.fromkeys(s[0].symbol for s in self._series if s))
        self.delivered = 0

    def __len__(self) -> int:
        """Bars in the replay."""
        return sum(len(s) for s in self._series)

    def bars(self) -> Iterator[Bar]:
        """Every bar, merged across symbols in time order (open time, then source order)."""
        # heapq.merge is stable: equal times keep the order of the sources.
        yield from heapq.merge(*self._series, key=_open_time)

    def iter_events(self) -> Iterator[MarketEvent]:
        """Every event, synchronously (training and batch replay)."""
        marks = self._marks
        for bar in self.bars():
            self.delivered += 1
            yield bar
            if marks:
                close_time = bar.open_time + timeframe_ms(bar.timeframe) - 1
                yield MarkPrice(bar.symbol, close_time, bar.close)

    async def events(self) -> AsyncIterator[MarketEvent]:
        """Every event as an async stream (the same interface as `CcxtFeed.events`)."""
        for event in self.iter_events():
            yield event

    def health(self) -> dict[str, FeedHealth]:
        """A replay is always healthy: its data was validated when the files were read."""
        return {s: FeedHealth(s, True, "") for s in self.symbols}


def _open_time(bar: Bar) -> int:
    return bar.open_time
