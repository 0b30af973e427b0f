"""Run one kill-switch drill against a real daemon on the simulated exchange, and measure it.

The drill starts a daemon of its own (its own state directory, inside the drills directory,
so it never touches a daemon that is trading), attaches an operator's console to it through
the control API, opens positions with resting stops and take-profits and leaves a proposal
pending, then breaks something (the scenario) and measures:

* detection: the fault → the alert *received by the operator's API client*;
* reaction: that alert → the kill command (the scripted operator waits a set delay; in
  operator-driven mode a person in `guard tui` is told "DRILL: ..." and the clock runs until
  their kill reaches the journal);
* time to HALTED twice, as CME asks: in the journal (new orders blocked) and acknowledged
  back to the operator; time to each order cancelled; time to flat (positions re-read flat);
* what is left at the end (positions and open orders, which must be 0), the loss at flat
  next to the counterfactual of holding the positions the kill closed until the end of the
  observation window, and any invariant the journal auditor finds broken.

Times are `time.monotonic()` seconds from the fault; journal times are taken on the journal's
writer thread the moment each batch commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog

from guard.api.client import ApiClient, Session
from guard.api.protocol import AlertRaised, Approve, Heartbeat, Kill
from guard.approval.desk import ACKNOWLEDGMENT_PHRASES
from guard.config import Config, replace_setting
from guard.daemon import Daemon, running
from guard.domain import AcknowledgmentKind, OrderType, ProposalRequest, Side
from guard.drill.scenarios import Scenario
from guard.errors import DaemonError, GuardError
from guard.events import (
    KillCompleted,
    KillRequested,
    OrderCancelled,
    OrderFilled,
    PositionLiquidated,
    TradingStateChanged,
)
from guard.journal.audit import JournalAuditor
from guard.journal.chain import Entry, read_entries
from guard.replay.operator import OperatorPolicy, ScriptedOperator
from guard.wording import count

log = structlog.get_logger(__name__)

SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT")
SAMPLE_SECONDS = 0.05
START_TIMEOUT = 60.0
"""Seconds the drill waits for the daemon's market data (and model) to come up."""
KILL_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class DrillOptions:
    """How to run a drill.

    Attributes:
        scripted: an automated operator kills after `reaction_delay_seconds`; False waits for a
            person at `guard tui`.
        reaction_delay_seconds: the scripted operator's delay between seeing the alert and killing.
        operator_timeout_seconds: how long an operator-driven drill waits for a person.
        speed: simulated seconds per real second.
        observe_seconds: how long after flat prices are watched (the counterfactual's horizon).
        operator: the operator id of the console the drill attaches.
    """

    scripted: bool = True
    reaction_delay_seconds: float = 0.25
    operator_timeout_seconds: float = 300.0
    speed: float = 60.0
    observe_seconds: float = 2.0
    operator: str = "drill-operator"


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


@contextlib.contextmanager
def guard_home(path: Path) -> Iterator[None]:
    """Point GUARD_HOME at the drill daemon's own state directory for the drill's duration.

    The state directory is chosen by this variable over the config everywhere in guard (daemon,
    client, `guard tui`), so this is how a drill keeps its daemon away from a trading one.
    """
    previous = os.environ.get("GUARD_HOME")
    os.environ["GUARD_HOME"] = str(path)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("GUARD_HOME", None)
        else:
            os.environ["GUARD_HOME"] = previous


def drill_config(base: Config, scenario: Scenario, options: DrillOptions) -> Config:
    """The drill daemon's config: the simulated exchange, loopback TCP, and the scenario's settings."""
    overlay: dict[str, dict[str, Any]] = {
        "exchange": {"id": "sim", "symbols": list(SYMBOLS), "broker": "paper"},
        "sim": {"speed": options.speed, "history": "", "scenario": "calm"},
        "model": {"enabled": False, "max_age_days": 1_000_000.0},
    }
    if options.scripted or base.api.transport == "tcp":
        # Loopback TCP on a free port (written to the endpoint file): never the trading daemon's port,
        # and no unix-socket path length limit for deep drill directories.
        overlay["api"] = {"transport": "tcp", "host": "127.0.0.1", "port": 0}
    for section, values in scenario.config.items():
        overlay[section] = {**overlay.get(section, {}), **values}
    if overlay["model"].get("enabled") and not Path(base.model.path).exists():
        # Run from outside the repository: the shipped model, wherever guard is installed from.
        shipped = Path(__file__).resolve().parents[2] / "models" / "default"
        if shipped.exists():
            overlay["model"]["path"] = str(shipped)
    config = base
    for section, values in overlay.items():
        current = getattr(config, section)
        for key, value in values.items():
            current = replace_setting(current, section, key, value)
        config = _replace(config, section, current)
    return config


def _replace(config: Config, section: str, value: Any) -> Config:
    import msgspec

    return msgspec.structs.replace(config, **{section: value})


class Drill:
    """One drill run. `await run()` once."""

    def __init__(
        self,
        config: Config,
        scenario: Scenario,
        options: DrillOptions,
        home: Path,
        announce: Callable[[str], None] = lambda _text: None,
    ) -> None:
        self.config = config
        self.scenario = scenario
        self.options = options
        self.home = home
        self.announce = announce
        self.tl = Timeline()
        self.operator = ScriptedOperator(OperatorPolicy.APPROVE_ALL, name=options.operator)
        self._detected = asyncio.Event()
        self._killed = asyncio.Event()
        self._completed = asyncio.Event()
        self._drop_console = asyncio.Event()
        self._detection_alert: Any = None
        self._nobody_reacted = False
        self._notes: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- the journal, as it commits ----------------------------------------------------

    def _on_committed(self, entries: list[Entry]) -> None:
        # On the journal's writer thread: note the time now, hand the rest to the loop.
        t = self.tl.now()
        for entry in entries:
            self.tl.journal.append((t, entry.event))
        loop = self._loop
        if loop is not None and any(isinstance(e.event, (KillRequested, KillCompleted)) for e in entries):
            loop.call_soon_threadsafe(self._kill_seen, [e.event for e in entries])

    def _kill_seen(self, events: list[Any]) -> None:
        if any(isinstance(e, KillRequested) for e in events):
            self._killed.set()
        if any(isinstance(e, KillCompleted) for e in events):
            self._completed.set()

    # --- running -----------------------------------------------------------------------

    async def run(self) -> DrillResult:
        self._loop = asyncio.get_running_loop()
        self.tl.origin = time.monotonic()
        started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.home.mkdir(parents=True, exist_ok=True)
        with guard_home(self.home):
            async with running(self.config) as daemon:
                result = await self._drill(daemon, started_at)
        return result

    async def _drill(self, daemon: Daemon, started_at: str) -> DrillResult:
        desk, hub = daemon.desk, daemon.hub
        assert desk is not None and hub is not None
        desk.subscribe(self._on_committed)
        client = ApiClient.from_config(self.config, timeout=10.0)
        async with contextlib.AsyncExitStack() as stack:
            watch = await stack.enter_async_context(client.connect(self.options.operator, client="drill"))
            async with asyncio.TaskGroup() as tg:
                reader = tg.create_task(self._read(watch), name="drill-reader")
                sampler = tg.create_task(self._sample(daemon), name="drill-sampler")
                if self.scenario.name == "operator-disconnect":
                    tg.create_task(self._console(client), name="drill-console")
                monitor: asyncio.Task[None] | None = None
                try:
                    await self._setup(daemon, watch)
                    await asyncio.sleep(0.5)  # a baseline on the chart
                    monitor = tg.create_task(self._inject(daemon, watch))
                    await self._react(daemon, watch)
                    try:
                        await asyncio.wait_for(self._completed.wait(), KILL_TIMEOUT)
                        self.tl.mark("kill_completed")
                    except TimeoutError:
                        self._notes.append(f"the kill switch did not report completion within {KILL_TIMEOUT:g} s")
                    await asyncio.sleep(self.options.observe_seconds)
                    self.tl.mark("observed")
                finally:
                    for task in (reader, sampler, monitor):
                        if task is not None:
                            task.cancel()
            return await self._result(daemon, started_at)

    async def _setup(self, daemon: Daemon, watch: Session) -> None:
        """Positions with resting stops and take-profits, and one proposal left pending."""
        desk = daemon.desk
        assert desk is not None
        async with asyncio.timeout(START_TIMEOUT):
            while not all(s in desk.marks for s in SYMBOLS):  # noqa: ASYNC110 - marks arrive from the feed, no event
                await asyncio.sleep(0.05)
            if self.scenario.name == "model-hang":
                if daemon._predictor is None:
                    raise GuardError(f"the model-hang drill needs a model that loads: {daemon._no_model_reason}")
                while daemon._pipeline is None or daemon._pipeline.stats().batches == 0:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        if not self.options.scripted:
            await self._wait_for_person(daemon)
        wide = self.scenario.name == "flash-crash"  # a stop inside the crash would flatten before the kill
        for symbol, side, qty in ((SYMBOLS[0], Side.BUY, "0.05"), (SYMBOLS[1], Side.SELL, "1")):
            pid = await self._queue(daemon, symbol, side, qty, stop_pct=35 if wide else 2, tp_pct=3)
            record = desk.state.proposals[pid]
            reply = await watch.send(Approve(watch.next_id(), pid, record.proposal.version, "drill setup"))
            if not reply.ok:
                raise DaemonError(f"drill setup: approving {pid} failed: {reply.reason}")
        await self._queue(daemon, SYMBOLS[2], Side.BUY, "10", stop_pct=2, tp_pct=3)
        if self.scenario.name == "runaway-model":
            await desk.acknowledge(
                self.options.operator,
                AcknowledgmentKind.MODEL_PROPOSALS,
                ACKNOWLEDGMENT_PHRASES[AcknowledgmentKind.MODEL_PROPOSALS],
            )
        self.tl.mark("setup_done")

    async def _wait_for_person(self, daemon: Daemon) -> None:
        """Operator-driven: say how to attach, and wait until someone other than the drill is attached."""
        assert daemon.hub is not None
        presence = daemon.hub.presence
        self.announce(
            f"Attach a console to the drill daemon, as yourself:\n\n    GUARD_HOME={self.home} guard tui\n\n"
            f"The drill starts when you are attached; when the DRILL alert appears, pull the kill switch."
        )
        async with asyncio.timeout(self.options.operator_timeout_seconds):
            while not set(presence.operators()) - {self.options.operator}:  # noqa: ASYNC110 - presence has no event
                await asyncio.sleep(0.2)
        self.announce(f"attached: {', '.join(presence.operators())}; the drill begins in 3 seconds")
        await asyncio.sleep(3.0)

    async def _queue(self, daemon: Daemon, symbol: str, side: Side, qty: str, *, stop_pct: float, tp_pct: float,
                     source: str = "operator") -> str:
        desk = daemon.desk
        assert desk is not None
        mark = desk.marks[symbol]
        sign = Decimal(side.sign)
        spec = desk.specs[symbol]
        stop = spec.round_price(mark * (1 - sign * Decimal(str(stop_pct)) / 100))
        take = spec.round_price(mark * (1 + sign * Decimal(str(tp_pct)) / 100))
        result = await desk.propose(
            ProposalRequest(
                symbol=symbol, side=side, qty=Decimal(qty), leverage=Decimal(2), stop=stop, take_profit=take,
                order_type=OrderType.MARKET, confidence=0.7, sigma=0.0002, source=source,
                why=f"drill {self.scenario.name}",
            )
        )
        if not result.ok or result.proposal is None:
            raise DaemonError(f"drill setup: the desk refused a proposal: {result.reason}")
        return result.proposal.id

    async def _console(self, client: ApiClient) -> None:
        """The operator's desktop console: heartbeats twice a second until the scenario drops it."""
        async with client.connect(self.options.operator, client="drill-console") as console:
            while not self._drop_console.is_set():
                await console.send(Heartbeat(console.next_id()), reply_within=5.0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._drop_console.wait(), 0.5)

    async def _inject(self, daemon: Daemon, watch: Session) -> None:
        """Break what the scenario breaks, at the drill's time zero; then watch what needs watching."""
        sim = daemon.sim
        speed = self.options.speed
        self.tl.mark("event")
        name = self.scenario.name
        if name == "flash-crash":
            sim.flash_crash()
        elif name == "feed-stall":
            sim.stall(60.0 * speed)
        elif name == "exchange-outage":
            sim.server_errors(60.0 * speed, status=503)
            sim.rate_limit_storm(60.0 * speed, retry_after=1.0)
            sim.disconnect_storm(60.0 * speed, drop_after=0.05)
        elif name == "operator-disconnect":
            self._drop_console.set()
        elif name == "model-hang":
            predictor = daemon._predictor
            assert predictor is not None
            before = predictor.health().timeouts
            predictor.hang_for_drill(120.0)
            while predictor.health().timeouts <= before:  # noqa: ASYNC110 - the predictor counts, it does not signal
                await asyncio.sleep(0.02)
            self._raise(daemon, "model", "the model did not answer within model.inference_timeout_seconds: hung")
        elif name == "runaway-model":
            await self._runaway(daemon, watch)

    async def _runaway(self, daemon: Daemon, watch: Session) -> None:
        """Play a model gone wrong: proposal after proposal, each approved the moment it is shown."""
        desk = daemon.desk
        assert desk is not None
        n = 0
        while not self._killed.is_set():
            symbol = SYMBOLS[n % 2]
            side = Side.BUY if (n // 2) % 2 == 0 else Side.SELL
            try:
                pid = await self._queue(daemon, symbol, side, "0.01" if symbol == SYMBOLS[1] else "0.001",
                                        stop_pct=2, tp_pct=3, source="model")
            except DaemonError:
                await asyncio.sleep(0.02)
                continue
            proposal = desk.state.proposals[pid].proposal
            decision = self.operator.decide(proposal)
            with contextlib.suppress(DaemonError, TimeoutError):
                await watch.send(Approve(watch.next_id(), pid, proposal.version, decision.reason), reply_within=2.0)
            n += 1

    def _raise(self, daemon: Daemon, kind: str, text: str) -> None:
        """The drill's monitor saw the fault in the daemon's health: alert the operator through the hub."""
        assert daemon.hub is not None
        self._notes.append(f"detected by the drill's monitor: {text}")
        daemon.hub.alert("critical", kind, f"DRILL monitor: {text}")

    async def _read(self, watch: Session) -> None:
        """The operator's screen: the time each alert arrives."""
        async for message in watch.messages():
            if isinstance(message, AlertRaised):
                self.tl.alerts.append((self.tl.now(), message.alert))
                relevant = message.alert.kind in self.scenario.detects
                if relevant and "event" in self.tl.marks and not self._detected.is_set():
                    self.tl.mark("detected")
                    self._detection_alert = message.alert
                    self._detected.set()
                if message.alert.kind == "drill" and "drill_alert" not in self.tl.marks:
                    self.tl.mark("drill_alert")

    async def _react(self, daemon: Daemon, watch: Session) -> None:
        """Wait for the alert, then kill: after a set delay (scripted) or when a person does."""
        bound = self.scenario.detection_bound_seconds
        try:
            await asyncio.wait_for(self._detected.wait(), max(bound * 4, 20.0))
        except TimeoutError:
            # Not noticed: a failed drill, but the account must still end flat, so kill anyway.
            self._notes.append(f"no {'/'.join(sorted(self.scenario.detects))} alert within {max(bound * 4, 20.0):g} s")
        assert daemon.hub is not None
        if self.options.scripted:
            await asyncio.sleep(self.options.reaction_delay_seconds)
            self.tl.mark("kill_sent")
            reply = await watch.send(Kill(watch.next_id(), f"drill {self.scenario.name}"), reply_within=10.0)
            self.tl.mark("halted_reply")
            if not reply.ok:
                raise GuardError(f"the kill was refused: {reply.reason}")
            return
        daemon.hub.alert(
            "critical", "drill",
            f"DRILL: {self.scenario.title}. Press the kill switch now (k, then confirm).",
        )
        self.announce(f"DRILL alert sent to the console: {self.scenario.title}. Waiting for the kill...")
        try:
            await asyncio.wait_for(self._killed.wait(), self.options.operator_timeout_seconds)
        except TimeoutError:
            self._notes.append(f"no kill from a person within {self.options.operator_timeout_seconds:g} s: "
                               "the drill pulled it (reaction not measured)")
            self._nobody_reacted = True
            self.tl.mark("kill_sent")
            await watch.send(Kill(watch.next_id(), f"drill {self.scenario.name}: nobody reacted"), reply_within=10.0)
            self.tl.mark("halted_reply")
            return
        requested = [t for t, e in self.tl.journal if isinstance(e, KillRequested)]
        self.tl.marks["kill_sent"] = requested[0] if requested else self.tl.now()

    async def _sample(self, daemon: Daemon) -> None:
        desk = daemon.desk
        assert desk is not None
        while True:
            marks = {s: float(p) for s, p in desk.marks.items()}
            positions = {
                s: (float(p.qty), float(p.entry_price)) for s, p in desk.state.account.positions.items()
            }
            equity = float(desk.state.account.total) + sum(
                q * (marks.get(s, e) - e) for s, (q, e) in positions.items()
            )
            self.tl.samples.append(Sample(self.tl.now(), marks, positions, equity))
            await asyncio.sleep(SAMPLE_SECONDS)

    # --- the figures -------------------------------------------------------------------

    async def _result(self, daemon: Daemon, started_at: str) -> DrillResult:
        desk = daemon.desk
        assert desk is not None
        tl, sc = self.tl, self.scenario
        tl.rebase(tl.marks.get("event", 0.0))
        m = tl.marks
        kill = m.get("kill_sent")
        halted = next(
            (t for t, e in tl.journal if isinstance(e, TradingStateChanged) and e.state.value == "HALTED"
             and (kill is None or t >= kill - 1e-3)),
            None,
        )
        cancels = [t - kill for t, e in tl.journal if isinstance(e, OrderCancelled) and e.reason == "kill switch"
                   and kill is not None and t >= kill - 1e-3]
        completed = next((e for _, e in tl.journal if isinstance(e, KillCompleted)), None)
        flat_at = next((t for t, e in tl.journal if isinstance(e, KillCompleted) and e.flat), None)
        broker = desk.broker
        positions_left = max(len(desk.state.account.positions), len([p for p in await broker.positions() if p.qty]))
        orders_left = max(len(desk.state.open_orders()), len(await broker.open_orders()))
        events = [e.event for e in read_entries(desk.journal_path)]
        violations = JournalAuditor(Decimal(str(self.config.risk.max_leverage))).violations(events)
        loss_flat, loss_cf = self._losses(kill, flat_at)
        detection = m.get("detected")
        if sc.name == "operator-disconnect" and detection is not None:
            # The fault is the silence: count from the last heartbeat the daemon heard before the alert.
            self._notes.append("detection counted from the console's drop; the dead-man's own clock starts at "
                               "the last heartbeat heard from any console")
        reaction = None
        if kill is not None and detection is not None:
            seen = m.get("drill_alert", detection) if not self.options.scripted else detection
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
        if positions_left or orders_left:
            failures.append(f"{count(positions_left, 'position')} and {count(orders_left, 'open order')} left")
        if violations:
            failures.append(count(len(violations), "invariant violation"))
        if self._nobody_reacted:
            failures.append("nobody pulled the kill switch: the drill did")
        if sc.name == "runaway-model" and not desk.state.throttle_latched:
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
        alert = self._detection_alert
        return DrillResult(
            scenario=sc.name, title=sc.title, mode="scripted" if self.options.scripted else "operator",
            started_at=started_at, detection_s=detection, reaction_s=reaction, halted_s=halted_s,
            halted_ack_ms=halted_ack,
            kill_internal_ms=completed.elapsed_ms if completed else None,
            cancels_s=sorted(cancels), last_cancel_s=max(cancels) if cancels else None, flat_s=flat_s,
            positions_left=positions_left, orders_left=orders_left,
            orders_cancelled=completed.orders_cancelled if completed else 0,
            positions_flattened=completed.positions_flattened if completed else 0,
            loss_at_flat=loss_flat, counterfactual_loss=loss_cf,
            detected_by=alert.kind if alert else "", alert_text=alert.text if alert else "",
            violations=violations, problems=list(completed.problems) if completed else [],
            bounds=bounds, passed=not failures, failures=failures,
            throttle_latched=desk.state.throttle_latched, notes=self._notes,
            timeline=dict(m), samples=list(tl.samples), journal_events=chart_events, home=str(self.home),
        )

    def _losses(self, kill: float | None, flat_at: float | None) -> tuple[float, float]:
        """Loss from the fault to flat, and the loss had the positions at the kill been held to the end."""
        samples = self.tl.samples
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


async def run_drill(
    config: Config, scenario: Scenario, options: DrillOptions, home: Path,
    announce: Callable[[str], None] = lambda _text: None,
) -> DrillResult:
    """Run one drill with its daemon's state in `home`."""
    drill = Drill(drill_config(config, scenario, options), scenario, options, home, announce)
    return await drill.run()
