"""The sandbox venue as the daemon runs it: the broker opened on its client, and the venue's own dead-man switch.

What keeps the journal and the venue in agreement (`guard.approval.venue_watch.VenueWatch`) runs
beside the desk, next to execution; the desk builds it over this broker (`ApprovalDesk.watch_venue`).

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
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog

from guard.broker.sandbox import SandboxBroker
from guard.broker.venue_client import build_venue, sandbox_credentials
from guard.clock import Clock
from guard.config import ExchangeSection
from guard.domain import MarketSpec
from guard.errors import ExchangeUnavailable
from guard.exchanges import SimEndpoint, ccxt_class_name

log = structlog.get_logger(__name__)

COUNTDOWN_VENUES = frozenset({"binanceusdm"})
"""ccxt classes with a per-symbol countdown cancel-all (Binance USDⓈ-M `countdownCancelAll`)."""


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
                        log.info(
                            "venue_deadman_armed", countdown_seconds=self.countdown_seconds, symbols=list(self._symbols)
                        )
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
    """Everything the daemon runs for a sandbox venue (the desk watches it: `ApprovalDesk.watch_venue`)."""

    broker: SandboxBroker
    deadman: VenueDeadMan
    starting_balance: Decimal
    """The venue account's balance when guard connected (the journal's books start from it)."""
    reconcile_seconds: float
    """How often the desk's watch compares the venue with the journal."""


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
    """The sandbox broker and its dead-man switch, connected; every client closed on exit.

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
                deadman=VenueDeadMan(deadman_client, settings, list(specs)),
                starting_balance=balance.total,
                reconcile_seconds=settings.reconcile_seconds,
            )
        finally:
            await deadman_client.close()


@contextlib.asynccontextmanager
async def open_sandbox_broker(
    settings: ExchangeSection,
    specs: Mapping[str, MarketSpec],
    clock: Clock,
    *,
    sim: SimEndpoint | None = None,
    redactor: Any = None,
    environ: Mapping[str, str] = os.environ,
    rate_limit_ms: float | None = None,
) -> AsyncIterator[SandboxBroker]:
    """A connected sandbox broker, its ccxt client closed on exit (`build_venue` for the arguments).

    Raises:
        RealMoneyRefused: the exchange has no sandbox or demo endpoints.
        BadInput: no API key in the environment.
        ExchangeUnavailable: the venue could not be reached.
    """
    key, secret = sandbox_credentials(settings, environ)
    if redactor is not None:
        redactor.add(key)
        redactor.add(secret)
    private = getattr(sim, "private", None)
    if private is not None:
        private.register(key, secret)  # an embedded simulator learns the key it will be signed with
    exchange = build_venue(settings, key, secret, sim, rate_limit_ms=rate_limit_ms)
    try:
        broker = SandboxBroker(exchange, settings, specs, clock, secrets=(key, secret))
        await broker.connect()
        yield broker
    finally:
        await exchange.close()
