"""The live proposal path built from the config: the predictor, the sizing policy, the live tracker and the pipeline.

What the daemon starts once a model has loaded, warmed up on the feed's recent bars so windows are full at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog

from guard.approval.desk import ApprovalDesk
from guard.clock import Clock
from guard.config import Config
from guard.domain import Bar, MarketSpec
from guard.errors import GuardError
from guard.model.predictor import Predictor
from guard.model.tracker import LiveTracker
from guard.proposals.pipeline import ProposalPipeline
from guard.proposals.policy import ProposalPolicy, RiskLimits

log = structlog.get_logger(__name__)

WARM_UP_BARS = 200


@dataclass(frozen=True, slots=True)
class LivePath:
    """The parts of the live proposal path (the daemon runs `pipeline.run()` and reads the others)."""

    predictor: Predictor
    tracker: LiveTracker
    pipeline: ProposalPipeline


async def build_live_path(
    model: Any,
    config: Config,
    desk: ApprovalDesk,
    specs: Mapping[str, MarketSpec],
    clock: Clock,
    recent_bars: Callable[..., Awaitable[list[Bar]]],
    on_signal: Callable[[float, float], None] | None = None,
    on_latency: Callable[[float], None] | None = None,
) -> LivePath:
    """The live path for a loaded model, warmed up on each symbol's recent bars.

    Args:
        recent_bars: `recent_bars(symbol, count[, before])`: the feed's most recent closed bars.
        on_signal: told each signal's confidence and novelty (the metrics).
        on_latency: told each delay from a closed bar to its proposal, in seconds (the metrics).
    """
    predictor = Predictor(model, config.model, clock, explain_min_confidence=config.proposals.min_confidence)
    limits = desk.limits()
    policy = ProposalPolicy(
        config.proposals,
        config.model,
        RiskLimits(limits.max_order_notional, Decimal(str(limits.max_leverage)), limits.max_position_notional),
    )
    tracker = LiveTracker.from_config(model, config.model)
    pipeline = ProposalPipeline(
        desk,
        predictor,
        policy,
        tracker,
        specs,
        config.exchange.timeframe,
        history=recent_bars,
        on_signal=on_signal,
        on_latency=on_latency,
    )
    if desk.state.model_paused:
        predictor.pause(desk.state.model_pause_reason)
    warm = 0
    for symbol in specs:
        try:
            warm += pipeline.warm_up(await recent_bars(symbol, WARM_UP_BARS))
        except GuardError as e:
            log.warning("pipeline_warm_up_failed", symbol=symbol, error=str(e))
    log.info("pipeline_ready", warm_up_bars=warm)
    return LivePath(predictor, tracker, pipeline)
