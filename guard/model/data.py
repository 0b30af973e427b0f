"""History files as the model reads them: one feature series per file and symbol, filled bars left out.

`guard history import --fill-gaps` fills a hole in the bars with flat bars marked as filled
(`Bar.complete` False). They are not moves anyone traded: training and `guard model eval` drop them
before the features are built, so each becomes a gap again — no window and no label horizon reaches
across it — rather than a stretch of quiet market to learn from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guard.domain import Bar
from guard.errors import BadInput
from guard.features import FeatureSeries, build_series


@dataclass(frozen=True, slots=True, eq=False)
class HistoryData:
    """The series read from some history files, and what was read."""

    series: tuple[FeatureSeries, ...]
    files: tuple[dict[str, Any], ...]
    """Per file: path, sha256, bars, symbol(s), and filled bars left out."""

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.symbol for s in self.series))

    @property
    def filled(self) -> int:
        """Filled bars left out over every file."""
        return sum(int(f["filled_dropped"]) for f in self.files)

    def notes(self) -> list[str]:
        """One line per file with filled bars, for a person."""
        return [
            f"{f['path']}: {f['filled_dropped']:,} filled bars left out (gaps filled flat are no real moves); "
            "each is a gap again"
            for f in self.files
            if f["filled_dropped"]
        ]


def real_bars(bars: Sequence[Bar]) -> list[Bar]:
    """The bars that record real trading: every bar but those filled to close a gap."""
    return [b for b in bars if b.complete]


def read_history(paths: Sequence[str]) -> HistoryData:
    """Read history files into one feature series per file and symbol, filled bars left out.

    Raises:
        BadInput: a file is missing or unreadable, holds no bars, or only filled bars for a symbol.
        InvalidMarketData: a row is not a possible bar.
    """
    from guard.feed.history import read_bars

    series: list[FeatureSeries] = []
    files: list[dict[str, Any]] = []
    for path in paths:
        bars = read_bars(path)
        if not bars:
            raise BadInput(f"{path}: no bars")
        by_symbol: dict[str, list[Bar]] = {}
        for bar in bars:
            by_symbol.setdefault(bar.symbol, []).append(bar)
        dropped = 0
        for symbol, symbol_bars in by_symbol.items():
            real = real_bars(symbol_bars)
            dropped += len(symbol_bars) - len(real)
            if not real:
                raise BadInput(f"{path}: every {symbol} bar is a filled bar (a gap filled flat): nothing real to read")
            series.append(build_series(real))
        files.append(
            {
                "path": path,
                "sha256": _sha256(Path(path)),
                "bars": len(bars),
                "symbol": ", ".join(by_symbol),
                "filled_dropped": dropped,
            }
        )
    return HistoryData(tuple(series), tuple(files))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
