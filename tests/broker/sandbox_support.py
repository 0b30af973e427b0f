"""Real components for sandbox-broker tests: the simulated exchange on loopback, ccxt's own binanceusdm
pointed at it, a desk on a real journal, and the injected-fault runs shared with `python -m bench
venue_faults` (0 duplicate and 0 lost orders across ambiguous outcomes)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from guard.approval.desk import REARM_PHRASE, ApprovalDesk, DeskSettings
from guard.broker.sandbox import SandboxBroker
from guard.broker.sandbox_venue import open_sandbox_broker
from guard.clock import Clock, SystemClock
from guard.config import Config, ExchangeSection, SimSection, config_from_dict
from guard.domain import MarketSpec, MarkPrice, OrderPurpose, OrderRequest, OrderStatus, OrderType, Side, TradingState
from guard.exchanges import SIM_API_KEY, make_exchange
from guard.journal.store import Journal
from guard.markets.venue import load_specs
from guard.sim.private_faults import PrivateFault
from guard.sim.server import SimExchange

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
SYMBOLS = (BTC, ETH)
SIZES = {BTC: Decimal("0.002"), ETH: Decimal("0.05")}
"""Small orders (about 200 USDT each): hundreds of runs stay well inside a 10,000 USDT demo account."""

FAST = ExchangeSection(
    id="sim",
    symbols=SYMBOLS,
    broker="sandbox",
    timeout_seconds=0.4,
    recv_window_seconds=0.8,
    order_lookups=5,
    deadman_seconds=2.0,
    reconcile_seconds=0.2,
)
"""Sub-second timeouts so a fault costs a second or two, not the real venue's ten."""
SLOW_ANSWERS = msgspec.structs.replace(FAST, timeout_seconds=10.0, recv_window_seconds=3.0)
"""For crash tests: the client waits long for an answer, so the process dies while waiting."""
RATE_LIMIT_MS = 1.0
"""ccxt's pacing on the simulator, which meters no request weight (its 429 storms are scripted)."""
CONFIG: Config = config_from_dict(
    {
        "exchange": {"id": "sim", "symbols": list(SYMBOLS), "broker": "sandbox"},
        "risk": {"max_orders_per_minute": 10_000, "daily_loss_limit": 1_000_000, "max_leverage": 5},
    }
)


@contextlib.asynccontextmanager
async def simulated_exchange(speed: float = 10.0) -> AsyncIterator[SimExchange]:
    """The simulated exchange on a free loopback port, on a calm market."""
    async with SimExchange(SimSection(speed=speed, history_bars=120, scenario="calm"), SYMBOLS) as sim:
        yield sim


async def venue_specs(sim: SimExchange, settings: ExchangeSection = FAST) -> dict[str, MarketSpec]:
    """The markets as the daemon's feed loads them (public ccxt, built-in brackets)."""
    exchange = make_exchange("sim", timeout_seconds=5.0, sim=sim, streaming=False)
    try:
        return await load_specs(exchange, "sim", settings.symbols, 5.0)
    finally:
        await exchange.close()


@contextlib.asynccontextmanager
async def sandbox_desk(
    journal_path: Path,
    sim: SimExchange,
    *,
    settings: ExchangeSection = FAST,
    config: Config = CONFIG,
    clock: Clock | None = None,
    environ: Mapping[str, str] | None = None,
    redactor: Any = None,
) -> AsyncIterator[ApprovalDesk]:
    """A started desk on a real journal, sending through the sandbox broker to the simulator."""
    clock = clock or SystemClock()
    specs = await venue_specs(sim, settings)
    async with open_sandbox_broker(
        settings, specs, clock, sim=sim, environ=environ or {}, redactor=redactor, rate_limit_ms=RATE_LIMIT_MS
    ) as broker:
        journal = Journal(journal_path)
        try:
            desk = ApprovalDesk(journal, broker, specs, DeskSettings.from_config(config), clock)
            await desk.start()
            yield desk
        finally:
            journal.close()


def broker_of(desk: ApprovalDesk) -> SandboxBroker:
    broker = desk.broker
    assert isinstance(broker, SandboxBroker)
    return broker


async def set_marks(desk: ApprovalDesk, sim: SimExchange) -> None:
    """Feed the desk the simulator's current mark of every symbol (approvals need a price)."""
    now = sim.market.sync()
    for j, symbol in enumerate(sim.market.symbols):
        await desk.on_market(MarkPrice(symbol, desk.clock.now_ms(), sim.market.mark(j, now)[0]))


def order(
    cid: str,
    symbol: str = BTC,
    side: Side = Side.BUY,
    qty: Decimal | None = None,
    *,
    order_type: OrderType = OrderType.MARKET,
    limit_price: Decimal | None = None,
    trigger_price: Decimal | None = None,
    reduce_only: bool = False,
    purpose: OrderPurpose = OrderPurpose.CLOSE,
) -> OrderRequest:
    return OrderRequest(
        client_order_id=cid,
        symbol=symbol,
        side=side,
        qty=qty if qty is not None else SIZES[symbol],
        order_type=order_type,
        purpose=purpose,
        leverage=Decimal(2),
        limit_price=limit_price,
        trigger_price=trigger_price,
        reduce_only=reduce_only,
    )


async def wait_until_resolved(desk: ApprovalDesk, within: float = 15.0) -> None:
    """Poll the venue (as the daemon's watch does) until no order is in doubt."""
    broker = broker_of(desk)
    async with asyncio.timeout(within):
        while desk.state.orders_in_doubt() or broker.in_doubt():
            await desk.execution.record_reports(await broker.poll())
            await asyncio.sleep(0.1)


# --- injected ambiguous outcomes ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Injection:
    """One way to make an order's outcome ambiguous (or not), and how the venue should end up."""

    name: str
    fault: PrivateFault | None
    hold_seconds: float = 0.0
    count: int = 1


INJECTIONS = (
    Injection("clean", None),
    Injection("timeout after accept", PrivateFault.TIMEOUT_AFTER_ACCEPT, hold_seconds=1.0),
    Injection("held, accepted late", PrivateFault.TIMEOUT_BEFORE_ACCEPT, hold_seconds=0.6),
    Injection("held past recvWindow", PrivateFault.TIMEOUT_BEFORE_ACCEPT, hold_seconds=1.2),
    Injection("5xx after accept", PrivateFault.ERROR_AFTER_ACCEPT),
    Injection("5xx before accept", PrivateFault.ERROR_BEFORE_ACCEPT),
    Injection("duplicate client id", PrivateFault.DUPLICATE_ID),
    Injection("partial fill", PrivateFault.PARTIAL_FILL),
    Injection("5xx, lookups fail twice", PrivateFault.ERROR_AFTER_ACCEPT),
    Injection("timeout, lookups fail (unknown)", PrivateFault.TIMEOUT_AFTER_ACCEPT, hold_seconds=1.0),
)
_LOOKUP_FAILURES = {"5xx, lookups fail twice": 2, "timeout, lookups fail (unknown)": 12}


@dataclass
class FaultRuns:
    """What a batch of injected-fault runs did, and every violation found."""

    runs: int = 0
    by_injection: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    lost: int = 0
    unresolved: int = 0
    unknown_then_resolved: int = 0
    violations: list[str] = field(default_factory=list)


async def run_fault_batch(
    desk: ApprovalDesk, sim: SimExchange, runs: int, *, seed: int, start: int = 0, concurrency: int = 25
) -> FaultRuns:
    """Send `runs` orders, each with an injected fault, `concurrency` at a time; then audit venue vs journal.

    Every order goes the only road there is (`Execution.send`: intent journaled first). Orders
    left UNKNOWN are resolved afterwards as the daemon's watch would, then every client order id
    is checked: created at most once at the venue (no duplicate), and the journal's outcome is
    the venue's (no lost order: a venue order the journal calls not executed, or fills that differ).
    """
    rng = random.Random(seed)
    outcome = FaultRuns()
    jid = desk.state.journal_id
    plans = []
    for i in range(start, start + runs):
        injection = INJECTIONS[i % len(INJECTIONS)] if i % 7 else rng.choice(INJECTIONS)
        symbol = SYMBOLS[i % 2]
        position = desk.state.account.position(symbol)
        # Lean against the position so hundreds of runs never run out of margin.
        side = Side.SELL if position is not None and position.qty > 0 else Side.BUY
        if rng.random() < 0.5:
            side = side.opposite
        plans.append((f"g{jid}-F{i}", symbol, side, injection))
    for first in range(0, len(plans), concurrency):
        batch = plans[first : first + concurrency]
        for cid, _, _, injection in batch:
            if injection.fault is not None:
                sim.private.inject(injection.fault, cid, count=injection.count, hold_seconds=injection.hold_seconds)
            failures = _LOOKUP_FAILURES.get(injection.name)
            if failures:
                sim.private.inject(PrivateFault.LOOKUP_ERRORS, cid, count=failures)
        results = await asyncio.gather(
            *(desk.execution.send(order(cid, symbol, side)) for cid, symbol, side, _ in batch), return_exceptions=True
        )
        for (cid, _, _, injection), result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                outcome.violations.append(f"{cid} ({injection.name}): send raised {result!r}")
            outcome.by_injection[injection.name] = outcome.by_injection.get(injection.name, 0) + 1
        outcome.unknown_then_resolved += sum(
            1 for cid, *_ in batch if desk.state.orders[cid].status is OrderStatus.UNKNOWN
        )
        sim.private.clear_faults()
        try:
            await wait_until_resolved(desk)
        except TimeoutError:
            pass  # counted below as unresolved
        if desk.state.trading_state is not TradingState.ACTIVE:
            await desk.rearm("faults", REARM_PHRASE, "next batch")
        outcome.runs += len(batch)
    _audit(desk, sim, [cid for cid, *_ in plans], outcome)
    return outcome


def _audit(desk: ApprovalDesk, sim: SimExchange, cids: list[str], outcome: FaultRuns) -> None:
    books = sim.private.books
    acct = books.account(SIM_API_KEY)
    for cid in cids:
        created = books.orders_created(SIM_API_KEY, cid)
        record = desk.state.orders.get(cid)
        if created > 1:
            outcome.duplicates += 1
            outcome.violations.append(f"{cid}: {created} orders at the venue")
        if record is None:
            outcome.violations.append(f"{cid}: no intent in the journal")
            continue
        if record.status in (OrderStatus.SENDING, OrderStatus.UNKNOWN):
            outcome.unresolved += 1
            outcome.violations.append(f"{cid}: still {record.status.value}")
            continue
        venue = acct.find(algo=False, client_id=cid)
        executed = venue.executed if venue is not None else Decimal(0)
        if venue is not None and record.status is OrderStatus.REJECTED:
            outcome.lost += 1
            outcome.violations.append(f"{cid}: the venue has it ({venue.status}), the journal says rejected")
        elif record.filled != executed:
            outcome.lost += 1
            outcome.violations.append(f"{cid}: the venue filled {executed}, the journal {record.filled}")
    journal = {s: p.qty for s, p in desk.state.account.positions.items()}
    venue_positions = {books.market.symbols[j]: p.qty for j, p in acct.positions.items() if p.qty != 0}
    if journal != venue_positions:
        outcome.violations.append(f"positions differ: journal {journal}, venue {venue_positions}")
