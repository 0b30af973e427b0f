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

Real money is refused before this broker exists (`guard.broker.venue_client.build_venue`). API
keys come from environment variables only; they are registered with the log redactor and scrubbed
from every text the broker journals (`guard.broker.venue_calls`). What the venue says becomes guard
types in `guard.broker.venue_records`; what was reported of each order is `guard.broker.reported`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

import msgspec
import structlog

from guard.broker.base import Answer, BrokerReport, answers_at_once
from guard.broker.ledger import Account
from guard.broker.reported import TrackedOrder, settle
from guard.broker.venue_calls import EDGE_ERRORS, NOT_FOUND, REFUSED, VenueCalls, classify
from guard.broker.venue_client import prepare_account
from guard.broker.venue_records import (
    VenueOrder,
    checked_order,
    create_order_args,
    foreign_request,
    id_params,
    is_algo,
    venue_balance,
    venue_fills,
    venue_order,
    venue_position,
)
from guard.clock import Clock
from guard.config import ExchangeSection
from guard.domain import Balance, Fill, MarketEvent, MarketSpec, OrderRequest, Position
from guard.errors import ExchangeRejected, ExchangeUnavailable
from guard.events import OrderRejected

log = structlog.get_logger(__name__)

CLOCK_SKEW_SECONDS = 1.0
"""Allowance for the venue's clock running behind ours (Binance refuses timestamps more than a
second ahead of its clock, so a client that can trade at all is not further ahead than this)."""
_LOOKUP_BACKOFF = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
QUEUE_ALLOWANCE_SECONDS = 10.0
"""How long a call may wait in ccxt's rate limiter before the backstop timeout gives up on it."""


class _LookupFailed(Exception):
    """A lookup that did not get an answer (the order may or may not exist)."""


# --- the broker -----------------------------------------------------------------------------


class SandboxBroker:
    """Orders to a venue's sandbox through ccxt; `guard.broker.sandbox_venue.open_sandbox_broker` builds one.

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
        self._call = VenueCalls(settings.id, settings.timeout_seconds * 3 + QUEUE_ALLOWANCE_SECONDS, secrets)
        self._settle = settings.recv_window_seconds + CLOCK_SKEW_SECONDS
        self._tracked: dict[str, TrackedOrder] = {}
        self._sent: set[str] = set()
        self._venue_only: dict[str, VenueOrder] = {}
        self._leverage: dict[str, int] = {}

    # --- set-up --------------------------------------------------------------------------

    async def connect(self) -> None:
        """Load markets and check the account is one guard's arithmetic fits (`prepare_account`)."""
        await prepare_account(self._ex, self._call, self._specs)

    # --- the Broker interface ------------------------------------------------------------

    async def submit(self, request: OrderRequest) -> Sequence[BrokerReport]:
        """Send once; on an ambiguous answer look the order up, never resend it.

        Raises:
            InvalidCommand: an order the venue could not take as asked (guard builds orders itself).
            ExchangeUnavailable: the outcome is still unknown after every lookup.
        """
        checked_order(request, self._specs)
        cid = request.client_order_id
        if cid in self._sent:
            return [OrderRejected(self._now(), cid, "duplicate client order id: this order was already sent")]
        self._sent.add(cid)
        tracked = self._tracked[cid] = TrackedOrder(request, in_flight=True)
        try:
            why = await self._set_leverage(request)
            if why:
                tracked.final = True
                return [OrderRejected(self._now(), cid, f"not sent: {why}")]
            try:
                raw = await self._call(self._ex.create_order(*create_order_args(request)))
            except Exception as e:
                # Anything that went wrong after the request may have left is as ambiguous as a timeout.
                if not isinstance(e, EDGE_ERRORS):
                    log.exception("order_submit_unexpected_error", client_order_id=cid)
                if classify(e) is REFUSED:
                    tracked.final = True
                    reason = self._call.reason(e)
                    log.warning("order_refused_by_venue", client_order_id=cid, reason=reason)
                    return [OrderRejected(self._now(), cid, f"refused by {self._id}: {reason}")]
                tracked.deadline = time.monotonic() + self._settle
                cause = self._call.reason(e)
                log.warning("order_outcome_ambiguous", client_order_id=cid, error=cause)
                return await self._resolve(tracked, cause)
            return await self._settle_order(tracked, venue_order(raw, is_algo(request)), strict=False)
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
            params = id_params(request.client_order_id, is_algo(request))
            raw = await self._call(self._ex.cancel_order(None, request.symbol, params))
        except EDGE_ERRORS as e:
            if classify(e) is REFUSED:
                why = self._call.reason(e)
                raise ExchangeRejected(f"{self._id}: cancel of {client_order_id} refused: {why}") from e
            # Gone already (filled or cancelled), or the answer was lost: the venue says which.
            try:
                order = await self._lookup(tracked)
                if order is None:
                    raise _LookupFailed(f"the venue has no order {client_order_id}")
                reports = await self._settle_order(tracked, order, strict=True, cancel_reason=reason)
            except _LookupFailed as lookup:
                raise ExchangeUnavailable(
                    f"{self._id}: cancel of {client_order_id} not confirmed: {self._call.reason(e)}; {lookup}"
                ) from e
            if not tracked.final:
                raise ExchangeUnavailable(f"{self._id}: cancel of {client_order_id} not confirmed: still open") from e
            return reports
        order = venue_order(raw, is_algo(request), default_status="canceled")
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
                out.append(foreign_request(order))
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
        symbols: Sequence[str | None] = (
            [None] if every_symbol else sorted({*self._specs, *(o.symbol for o in self._venue_only.values())})
        )
        orders: list[VenueOrder] = []
        try:
            for symbol in symbols:
                regular = await self._call(self._ex.fetch_open_orders(symbol))
                algo = await self._call(self._ex.fetch_open_orders(symbol, None, None, {"trigger": True}))
                orders += [venue_order(o, False) for o in regular] + [venue_order(o, True) for o in algo]
        except EDGE_ERRORS as e:
            raise ExchangeUnavailable(f"{self._id}: could not list open orders: {self._call.reason(e)}") from e
        self._venue_only = {o.client_order_id: o for o in orders if o.client_order_id not in self._tracked}
        return orders

    async def positions(self) -> Sequence[Position]:
        """Open positions as the venue sees them. A failed query raises: it never means "flat"."""
        try:
            rows = await self._call(self._ex.fetch_positions())
        except EDGE_ERRORS as e:
            raise ExchangeUnavailable(f"{self._id}: could not read positions: {self._call.reason(e)}") from e
        out = []
        for row in rows:
            position = venue_position(row, self._specs)
            if position is not None:
                out.append(position)
        return out

    async def balance(self) -> Balance:
        """The quote-currency account at the venue (`free + used == total`)."""
        try:
            raw = await self._call(self._ex.fetch_balance())
        except EDGE_ERRORS as e:
            raise ExchangeUnavailable(f"{self._id}: could not read the balance: {self._call.reason(e)}") from e
        quote = next(iter(self._specs.values())).quote if self._specs else "USDT"
        return venue_balance(raw, quote)

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
            executed = request.qty - remaining
            self._tracked[request.client_order_id] = TrackedOrder(request, accepted=True, executed=executed)
        deadline = time.monotonic() + self._settle
        doubtful = []
        for request in in_doubt:
            tracked = self._tracked[request.client_order_id] = TrackedOrder(request, deadline=deadline)
            doubtful.append(tracked)
        results: list[list[BrokerReport]] = []

        async def settle(tracked: TrackedOrder) -> None:
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
        return [cid for cid, t in self._tracked.items() if not t.accepted and not t.final and not t.in_flight]

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

    async def _resolve(self, tracked: TrackedOrder, cause: str) -> list[BrokerReport]:
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

    async def _lookup(self, tracked: TrackedOrder) -> VenueOrder | None:
        """The venue's record of an order by client order id; None when the venue has none."""
        request = tracked.request
        try:
            params = id_params(request.client_order_id, is_algo(request))
            raw = await self._call(self._ex.fetch_order(None, request.symbol, params))
        except EDGE_ERRORS as e:
            if classify(e) is NOT_FOUND:
                return None
            raise _LookupFailed(self._call.reason(e)) from e
        return venue_order(raw, is_algo(request))

    async def _settle_order(
        self, tracked: TrackedOrder, order: VenueOrder, *, strict: bool, cancel_reason: str = ""
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
                fills_from = venue_order(raw, False)
            except EDGE_ERRORS as e:
                if strict:
                    raise _LookupFailed(f"triggered order {order.child_id}: {self._call.reason(e)}") from e
                fills_from = replace(order, status="open")
        new_fills: list[Fill] = []
        if fills_from.executed > tracked.executed:
            try:
                trades = await self._call(
                    self._ex.fetch_my_trades(request.symbol, None, None, {"orderId": fills_from.venue_id})
                )
                spec = self._specs.get(request.symbol)
                new_fills = venue_fills(
                    request,
                    tracked.executed,
                    trades,
                    exchange_id=self._id,
                    quote=spec.quote if spec else "USDT",
                    now_ms=self._now(),
                )
            except EDGE_ERRORS as e:
                if strict:
                    raise _LookupFailed(f"trades of {cid}: {self._call.reason(e)}") from e
                log.warning("venue_fills_deferred", client_order_id=cid, error=self._call.reason(e))
        # Synchronous from here: what is reported and what is remembered change together.
        now = self._now()
        return settle(tracked, order, fills_from, new_fills, now=now, venue=self._id, cancel_reason=cancel_reason)

    # --- orders --------------------------------------------------------------------------

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
            return f"could not set {leverage}x leverage on {request.symbol}: {self._call.reason(e)}"
        self._leverage[request.symbol] = leverage
        return ""

    async def _cancel_foreign(self, order: VenueOrder) -> None:
        """Cancel a venue order guard never sent (the kill switch cancels everything)."""
        try:
            await self._call(self._ex.cancel_order(None, order.symbol, id_params(order.client_order_id, order.algo)))
        except EDGE_ERRORS as e:
            if classify(e) is not NOT_FOUND:
                raise ExchangeUnavailable(
                    f"{self._id}: cancel of venue order {order.client_order_id} failed: {self._call.reason(e)}"
                ) from e
        log.warning(
            "venue_order_cancelled",
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            note="an order guard did not send",
        )

    # --- plumbing ------------------------------------------------------------------------

    def _now(self) -> int:
        return self._clock.now_ms()
