"""What a replay found: the counts as the journal recorded them, and the figures at the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from guard.replay.fates import Fates


@dataclass(slots=True)
class ReplayStats:
    """What happened, counted as the journal committed it."""

    proposals: int = 0
    refused: int = 0
    approved: int = 0
    rejected: int = 0
    entries_filled: int = 0
    fills: int = 0
    stops: int = 0
    take_profits: int = 0
    liquidations: int = 0
    funding_payments: int = 0
    reducing_latches: int = 0
    rearms: int = 0
    model_paused: str = ""
    """Why the live tracker last paused the model ("" if it never did)."""
    model_pauses: int = 0
    events: int = 0
    positions_opened: dict[str, int] = field(default_factory=dict)
    """By leverage (as text): positions opened from flat."""
    liquidated: dict[str, int] = field(default_factory=dict)
    """By leverage (as text): positions liquidated."""
    groups_worked: int = 0
    """Bar closes whose market events went through the desk one by one."""
    markers: list[tuple[int, str, str]] = field(default_factory=list)
    """(time, kind, symbol) of fills, stops, take-profits and liquidations, for the chart."""


@dataclass(frozen=True, slots=True)
class NoveltySpread:
    """How novel the scored bars looked to the model."""

    quantiles: tuple[float, ...]
    """The novelty score at the 10th, 50th, 90th and 99th percentile of the scored bars (empty: none scored)."""
    novel_share: float | None
    """The share of scored bars flagged novel (past model.novelty_threshold)."""


@dataclass(frozen=True, slots=True)
class ModelOutlook:
    """What the model said over the whole history, before any policy: enough to tell a person why a
    replay proposed nothing, and whether the model had seen these bars."""

    sided_bars: int
    """Bars where the model named a side (up or down)."""
    confident_bars: int
    """...of those, at or above proposals.min_confidence."""
    best_confidence: float | None
    """The highest confidence it gave a side (None: it named none)."""
    min_confidence: float
    in_sample_bars: int
    """Bars inside the window of data the model was built from."""
    training_start_ms: int
    training_end_ms: int
    bars: int = 0
    scored_bars: int = 0
    """Bars the model could score (a full window behind them, no gap)."""
    novelty: NoveltySpread = field(default_factory=lambda: NoveltySpread((), None))
    too_old_bars: int = 0
    """Bars where the model was confident but older than model.max_age_days on the bars' time (no proposal)."""
    max_age_days: float = 0.0
    synthetic: bool = False
    """The model was trained on synthetic data (its card says so)."""
    trained_on: str = ""
    trained_symbols: tuple[str, ...] = ()
    first_ms: int = 0
    last_ms: int = 0
    """The first and last bar's open time."""
    symbols: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class ReplayResult:
    """Everything a report needs."""

    symbols: tuple[str, ...]
    timeframe: str
    bars: int
    first_ms: int
    last_ms: int
    times: np.ndarray
    """Close time of every bar close (group), ms."""
    equity: np.ndarray
    """Equity at every bar close, from the positions held (float, for charts and drawdown)."""
    closes: np.ndarray
    """(groups, symbols) last close of each symbol at each bar close."""
    starting_balance: Decimal
    final_equity: Decimal
    realized_pnl: Decimal
    fees: Decimal
    funding: Decimal
    liquidation_losses: Decimal
    open_positions: int
    stats: ReplayStats
    tracker: Any
    """The LiveTracker's final report (hit rate and calibration next to the card's claims)."""
    by_leverage: dict[str, dict[str, float]]
    """Per entry leverage: proposals, approved, hits, scored, positions opened, liquidated."""
    operator: str
    leverage: str
    model_id: str
    journal: Path
    seconds: float
    violations: tuple[str, ...]
    """Invariant violations the journal auditor found (must be empty)."""
    outlook: ModelOutlook
    currency: str = "USDT"
    """The currency every money figure is in (the account's)."""
    money_note: str = ""
    """How money was converted into it, when the markets count money in another currency ("" when not)."""
    fates: Fates | None = None
    """Every proposal's end, read from the journal once the replay finished (None before that)."""

    @property
    def pnl(self) -> Decimal:
        return self.final_equity - self.starting_balance

    @property
    def max_drawdown(self) -> float:
        """Largest fall from a running peak of equity, as a fraction of the peak."""
        if len(self.equity) == 0:
            return 0.0
        peaks = np.maximum.accumulate(self.equity)
        return float(np.max((peaks - self.equity) / peaks))

    @property
    def bars_per_second(self) -> float:
        return self.bars / self.seconds if self.seconds > 0 else float("inf")
