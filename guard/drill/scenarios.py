"""The drill scenarios: what each one breaks, how the guard notices, and the bounds it must meet.

Each scenario adjusts the drill daemon's config (so the fault is noticed in seconds of a drill
rather than minutes of a day), injects its fault into the running daemon at the drill's
"event" moment, and names the alerts that count as the guard noticing it. Where the guard has
no alert of its own for a fault (a hung model shows only in model health), the drill's
monitor raises one through the hub once the daemon's own health says so, and the report says
that this is how detection was measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from guard.errors import BadInput


@dataclass(frozen=True, slots=True)
class Scenario:
    """One kill-switch drill.

    Attributes:
        name: the `guard drill SCENARIO` name.
        title: one line a person reads.
        detects: alert kinds (as the hub raises them) that mean "the guard noticed".
        config: config sections to overlay on the drill daemon's config.
        detection_bound_seconds: event → alert on the operator's screen must be within this
            (MiFID II RTS 6 Art. 16(5): real-time alerts within 5 seconds).
        halt_bound_ms: kill sent → HALTED acknowledged must be within this (CME: blocking
            new orders takes < 1 s; guard aims far lower).
        flat_bound_seconds: kill sent → positions verified flat must be within this.
        monitor: a health condition the drill's monitor watches when the guard has no alert
            for this fault ("" when the guard's own alerts suffice).
    """

    name: str
    title: str
    detects: frozenset[str]
    config: dict[str, dict[str, Any]]
    detection_bound_seconds: float = 5.0
    halt_bound_ms: float = 500.0
    flat_bound_seconds: float = 5.0
    monitor: str = ""


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "flash-crash",
            "every symbol drops 30 % within one simulated minute; the daily loss limit latches",
            frozenset({"trading_state", "orders"}),
            {"risk": {"daily_loss_limit": 150}},
        ),
        Scenario(
            "feed-stall",
            "the exchange stops streaming market data while trading goes on unseen",
            frozenset({"feed"}),
            {"feed": {"stale_after_seconds": 1.0}},
        ),
        Scenario(
            "operator-disconnect",
            "the operator's console drops off; the dead-man switch must notice the silence",
            frozenset({"deadman"}),
            {"operators": {"heartbeat_timeout_seconds": 1.5, "deadman_policy": "hold"}},
        ),
        Scenario(
            "model-hang",
            "the model's forward pass stops returning; inference times out, the kill must not wait for it",
            frozenset({"model"}),
            {"model": {"enabled": True, "inference_timeout_seconds": 1.0}},
            monitor="model inference timed out",
        ),
        Scenario(
            "exchange-outage",
            "the exchange answers 503 and 429 to everything and drops every socket",
            frozenset({"feed"}),
            {"feed": {"stale_after_seconds": 1.0, "max_reconnect_delay_seconds": 1.0}},
        ),
        Scenario(
            "runaway-model",
            "the model proposes at many times its normal rate; the execution throttle must latch",
            frozenset({"throttle"}),
            {"risk": {"max_orders_per_minute": 8}},
        ),
    )
}


def scenario(name: str) -> Scenario:
    """The scenario called `name`.

    Raises:
        BadInput: naming the scenarios there are.
    """
    try:
        return SCENARIOS[name]
    except KeyError:
        raise BadInput(f"drill {name!r}: must be one of {', '.join(SCENARIOS)}") from None
