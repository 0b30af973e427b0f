"""Replay's precomputation: each history through features and the model once, into the arrays the engine reads.

Features and model outputs are computed for the whole history in one batched pass (`ModelRunner.replay`); the
candidate bars are those where the model names a side at or above `proposals.min_confidence` (elsewhere the policy
proposes nothing), on bar time as live (the model-age gate). The bars of every symbol are laid on one time axis
(`guard.replay.lean.MarketGrid`).

A single long history's model pass runs on a worker thread, a chunk of bars at a time, ahead of the replay
(`ModelAhead`): the replay starts once the first chunk is in and takes each further chunk's candidates as it
reaches them, while the pass goes on on the other core. Every bar gets the very numbers one whole pass gives.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from guard.config import Config
from guard.domain import MarketSpec
from guard.features import build_series_arrays
from guard.markets import default_spec
from guard.model.artifact import LoadedModel
from guard.model.inference import SERIES_CHUNK
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
    """bool per bar: the model names a side at or above the policy's minimum confidence (as far as it is known:
    see `ModelAhead`)."""
    candidate_groups: list[int]
    """The groups of the candidate bars, in order (a list: bisect searches it without numpy's call overhead)."""
    candidate_times: list[int]
    """The candidate bars' signal times (their close), in order."""
    young: np.ndarray
    """bool per bar: the model is young enough to propose at the bar's time (`young_enough`)."""
    track: set[int] = field(default_factory=set)
    """Bars the tracker must see (where a recorded proposal settles)."""

    def take_candidates(self, grid: MarketGrid, start: int, stop: int, min_confidence: float, tf_ms: int) -> None:
        """Add the candidates among bars [start, stop), whose model outputs are in, after those before them."""
        s = self.signals
        part = slice(start, stop)
        candidate = s.ready[part] & (s.side[part] != FLAT) & (s.confidence[part] >= min_confidence) & self.young[part]
        self.candidate[part] = candidate
        opens = self.history.open_times[part][candidate]
        self.candidate_groups += grid.group_open.searchsorted(opens).tolist()
        self.candidate_times += (opens + tf_ms).tolist()


class ModelAhead:
    """One history's model pass on a worker thread, ahead of the replay that reads it.

    The worker fills the symbol's signals a chunk at a time (`ModelRunner.fill`); the replay's thread takes each
    chunk's candidates (`take`) only when it needs to look past those it has, so the lists it reads change only
    on its own thread.
    """

    def __init__(self, runner: ModelRunner, symbol: ReplaySymbol, grid: MarketGrid, min_confidence: float, tf_ms: int):
        self._symbol = symbol
        self._grid = grid
        self._min_confidence = min_confidence
        self._tf_ms = tf_ms
        self._bars = len(symbol.history)
        self._filled = 0
        """Bars whose outputs the worker has put in (it alone raises it)."""
        self._taken = 0
        """Bars whose candidates the replay's thread has taken."""
        self._error: BaseException | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, args=(runner,), name="replay-model", daemon=True)
        self._thread.start()

    @property
    def complete(self) -> bool:
        """Every bar's candidates are taken."""
        return self._taken >= self._bars

    def take(self) -> None:
        """Wait for the next chunk of outputs (or all that is in, if more), then take its candidates.

        Raises:
            Whatever the model's pass raised.
        """
        if self.complete:
            return
        with self._changed:
            self._changed.wait_for(lambda: self._filled > self._taken or self._error is not None)
            if self._error is not None:
                raise self._error
            filled = self._filled
        self._symbol.take_candidates(self._grid, self._taken, filled, self._min_confidence, self._tf_ms)
        self._taken = filled

    def finish(self) -> None:
        """Take everything (the pass done)."""
        while not self.complete:
            self.take()
        self._thread.join()

    def _run(self, runner: ModelRunner) -> None:
        import torch

        torch.set_num_threads(1)  # this thread's own setting: the same arithmetic as the replay's thread
        try:
            runner.fill(self._symbol.signals, on_chunk=self._put)
        except BaseException as e:  # handed to the replay's thread, which raises it
            with self._changed:
                self._error = e
                self._changed.notify_all()

    def _put(self, end: int) -> None:
        with self._changed:
            self._filled = end
            self._changed.notify_all()


def prepare(
    config: Config,
    model: LoadedModel,
    histories: Sequence[SymbolHistory],
    specs: Mapping[str, MarketSpec],
    tf_ms: int,
    intrabar: bool,
    ahead: bool = True,
) -> tuple[MarketGrid, list[ReplaySymbol], ModelAhead | None]:
    """The market grid, each symbol's precomputed arrays, and, for a single history long enough to gain from it,
    its model pass going on ahead of the replay (None: every output is in).

    Args:
        ahead: False keeps the model to the replay's thread (a replay that explains each proposal runs the network
            backwards there, and one network is not run from two threads at once).
    """
    import torch

    # One thread, as the live predictor's worker runs it: same arithmetic, and on two cores the
    # second thread buys little for a conv this small.
    torch.set_num_threads(1)
    runner = ModelRunner(model)
    threshold = config.model.novelty_threshold
    min_conf = config.proposals.min_confidence
    grid = MarketGrid.build(histories, tf_ms, intrabar)
    symbols: list[ReplaySymbol] = []
    ahead_of: ReplaySymbol | None = None
    for j, h in enumerate(histories):
        series = build_series_arrays(h.symbol, h.timeframe, h.open_times, h.opens, h.highs, h.lows, h.closes, h.volumes)
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
        if ahead and len(histories) == 1 and len(h) > SERIES_CHUNK:
            ahead_of = symbol
        else:
            runner.fill(symbol.signals)
            symbol.take_candidates(grid, 0, len(h), min_conf, tf_ms)
        symbols.append(symbol)
    pass_ahead = ModelAhead(runner, ahead_of, grid, min_conf, tf_ms) if ahead_of is not None else None
    for symbol in symbols:
        symbol.variance = symbol.history.broker_variances()  # meanwhile, on this thread
    return grid, symbols, pass_ahead


def outlook(config: Config, model: LoadedModel, symbols: Sequence[ReplaySymbol]) -> ModelOutlook:
    """How well the model fits these histories (every output in)."""
    pairs = [(s.history, s.signals) for s in symbols]
    return model_outlook(model, pairs, config.proposals.min_confidence, config.model.max_age_days)
