"""What a drill saw and the figures it reports: the timeline, the end state, and the verdict against the bounds.

`Timeline` collects, as the drill runs, the journal's events, the alerts the operator received
and samples of the market and the book, in seconds from the fault. `drill_result` turns a
timeline and what was left at the end into a `DrillResult`: detection, reaction, time to HALTED
(journal and acknowledgment), cancels, time to flat, losses, and each bound the drill missed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guard.api.protocol import Alert
from guard.drill.options import DrillOptions
from guard.drill.scenarios import Scenario
from guard.events import (
    KillCompleted,
    KillRequested,
    OrderCancelled,
    OrderFilled,
    PositionLiquidated,
    TradingStateChanged,
)
from guard.wording import count


@dataclass(frozen=True, slots=True)
class Sample:
    """The market and the book at one moment of the drill."""

    t: float
    marks: dict[str, float]
    positions: dict[str, tuple[float, float]]
    """symbol -> (signed qty, entry price)."""
    equity: float


@dataclass(slots=True)
class Timeline:
    """What the drill saw, in seconds from the fault (negative: before it)."""

    origin: float = 0.0
    journal: list[tuple[float, Any]] = field(default_factory=list)
    alerts: list[tuple[float, Any]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)
    """Named moments: event, detected, drill_alert, kill_sent, halted_reply, ..."""

    def now(self) -> float:
        return time.monotonic() - self.origin

    def rebase(self, zero: float) -> None:
        """Make `zero` (seconds from the drill's start) time zero of every record."""
        self.journal = [(t - zero, e) for t, e in self.journal]
        self.alerts = [(t - zero, a) for t, a in self.alerts]
        self.samples = [Sample(s.t - zero, s.marks, s.positions, s.equity) for s in self.samples]
        self.marks = {k: v - zero for k, v in self.marks.items()}

    def mark(self, name: str) -> float:
        self.marks[name] = self.now()
        return self.marks[name]


@dataclass(frozen=True, slots=True)
class DrillResult:
    """The figures of one drill (what the reports show)."""

    scenario: str
    title: str
    mode: str
    started_at: str
    detection_s: float | None
    reaction_s: float | None
    halted_s: float | None
    """Kill sent → HALTED committed to the journal (new orders blocked)."""
    halted_ack_ms: float | None
    """Kill sent → the operator's client had the HALTED acknowledgment."""
    kill_internal_ms: float | None
    """The daemon's own measure of the whole kill (KillCompleted.elapsed_ms)."""
    cancels_s: list[float]
    """Kill sent → each order's cancellation committed."""
    last_cancel_s: float | None
    flat_s: float | None
    positions_left: int
    orders_left: int
    orders_cancelled: int
    positions_flattened: int
    loss_at_flat: float
    counterfactual_loss: float
    """Loss had the positions the kill closed been held to the end of the observation window."""
    detected_by: str
    alert_text: str
    violations: list[str]
    problems: list[str]
    bounds: dict[str, float]
    passed: bool
    failures: list[str]
    throttle_latched: bool
    notes: list[str]
    timeline: dict[str, float]
    samples: list[Sample]
    journal_events: list[tuple[float, str, str]]
    """(t, type, symbol or "") of the events that matter for the chart."""
    home: str
    killed_by: str = ""
    """The operator whose kill the drill timed ("" when nobody pulled it and the drill did)."""


@dataclass(frozen=True, slots=True)
class EndState:
    """What the drill found when it ended, read from the daemon and its venue."""

    positions_left: int
    orders_left: int
    violations: list[str]
    """The journal auditor's findings."""
    throttle_latched: bool


def drill_result(
    tl: Timeline,
    sc: Scenario,
    options: DrillOptions,
    end: EndState,
    *,
    started_at: str,
    detection_alert: Alert | None,
    nobody_reacted: bool,
    notes: list[str],
    home: Path,
) -> DrillResult:
    """The figures of a drill from its timeline (already rebased on the fault) and its end state.

    Args:
        detection_alert: the alert that counted as detection, or None.
        nobody_reacted: an operator-driven drill whose kill the drill pulled itself.
        notes: what the drill noted as it ran (added to here).
    """
    m = tl.marks
    kill = m.get("kill_sent")
    halted = next(
        (
            t
            for t, e in tl.journal
            if isinstance(e, TradingStateChanged) and e.state.value == "HALTED" and (kill is None or t >= kill - 1e-3)
        ),
        None,
    )
    cancels = [
        t - kill
        for t, e in tl.journal
        if isinstance(e, OrderCancelled) and e.reason == "kill switch" and kill is not None and t >= kill - 1e-3
    ]
    completed = next((e for _, e in tl.journal if isinstance(e, KillCompleted)), None)
    flat_at = next((t for t, e in tl.journal if isinstance(e, KillCompleted) and e.flat), None)
    loss_flat, loss_cf = losses(tl.samples, kill, flat_at)
    detection = m.get("detected")
    if sc.name == "operator-disconnect" and detection is not None:
        # The fault is the silence: count from the last heartbeat the daemon heard before the alert.
        notes.append(
            "detection counted from the console's drop; the dead-man's own clock starts at "
            "the last heartbeat heard from any console"
        )
    reaction = None
    if kill is not None and detection is not None:
        seen = m.get("drill_alert", detection) if not options.scripted else detection
        reaction = kill - seen
    halted_s = None if halted is None or kill is None else halted - kill
    halted_ack = None if kill is None or "halted_reply" not in m else (m["halted_reply"] - kill) * 1000
    flat_s = None if flat_at is None or kill is None else flat_at - kill
    bounds = {
        "detection_s": sc.detection_bound_seconds,
        "halted_ms": sc.halt_bound_ms,
        "flat_s": sc.flat_bound_seconds,
    }
    failures = []
    if detection is None or detection > sc.detection_bound_seconds:
        failures.append(f"detection {detection} s is over the {sc.detection_bound_seconds} s bound")
    if halted_s is None or halted_s * 1000 > sc.halt_bound_ms:
        failures.append(f"HALTED after {halted_s} s, over the {sc.halt_bound_ms} ms bound")
    if flat_s is None or flat_s > sc.flat_bound_seconds:
        failures.append(f"flat after {flat_s} s, over the {sc.flat_bound_seconds} s bound")
    if end.positions_left or end.orders_left:
        failures.append(f"{count(end.positions_left, 'position')} and {count(end.orders_left, 'open order')} left")
    if end.violations:
        failures.append(count(len(end.violations), "invariant violation"))
    if nobody_reacted:
        failures.append("nobody pulled the kill switch: the drill did")
    if sc.name == "runaway-model" and not end.throttle_latched:
        failures.append("the execution throttle did not latch")
    chart_events = []
    for t, e in tl.journal:
        if isinstance(e, OrderFilled):
            chart_events.append((t, "fill", e.fill.symbol))
        elif isinstance(e, OrderCancelled):
            chart_events.append((t, "cancel", ""))
        elif isinstance(e, PositionLiquidated):
            chart_events.append((t, "liquidation", e.symbol))
        elif isinstance(e, TradingStateChanged):
            chart_events.append((t, e.state.value, ""))
    alert = detection_alert
    return DrillResult(
        scenario=sc.name,
        title=sc.title,
        mode="scripted" if options.scripted else "operator",
        started_at=started_at,
        detection_s=detection,
        reaction_s=reaction,
        halted_s=halted_s,
        halted_ack_ms=halted_ack,
        kill_internal_ms=completed.elapsed_ms if completed else None,
        cancels_s=sorted(cancels),
        last_cancel_s=max(cancels) if cancels else None,
        flat_s=flat_s,
        positions_left=end.positions_left,
        orders_left=end.orders_left,
        orders_cancelled=completed.orders_cancelled if completed else 0,
        positions_flattened=completed.positions_flattened if completed else 0,
        loss_at_flat=loss_flat,
        counterfactual_loss=loss_cf,
        detected_by=alert.kind if alert else "",
        alert_text=alert.text if alert else "",
        violations=end.violations,
        problems=list(completed.problems) if completed else [],
        bounds=bounds,
        passed=not failures,
        failures=failures,
        throttle_latched=end.throttle_latched,
        notes=notes,
        timeline=dict(m),
        samples=list(tl.samples),
        journal_events=chart_events,
        home=str(home),
        killed_by=""
        if nobody_reacted
        else next((e.operator for _, e in tl.journal if isinstance(e, KillRequested)), ""),
    )


def losses(samples: list[Sample], kill: float | None, flat_at: float | None) -> tuple[float, float]:
    """Loss from the fault to flat, and the loss had the positions at the kill been held to the end."""
    if not samples:
        return 0.0, 0.0
    before = [s for s in samples if s.t <= 0] or samples[:1]
    at_event = before[-1]
    at_kill = [s for s in samples if kill is not None and s.t <= kill] or [at_event]
    k = at_kill[-1]
    end = samples[-1]
    after = [s for s in samples if flat_at is not None and s.t >= flat_at] or [end]
    flat = after[0]
    loss_flat = at_event.equity - flat.equity
    held = sum(q * (end.marks.get(sym, e) - k.marks.get(sym, e)) for sym, (q, e) in k.positions.items())
    loss_cf = at_event.equity - (k.equity + held)
    return round(loss_flat, 2), round(loss_cf, 2)
