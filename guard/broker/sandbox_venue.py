"""The sandbox venue as the daemon runs it: the broker, a watch that keeps the journal and the venue in
agreement, and the venue's own dead-man switch.

`VenueWatch` runs beside the desk. At start (right after `ApprovalDesk.start()` has let the
broker settle every order in doubt) it records what is still unresolved as UNKNOWN, and
compares the venue with the journal: an open order guard did not send, or a position the
journal does not hold, is reported — a log line, an operator alert, and trading moved to
REDUCING with the reason — never adopted and never ignored. Then, every `reconcile_seconds`, it
reports fills and ends of resting orders, keeps resolving orders in doubt, compares positions
again (a difference must be seen twice: a fill may land between two reads), and while the kill
switch has trading HALTED it re-checks that nothing is open or held, retrying the clean-up
until it is.

`VenueDeadMan` arms the venue's cancel-all countdown (Binance USDⓈ-M `countdownCancelAll`, per
symbol; ccxt's `cancel_all_orders_after` elsewhere) and refreshes it every quarter of the
countdown from a ccxt client of its own, so its requests never queue behind orders in the
broker's rate limiter. If the daemon dies, the venue cancels its working orders when the
countdown runs out. It cancels orders only — resting stops included — never positions. A
graceful stop disarms it, so protective stops keep working while guard is down on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog

from guard.broker.sandbox import SandboxBroker, build_venue, open_sandbox_broker, sandbox_credentials
from guard.clock import Clock
from guard.config import ExchangeSection
from guard.domain import ZERO, MarketSpec, TradingState
from guard.errors import ExchangeUnavailable, GuardError
from guard.events import Event, OrderUnknown, TradingStateChanged
from guard.feed.exchange import SimEndpoint, ccxt_class_name
from guard.wording import count

if TYPE_CHECKING:
    from guard.approval.desk import ApprovalDesk

log = structlog.get_logger(__name__)

Alert = Callable[[str, str, str], None]
"""(level, kind, text): how the daemon puts something in front of an operator."""

COUNTDOWN_VENUES = frozenset({"binanceusdm"})
"""ccxt classes with a per-symbol countdown cancel-all (Binance USDⓈ-M `countdownCancelAll`)."""
MAX_SWEEP_BACKOFF_SECONDS = 60.0


class VenueWatch:
    """Keeps the journal and the venue in agreement while the daemon runs.

    Args:
        broker: the sandbox broker the desk sends through.
        settings: the [exchange] section (`reconcile_seconds`).
        alert: puts a discrepancy in front of the operators (the daemon's hub).
    """

    def __init__(self, broker: SandboxBroker, settings: ExchangeSection, alert: Alert | None = None) -> None:
        self._broker = broker
        self._period = settings.reconcile_seconds
        self.alert = alert
        self.discrepancies: list[str] = []
        """Every disagreement between venue and journal reported so far, for the daemon to show."""
        self._reported: set[str] = set()
        self._suspects: set[str] = set()

    async def start(self, desk: ApprovalDesk) -> list[str]:
        """After `desk.start()`: orders still in doubt become UNKNOWN; the venue is compared with the journal.

        Returns:
            The discrepancies found (also logged, alerted, and journaled as a move to REDUCING).
        """
        state = desk.state
        pending = [o for o in state.orders_in_doubt() if o.status.value == "SENDING"]
        if pending:
            now = desk.clock.now_ms()
            events: list[Event] = [
                OrderUnknown(now, o.request.client_order_id, "not resolved at restart: the venue did not answer")
                for o in pending
            ]
            events += self._reducing(desk, f"{count(len(pending), 'order')} in doubt after restart")
            await desk.recorder.commit(events)
        try:
            problems = await self.compare(desk, every_symbol=True)
        except GuardError as e:
            problems = [f"could not compare the venue with the journal: {e}"]
        await self._report(desk, problems)
        return problems

    async def run(self, desk: ApprovalDesk) -> None:
        """Poll, resolve, compare and — while HALTED by a kill — finish the kill, until cancelled."""
        backoff = self._period
        due = 0.0
        while True:
            await asyncio.sleep(self._period)
            await self.check(desk)
            if desk.state.trading_state is not TradingState.HALTED:
                backoff, due = self._period, 0.0
                continue
            due -= self._period
            if due > 0:
                continue
            report = await desk.kill_switch.sweep()
            if report is not None and (not report.flat or report.problems):
                # A clean-up that keeps failing is retried (and journaled) less and less often, never given up.
                due = backoff
                backoff = min(backoff * 2, MAX_SWEEP_BACKOFF_SECONDS)
            else:
                backoff, due = self._period, 0.0

    async def check(self, desk: ApprovalDesk) -> None:
        """One round: record what the venue did, then compare positions and orders."""
        try:
            reports = await self._broker.poll()
        except ExchangeUnavailable as e:
            log.warning("venue_poll_failed", error=str(e))
            return
        await desk.execution.record_reports(reports)
        if self._broker.busy() or desk.state.orders_in_doubt():
            return  # a fill may be at the venue and not yet in the journal: compare next time
        try:
            problems = await self.compare(desk)
        except GuardError as e:
            log.warning("venue_compare_failed", error=str(e))
            return
        # Seen twice in a row, or it may be a fill that landed between two reads.
        confirmed = [p for p in problems if p in self._suspects]
        self._suspects = set(problems)
        await self._report(desk, confirmed)

    async def compare(self, desk: ApprovalDesk, *, every_symbol: bool = False) -> list[str]:
        """Where the venue and the journal disagree: orders guard did not send, positions it does not hold.

        Raises:
            ExchangeUnavailable: the venue could not be read (never taken to mean "nothing there").
        """
        orders = await self._broker.venue_open_orders(every_symbol=every_symbol)
        positions = await self._broker.positions()
        state = desk.state
        problems = [
            f"{o.symbol}: open {o.side.value} order {o.client_order_id} ({o.qty - o.executed}) at the venue "
            "was not sent by this guard"
            for o in orders
            if o.client_order_id not in state.orders
        ]
        venue = {p.symbol: p.qty for p in positions}
        journal = {s: p.qty for s, p in state.account.positions.items()}
        for symbol in sorted(set(venue) | set(journal)):
            held, expected = venue.get(symbol, ZERO), journal.get(symbol, ZERO)
            if held != expected:
                problems.append(f"{symbol}: the venue holds a position of {held}, the journal {expected}")
        return problems

    async def _report(self, desk: ApprovalDesk, problems: Sequence[str]) -> None:
        fresh = [p for p in problems if p not in self._reported]
        if not fresh:
            return
        self._reported.update(fresh)
        self.discrepancies += fresh
        for problem in fresh:
            log.error("venue_discrepancy", problem=problem, action="review at the venue, then re-arm")
            if self.alert is not None:
                self.alert("critical", "venue", problem)
        events = self._reducing(desk, f"the venue and the journal disagree: {fresh[0]}")
        if events:
            await desk.recorder.commit(events)

    @staticmethod
    def _reducing(desk: ApprovalDesk, reason: str) -> list[Event]:
        state = desk.state
        if state.trading_state is not TradingState.ACTIVE:
            return []
        return [TradingStateChanged(desk.clock.now_ms(), state.trading_state, TradingState.REDUCING, reason, "guard")]


class VenueDeadMan:
    """The venue's cancel-all countdown, refreshed from a task and a ccxt client of its own.

    Args:
        exchange: a ccxt client for the venue's test account, used by nothing else.
        settings: the [exchange] section (`id`, `deadman_seconds`, `timeout_seconds`).
        symbols: the markets to arm (Binance's countdown is per symbol).
    """

    def __init__(self, exchange: Any, settings: ExchangeSection, symbols: Sequence[str]) -> None:
        self._ex = exchange
        self._id = settings.id
        self._symbols = tuple(symbols)
        self.countdown_seconds = settings.deadman_seconds
        self._timeout = settings.timeout_seconds
        name = ccxt_class_name(settings.id)
        if name in COUNTDOWN_VENUES:
            self.method = "countdownCancelAll"
        elif exchange.has.get("cancelAllOrdersAfter"):
            self.method = "cancelAllOrdersAfter"
        else:
            self.method = ""
        self.refreshes = 0
        self.armed = False

    @property
    def supported(self) -> bool:
        return bool(self.method)

    async def arm(self, countdown_seconds: float | None = None) -> None:
        """Arm (or, with 0, disarm) the countdown on every symbol.

        Raises:
            ExchangeUnavailable: the venue did not confirm it.
        """
        ms = round((self.countdown_seconds if countdown_seconds is None else countdown_seconds) * 1000)
        try:
            async with asyncio.timeout(self._timeout * 2):
                if self.method == "countdownCancelAll":
                    await self._ex.load_markets()
                    for symbol in self._symbols:
                        market_id = self._ex.market(symbol)["id"]
                        await self._ex.fapiPrivatePostCountdownCancelAll({"symbol": market_id, "countdownTime": ms})
                else:
                    await self._ex.cancel_all_orders_after(ms)
        except Exception as e:
            raise ExchangeUnavailable(f"{self._id}: dead-man switch not confirmed: {' '.join(str(e).split())}") from e

    async def run(self) -> None:
        """Keep the countdown armed until cancelled; disarm it on the way out (a graceful stop)."""
        if not self.supported or self.countdown_seconds <= 0:
            log.warning(
                "venue_deadman_off",
                exchange=self._id,
                why="disabled (exchange.deadman_seconds = 0)" if self.supported else "the venue has none",
                consequence="if guard dies, its working orders stay working at the venue",
            )
            return
        period = max(self.countdown_seconds / 4, 0.25)
        failures = 0
        try:
            while True:
                try:
                    await self.arm()
                except ExchangeUnavailable as e:
                    failures += 1
                    log.error(
                        "venue_deadman_refresh_failed",
                        error=str(e),
                        failures=failures,
                        consequence=f"the venue cancels every open order {self.countdown_seconds:g} s after the "
                        "last refresh that got through",
                    )
                else:
                    if not self.armed:
                        log.info("venue_deadman_armed", countdown_seconds=self.countdown_seconds,
                                 symbols=list(self._symbols))
                    self.armed = True
                    self.refreshes += 1
                    failures = 0
                await asyncio.sleep(period if not failures else min(period, 0.25 * 2**failures))
        finally:
            if self.armed:
                try:
                    await self.arm(0)
                    log.info("venue_deadman_disarmed")
                except ExchangeUnavailable as e:
                    log.warning("venue_deadman_not_disarmed", error=str(e))


@dataclass
class Venue:
    """Everything the daemon runs for a sandbox venue."""

    broker: SandboxBroker
    watch: VenueWatch
    deadman: VenueDeadMan
    starting_balance: Decimal
    """The venue account's balance when guard connected (the journal's books start from it)."""

    async def start(self, desk: ApprovalDesk, alert: Alert | None = None) -> list[str]:
        """Right after `desk.start()`: settle what is in doubt, report what disagrees."""
        self.watch.alert = alert
        return await self.watch.start(desk)

    async def run(self, desk: ApprovalDesk) -> None:
        """The watch and the dead-man switch, until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.watch.run(desk), name="venue-watch")
            tg.create_task(self.deadman.run(), name="venue-deadman")


@contextlib.asynccontextmanager
async def open_venue(
    settings: ExchangeSection,
    specs: Mapping[str, MarketSpec],
    clock: Clock,
    *,
    sim: SimEndpoint | None = None,
    redactor: Any = None,
    environ: Mapping[str, str] = os.environ,
    rate_limit_ms: float | None = None,
) -> AsyncIterator[Venue]:
    """The sandbox broker, its watch and its dead-man switch, connected; every client closed on exit.

    Raises:
        RealMoneyRefused: the exchange has no sandbox or demo endpoints.
        BadInput: no API key in the environment.
        ExchangeUnavailable: the venue could not be reached.
    """
    async with open_sandbox_broker(
        settings, specs, clock, sim=sim, redactor=redactor, environ=environ, rate_limit_ms=rate_limit_ms
    ) as broker:
        balance = await broker.balance()
        key, secret = sandbox_credentials(settings, environ)
        # A client of its own: the refresh never waits behind orders in the broker's rate limiter.
        deadman_client = build_venue(settings, key, secret, sim, rate_limit_ms=rate_limit_ms)
        try:
            yield Venue(
                broker=broker,
                watch=VenueWatch(broker, settings),
                deadman=VenueDeadMan(deadman_client, settings, list(specs)),
                starting_balance=balance.total,
            )
        finally:
            await deadman_client.close()
