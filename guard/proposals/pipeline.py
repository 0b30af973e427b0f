"""Closed bars -> feature windows -> model signals -> proposal requests -> the desk.

The step between market data and the approval desk. Windows for bars that close at the same
time are batched into one inference (the predictor keeps one batch in flight and drops stale
inputs); every signal that becomes a proposal is handed to the live tracker, which scores it at
its horizon and pauses the model, through the desk (journaled), when its record falls clearly
below its claim.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

import structlog

from guard.approval.desk import ApprovalDesk
from guard.domain import Bar, MarketSpec
from guard.errors import GuardError
from guard.features import WARMUP_BARS, FeatureWindow, WindowBuilder
from guard.model.predictor import Predictor
from guard.model.tracker import LiveTracker
from guard.proposals.policy import ProposalPolicy

log = structlog.get_logger(__name__)

BATCH_WAIT_SECONDS = 0.25
"""How long to wait for the other symbols' bars of the same close before inferring without them."""


@dataclass(frozen=True, slots=True)
class PipelineStats:
    bars: int
    windows: int
    batches: int
    signals: int
    proposed: int
    refused: int
    bar_to_proposal_ms: tuple[float, ...] = ()
    """Recent delays from a closed bar reaching the pipeline to its proposal being queued."""


class ProposalPipeline:
    def __init__(
        self,
        desk: ApprovalDesk,
        predictor: Predictor,
        policy: ProposalPolicy,
        tracker: LiveTracker,
        specs: Mapping[str, MarketSpec],
        timeframe: str,
        enabled: bool = True,
        history: Callable[..., Awaitable[list[Bar]]] | None = None,
        on_signal: Callable[[float, float], None] | None = None,
        on_latency: Callable[[float], None] | None = None,
    ) -> None:
        """
        Args:
            history: `history(symbol, count, before)` fetches a symbol's most recent closed bars
                opening before `before`; used to warm a window up again after a gap in the feed
                instead of waiting WARMUP_BARS bars.
            on_signal: told the confidence and novelty of every signal the model gives (the metrics).
            on_latency: told each delay, in seconds, from a closed bar to its proposal queued (the metrics).
        """
        self._desk = desk
        self._predictor = predictor
        self._policy = policy
        self._tracker = tracker
        self._specs = specs
        self._builders = {s: WindowBuilder(s, timeframe) for s in specs}
        self._enabled = enabled
        self._waiting: dict[str, FeatureWindow] = {}
        self._latest: dict[str, FeatureWindow] = {}
        """Each symbol's newest window, to reconsider when the model may propose again."""
        self._history = history
        self._on_signal = on_signal
        self._on_latency = on_latency
        self._cold: dict[str, Bar] = {}
        """Symbols whose window needs history, with the live bar that found it cold."""
        self._ready = asyncio.Event()
        self._funding: dict[str, float] = {}
        self._bars = self._windows = self._batches = self._signals = self._proposed = self._refused = 0
        self._bar_seen: dict[str, float] = {}
        self._latency: deque[float] = deque(maxlen=1000)
        self._novelty: dict[str, float] = {}
        """Each symbol's latest novelty against the model's training data (context for others' proposals)."""

    def market_novelty(self, symbol: str) -> float | None:
        """How unlike the model's training data `symbol`'s market looked at the latest inference, or None."""
        return self._novelty.get(symbol)

    def stats(self) -> PipelineStats:
        return PipelineStats(
            self._bars,
            self._windows,
            self._batches,
            self._signals,
            self._proposed,
            self._refused,
            tuple(self._latency),
        )

    def warm_up(self, bars: Iterable[Bar]) -> int:
        """Feed recent history so windows are full at once; the latest window of each symbol is
        inferred on straight away, so a model with something to say need not wait for a bar. Returns
        the bars used."""
        used = 0
        for bar in bars:
            builder = self._builders.get(bar.symbol)
            if builder is not None and bar.closed:
                window = builder.update(bar)
                used += 1
                if window is not None:
                    self._offer(bar.symbol, window)
        if self._waiting:
            self._ready.set()
        return used

    def _offer(self, symbol: str, window: FeatureWindow) -> None:
        """A fresh window: the next to infer on, and the one to reconsider later."""
        self._waiting[symbol] = self._latest[symbol] = window

    def reconsider(self) -> None:
        """The model may propose again (acknowledged, resumed): look at each symbol's newest window now
        rather than a bar from now. A symbol with a pending proposal is left alone; the others' cooldowns
        are forgotten, since what set them was refused (nobody could have approved it)."""
        pending = {r.proposal.symbol for r in self._desk.state.pending()}
        for symbol, window in self._latest.items():
            if symbol not in pending:
                self._policy.reset_cooldown(symbol)
                self._waiting[symbol] = window
                self._bar_seen.pop(symbol, None)  # not a bar's latency: the bar came long ago
        if self._waiting:
            self._ready.set()

    def set_funding(self, symbol: str, rate: float | None) -> None:
        if rate is not None:
            self._funding[symbol] = rate

    def on_bar(self, bar: Bar) -> None:
        """A closed bar: score the tracker's open proposals, and queue the symbol's new window."""
        if not bar.closed:
            return
        self._bars += 1
        self._bar_seen[bar.symbol] = time.perf_counter()
        for scored in self._tracker.on_bar(bar):
            log.info("proposal_scored", proposal_id=scored.proposal_id, hit=scored.hit, confidence=scored.confidence)
        builder = self._builders.get(bar.symbol)
        if builder is None:
            return
        window = builder.update(bar, self._funding.get(bar.symbol))
        if window is None:
            if builder.bars_needed > 0 and self._history is not None:
                self._cold[bar.symbol] = bar
                self._ready.set()
            return
        self._windows += 1
        self._offer(bar.symbol, window)
        self._ready.set()

    async def run(self) -> None:
        """Infer on batches of fresh windows, one batch in flight, until cancelled."""
        while True:
            await self._ready.wait()
            await self._gather_close()
            self._ready.clear()
            if self._cold:
                await self._refill()
            batch, self._waiting = self._waiting, {}
            if batch:
                await self._infer(batch)

    async def _gather_close(self) -> None:
        """Give the other symbols' bars of the same close a moment to arrive: until all are in (usually a
        few milliseconds), or BATCH_WAIT_SECONDS have passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BATCH_WAIT_SECONDS
        while len(self._waiting) < len(self._builders) and not self._cold:
            self._ready.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                async with asyncio.timeout(remaining):
                    await self._ready.wait()
            except TimeoutError:
                return

    async def _refill(self) -> None:
        """Warm cold windows up from recent history, then replay the live bar that found them cold."""
        assert self._history is not None
        cold, self._cold = self._cold, {}
        for symbol, live in cold.items():
            try:
                bars = await self._history(symbol, WARMUP_BARS + 10, live.open_time)
            except GuardError as e:
                log.warning("pipeline_refill_failed", symbol=symbol, error=str(e))
                continue
            builder = self._builders[symbol]
            builder.reset()
            for bar in bars:
                if bar.closed and bar.open_time < live.open_time:
                    builder.update(bar, self._funding.get(symbol))
            window = builder.update(live, self._funding.get(symbol))
            log.info("pipeline_refilled", symbol=symbol, bars=len(bars), ready=window is not None)
            if window is not None:
                self._windows += 1
                self._offer(symbol, window)

    async def _infer(self, windows: dict[str, FeatureWindow]) -> None:
        self._batches += 1
        await self._check_tracker()
        desk = self._desk
        if not self._enabled or desk.state.model_paused:
            return
        signals = await self._predictor.predict(windows)
        self._signals += len(signals)
        equity = desk.state.account.equity(desk.marks)
        for symbol, signal in signals.items():
            if self._on_signal is not None:
                self._on_signal(signal.confidence, signal.novelty)
            self._novelty[symbol] = signal.novelty
            price = desk.marks.get(symbol) or Decimal(str(signal.price))
            outcome = self._policy.decide(signal, equity, self._specs[symbol], price)
            if outcome.request is None:
                continue
            result = await desk.propose(outcome.request)
            if result.ok and result.proposal is not None:
                self._proposed += 1
                if symbol in self._bar_seen:
                    self._latency.append((time.perf_counter() - self._bar_seen[symbol]) * 1000)
                    if self._on_latency is not None:
                        self._on_latency(self._latency[-1] / 1000)
                self._tracker.record(signal, result.proposal.id)
            else:
                self._refused += 1

    async def _check_tracker(self) -> None:
        """A live record clearly below the claim pauses the model, on the record."""
        decision = self._tracker.decision()
        if decision.pause and not self._desk.state.model_paused:
            await self._desk.pause_model("guard", decision.reason)
            self._predictor.pause(decision.reason)
