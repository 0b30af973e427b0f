"""The daemon's answers about itself that are not in the journal: the model's status, its live record, its card,
the daemon's health, and what the metrics read at a scrape.

`DaemonViews` is handed the parts as the daemon builds them (the desk first; the model, its predictor and
its live tracker once loaded) and answers from whatever is there: before a part exists, and when there is
no model, the answer says so instead of failing.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from guard.api.hub import Hub
from guard.api.metrics import pipeline_steps
from guard.api.protocol import BucketView, ModelStatus, PerformanceView
from guard.approval.desk import ApprovalDesk
from guard.domain import FeedHealth, ProposalStatus, TradingState

LAG_SECONDS = 0.1


@dataclass
class LoopLag:
    """How late the event loop wakes up: the proof that nothing blocks it (health and metrics show it)."""

    last_ms: float = 0.0
    max_ms: float = 0.0

    async def run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(LAG_SECONDS)
            lag = (time.perf_counter() - started - LAG_SECONDS) * 1000
            self.last_ms = max(lag, 0.0)
            self.max_ms = max(self.max_ms, self.last_ms)


@dataclass
class DaemonViews:
    """What the API and the metrics ask of the daemon, answered from the parts it has built so far.

    Attributes:
        loop_lag: () -> (the event loop's last lag, its worst), in milliseconds.
    """

    loop_lag: Callable[[], tuple[float, float]]
    desk: ApprovalDesk | None = None
    hub: Hub | None = None
    model: Any = None
    """The loaded model (None: no model; `no_model_reason` says why)."""
    predictor: Any = None
    tracker: Any = None
    pipeline: Any = None
    no_model_reason: str = "not loaded yet"
    """Why no model proposes, once loading did not give one; read after the word "model" on screens."""

    def _desk(self) -> ApprovalDesk:
        assert self.desk is not None, "the desk is built before anything asks"
        return self.desk

    # --- the model -------------------------------------------------------------------

    def model_status(self) -> ModelStatus:
        desk = self._desk()
        if self.predictor is None:
            return ModelStatus(False, "", None, False, desk.state.model_paused, self.no_model_reason)
        health = self.predictor.health()
        reason = desk.state.model_pause_reason if desk.state.model_paused else health.reason
        if not reason and not desk.model_acknowledged():
            reason = "waiting for the model risk acknowledgment"
        return ModelStatus(
            loaded=True,
            model_id=health.model_id,
            age_days=health.age_days,
            expired=health.expired,
            paused=desk.state.model_paused or health.paused,
            reason=reason,
            last_novelty=health.last_novelty,
            last_latency_ms=health.last_latency_ms,
            acknowledged=desk.model_acknowledged(),
        )

    def hit_rates(self, confidence: float) -> tuple[float | None, float | None]:
        """The model's claimed and live hit rates at this confidence (None where it has none)."""
        if self.tracker is None:
            return None, None
        claimed = live = None
        for bucket in self.tracker.report().buckets:
            if bucket.lo <= confidence < bucket.hi or (bucket.hi >= 1 and confidence >= bucket.hi):
                claimed, live = bucket.claimed_hit_rate, bucket.live_hit_rate
        return claimed, live

    def performance(self) -> PerformanceView:
        if self.tracker is None:
            model_id = self.model.model_id if self.model is not None else ""
            return PerformanceView(model_id, 0, 0, None, None, None, None, (), False, self.no_model_reason, 0.0, 0.0)
        r = self.tracker.report()
        buckets = tuple(
            BucketView(b.lo, b.hi, b.live_count, b.live_hit_rate, b.claimed_hit_rate, b.claimed_count)
            for b in r.buckets
        )
        return PerformanceView(
            r.model_id,
            r.recorded,
            r.scored,
            r.hit_rate,
            r.mean_confidence,
            r.brier,
            r.claimed_brier,
            buckets,
            r.decision.pause,
            r.decision.reason,
            r.decision.statistic,
            r.decision.threshold,
        )

    def card(self) -> str:
        if self.model is None:
            return f"# No model\n\nNo model is loaded: {self.no_model_reason}.\n"
        return str(self.model.card)

    # --- the daemon ------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        desk = self.desk
        return {
            "pid": os.getpid(),
            "trading_state": desk.state.trading_state.value if desk else "STARTING",
            "loop_lag_ms": round(self.loop_lag()[0], 3),
        }

    # --- what the metrics read at a scrape (guard.api.metrics.MetricsSource) ----------

    def trading_state(self) -> TradingState:
        return self._desk().state.trading_state

    def gauges(self) -> Mapping[str, float]:
        desk, hub = self._desk(), self.hub
        state = desk.state
        last, worst = self.loop_lag()
        return {
            "pending_proposals": len(state.pending()),
            "open_positions": len(state.account.positions),
            "equity": float(state.account.equity(desk.marks)),
            "operators_attached": len(hub.presence.operators()) if hub else 0,
            "api_clients": hub.clients if hub else 0,
            "model_paused": int(state.model_paused),
            "loop_lag_seconds": last / 1000,
            "loop_lag_max_seconds": worst / 1000,
        }

    def counters(self) -> Mapping[str, float]:
        state = self._desk().state
        return {
            "proposals": state.proposal_count,
            "filled_proposals": sum(r.status is ProposalStatus.FILLED for r in state.proposals.values()),
            "kills": state.kill_count,
            "journal_events": self._desk().last_seq,
        }

    def feed_health(self) -> Mapping[str, FeedHealth]:
        return self._desk().feed_health

    def pipeline_steps(self) -> Mapping[str, int]:
        return pipeline_steps(self.pipeline.stats()) if self.pipeline is not None else {}
