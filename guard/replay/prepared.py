"""Replay's precomputation: each history through features and the model once, into the arrays the engine reads.

Features and model outputs are computed for the whole history in batched passes, a chunk of bars at a time
(`ModelRunner.fill_jobs`); the candidate bars are those where the model names a side at or above
`proposals.min_confidence` (elsewhere the policy proposes nothing), on bar time as live (the model-age gate). The
bars of every symbol are laid on one time axis (`guard.replay.lean.MarketGrid`).

The pass runs before the replay, its chunks on worker threads side by side (torch lets go of the interpreter inside
the network) while this thread builds the grid and the broker's variances; every bar gets the numbers one pass on
one thread gives. Running the pass on a worker thread *beside* the replay was tried and dropped: the two threads
fought over the interpreter (every numpy call that lets go of it waited to get it back), which cost the replay more
than the overlap gained once the replay's own path was lean, and the second core is then better spent on the
journal's writer process (`guard.journal.offload`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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

MODEL_PASS_WORKERS = min(4, os.cpu_count() or 1)
"""Threads running the model's pass over the histories, a chunk each at a time (the replay starts once it is done)."""


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
    young: np.ndarray
    """bool per bar: the model is young enough to propose at the bar's time (`young_enough`)."""
    track: set[int] = field(default_factory=set)
    """Bars the tracker must see (where a recorded proposal settles)."""

    def take_candidates(self, grid: MarketGrid, min_confidence: float, tf_ms: int) -> None:
        """Find the candidate bars, every model output in."""
        s = self.signals
        candidate = s.ready & (s.side != FLAT) & (s.confidence >= min_confidence) & self.young
        self.candidate[:] = candidate
        opens = self.history.open_times[candidate]
        self.candidate_groups = grid.group_open.searchsorted(opens).tolist()
        self.candidate_times = (opens + tf_ms).tolist()


def prepare(
    config: Config,
    model: LoadedModel,
    histories: Sequence[SymbolHistory],
    specs: Mapping[str, MarketSpec],
    tf_ms: int,
    intrabar: bool,
) -> tuple[MarketGrid, list[ReplaySymbol]]:
    """The market grid and each symbol's precomputed arrays, every model output in."""
    import torch

    # One intra-op thread, as the live predictor's worker runs it: the same arithmetic. The cores are
    # used by running whole chunks side by side instead (the same numbers, bit for bit).
    torch.set_num_threads(1)
    runner = ModelRunner(model)
    threshold = config.model.novelty_threshold
    min_conf = config.proposals.min_confidence
    symbols: list[ReplaySymbol] = []
    filling: list[list[Future[None]]] = []
    pool = ThreadPoolExecutor(MODEL_PASS_WORKERS, thread_name_prefix="model-pass")
    try:
        for j, h in enumerate(histories):
            series = build_series_arrays(
                h.symbol, h.timeframe, h.open_times, h.opens, h.highs, h.lows, h.closes, h.volumes
            )
            symbol = ReplaySymbol(
                j,
                h,
                specs.get(h.symbol) or default_spec(h.symbol),
                runner.replay_unfilled(series, novelty_threshold=threshold),
                [],
                np.zeros(len(h), dtype=bool),
                [],
                [],
                young_enough(model, h.open_times, config.model.max_age_days),  # as live, on bar time
            )
            filling.append([pool.submit(job) for job in runner.fill_jobs(symbol.signals)])
            symbols.append(symbol)
        grid = MarketGrid.build(histories, tf_ms, intrabar)  # while the model's pass runs
        for symbol, jobs in zip(symbols, filling, strict=True):
            symbol.variance = symbol.history.broker_variances()
            for done in jobs:
                done.result()  # raises what the pass raised
            symbol.take_candidates(grid, min_conf, tf_ms)
    finally:
        pool.shutdown(cancel_futures=True)
    return grid, symbols


def outlook(config: Config, model: LoadedModel, symbols: Sequence[ReplaySymbol]) -> ModelOutlook:
    """How well the model fits these histories (every output in)."""
    pairs = [(s.history, s.signals) for s in symbols]
    return model_outlook(model, pairs, config.proposals.min_confidence, config.model.max_age_days)
