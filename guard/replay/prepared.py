"""Replay's precomputation: each history through features and the model once, into the arrays the engine reads.

Features and model outputs are computed for the whole history at once (`ModelRunner.replay`); the candidate bars
are those where the model names a side at or above `proposals.min_confidence` (elsewhere the policy proposes
nothing), on bar time as live (the model-age gate). The bars of every symbol are laid on one time axis
(`guard.replay.lean.MarketGrid`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from guard.config import Config
from guard.domain import MarketSpec
from guard.features import build_series_arrays
from guard.markets import default_spec
from guard.model.artifact import LoadedModel
from guard.model.labels import FLAT
from guard.model.runner import ModelRunner, ReplaySignals
from guard.replay.fit import model_outlook, young_enough
from guard.replay.history import SymbolHistory
from guard.replay.lean import MarketGrid
from guard.replay.result import ModelOutlook


@dataclass(slots=True)
class ReplaySymbol:
    """Per-symbol precomputed arrays and replay state."""

    j: int
    history: SymbolHistory
    spec: MarketSpec
    signals: ReplaySignals
    variance: list[float]
    candidate: np.ndarray
    """bool per bar: the model names a side at or above the policy's minimum confidence."""
    candidate_groups: list[int]
    """The groups of the candidate bars, in order (a list: bisect searches it without numpy's call overhead)."""
    candidate_times: list[int]
    """The candidate bars' signal times (their close), in order."""
    track: set[int] = field(default_factory=set)
    """Bars the tracker must see (where a recorded proposal settles)."""


def prepare(
    config: Config,
    model: LoadedModel,
    histories: Sequence[SymbolHistory],
    specs: Mapping[str, MarketSpec],
    tf_ms: int,
    intrabar: bool,
) -> tuple[MarketGrid, list[ReplaySymbol], ModelOutlook]:
    """The market grid, each symbol's precomputed arrays, and how well the model fits these histories."""
    import torch

    # One thread, as the live predictor's worker runs it: same arithmetic, and on two cores the
    # second thread buys little for a conv this small.
    torch.set_num_threads(1)
    runner = ModelRunner(model)
    threshold = config.model.novelty_threshold
    min_conf = config.proposals.min_confidence
    grid = MarketGrid.build(histories, tf_ms, intrabar)
    symbols: list[ReplaySymbol] = []
    for j, h in enumerate(histories):
        series = build_series_arrays(h.symbol, h.timeframe, h.open_times, h.opens, h.highs, h.lows, h.closes, h.volumes)
        signals = runner.replay(series, novelty_threshold=threshold)
        candidate = signals.ready & (signals.side != FLAT) & (signals.confidence >= min_conf)
        candidate &= young_enough(model, h.open_times, config.model.max_age_days)  # as live, on bar time
        opens = h.open_times[candidate]
        symbols.append(
            ReplaySymbol(
                j,
                h,
                specs.get(h.symbol) or default_spec(h.symbol),
                signals,
                h.broker_variances(),
                candidate,
                grid.group_open.searchsorted(opens).tolist(),
                (opens + tf_ms).tolist(),
            )
        )
    outlook = model_outlook(model, [(s.history, s.signals) for s in symbols], min_conf, config.model.max_age_days)
    return grid, symbols, outlook
