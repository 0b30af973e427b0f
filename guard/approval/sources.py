"""Proposal sources at the desk: each graded on its own record, paused when it falls clearly below its claims,
and latched when it floods.

A source (a freqtrade bot, an LLM agent, a script, an alert) may claim a confidence. guard grades every
claim the way it grades its own model (`guard.model.tracker.LiveTracker`, one per source, per confidence
bucket): a proposal is a hit when its take-profit side is touched before its stop side within the horizon.
The barriers are the source's own take-profit and stop when it gave both, else one σ of the market's own
volatility over the horizon either side of the price. Whether anyone approved it does not matter: the
claim is what is graded.

The pause rule (`SourceRules`): once at least `min_settled` (30) of a source's graded proposals have
settled, the tracker's sequential test (a CUSUM of the log-likelihood ratio between "hits come at the
claimed confidence p" and "hits come at p − `shortfall`", with `shortfall` 0.20) pauses it when the
evidence passes ln(1 / `false_pause_rate`) = ln(1000) ≈ 6.9. A source claiming 80 % that is right 40 % of
the time over 30 gathers about 9: paused. One right 70 % of the time gathers nothing that lasts: not.

A flood is judged like the execution throttle: a rolling count in a window, and the one beyond the limit
latches. More than `max_per_second` proposals from one source in any second pauses it ("flood") until a
person resumes it. Either pause is journaled (`SourcePaused`), refuses the source's proposals with the
reason while it lasts, and ends only by a person's `SourceResumed` (`guard source resume NAME`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from guard.approval.answers import CommandResult, refuse
from guard.approval.recorder import Recorder
from guard.domain import Bar, Proposal, ProposalRequest, Side
from guard.events import ProposalRefused, SourcePaused, SourceResumed
from guard.model.tracker import ClaimBucket, LiveTracker
from guard.timeframes import timeframe_ms

log = structlog.get_logger(__name__)

OWN = frozenset({"model", "operator"})
"""Proposers that are not sources: guard's model and a person at the console."""
FLOOD_WINDOW_MS = 1000
BUCKETS = tuple(ClaimBucket(i / 10, (i + 1) / 10, 0, (i + 0.5) / 10, (i + 0.5) / 10) for i in range(10))
"""A source's confidence buckets. It has no card: each bucket's claim is its own claimed confidence."""


def is_source(proposer: str) -> bool:
    """Whether a proposal's `source` names a proposal source (rather than the model or a person)."""
    return proposer not in OWN


@dataclass(frozen=True, slots=True)
class SourceRules:
    """How sources are held to their claims and their pace."""

    max_per_second: int = 10
    """Proposals one source may send in any second; the next one latches it (a flood)."""
    min_settled: int = 30
    """Settled graded proposals before a source can be paused on its record."""
    shortfall: float = 0.20
    """How far (absolute) below its claimed confidence a source must be right for the test to call it clearly
    below its claims."""
    false_pause_rate: float = 0.001
    """Bounds chance pauses of a source that is as good as it claims."""


@dataclass(frozen=True, slots=True)
class Standing:
    """A source as guard grades it (the daemon turns this into the wire's `SourceView`)."""

    name: str
    paused: bool
    reason: str
    graded: int
    settled: int
    hit_rate: float | None
    claimed: float | None
    buckets: tuple[tuple[float | None, int], ...]
    """Its record per confidence bucket (`BUCKETS`): (how often right, how many settled)."""


class Sources:
    """Keeps each source's grading and pace, and pauses or resumes it on the record."""

    def __init__(
        self, recorder: Recorder, journal_refusal: Callable[[], str], rules: SourceRules | None = None
    ) -> None:
        """
        Args:
            journal_refusal: why nothing can be recorded now ("" while the journal writes).
        """
        self._recorder = recorder
        self._journal_refusal = journal_refusal
        self._state = recorder.state
        self.rules = rules or SourceRules()
        self._trackers: dict[str, LiveTracker] = {}
        self._recent: dict[str, deque[int]] = {}
        self._standings: dict[str, tuple[object, Standing]] = {}
        self._market_now: dict[str, int] = {}
        """Each symbol's latest closed bar's close time: the market's clock."""
        self.market_novelty: Callable[[str], float | None] = lambda _symbol: None
        """The model's novelty of a symbol's market now (the daemon wires the pipeline's in), as context."""

    # --- before and after queueing -----------------------------------------------------

    async def admit(self, request: ProposalRequest) -> CommandResult | None:
        """None when the source may propose now; else the refusal, journaled. The proposal past the flood limit
        latches the source."""
        source = request.source
        paused = self._state.paused_sources.get(source)
        if paused is None:
            now = self._recorder.now()
            window = self._recent.setdefault(source, deque())
            while window and window[0] <= now - FLOOD_WINDOW_MS:
                window.popleft()
            window.append(now)
            if len(window) <= self.rules.max_per_second:
                return None
            paused = await self._pause(
                source,
                "flood",
                f"{len(window)} proposals within a second (limit {self.rules.max_per_second}): throttled and "
                "latched until a person resumes it",
            )
        why = f"source {source} is paused ({paused.cause}): {paused.reason}; `guard source resume {source}` resumes it"
        await self._recorder.commit(
            [ProposalRefused(self._recorder.now(), request, why)], durable=False, failing="drop"
        )
        log.info("proposal_refused", source=source, symbol=request.symbol, reason=why)
        return CommandResult(False, why)

    def grade(self, p: Proposal) -> None:
        """Start grading a queued proposal's claimed confidence (one without a claim, or with no barrier to
        grade it by, is not graded)."""
        if p.confidence <= 0:
            return
        entry = math.log(p.limit_price or p.price)
        if p.stop is not None and p.take_profit is not None:
            tp, stop = math.log(p.take_profit), math.log(p.stop)
            barriers = (tp, stop) if p.side is Side.BUY else (stop, tp)
        elif p.sigma > 0:
            spread = p.sigma * math.sqrt(p.horizon_seconds)
            barriers = (entry + spread, entry - spread)
        else:
            return
        # Graded in the market's own time (the latest closed bar's close), which a simulated or replayed market
        # runs at its own speed: the bars that settle a claim are the ones after it.
        since = self._market_now.get(p.symbol, p.created_at)
        self.tracker(p.source).record_levels(p.id, p.symbol, p.side, p.confidence, since, barriers, p.horizon_seconds)

    async def on_bar(self, bar: Bar) -> None:
        """Settle what a closed bar settles, and pause each source whose record fell clearly below its claims."""
        self._market_now[bar.symbol] = bar.open_time + timeframe_ms(bar.timeframe)
        for source, tracker in self._trackers.items():
            if not tracker.on_bar(bar):
                continue
            decision = tracker.decision()
            if decision.pause and source not in self._state.paused_sources:
                await self._pause(source, "record", decision.reason)

    # --- a person's word ---------------------------------------------------------------

    async def resume(self, source: str, operator: str, reason: str) -> CommandResult:
        """Let a paused source propose again; its record stays, its evidence starts afresh."""
        if why := self._journal_refusal():
            return await refuse(self._recorder, operator, "resume_source", None, why)
        if source not in self._state.paused_sources:
            return await refuse(self._recorder, operator, "resume_source", None, f"source {source} is not paused")
        await self._recorder.commit([SourceResumed(self._recorder.now(), source, operator, reason)])
        if source in self._trackers:
            self._trackers[source].reset()
        self._recent.get(source, deque()).clear()
        log.warning("source_resumed", source=source, operator=operator, reason=reason)
        return CommandResult(True, f"source {source} resumed")

    # --- reading -----------------------------------------------------------------------

    def tracker(self, source: str) -> LiveTracker:
        """The source's grader (made on first use)."""
        tracker = self._trackers.get(source)
        if tracker is None:
            rules = self.rules
            tracker = self._trackers[source] = LiveTracker(
                source,
                BUCKETS,
                shortfall=rules.shortfall,
                false_pause_rate=rules.false_pause_rate,
                min_settled=rules.min_settled,
            )
        return tracker

    def names(self) -> list[str]:
        """Every source heard from or paused, by name."""
        return sorted({*self._trackers, *self._recent, *self._state.paused_sources})

    def standing(self, source: str) -> Standing:
        """How the source stands: paused or not, and its record (worked out again only when either changed: the
        status asks on every change)."""
        paused = self._state.paused_sources.get(source)
        tracker = self._trackers.get(source)
        key = (paused, tracker.progress if tracker is not None else None)
        cached = self._standings.get(source)
        if cached is not None and cached[0] == key:
            return cached[1]
        standing = self._standing(source, paused, tracker)
        self._standings[source] = (key, standing)
        return standing

    def _standing(self, source: str, paused: SourcePaused | None, tracker: LiveTracker | None) -> Standing:
        report = tracker.report() if tracker is not None else None
        return Standing(
            name=source,
            paused=paused is not None,
            reason="" if paused is None else f"{paused.cause}: {paused.reason}",
            graded=report.recorded if report else 0,
            settled=report.scored if report else 0,
            hit_rate=report.hit_rate if report else None,
            claimed=report.mean_confidence if report else None,
            buckets=tuple((b.live_hit_rate, b.live_count) for b in report.buckets) if report else (),
        )

    async def _pause(self, source: str, cause: str, reason: str) -> SourcePaused:
        event = SourcePaused(self._recorder.now(), source, cause, reason)
        await self._recorder.commit([event], failing="keep")
        log.warning("source_paused", source=source, cause=cause, reason=reason)
        return event
