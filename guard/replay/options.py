"""How a replay runs: the scripted operator, a forced leverage, and what the engine may skip or add."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import msgspec

from guard.config import Config
from guard.replay.operator import ScriptedOperator


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """How to replay.

    Attributes:
        operator: the scripted operator deciding every proposal.
        leverage: force every proposal to this leverage (the leverage table); None keeps the
            policy's (`proposals.min_leverage`..`max_leverage`).
        intrabar: let the mark visit each bar's extremes before its close.
        lean: skip market events that provably change nothing (False: every event is worked).
        explain: compute each proposal's "why" (a backward pass each: slow on long histories).
        rearm_daily: re-arm at the next UTC day after the daily loss limit latched REDUCING.
        resume_paused: when the live tracker pauses the model, resume it at once (the pause is still
            journaled and counted). For the leverage table, so every level sees the same stream of
            proposals; a person should not do this.
        stops: False drops each proposal's stop before it is queued (a what-if for the leverage
            table: the take-profit stays, only liquidation limits the loss).
    """

    operator: ScriptedOperator
    leverage: Decimal | None = None
    intrabar: bool = True
    lean: bool = True
    explain: bool = False
    rearm_daily: bool = True
    resume_paused: bool = False
    stops: bool = True


def replay_config(config: Config, leverage: Decimal | None) -> Config:
    """The config a replay's desk runs with: a forced leverage, if any, raises the limits to allow it."""
    if leverage is None:
        return config
    x = float(leverage)
    proposals = msgspec.structs.replace(config.proposals, min_leverage=x, max_leverage=x)
    risk = msgspec.structs.replace(config.risk, max_leverage=max(x, 1.0))
    return msgspec.structs.replace(config, proposals=proposals, risk=risk)
