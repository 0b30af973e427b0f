"""Live tracking: every proposal is scored at its horizon and set against what the card claims.

Every signal that became a proposal is recorded, approved or not (an unapproved proposal
tests the model just as well). Later bars settle it with the same triple-barrier rule the
model was trained on: a buy is a hit when the take-profit barrier is touched first, a sell
when the stop side is; anything else by the horizon is a miss.

The running record — hit rate, Brier score, and hit rate per confidence bucket — is shown
next to the card's claims. A sequential test decides when the record is *clearly* below the
claim: a CUSUM of the log-likelihood ratio between "hits come at the stated confidence p"
and "hits come at p − shortfall". Each miss pushes the statistic up, each hit pulls it
down (never below zero); past ln(1 / false_pause_rate) the model is paused, with the numbers
that made the case. A model performing as claimed drifts down and is paused by chance, on
average, at most once per 1 / false_pause_rate resolved proposals (Lorden's bound).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from guard.config import ModelSection
from guard.domain import Bar, Side, Signal
from guard.model.artifact import LoadedModel
from guard.model.labels import DOWN, UP, BarrierWatch
from guard.timeframes import timeframe_ms

log = structlog.get_logger(__name__)

_P_CLIP = (0.02, 0.98)


@dataclass(frozen=True, slots=True)
class ClaimBucket:
    """One row of the card's "how often it was right, by confidence" table."""

    lo: float
    hi: float
    count: int
    confidence: float
    hit_rate: float


@dataclass(frozen=True, slots=True)
class BucketRecord:
    """Live record of one confidence bucket next to the card's claim for it."""

    lo: float
    hi: float
    live_count: int
    live_confidence: float | None
    live_hit_rate: float | None
    claimed_hit_rate: float | None
    claimed_count: int


@dataclass(frozen=True, slots=True)
class ScoredProposal:
    """A recorded proposal settled at its horizon."""

    proposal_id: str
    symbol: str
    side: Side
    confidence: float
    hit: bool
    resolved_at: int


@dataclass(frozen=True, slots=True)
class PauseDecision:
    """What the sequential test concluded."""

    pause: bool
    reason: str
    statistic: float
    threshold: float


@dataclass(frozen=True, slots=True)
class TrackerReport:
    """The live record, rolling over the last `window` settled proposals, beside the claims."""

    model_id: str
    recorded: int
    pending: int
    scored: int
    """Settled proposals since the start (the sequential test uses all of them)."""
    window: int
    hit_rate: float | None
    mean_confidence: float | None
    """What the model claimed on average for the same proposals."""
    brier: float | None
    claimed_brier: float | None
    """Brier score the card's bucket table implies for proposals like these."""
    buckets: tuple[BucketRecord, ...]
    decision: PauseDecision


@dataclass(slots=True)
class _Pending:
    proposal_id: str
    symbol: str
    side: Side
    confidence: float
    timestamp: int
    watch: BarrierWatch


class LiveTracker:
    """Scores proposals as later bars arrive and decides when to pause the model.

    Args:
        model_id: the model being tracked.
        claims: the card's per-confidence-bucket hit rates.
        shortfall: how far below its stated confidence (absolute) the hit rate must be for
            the test to call it "clearly below".
        false_pause_rate: bounds how often a model performing as claimed is paused by chance.
        window: settled proposals in the rolling statistics.
        min_settled: settled proposals needed before the test may pause (a proposal source is held to its
            claims only once it has a record; the model's card is its record from the start).
    """

    def __init__(
        self,
        model_id: str,
        claims: Sequence[ClaimBucket] = (),
        *,
        shortfall: float = 0.10,
        false_pause_rate: float = 0.001,
        window: int = 200,
        min_settled: int = 0,
    ) -> None:
        if not 0 < shortfall < 1 or not 0 < false_pause_rate < 1:
            raise ValueError("shortfall and false_pause_rate must be in (0, 1)")
        self.model_id = model_id
        self.claims = tuple(claims)
        self.shortfall = shortfall
        self.threshold = math.log(1 / false_pause_rate)
        self.min_settled = min_settled
        self._pending: dict[str, list[_Pending]] = {}
        self._recent: deque[ScoredProposal] = deque(maxlen=window)
        self._window = window
        self._recorded = 0
        self._scored = 0
        self._hits = 0
        self._statistic = 0.0
        self._run_scored = 0
        self._run_hits = 0
        self._run_claimed = 0.0
        self._paused_reason = ""

    @classmethod
    def for_model(cls, model_id: str, metrics: Mapping[str, Any], **kwargs: Any) -> LiveTracker:
        """A tracker holding a model to the bucket table in its card's metrics."""
        buckets = metrics.get("directional", {}).get("buckets", [])
        claims = [ClaimBucket(b["lo"], b["hi"], b["count"], b["confidence"], b["hit_rate"]) for b in buckets]
        return cls(model_id, claims, **kwargs)

    @classmethod
    def from_config(cls, model: LoadedModel, config: ModelSection) -> LiveTracker:
        """A tracker for a loaded model with the model section's test settings."""
        return cls.for_model(
            model.model_id,
            model.metrics,
            shortfall=config.live_shortfall,
            false_pause_rate=config.live_false_pause_rate,
        )

    # --- input ---------------------------------------------------------------------------

    def record(self, signal: Signal, proposal_id: str = "") -> None:
        """Start scoring a signal that became a proposal (approved or not).

        Raises:
            ValueError: for a signal with no side (nothing to score).
        """
        if signal.side is None:
            raise ValueError("a signal without a side is not a proposal")
        bar_seconds = signal.bar_seconds or 60.0
        barrier = signal.barrier
        if barrier <= 0:
            # a signal from elsewhere: barriers at 1·σ·√H, as the default model draws them
            barrier = signal.sigma * math.sqrt(max(signal.horizon_seconds / bar_seconds, 1.0))
        entry = math.log(signal.price)
        self.record_levels(
            proposal_id,
            signal.symbol,
            signal.side,
            signal.confidence,
            signal.timestamp,
            (entry + barrier, entry - barrier),
            signal.horizon_seconds,
        )

    def record_levels(
        self,
        proposal_id: str,
        symbol: str,
        side: Side,
        confidence: float,
        timestamp: int,
        barriers: tuple[float, float],
        horizon_seconds: float,
    ) -> None:
        """Start scoring a proposal whose barriers are given: (upper, lower) in log price. A buy is a hit when the
        upper is touched first, a sell when the lower is; anything else by the horizon is a miss."""
        watch = BarrierWatch(barriers[0], barriers[1], timestamp + round(horizon_seconds * 1000))
        self._pending.setdefault(symbol, []).append(_Pending(proposal_id, symbol, side, confidence, timestamp, watch))
        self._recorded += 1

    def on_bar(self, bar: Bar) -> list[ScoredProposal]:
        """Feed a closed bar; return the proposals it settled."""
        if not bar.closed:
            return []
        close_time = bar.open_time + timeframe_ms(bar.timeframe)
        return self._observe(bar.symbol, bar.open_time, close_time, bar.high, bar.low)

    def on_closed_bar(
        self, symbol: str, open_time: int, close_time: int, high: float, low: float
    ) -> list[ScoredProposal]:
        """`on_bar` for a closed bar given by its values (replay reads them from arrays: no Bar to build)."""
        return self._observe(symbol, open_time, close_time, high, low)

    def on_price(self, symbol: str, timestamp: int, price: float) -> list[ScoredProposal]:
        """Feed one traded or mark price; return the proposals it settled."""
        return self._observe(symbol, timestamp, timestamp, price, price)

    def _observe(self, symbol: str, start: int, end: int, high: float, low: float) -> list[ScoredProposal]:
        pending = self._pending.get(symbol)
        if not pending:
            return []
        settled, still = [], []
        for p in pending:
            if start < p.timestamp:  # a bar from before the proposal says nothing about it
                still.append(p)
                continue
            outcome = p.watch.observe(high, low, end)
            if outcome is None:
                still.append(p)
                continue
            hit = outcome == (UP if p.side is Side.BUY else DOWN)
            settled.append(self._settle(p, hit, end))
        self._pending[symbol] = still
        return settled

    def _settle(self, p: _Pending, hit: bool, at: int) -> ScoredProposal:
        scored = ScoredProposal(p.proposal_id, p.symbol, p.side, p.confidence, hit, at)
        self._recent.append(scored)
        self._scored += 1
        self._hits += hit
        claimed = min(max(p.confidence, _P_CLIP[0]), _P_CLIP[1])
        alternative = max(claimed - self.shortfall, 0.01)
        llr = math.log(alternative / claimed) if hit else math.log((1 - alternative) / (1 - claimed))
        if self._statistic + llr <= 0:
            # the record is back in line with the claim: start a fresh run of evidence
            self._statistic, self._run_scored, self._run_hits, self._run_claimed = 0.0, 0, 0, 0.0
        else:
            self._statistic += llr
            self._run_scored += 1
            self._run_hits += hit
            self._run_claimed += claimed
        if not self._paused_reason and self._statistic >= self.threshold and self._scored >= self.min_settled:
            n = self._run_scored
            self._paused_reason = (
                f"live record below its claim: {self._run_hits} of the last {n} proposals hit "
                f"({self._run_hits / n:.0%}) where it claimed {self._run_claimed / n:.0%} on average; "
                f"sequential test {self._statistic:.1f} ≥ {self.threshold:.1f}"
            )
            log.warning("model.tracker_pause", model_id=self.model_id, reason=self._paused_reason)
        return scored

    # --- output --------------------------------------------------------------------------

    def decision(self) -> PauseDecision:
        """Whether the model should be paused, and why. Latched until `reset()`."""
        return PauseDecision(bool(self._paused_reason), self._paused_reason, self._statistic, self.threshold)

    @property
    def progress(self) -> tuple[int, int, bool]:
        """(recorded, settled, paused): changes whenever the report can (a cheap key to cache a report by)."""
        return self._recorded, self._scored, bool(self._paused_reason)

    def reset(self) -> None:
        """Clear the test after an operator has looked at the pause (the record stays)."""
        self._paused_reason = ""
        self._statistic, self._run_scored, self._run_hits, self._run_claimed = 0.0, 0, 0, 0.0

    def report(self) -> TrackerReport:
        """Rolling hit rate, Brier score and per-bucket calibration beside the card's claims."""
        recent = list(self._recent)
        n = len(recent)
        hit_rate = sum(s.hit for s in recent) / n if n else None
        mean_conf = sum(s.confidence for s in recent) / n if n else None
        brier = sum((s.confidence - s.hit) ** 2 for s in recent) / n if n else None
        buckets = []
        claimed_brier_sum, claimed_n = 0.0, 0
        for claim in self.claims or ():
            inside = [s for s in recent if claim.lo <= s.confidence < claim.hi or (claim.hi >= 1 and s.confidence >= 1)]
            k = len(inside)
            buckets.append(
                BucketRecord(
                    claim.lo,
                    claim.hi,
                    k,
                    sum(s.confidence for s in inside) / k if k else None,
                    sum(s.hit for s in inside) / k if k else None,
                    claim.hit_rate,
                    claim.count,
                )
            )
            for s in inside:
                # expected Brier for a proposal like this one if the card's bucket is right
                h = claim.hit_rate
                claimed_brier_sum += h * (1 - s.confidence) ** 2 + (1 - h) * s.confidence**2
                claimed_n += 1
        return TrackerReport(
            model_id=self.model_id,
            recorded=self._recorded,
            pending=sum(len(v) for v in self._pending.values()),
            scored=self._scored,
            window=self._window,
            hit_rate=hit_rate,
            mean_confidence=mean_conf,
            brier=brier,
            claimed_brier=claimed_brier_sum / claimed_n if claimed_n else None,
            buckets=tuple(buckets),
            decision=self.decision(),
        )
