"""Synchronous inference: windows in, Signals out; or a whole history at once for replay.

`ModelRunner` is what the predictor's worker thread calls, and what replay calls directly.
It is not thread-safe: one thread owns a runner (only `fill_jobs`' jobs may run on other threads).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import numpy as np

from guard.domain import Side, Signal
from guard.features import FeatureSeries, FeatureWindow
from guard.model.artifact import LoadedModel
from guard.model.inference import (
    SERIES_CHUNK,
    NoveltyReference,
    Outputs,
    SeriesPass,
    explain,
    forward_windows,
    outputs,
)
from guard.model.labels import DOWN, FLAT, UP
from guard.timeframes import timeframe_ms

DAY_MS = 86_400_000
_SIDES = {UP: Side.BUY, DOWN: Side.SELL, FLAT: None}


class ModelRunner:
    """Runs one loaded model on the calling thread."""

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self._net = model.net
        self._temperature = model.temperature
        self._ref = NoveltyReference.of(model.net)
        # What every Signal carries from the model, read once (each is a property computed on every read).
        self._model_id = model.model_id
        self._horizon_seconds = model.horizon_seconds
        self._bar_seconds = model.bar_seconds

    def age_days(self, now_ms: int) -> float:
        """Days from the end of the model's data to `now_ms` (negative: the model saw later data)."""
        return (now_ms - self.model.training_end_ms) / DAY_MS

    def signals(
        self,
        windows: Sequence[FeatureWindow],
        *,
        now_ms: int,
        novelty_threshold: float,
        explain_min_confidence: float | None = 0.0,
    ) -> list[Signal]:
        """One Signal per window, batched in a single forward pass.

        Args:
            now_ms: the time the model's age is measured at.
            novelty_threshold: novelty at or above which a signal is flagged as a guess.
            explain_min_confidence: compute the "why" (gradient × input) for windows naming
                a side with at least this confidence; None computes none.
        """
        if not windows:
            return []
        batch = np.stack([w.values for w in windows])
        logits, _ = forward_windows(self._net, batch)
        out = outputs(logits, self._ref.windows(windows), self._temperature, self._ref)
        whys = [""] * len(windows)
        if explain_min_confidence is not None:
            # the backward pass costs about twice the forward: only for sides that may be shown
            wanted = np.where(out.confidence >= explain_min_confidence, out.side, FLAT)
            if (wanted != FLAT).any():
                whys = explain(self._net, batch, wanted, self._temperature)
        age = self.age_days(int(now_ms))
        return [
            self.make_signal(w.symbol, w.timestamp, w.close, w.sigma, out, i, age, novelty_threshold, whys[i])
            for i, w in enumerate(windows)
        ]

    def replay(self, series: FeatureSeries, *, novelty_threshold: float) -> ReplaySignals:
        """Model outputs for every bar of a history in one pass (no per-bar Python work).

        Build Signals only where they are needed with `ReplaySignals.signal(i)`.
        """
        signals = self.replay_unfilled(series, novelty_threshold=novelty_threshold)
        self.fill(signals)
        return signals

    def replay_unfilled(self, series: FeatureSeries, *, novelty_threshold: float) -> ReplaySignals:
        """`replay`'s arrays before any bar's outputs are in them (NaN, no side): `fill` puts them in, a run of
        bars at a time, so a replay can start on the first bars while the model works on the rest."""
        n = len(series)
        novelty = np.full(n, np.nan)
        return ReplaySignals(
            runner=self,
            series=series,
            probs=np.full((n, 3), np.nan),
            side=np.full(n, FLAT, dtype=np.int8),
            confidence=np.full(n, np.nan),
            novelty=novelty,
            novel=np.zeros(n, dtype=bool),
            ready=series.ready,
            novelty_threshold=novelty_threshold,
        )

    def fill(self, signals: ReplaySignals) -> None:
        """Put every bar's outputs into `signals` (`fill_jobs` run one after another on this thread)."""
        for job in self.fill_jobs(signals):
            job()

    def fill_jobs(self, signals: ReplaySignals, chunk: int = SERIES_CHUNK) -> list[Callable[[], None]]:
        """`fill` as one job per `SERIES_CHUNK` of bars: the chunk's forward pass, then its bars' outputs.

        Each bar's outputs depend on its own logits alone, so every bar gets the numbers one whole pass gives; each
        job writes only its own bars, so the jobs may run on several threads at once, in any order.
        """
        put = self._put(signals, self._ref.series(signals.series))
        model_pass = SeriesPass(self._net, signals.series.rows, chunk)

        def job(start: int, stop: int) -> None:
            put(model_pass.logits(start, stop), start, stop)

        return [partial(job, start, stop) for start, stop in model_pass.chunks()]

    def _put(self, signals: ReplaySignals, statistic: np.ndarray) -> Callable[[np.ndarray, int, int], None]:
        def put(logits: np.ndarray, start: int, stop: int) -> None:
            idx = start + np.flatnonzero(signals.ready[start:stop])
            out = outputs(logits[idx - start], statistic[idx], self._temperature, self._ref)
            signals.probs[idx] = out.probs
            signals.side[idx] = out.side
            signals.confidence[idx] = out.confidence
            signals.novelty[idx] = out.novelty
            signals.novel[start:stop] = signals.novelty[start:stop] >= signals.novelty_threshold

        return put

    def explain_window(self, values: np.ndarray, side: int) -> str:
        """The "why" for one (WINDOW, F) window and its side."""
        return explain(self._net, values[None], np.array([side], dtype=np.int8), self._temperature)[0]

    def make_signal(
        self,
        symbol: str,
        timestamp: int,
        close: float,
        sigma: float,
        out: Outputs,
        i: int,
        age: float,
        threshold: float,
        why: str,
    ) -> Signal:
        """The Signal for row `i` of `out`."""
        novelty = float(out.novelty[i])
        confidence = float(out.confidence[i])
        row = OutputRow(out.probs[i].tolist(), int(out.side[i]), confidence, novelty, novelty >= threshold)
        return self.signal_from(symbol, timestamp, close, sigma, row, age, why)

    def signal_from(
        self, symbol: str, timestamp: int, close: float, sigma: float, row: OutputRow, age: float, why: str
    ) -> Signal:
        """The Signal for one input's outputs (`make_signal` and `ReplaySignals.signal` both build it here)."""
        probs = row.probs
        return Signal(
            symbol=symbol,
            timestamp=timestamp,
            price=close,
            probabilities=(probs[DOWN], probs[FLAT], probs[UP]),
            side=_SIDES[row.side],
            confidence=row.confidence,
            novelty=row.novelty,
            novel=row.novel,
            sigma=sigma,
            horizon_seconds=self._horizon_seconds,
            model_id=self._model_id,
            model_age_days=float(age),
            why=why,
            barrier=self.model.barrier.width(sigma),
            bar_seconds=self._bar_seconds,
        )


class OutputRow(NamedTuple):
    """One input's model outputs as Python values."""

    probs: list[float]
    """(down, flat, up), indexed by DOWN, FLAT, UP."""
    side: int
    confidence: float
    novelty: float
    novel: bool


@dataclass(frozen=True, slots=True, eq=False)
class ReplaySignals:
    """A whole history's model outputs as arrays aligned with its bars (NaN where not ready)."""

    runner: ModelRunner
    series: FeatureSeries
    probs: np.ndarray
    side: np.ndarray
    """int8: UP, DOWN, or FLAT (no side, or not ready)."""
    confidence: np.ndarray
    novelty: np.ndarray
    novel: np.ndarray
    ready: np.ndarray
    novelty_threshold: float

    def candidates(self, min_confidence: float) -> np.ndarray:
        """Indices of bars where the model names a side with at least this confidence."""
        return np.flatnonzero(self.ready & (self.side != FLAT) & (self.confidence >= min_confidence))

    def signal(self, i: int, *, now_ms: int | None = None, explain_side: bool = True) -> Signal:
        """The Signal at bar `i`, as the live predictor would have produced it.

        Args:
            now_ms: when the model's age is measured; by default the bar's close (replay time).
            explain_side: compute the "why" for this window.
        """
        series = self.series
        if not series.ready[i]:
            raise ValueError(f"no full window ends at bar {i}")
        side = int(self.side[i])
        # The window's rows are copied only for the "why" (what the window would carry besides is read here).
        why = self.runner.explain_window(series.window(i).values, side) if explain_side and side != FLAT else ""
        timestamp = int(series.open_times[i]) + timeframe_ms(series.timeframe)
        novelty = float(self.novelty[i])
        row = OutputRow(self.probs[i].tolist(), side, float(self.confidence[i]), novelty, bool(self.novel[i]))
        age = self.runner.age_days(timestamp if now_ms is None else now_ms)
        return self.runner.signal_from(
            series.symbol, timestamp, float(series.closes[i]), float(series.sigma[i]), row, age, why
        )
