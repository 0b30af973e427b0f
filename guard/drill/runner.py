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

The options and the drill daemon's config are `guard.drill.options`; the timeline and the figures,
`guard.drill.figures`. Times are `time.monotonic()` seconds from the fault; journal times are taken on the journal's
writer thread the moment each batch commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog

from guard.api.client import ApiClient, Session
from guard.api.protocol import Alert, AlertRaised, Approve, Heartbeat, Kill
from guard.approval.desk import ACKNOWLEDGMENT_PHRASES
from guard.config import Config
from guard.daemon import Daemon, running
from guard.domain import AcknowledgmentKind, OrderType, ProposalRequest, Side
from guard.drill.figures import DrillResult, EndState, Sample, Timeline, drill_result
from guard.drill.options import SYMBOLS, DrillOptions, drill_config, guard_home
from guard.drill.scenarios import Scenario
from guard.errors import DaemonError, GuardError
from guard.events import (
    KillCompleted,
    KillRequested,
)
from guard.journal.audit import JournalAuditor
from guard.journal.chain import Entry, read_entries
from guard.replay.operator import OperatorPolicy, ScriptedOperator

log = structlog.get_logger(__name__)

SAMPLE_SECONDS = 0.05
START_TIMEOUT = 60.0
"""Seconds the drill waits for the daemon's market data (and model) to come up."""
KILL_TIMEOUT = 15.0


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
        self._detection_alert: Alert | None = None
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
                    raise GuardError(f"the model-hang drill needs a model that loads: {daemon.views.no_model_reason}")
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

    async def _queue(
        self,
        daemon: Daemon,
        symbol: str,
        side: Side,
        qty: str,
        *,
        stop_pct: float,
        tp_pct: float,
        source: str = "operator",
    ) -> str:
        desk = daemon.desk
        assert desk is not None
        mark = desk.marks[symbol]
        sign = Decimal(side.sign)
        spec = desk.specs[symbol]
        stop = spec.round_price(mark * (1 - sign * Decimal(str(stop_pct)) / 100))
        take = spec.round_price(mark * (1 + sign * Decimal(str(tp_pct)) / 100))
        result = await desk.propose(
            ProposalRequest(
                symbol=symbol,
                side=side,
                qty=Decimal(qty),
                leverage=Decimal(2),
                stop=stop,
                take_profit=take,
                order_type=OrderType.MARKET,
                confidence=0.7,
                sigma=0.0002,
                source=source,
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
                pid = await self._queue(
                    daemon,
                    symbol,
                    side,
                    "0.01" if symbol == SYMBOLS[1] else "0.001",
                    stop_pct=2,
                    tp_pct=3,
                    source="model",
                )
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
            "critical",
            "drill",
            f"DRILL: {self.scenario.title}. Press the kill switch now (K; ctrl+k inside a text field).",
        )
        self.announce(f"DRILL alert sent to the console: {self.scenario.title}. Waiting for the kill...")
        try:
            await asyncio.wait_for(self._killed.wait(), self.options.operator_timeout_seconds)
        except TimeoutError:
            self._notes.append(
                f"no kill from a person within {self.options.operator_timeout_seconds:g} s: "
                "the drill pulled it (reaction not measured)"
            )
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
            positions = {s: (float(p.qty), float(p.entry_price)) for s, p in desk.state.account.positions.items()}
            equity = float(desk.state.account.total) + sum(q * (marks.get(s, e) - e) for s, (q, e) in positions.items())
            self.tl.samples.append(Sample(self.tl.now(), marks, positions, equity))
            await asyncio.sleep(SAMPLE_SECONDS)

    # --- the figures -------------------------------------------------------------------

    async def _result(self, daemon: Daemon, started_at: str) -> DrillResult:
        """What is left at the end, read from the daemon; then the figures (`guard.drill.figures`)."""
        desk = daemon.desk
        assert desk is not None
        self.tl.rebase(self.tl.marks.get("event", 0.0))
        broker = desk.broker
        positions_left = max(len(desk.state.account.positions), len([p for p in await broker.positions() if p.qty]))
        orders_left = max(len(desk.state.open_orders()), len(await broker.open_orders()))
        events = [e.event for e in read_entries(desk.journal_path)]
        violations = JournalAuditor(Decimal(str(self.config.risk.max_leverage))).violations(events)
        end = EndState(positions_left, orders_left, violations, desk.state.throttle_latched)
        return drill_result(
            self.tl,
            self.scenario,
            self.options,
            end,
            started_at=started_at,
            detection_alert=self._detection_alert,
            nobody_reacted=self._nobody_reacted,
            notes=self._notes,
            home=self.home,
        )


async def run_drill(
    config: Config,
    scenario: Scenario,
    options: DrillOptions,
    home: Path,
    announce: Callable[[str], None] = lambda _text: None,
) -> DrillResult:
    """Run one drill with its daemon's state in `home`."""
    drill = Drill(drill_config(config, scenario, options), scenario, options, home, announce)
    return await drill.run()
