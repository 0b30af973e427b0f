"""The sandbox broker: approved orders to a venue's testnet or demo account through ccxt, exactly once.

A peer of the paper broker behind the same `Broker` interface. What makes a venue different is
that an answer can be lost: a timeout, a dropped connection or a 5xx leaves the order's fate
unknown ("execution status UNKNOWN", as Binance puts it), and a client order id is unique only
among *open* orders, so an order resent after the first one filled is simply a second order.
So this broker never resends. `Execution.send` has journaled the intent (client order id,
SENDING) before `submit` is called; when the answer is ambiguous, `submit` looks the order up
by its client order id, with backoff, and settles it from what the venue says. An order the
venue does not know is not concluded "never executed" until its signed timestamp has fallen
out of the venue's `recvWindow` (plus a second for clock skew): after that the venue refuses
the request, so a late arrival can no longer create it. When the lookups run out first, the
broker raises `ExchangeUnavailable`; `Execution` records the order UNKNOWN and trading goes
REDUCING, and `VenueWatch` keeps resolving it.

Fills are the venue's own trades (`fetch_my_trades` by order id, with their real fees), reported
once each: the broker counts, per order, the quantity already reported, so a poll, a lookup and
a restart can all look at the same order without reporting a fill twice.

Real money is refused: `build_venue` switches ccxt to the venue's test or demo URLs as its first
call (Binance futures: demo trading, which replaced the futures testnet) and then checks that no
API URL still points at a live host; if ccxt has no test URLs for the exchange it raises
`RealMoneyRefused` and guard does not start. API keys come from environment variables only;
they are registered with the log redactor and scrubbed from every text the broker journals.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp
import ccxt
import msgspec
import structlog

from guard.broker.base import Answer, BrokerReport, answers_at_once
from guard.broker.ledger import Account
from guard.clock import Clock
from guard.config import ExchangeSection
from guard.domain import (
    ONE,
    ZERO,
    Balance,
    Fill,
    Liquidity,
    MarketEvent,
    MarketKind,
    MarketSpec,
    OrderPurpose,
    OrderRequest,
    OrderType,
    Position,
    Side,
)
from guard.errors import BadInput, ExchangeRejected, ExchangeUnavailable, InvalidCommand, RealMoneyRefused
from guard.events import OrderAccepted, OrderCancelled, OrderFilled, OrderRejected
from guard.exchanges import (
    SIM_API_KEY,
    SIM_API_SECRET,
    SIM_ID,
    SimEndpoint,
    ccxt_class_name,
    http_status,
    make_exchange,
)

log = structlog.get_logger(__name__)

CLOCK_SKEW_SECONDS = 1.0
"""Allowance for the venue's clock running behind ours (Binance refuses timestamps more than a
second ahead of its clock, so a client that can trade at all is not further ahead than this)."""
DEMO_TRADING = frozenset({"binance", "binanceusdm", "binancecoinm"})
"""ccxt classes whose futures testnet was replaced by demo trading (`enable_demo_trading`)."""
"""The simulated exchange's built-in test key pair (`guard.sim.private`), used for "sim" when the
environment holds no keys: it protects nothing, the simulator is offline."""
CLIENT_ORDER_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
"""Binance's rule for client order ids."""
_AMBIGUOUS_CODES = frozenset({-1000, -1001, -1003, -1006, -1007, -1008, -4116})
"""Binance codes that do not say whether the order was taken: unknown/internal errors, timeouts
to the matching engine ("send status unknown"), overload, and a duplicate client id (an order
with our id is open: it can only be ours, from this very intent)."""
_NOT_FOUND_CODES = frozenset({-2011, -2013})
_CODE = re.compile(r'"code"\s*:\s*"?(-\d+)')
_SIGNATURE = re.compile(r"signature=[0-9a-fA-F]+")
_LOOKUP_BACKOFF = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
QUEUE_ALLOWANCE_SECONDS = 10.0
"""How long a call may wait in ccxt's rate limiter before the backstop timeout gives up on it."""

NOT_FOUND = "not found"
AMBIGUOUS = "ambiguous"
REFUSED = "refused"


EDGE_ERRORS = (ccxt.BaseError, aiohttp.ClientError, OSError, TimeoutError)
"""What a ccxt call can fail with: ccxt's errors, the transport's, and our own backstop timeout."""


class _LookupFailed(Exception):
    """A lookup that did not get an answer (the order may or may not exist)."""


# --- building the venue ---------------------------------------------------------------------


def sandbox_credentials(settings: ExchangeSection, environ: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """The API key and secret from `<credentials_env>_API_KEY` / `_API_SECRET`, never from a file.

    Raises:
        BadInput: when they are not set (for a venue other than the simulator).
    """
    key_name = f"{settings.credentials_env}_API_KEY"
    secret_name = f"{settings.credentials_env}_API_SECRET"
    key, secret = environ.get(key_name, ""), environ.get(secret_name, "")
    if key and secret:
        return key, secret
    if settings.id == SIM_ID:
        return SIM_API_KEY, SIM_API_SECRET
    raise BadInput(
        f"exchange.broker = \"sandbox\" needs the venue's testnet/demo API key in the environment: set {key_name} "
        f"and {secret_name} (API keys come from environment variables only, never from a config file)"
    )


def build_venue(
    settings: ExchangeSection,
    key: str,
    secret: str,
    sim: SimEndpoint | None = None,
    *,
    rate_limit_ms: float | None = None,
) -> Any:
    """A ccxt REST client for the venue's test or demo account, or `RealMoneyRefused`.

    Switching to the test URLs is the first call after construction (ccxt requires it). The
    result is then checked: every API URL must be one of the venue's test/demo URLs.

    Args:
        rate_limit_ms: ccxt's pacing per unit of request weight; None keeps ccxt's own figure for
            the venue (tests on the simulator, which meters nothing, go faster).
    """
    config: dict[str, Any] = {
        "apiKey": key,
        "secret": secret,
        "options": {
            "recvWindow": round(settings.recv_window_seconds * 1000),
            "fetchOpenOrders": {"warnWithoutSymbol": False},
            "warnOnFetchOpenOrdersWithoutSymbol": False,
        },
    }
    if rate_limit_ms is not None:
        config["rateLimit"] = rate_limit_ms
    exchange = make_exchange(
        settings.id, timeout_seconds=settings.timeout_seconds, sim=sim, streaming=False, config=config
    )
    name = ccxt_class_name(settings.id)
    demo = name in DEMO_TRADING
    test_urls = exchange.urls.get("demo" if demo else "test") or {}
    refused = RealMoneyRefused(
        f"exchange {settings.id!r}: ccxt has no sandbox or demo URLs for it, so its orders would trade real "
        "money; guard trades paper and sandbox accounts only (use broker = \"paper\", or a venue with a testnet)"
    )
    if not test_urls:
        raise refused
    try:
        if demo:
            exchange.enable_demo_trading(True)
        else:
            exchange.set_sandbox_mode(True)
    except (ccxt.NotSupported, TypeError, KeyError) as e:
        raise refused from e
    allowed = set(_urls(test_urls))
    live = sorted(u for u in _urls(exchange.urls.get("api", {})) if u not in allowed)
    if live or not allowed:
        raise RealMoneyRefused(
            f"exchange {settings.id!r}: sandbox mode left live endpoints in place ({', '.join(live[:3]) or 'none'}); "
            "guard refuses to send orders that could trade real money"
        )
    return exchange


def _urls(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _urls(item)


# --- what the venue says, as guard types -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """One order as the venue reports it (ccxt's dict, translated at this edge)."""

    client_order_id: str
    venue_id: str
    symbol: str
    side: Side
    qty: Decimal
    executed: Decimal
    status: str
    """ccxt's unified status: open, closed, canceled, expired or rejected."""
    algo: bool
    child_id: str = ""
    """A triggered conditional order's market order."""
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    trigger_price: Decimal | None = None
    reduce_only: bool = False

    @property
    def open(self) -> bool:
        return self.status == "open"


@dataclass(slots=True)
class _Tracked:
    """What this broker has reported about one order (so nothing is reported twice)."""

    request: OrderRequest
    accepted: bool = False
    executed: Decimal = ZERO
    """Quantity already reported as filled."""
    final: bool = False
    in_flight: bool = False
    deadline: float = 0.0
    """time.monotonic() after which a venue that does not know the order never will."""


# --- the broker -----------------------------------------------------------------------------


class SandboxBroker:
    """Orders to a venue's sandbox through ccxt. Build it with `open_sandbox_broker`.

    Args:
        exchange: a ccxt client from `build_venue` (this broker uses it, the caller closes it).
        settings: the [exchange] section (timeouts, recvWindow, lookups).
        specs: the markets guard trades.
        clock: stamps the events this broker reports.
        secrets: texts never to repeat in an event (the API key and secret).
    """

    name = "sandbox"
    needs_marks = False

    def __init__(
        self,
        exchange: Any,
        settings: ExchangeSection,
        specs: Mapping[str, MarketSpec],
        clock: Clock,
        *,
        secrets: Sequence[str] = (),
    ) -> None:
        self._ex = exchange
        self._settings = settings
        self._id = settings.id
        self._specs = specs
        self._clock = clock
        self._secrets = tuple(s for s in secrets if s)
        self._timeout = settings.timeout_seconds * 3 + QUEUE_ALLOWANCE_SECONDS
        """Backstop around every ccxt call: ccxt times the request out itself, but its rate limiter
        may hold a call in a queue first."""
        self._settle = settings.recv_window_seconds + CLOCK_SKEW_SECONDS
        self._tracked: dict[str, _Tracked] = {}
        self._sent: set[str] = set()
        self._venue_only: dict[str, VenueOrder] = {}
        self._leverage: dict[str, int] = {}

    # --- set-up --------------------------------------------------------------------------

    async def connect(self) -> None:
        """Load markets and check the account is one guard's arithmetic fits: one-way, isolated."""
        try:
            await self._call(self._ex.load_markets())
        except EDGE_ERRORS as e:
            raise ExchangeUnavailable(f"{self._id}: could not load markets: {self._reason(e)}") from e
        try:
            mode = await self._call(self._ex.fetch_position_mode())
            if mode.get("hedged"):
                raise ExchangeRejected(
                    f"{self._id}: the account is in hedge (dual-side) position mode; guard trades one-way mode only: "
                    "switch it at the venue"
                )
        except (ccxt.NotSupported, AttributeError):
            pass
        except ExchangeRejected:
            raise
        except EDGE_ERRORS as e:
            raise ExchangeUnavailable(f"{self._id}: could not read the position mode: {self._reason(e)}") from e
        for symbol in self._specs:
            try:
                await self._call(self._ex.set_margin_mode("isolated", symbol))
            except EDGE_ERRORS as e:
                text = self._reason(e)
                if "-4046" not in text and "No need to change" not in text:
                    log.warning("venue_margin_mode_not_set", symbol=symbol, error=text)
        log.info("sandbox_broker_connected", exchange=self._id, symbols=list(self._specs))

    # --- the Broker interface ------------------------------------------------------------

    async def submit(self, request: OrderRequest) -> Sequence[BrokerReport]:
        """Send once; on an ambiguous answer look the order up, never resend it.

        Raises:
            InvalidCommand: an order the venue could not take as asked (guard builds orders itself).
            ExchangeUnavailable: the outcome is still unknown after every lookup.
        """
        spec = self._validate(request)
        cid = request.client_order_id
        if cid in self._sent:
            return [OrderRejected(self._now(), cid, "duplicate client order id: this order was already sent")]
        self._sent.add(cid)
        tracked = self._tracked[cid] = _Tracked(request, in_flight=True)
        try:
            why = await self._set_leverage(request)
            if why:
                tracked.final = True
                return [OrderRejected(self._now(), cid, f"not sent: {why}")]
            try:
                raw = await self._call(self._create(request, spec))
            except Exception as e:
                # Anything that went wrong after the request may have left is as ambiguous as a timeout.
                if not isinstance(e, EDGE_ERRORS):
                    log.exception("order_submit_unexpected_error", client_order_id=cid)
                if _classify(e) is REFUSED:
                    tracked.final = True
                    reason = self._reason(e)
                    log.warning("order_refused_by_venue", client_order_id=cid, reason=reason)
                    return [OrderRejected(self._now(), cid, f"refused by {self._id}: {reason}")]
                tracked.deadline = time.monotonic() + self._settle
                cause = self._reason(e)
                log.warning("order_outcome_ambiguous", client_order_id=cid, error=cause)
                return await self._resolve(tracked, cause)
            return await self._settle_order(tracked, self._venue_order(raw, _is_algo(request)), strict=False)
        finally:
            tracked.in_flight = False

    async def submit_many(self, requests: Sequence[OrderRequest]) -> list[Answer]:
        return await answers_at_once(map(self.submit, requests))

    async def cancel_many(self, client_order_ids: Sequence[str], reason: str) -> list[Answer]:
        return await answers_at_once(self.cancel(cid, reason) for cid in client_order_ids)

    async def cancel(self, client_order_id: str, reason: str) -> Sequence[BrokerReport]:
        """Cancel a resting order; report how it ended (cancelled, or filled before the cancel)."""
        tracked = self._tracked.get(client_order_id)
        if tracked is None:
            foreign = self._venue_only.get(client_order_id)
            if foreign is not None:
                await self._cancel_foreign(foreign)
            return []
        if tracked.final:
            return []
        request = tracked.request
        try:
            raw = await self._call(self._ex.cancel_order(None, request.symbol, self._id_params(request)))
        except EDGE_ERRORS as e:
            if _classify(e) is REFUSED:
                raise ExchangeRejected(f"{self._id}: cancel of {client_order_id} refused: {self._reason(e)}") from e
            # Gone already (filled or cancelled), or the answer was lost: the venue says which.
            try:
                order = await self._lookup(tracked)
                if order is None:
                    raise _LookupFailed(f"the venue has no order {client_order_id}")
                reports = await self._settle_order(tracked, order, strict=True, cancel_reason=reason)
            except _LookupFailed as lookup:
                raise ExchangeUnavailable(
                    f"{self._id}: cancel of {client_order_id} not confirmed: {self._reason(e)}; {lookup}"
                ) from e
            if not tracked.final:
                raise ExchangeUnavailable(f"{self._id}: cancel of {client_order_id} not confirmed: still open") from e
            return reports
        order = self._venue_order(raw, _is_algo(request), default_status="canceled")
        return await self._settle_order(tracked, order, strict=False, cancel_reason=reason)

    async def open_orders(self) -> Sequence[OrderRequest]:
        """Orders resting at the venue now, regular and conditional, including ones guard never sent."""
        orders = await self.venue_open_orders()
        out = []
        for order in orders:
            tracked = self._tracked.get(order.client_order_id)
            if tracked is not None:
                out.append(msgspec.structs.replace(tracked.request, qty=order.qty - order.executed))
            else:
                out.append(_foreign_request(order))
        return out

    async def venue_open_orders(self, *, every_symbol: bool = False) -> list[VenueOrder]:
        """Open orders at the venue, regular and conditional, remembering those guard did not send
        (so a kill can cancel them).

        Args:
            every_symbol: ask for the whole account (Binance weighs that 40 times a one-symbol
                query, so it is for start-up); otherwise the symbols guard trades, and any where
                an order guard did not send was seen.

        Raises:
            ExchangeUnavailable: the venue did not answer.
        """
        symbols: list[str | None] = (
            [None] if every_symbol else sorted({*self._specs, *(o.symbol for o in self._venue_only.values())})
        )
        orders: list[VenueOrder] = []
        try:
            for symbol in symbols:
                regular = await self._call(self._ex.fetch_open_orders(symbol))
                algo = await self._call(self._ex.fetch_open_orders(symbol, None, None, {"trigger": True}))
                orders += [self._venue_order(o, False) for o in regular] + [self._venue_order(o, True) for o in algo]
        except EDGE_ERRORS as e:
            raise ExchangeUnavailable(f"{self._id}: could not list open orders: {self._reason(e)}") from e
        self._venue_only = {o.client_order_id: o for o in orders if o.client_order_id not in self._tracked}
        return orders

    async def positions(self) -> Sequence[Position]:
        """Open positions as the venue sees them. A failed query raises: it never means "flat"."""
        try:
            rows = await self._call(self._ex.fetch_positions())
        except EDGE_ERRORS as e:
            raise ExchangeUnavailable(f"{self._id}: could not read positions: {self._reason(e)}") from e
        out = []
        for row in rows:
            position = self._position(row)
            if position is not None:
                out.append(position)
        return out

    async def balance(self) -> Balance:
        """The quote-currency account at the venue (`free + used == total`)."""
        try:
            raw = await self._call(self._ex.fetch_balance())
        except EDGE_ERRORS as e:
            raise ExchangeUnavailable(f"{self._id}: could not read the balance: {self._reason(e)}") from e
        quote = next(iter(self._specs.values())).quote if self._specs else "USDT"
        info = raw.get("info") or {}
        for asset in info.get("assets", []) if isinstance(info, dict) else []:
            if asset.get("asset") == quote:
                free = _dec(asset.get("availableBalance"))
                used = _dec(asset.get("initialMargin"))
                return Balance(free + used, free, used)
        entry = raw.get(quote) or {}
        free, used = _dec(entry.get("free")), _dec(entry.get("used"))
        return Balance(free + used, free, used)

    async def recover(
        self,
        account: Account,
        open_orders: Sequence[tuple[OrderRequest, Decimal]],
        sent: Collection[str],
        in_doubt: Sequence[OrderRequest],
    ) -> Sequence[BrokerReport]:
        """Take the journal's view, then settle every order in doubt from what the venue says.

        The previous process may have signed its last request just before it died, so an order
        the venue does not know yet is looked up again once that request's recvWindow has
        certainly passed. An order still unresolved after its lookups stays in doubt (no
        report): `VenueWatch` marks it UNKNOWN and keeps trying.
        """
        self._sent |= set(sent)
        for request, remaining in open_orders:
            self._tracked[request.client_order_id] = _Tracked(request, accepted=True, executed=request.qty - remaining)
        deadline = time.monotonic() + self._settle
        doubtful = []
        for request in in_doubt:
            tracked = self._tracked[request.client_order_id] = _Tracked(request, deadline=deadline)
            doubtful.append(tracked)
        results: list[list[BrokerReport]] = []

        async def settle(tracked: _Tracked) -> None:
            try:
                results.append(await self._resolve(tracked, "the daemon stopped before the venue answered"))
            except ExchangeUnavailable as e:
                log.error("order_still_in_doubt", client_order_id=tracked.request.client_order_id, error=str(e))

        async with asyncio.TaskGroup() as tg:
            for tracked in doubtful:
                tg.create_task(settle(tracked))
        reports = [r for batch in results for r in batch]
        try:
            reports += await self.poll(resolve_unknown=False)
        except ExchangeUnavailable as e:
            log.error("venue_reconciliation_incomplete", error=str(e))
        log.info(
            "sandbox_broker_recovered",
            open_orders=len(open_orders),
            in_doubt=len(in_doubt),
            reports=len(reports),
        )
        return reports

    def on_market(self, event: MarketEvent) -> Sequence[BrokerReport]:
        """Nothing: the venue fills its own orders; `poll` reports what it did."""
        return ()

    # --- keeping up with the venue ---------------------------------------------------------

    def in_doubt(self) -> list[str]:
        """Client order ids whose outcome is unknown and not being sent right now."""
        return [
            cid for cid, t in self._tracked.items() if not t.accepted and not t.final and not t.in_flight
        ]

    def busy(self) -> bool:
        """True while an order is being sent (its fills may be at the venue but not yet in the journal)."""
        return any(t.in_flight for t in self._tracked.values())

    async def poll(self, *, resolve_unknown: bool = True) -> list[BrokerReport]:
        """What the venue did since the last look: fills and ends of resting orders, orders in doubt.

        Raises:
            ExchangeUnavailable: the venue's open orders could not be read.
        """
        working = [t for t in self._tracked.values() if t.accepted and not t.final and not t.in_flight]
        reports: list[BrokerReport] = []
        if working:
            venue = {o.client_order_id: o for o in await self.venue_open_orders()}
            for tracked in working:
                order = venue.get(tracked.request.client_order_id)
                try:
                    if order is not None and not (order.algo and order.child_id):
                        if order.executed > tracked.executed:
                            reports += await self._settle_order(tracked, order, strict=True)
                        continue
                    # No longer open: filled, cancelled, expired or triggered. The venue says which.
                    found = await self._lookup(tracked)
                    if found is not None:
                        reports += await self._settle_order(tracked, found, strict=True)
                except _LookupFailed as e:
                    log.warning("venue_poll_incomplete", client_order_id=tracked.request.client_order_id, error=str(e))
        if resolve_unknown:
            for cid in self.in_doubt():
                reports += await self.resolve(cid)
        return reports

    async def resolve(self, client_order_id: str) -> list[BrokerReport]:
        """One more look at an order in doubt; reports when the venue answers, [] when it still does not."""
        tracked = self._tracked[client_order_id]
        try:
            order = await self._lookup(tracked)
            if order is not None:
                log.info("order_resolved", client_order_id=client_order_id, status=order.status)
                return await self._settle_order(tracked, order, strict=True)
        except _LookupFailed as e:
            log.warning("order_still_in_doubt", client_order_id=client_order_id, error=str(e))
            return []
        if time.monotonic() < tracked.deadline:
            return []
        tracked.final = True
        log.info("order_resolved", client_order_id=client_order_id, status="never accepted")
        return [OrderRejected(self._now(), client_order_id, self._never_accepted(client_order_id))]

    # --- resolution ----------------------------------------------------------------------

    async def _resolve(self, tracked: _Tracked, cause: str) -> list[BrokerReport]:
        """Look an order up until the venue says what became of it; never send it again."""
        cid = tracked.request.client_order_id
        last = cause
        lookups = self._settings.order_lookups
        for attempt in range(lookups):
            await asyncio.sleep(_LOOKUP_BACKOFF[min(attempt, len(_LOOKUP_BACKOFF) - 1)])
            try:
                order = await self._lookup(tracked)
                if order is not None:
                    log.info("order_resolved", client_order_id=cid, status=order.status, lookups=attempt + 1)
                    return await self._settle_order(tracked, order, strict=True)
            except _LookupFailed as e:
                last = str(e)
                continue
            wait = tracked.deadline - time.monotonic()
            if wait <= 0:
                tracked.final = True
                log.info("order_resolved", client_order_id=cid, status="never accepted", lookups=attempt + 1)
                return [OrderRejected(self._now(), cid, self._never_accepted(cid, cause))]
            if attempt + 1 < lookups:
                # Not there (yet): a late request may still be taken until its recvWindow passes.
                await asyncio.sleep(wait)
        raise ExchangeUnavailable(f"{self._id}: order {cid}: outcome unknown after {lookups} lookups ({last})")

    def _never_accepted(self, cid: str, cause: str = "") -> str:
        why = f" after: {cause}" if cause else ""
        return (
            f"not executed: {self._id} has no order {cid} and its request can no longer be accepted "
            f"(recvWindow passed){why}"
        )

    async def _lookup(self, tracked: _Tracked) -> VenueOrder | None:
        """The venue's record of an order by client order id; None when the venue has none."""
        request = tracked.request
        try:
            raw = await self._call(self._ex.fetch_order(None, request.symbol, self._id_params(request)))
        except EDGE_ERRORS as e:
            if _classify(e) is NOT_FOUND:
                return None
            raise _LookupFailed(self._reason(e)) from e
        return self._venue_order(raw, _is_algo(request))

    async def _settle_order(
        self, tracked: _Tracked, order: VenueOrder, *, strict: bool, cancel_reason: str = ""
    ) -> list[BrokerReport]:
        """Turn the venue's record of an order into the reports not yet made, once each.

        Args:
            strict: raise `_LookupFailed` when the fills cannot be read (a lookup retries);
                otherwise report what is known and leave the fills to the next poll.
        """
        request = tracked.request
        cid = request.client_order_id
        fills_from = order
        if order.algo and order.child_id:
            try:
                raw = await self._call(self._ex.fetch_order(order.child_id, request.symbol))
                fills_from = self._venue_order(raw, False)
            except EDGE_ERRORS as e:
                if strict:
                    raise _LookupFailed(f"triggered order {order.child_id}: {self._reason(e)}") from e
                fills_from = replace(order, status="open")
        new_fills: list[Fill] = []
        if fills_from.executed > tracked.executed:
            try:
                trades = await self._call(
                    self._ex.fetch_my_trades(request.symbol, None, None, {"orderId": fills_from.venue_id})
                )
                new_fills = self._new_fills(tracked, trades)
            except EDGE_ERRORS as e:
                if strict:
                    raise _LookupFailed(f"trades of {cid}: {self._reason(e)}") from e
                log.warning("venue_fills_deferred", client_order_id=cid, error=self._reason(e))
        # Everything below is synchronous: what is reported and what is remembered change together.
        now = self._now()
        reports: list[BrokerReport] = []
        if order.status == "rejected" and not tracked.accepted and order.executed == 0:
            tracked.final = True
            return [OrderRejected(now, cid, f"rejected by {self._id}")]
        if not tracked.accepted:
            tracked.accepted = True
            reports.append(OrderAccepted(now, cid, order.venue_id))
        for fill in new_fills:
            tracked.executed += fill.qty
            reports.append(OrderFilled(now, fill, request.qty - tracked.executed))
        if tracked.final:
            return reports
        ended = fills_from.status in ("closed", "canceled", "expired", "rejected")
        if ended and tracked.executed >= fills_from.executed:
            tracked.final = True
            if tracked.executed < request.qty:
                why = cancel_reason or f"{fills_from.status} at {self._id}"
                reports.append(OrderCancelled(now, cid, f"{why}: {request.qty - tracked.executed} not filled"))
        return reports

    def _new_fills(self, tracked: _Tracked, trades: Sequence[dict[str, Any]]) -> list[Fill]:
        """The venue's trades of an order not yet reported (the first `executed` of quantity was)."""
        request = tracked.request
        spec = self._specs.get(request.symbol)
        quote = spec.quote if spec else "USDT"
        skip = tracked.executed
        fills = []
        for trade in sorted(trades, key=lambda t: (t.get("timestamp") or 0, _int_id(t.get("id")))):
            info = trade.get("info") or {}
            qty = _dec(info.get("qty", trade.get("amount")))
            if skip >= qty:
                skip -= qty
                continue
            qty -= skip
            skip = ZERO
            fee_info = trade.get("fee") or {}
            fee = _dec(info.get("commission", fee_info.get("cost")))
            asset = info.get("commissionAsset", fee_info.get("currency")) or quote
            if asset != quote:
                log.warning("venue_fee_not_in_quote", client_order_id=request.client_order_id, asset=asset)
                fee = ZERO
            maker = trade.get("takerOrMaker") == "maker"
            fills.append(
                Fill(
                    client_order_id=request.client_order_id,
                    fill_id=f"{self._id}-{trade.get('id')}",
                    symbol=request.symbol,
                    side=request.side,
                    qty=qty,
                    price=_dec(info.get("price", trade.get("price"))),
                    fee=fee,
                    liquidity=Liquidity.MAKER if maker else Liquidity.TAKER,
                    timestamp=int(trade.get("timestamp") or self._now()),
                )
            )
        return fills

    # --- orders --------------------------------------------------------------------------

    def _validate(self, request: OrderRequest) -> MarketSpec:
        spec = self._specs.get(request.symbol)
        if spec is None:
            raise InvalidCommand(f"unknown symbol {request.symbol!r}; known: {', '.join(self._specs)}")
        if spec.kind is not MarketKind.LINEAR:
            raise InvalidCommand(f"{request.symbol}: the sandbox broker trades linear perpetuals only")
        if not CLIENT_ORDER_ID.match(request.client_order_id):
            raise InvalidCommand(f"client order id {request.client_order_id!r} is not one the venue accepts")
        if not request.qty.is_finite() or request.qty <= 0 or request.qty % spec.step_size != 0:
            raise InvalidCommand(f"order quantity {request.qty} is not a positive multiple of {spec.step_size}")
        if request.order_type is OrderType.LIMIT and request.limit_price is None:
            raise InvalidCommand("a limit order needs a limit price")
        if _is_algo(request) and request.trigger_price is None:
            raise InvalidCommand(f"a {request.order_type} order needs a trigger price")
        if not request.leverage.is_finite() or request.leverage < ONE:
            raise InvalidCommand(f"leverage must be at least 1, got {request.leverage}")
        return spec

    async def _set_leverage(self, request: OrderRequest) -> str:
        """Set the symbol's leverage at the venue before an order that opens; "" or why not.

        Venues take whole-number leverage: a fraction is rounded down (less risk, more margin).
        """
        if request.reduce_only:
            return ""
        leverage = int(request.leverage)
        if self._leverage.get(request.symbol) == leverage:
            return ""
        try:
            await self._call(self._ex.set_leverage(leverage, request.symbol))
        except EDGE_ERRORS as e:
            return f"could not set {leverage}x leverage on {request.symbol}: {self._reason(e)}"
        self._leverage[request.symbol] = leverage
        return ""

    def _create(self, request: OrderRequest, spec: MarketSpec) -> Any:
        params: dict[str, Any] = {"clientOrderId": request.client_order_id}
        if request.reduce_only:
            params["reduceOnly"] = True
        price = None
        kind = "market"
        if request.order_type is OrderType.LIMIT:
            kind = "limit"
            price = float(request.limit_price)  # type: ignore[arg-type]
            params["timeInForce"] = "GTC"
        elif request.order_type is OrderType.STOP_MARKET:
            params["triggerPrice"] = float(request.trigger_price)  # type: ignore[arg-type]
        elif request.order_type is OrderType.TAKE_PROFIT_MARKET:
            params["takeProfitPrice"] = float(request.trigger_price)  # type: ignore[arg-type]
        return self._ex.create_order(request.symbol, kind, request.side.value, float(request.qty), price, params)

    def _id_params(self, request: OrderRequest) -> dict[str, Any]:
        params: dict[str, Any] = {"clientOrderId": request.client_order_id}
        if _is_algo(request):
            params["trigger"] = True
        return params

    async def _cancel_foreign(self, order: VenueOrder) -> None:
        """Cancel a venue order guard never sent (the kill switch cancels everything)."""
        params: dict[str, Any] = {"clientOrderId": order.client_order_id}
        if order.algo:
            params["trigger"] = True
        try:
            await self._call(self._ex.cancel_order(None, order.symbol, params))
        except EDGE_ERRORS as e:
            if _classify(e) is not NOT_FOUND:
                raise ExchangeUnavailable(
                    f"{self._id}: cancel of venue order {order.client_order_id} failed: {self._reason(e)}"
                ) from e
        log.warning("venue_order_cancelled", client_order_id=order.client_order_id, symbol=order.symbol,
                    note="an order guard did not send")

    def _venue_order(self, raw: dict[str, Any], algo: bool, default_status: str = "") -> VenueOrder:
        info = raw.get("info") or {}
        qty = _dec(info.get("origQty", info.get("quantity", raw.get("amount"))))
        order_type = {
            "limit": OrderType.LIMIT,
            "stop_market": OrderType.STOP_MARKET,
            "take_profit_market": OrderType.TAKE_PROFIT_MARKET,
        }.get(str(raw.get("type") or info.get("orderType") or "").lower(), OrderType.MARKET)
        side = Side.BUY if str(raw.get("side") or info.get("side") or "").lower() == "buy" else Side.SELL
        return VenueOrder(
            client_order_id=str(raw.get("clientOrderId") or info.get("clientAlgoId") or ""),
            venue_id=str(raw.get("id") or info.get("orderId") or info.get("algoId") or ""),
            symbol=str(raw.get("symbol") or ""),
            side=side,
            qty=qty,
            executed=_dec(info.get("executedQty", raw.get("filled"))),
            status=str(raw.get("status") or default_status or "open"),
            algo=algo,
            child_id=str(info.get("actualOrderId") or "") if algo else "",
            order_type=order_type,
            limit_price=_dec(raw.get("price")) or None,
            trigger_price=_dec(raw.get("triggerPrice")) or None,
            reduce_only=bool(raw.get("reduceOnly")),
        )

    def _position(self, row: dict[str, Any]) -> Position | None:
        info = row.get("info") or {}
        qty = _dec(info.get("positionAmt"))
        if qty == 0:
            contracts = _dec(row.get("contracts"))
            qty = contracts if row.get("side") == "long" else -contracts
        if qty == 0:
            return None
        symbol = str(row.get("symbol"))
        notional = abs(_dec(info.get("notional", row.get("notional"))))
        initial = _dec(info.get("initialMargin", row.get("initialMargin")))
        leverage = _dec(info.get("leverage", row.get("leverage")))
        if leverage <= 0:
            leverage = (notional / initial).to_integral_value() if initial > 0 else ONE
        margin = _dec(info.get("isolatedWallet")) or initial
        liquidation = _dec(info.get("liquidationPrice", row.get("liquidationPrice")))
        spec = self._specs.get(symbol)
        return Position(
            symbol=symbol,
            kind=spec.kind if spec else MarketKind.LINEAR,
            qty=qty,
            entry_price=_dec(info.get("entryPrice", row.get("entryPrice"))),
            leverage=max(leverage, ONE),
            margin=margin,
            liquidation_price=liquidation if liquidation > 0 else None,
        )

    # --- plumbing ------------------------------------------------------------------------

    async def _call(self, awaitable: Any) -> Any:
        """Await a ccxt call with a backstop timeout (a timeout is an ambiguous outcome, like ccxt's)."""
        async with asyncio.timeout(self._timeout):
            return await awaitable

    def _now(self) -> int:
        return self._clock.now_ms()

    def _reason(self, error: BaseException) -> str:
        """An error as text fit for a journal event: one line, no key, no secret, no signature."""
        text = f"{type(error).__name__}: {' '.join(str(error).split())}"
        if isinstance(error, TimeoutError):
            text = f"no answer within {self._timeout:g} s"
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        text = _SIGNATURE.sub("signature=[redacted]", text)
        return text if len(text) <= 300 else text[:297] + "..."


def _classify(error: BaseException) -> str:
    """Whether an error proves the request was refused, proves the order is unknown, or proves nothing."""
    if isinstance(error, TimeoutError):
        return AMBIGUOUS
    match = _CODE.search(str(error))
    code = int(match.group(1)) if match else None
    if isinstance(error, ccxt.OrderNotFound) or code in _NOT_FOUND_CODES:
        return NOT_FOUND
    if code in _AMBIGUOUS_CODES:
        return AMBIGUOUS
    if code is not None and code <= -1010:
        return REFUSED  # Binance's request and order errors: the same request fails again, nothing was made
    status = http_status(error)
    if status is not None and (status >= 500 or status in (418, 429)):
        return AMBIGUOUS
    if isinstance(error, (ccxt.NetworkError, aiohttp.ClientError, OSError)):
        return AMBIGUOUS
    if isinstance(error, ccxt.OperationFailed) and not isinstance(error, ccxt.ExchangeError):
        return AMBIGUOUS
    if isinstance(error, ccxt.ExchangeError):
        return REFUSED
    return AMBIGUOUS


def _is_algo(request: OrderRequest) -> bool:
    return request.order_type in (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET)


def _foreign_request(order: VenueOrder) -> OrderRequest:
    """A venue order guard never sent, in guard's shape (shown and cancelled, never adopted)."""
    return OrderRequest(
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        qty=order.qty - order.executed,
        order_type=order.order_type,
        purpose=OrderPurpose.ENTRY,
        limit_price=order.limit_price,
        trigger_price=order.trigger_price,
        reduce_only=order.reduce_only,
    )


def _dec(value: Any) -> Decimal:
    if value is None or value == "":
        return ZERO
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return ZERO
    return result if result.is_finite() else ZERO


def _int_id(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


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
