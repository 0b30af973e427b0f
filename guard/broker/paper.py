"""The paper broker: a simulated venue, a peer of the venue brokers behind the same interface.

It fills market orders against the known book (partially, when the book is too thin) or at
the mark with slippage that grows with size and volatility; rests limit, stop and
take-profit orders and fills them when the market crosses (within a bar the price travels from
mark to mark, so whatever it reaches first acts first: `guard.broker.paper_market`); charges
maker and taker fees; liquidates isolated positions when the mark crosses their liquidation
price; pays funding at each funding time. Client order ids are unique for the life of the account, so a retried
submission can never fill twice.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal

import structlog
from msgspec.structs import replace

from guard.broker.base import Answer, BrokerReport, answer, answer_now
from guard.broker.ledger import Account, money, required_margin
from guard.broker.paper_market import (
    Quote,
    Resting,
    RestingBook,
    SymbolOrders,
    acts_at,
    book_walk,
    limit_crossed,
    update_quote,
)
from guard.broker.paper_orders import Pricing, closing_qty, effective_qty, marketable, validate
from guard.clock import Clock
from guard.config import PaperSection
from guard.domain import (
    BUY,
    LIMIT_ORDER,
    LINEAR,
    MAKER,
    MARKET_ORDER,
    TAKER,
    ZERO,
    Balance,
    Bar,
    Fill,
    Liquidity,
    MarketEvent,
    MarketSpec,
    MarkPrice,
    OrderRequest,
    Position,
)
from guard.events import (
    FundingPaid,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    PositionLiquidated,
)

log = structlog.get_logger(__name__)


class PaperBroker:
    """A venue simulated in-process. Its account is restored from the journal after a restart."""

    name = "paper"
    needs_marks = True

    def __init__(
        self,
        specs: Mapping[str, MarketSpec],
        settings: PaperSection,
        clock: Clock,
        account: Account | None = None,
    ) -> None:
        self._specs = specs
        self._settings = settings
        self._clock = clock
        self.account = account or Account(specs)
        self._quotes: dict[str, Quote] = {s: Quote() for s in specs}
        self._resting = RestingBook()
        self._seen: set[str] = set()
        self._fill_counts: dict[str, int] = {}
        self._funding_interval_ms = int(settings.funding_interval_hours * 3_600_000)
        self._pricing = Pricing(settings)

    # --- restart ---------------------------------------------------------------------

    async def recover(
        self,
        account: Account,
        open_orders: Sequence[tuple[OrderRequest, Decimal]],
        sent: Collection[str],
        in_doubt: Sequence[OrderRequest],
    ) -> Sequence[BrokerReport]:
        """Take over the books as the journal says they were: the paper venue has no other memory.

        An order in doubt never reached a fill the journal knows of, and the paper venue died
        with the process: it was not executed, and it is never sent again.
        """
        self.account = account
        self._resting = RestingBook({r.client_order_id: Resting(r, remaining) for r, remaining in open_orders})
        self._seen = set(sent)
        now = self._clock.now_ms()
        return [
            OrderRejected(now, r.client_order_id, "the paper venue restarted before answering: not executed")
            for r in in_doubt
        ]

    # --- the Broker interface --------------------------------------------------------

    async def submit(self, request: OrderRequest) -> Sequence[BrokerReport]:
        return self.submit_nowait(request)

    def submit_nowait(self, request: OrderRequest) -> list[BrokerReport]:
        """Submit without awaiting anything: the paper venue answers at once."""
        validate(request, self._specs)
        now = self._clock.now_ms()
        cid = request.client_order_id
        if cid in self._seen:
            return [OrderRejected(now, cid, "duplicate client order id: this order was already sent")]
        self._seen.add(cid)
        symbol = request.symbol
        spec = self._specs[symbol]
        quote = self._quotes[symbol]
        if quote.mark is None:
            return [OrderRejected(now, cid, f"no market price for {symbol} yet")]
        account = self.account
        pos = account.positions.get(symbol)
        qty, why = effective_qty(request, spec, pos)
        if why:
            return [OrderRejected(now, cid, why)]
        request = _with_qty(request, qty)
        order_type, limit = request.order_type, request.limit_price
        taking = order_type is MARKET_ORDER or (order_type is LIMIT_ORDER and marketable(request, quote))
        estimate = (
            self._pricing.slipped_price(request.side, spec, quote, qty, limit)
            if taking
            else limit or request.trigger_price or quote.mark
        )
        opening = qty - closing_qty(pos, request.side, qty)
        fee = None  # a taker's fee for `qty` at `estimate`, once worked out
        if opening:  # only what it opens needs margin (a protective order needs none)
            need = required_margin(spec, opening, limit or estimate, request.leverage)
            if taking:
                fee = self._pricing.taker_fee(spec, qty, estimate)
                need += fee
            if need > account.free:
                return [OrderRejected(now, cid, _insufficient(need, account.free))]
        reports: list[BrokerReport] = [OrderAccepted(now, cid, f"paper-{cid}")]
        if order_type is LIMIT_ORDER:  # what `reserve_for` reserves for: nothing for any other order
            account.reserve_for(request)
        if taking:
            fills, unfilled = self._take(request, spec, quote, qty, now, limit=limit, slipped=(estimate, fee))
            reports += fills
            if unfilled == 0:
                return reports
            if order_type is MARKET_ORDER:
                reports.append(OrderCancelled(now, cid, f"book depth exhausted: {unfilled} not filled"))
                return reports
            qty = unfilled  # the rest of a marketable limit order rests on the book
        self._resting[cid] = Resting(request, qty)
        return reports

    async def submit_many(self, requests: Sequence[OrderRequest]) -> list[Answer]:
        # One after another: each answers at once, and a replay drives this without an event loop (so `answer_now`,
        # not `answer`'s two coroutines an order).
        return [answer_now(self.submit_nowait, request) for request in requests]

    async def cancel_many(self, client_order_ids: Sequence[str], reason: str) -> list[Answer]:
        return [await answer(self.cancel(cid, reason)) for cid in client_order_ids]

    async def cancel(self, client_order_id: str, reason: str) -> Sequence[BrokerReport]:
        resting = self._resting.pop(client_order_id, None)
        if resting is None:
            return []
        self.account.release(client_order_id)
        return [OrderCancelled(self._clock.now_ms(), client_order_id, reason)]

    async def open_orders(self) -> Sequence[OrderRequest]:
        return [_with_qty(r.request, r.remaining) for r in self._resting.values()]

    async def positions(self) -> Sequence[Position]:
        return list(self.account.positions.values())

    async def balance(self) -> Balance:
        return self.account.balance()

    def on_market(self, event: MarketEvent) -> list[BrokerReport]:
        """Update the simulated market, then fill, trigger, liquidate and fund as it says.

        A price that moves the mark within a bar travels there: what lies between is reached in turn, nearest
        first, at its own price (`guard.broker.paper_market`); the first price after a bar closed may gap.
        """
        symbol = event.symbol
        quote = self._quotes.get(symbol)
        if quote is None:
            return []
        before, gap = quote.mark, quote.gap
        update_quote(quote, event)
        mark = quote.mark
        if mark is None:
            return []
        reports: list[BrokerReport] = []
        now = self._clock.now_ms()
        priced = isinstance(event, (MarkPrice, Bar))
        if priced and before is not None and not gap and mark != before:
            reports += self._travel(symbol, quote, before, now)
        self._act(symbol, quote, now, reports)
        if isinstance(event, (MarkPrice, Bar)):  # `priced`, spelt out for the type checker
            due = quote.next_funding_ms
            if due is None or (event.timestamp if isinstance(event, MarkPrice) else event.open_time) >= due:
                reports += self._pay_funding(event, quote, now)  # else: nothing due, as it would find
            quote.gap = isinstance(event, Bar)
        return reports

    def _act(self, symbol: str, quote: Quote, now: int, reports: list[BrokerReport]) -> None:
        """Liquidate if the mark crossed the liquidation price, then work the resting orders it reaches, adding
        what happened to `reports` (`_liquidate` and `_work_resting`, called only when they act)."""
        mark = quote.mark
        assert mark is not None
        if _crossed(self.account.positions.get(symbol), mark):
            reports += self._liquidate(symbol, mark, now)
        orders = self._resting.of(symbol)
        if orders.ids and not orders.quiet(quote):
            reports += self._work_resting(symbol, orders, quote, now)

    def _travel(self, symbol: str, quote: Quote, start: Decimal, now: int) -> list[BrokerReport]:
        """Move the mark from `start` to the quote's mark level by level, acting at each level it reaches: the
        liquidation price, triggers and limits (`next_level` over them all; the liquidation price first of equals).
        """
        end = quote.mark
        assert end is not None
        positions, book = self.account.positions, self._resting
        reports: list[BrokerReport] = []
        at = start
        while True:
            pos = positions.get(symbol)
            level = book.of(symbol).next_level(at, end, pos.liquidation_price if pos is not None else None)
            if level is None:
                break
            quote.mark = at = level
            self._act(symbol, quote, now, reports)
        quote.mark = end
        return reports

    def mark(self, symbol: str) -> Decimal | None:
        quote = self._quotes.get(symbol)
        return quote.mark if quote else None

    def sigma_per_bar(self, symbol: str) -> float:
        quote = self._quotes.get(symbol)
        return math.sqrt(quote.variance) if quote else 0.0

    # --- fast replay -----------------------------------------------------------------

    def reach(self, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        """How far the price may fall and rise before a resting order on `symbol` acts: the highest price at
        or below which one does, the lowest at or above which one does (None: none that way)."""
        orders = self._resting.of(symbol)
        return orders.falls_to, orders.rises_to

    def fast_forward(self, symbol: str, mark: Decimal, last_close: float, variance: float, last_ms: int) -> None:
        """Leave a symbol's simulated market where a run of price events would have left it, unworked.

        Replay's lean path calls this instead of `on_market` for stretches in which the caller
        has shown that nothing could fill, trigger, liquidate or fund: the quote takes the last
        mark, the last bar close and the volatility estimate after it (computed by the caller
        with the same arithmetic as `update_quote`), and the next funding time moves past
        `last_ms` exactly as `_pay_funding` would have moved it with nothing to pay.
        """
        quote = self._quotes[symbol]
        quote.mark = mark
        quote.last_close = last_close
        quote.variance = variance
        quote.gap = True  # the skipped stretch ended with a closed bar
        if self._specs[symbol].kind is LINEAR:
            interval = self._funding_interval_ms
            quote.next_funding_ms = (last_ms // interval + 1) * interval

    def next_funding_ms(self, symbol: str) -> int | None:
        """When the symbol's next funding is due (None before its first price)."""
        return self._quotes[symbol].next_funding_ms

    # --- execution -------------------------------------------------------------------

    def _take(
        self,
        request: OrderRequest,
        spec: MarketSpec,
        quote: Quote,
        qty: Decimal,
        now: int,
        limit: Decimal | None = None,
        slipped: tuple[Decimal, Decimal | None] | None = None,
    ) -> tuple[list[BrokerReport], Decimal]:
        """Execute as a taker: walk the book when one is known, else the mark plus slippage (`slipped`: that
        price for `qty` and `limit`, and perhaps the fee of `qty` at it, when the caller has worked them out).

        Returns the reports and the quantity left unfilled (thin book, or margin ran out).
        """
        side, symbol = request.side, request.symbol
        levels = quote.asks if side is BUY else quote.bids
        known_fee = None
        if levels:
            slices = book_walk(levels, qty, side, limit)
        elif slipped is None:
            slices = [(qty, self._pricing.slipped_price(side, spec, quote, qty, limit))]
        else:
            slices = [(qty, slipped[0])]
            known_fee = slipped[1]
        account = self.account
        positions = account.positions
        reports: list[BrokerReport] = []
        remaining = qty
        for slice_qty, price in slices:
            opening = slice_qty - closing_qty(positions.get(symbol), side, slice_qty)
            fee = self._pricing.taker_fee(spec, slice_qty, price) if known_fee is None else known_fee
            if opening > 0:
                available = account.free + account.reserved(request.client_order_id)
                if required_margin(spec, opening, price, request.leverage) + fee > available:
                    break  # the book walked further than the estimate: stop, never overdraw
            remaining -= slice_qty
            reports.append(self._fill(request, slice_qty, price, fee, TAKER, remaining, now))
        if symbol not in positions:
            reports += self._cancel_orphaned_protection(symbol, now)
        return reports, remaining

    def _closing_qty(self, request: OrderRequest, qty: Decimal) -> Decimal:
        return closing_qty(self.account.positions.get(request.symbol), request.side, qty)

    def _fill(
        self,
        request: OrderRequest,
        qty: Decimal,
        price: Decimal,
        fee: Decimal,
        liquidity: Liquidity,
        remaining: Decimal,
        now: int,
    ) -> OrderFilled:
        cid = request.client_order_id
        n = self._fill_counts.get(cid, 0) + 1
        self._fill_counts[cid] = n
        fill = Fill(cid, f"{cid}-{n}", request.symbol, request.side, qty, price, fee, liquidity, now)
        self.account.apply_fill(fill, request.leverage)
        return OrderFilled(now, fill, remaining)

    def _work_resting(self, symbol: str, orders: SymbolOrders, quote: Quote, now: int) -> list[BrokerReport]:
        """Fill or trigger what the quote reaches of `orders` (the symbol's, not `quiet` at the quote)."""
        reports: list[BrokerReport] = []
        spec, mark = self._specs[symbol], quote.mark
        assert mark is not None
        for cid in orders.ids:
            resting = self._resting.get(cid)
            if resting is None:
                continue
            request = resting.request
            order_type = request.order_type
            if order_type is LIMIT_ORDER:
                if limit_crossed(request, quote):
                    del self._resting[cid]
                    assert request.limit_price is not None
                    if request.reduce_only:
                        qty = self._closing_qty(request, resting.remaining)
                        if qty == 0:
                            reports.append(OrderCancelled(now, cid, "position already closed"))
                            continue
                    else:
                        qty = resting.remaining
                    fee = self._pricing.maker_fee(spec, qty, request.limit_price)
                    reports.append(self._fill(request, qty, request.limit_price, fee, MAKER, ZERO, now))
                    if symbol not in self.account.positions:
                        reports += self._cancel_orphaned_protection(symbol, now)
            else:  # a stop or take-profit, triggered when the mark reaches its trigger from its side
                trigger, falling = acts_at(request)
                assert trigger is not None
                if mark > trigger if falling else mark < trigger:
                    continue
                del self._resting[cid]
                self.account.release(cid)
                qty = self._closing_qty(request, resting.remaining) if request.reduce_only else resting.remaining
                if qty == 0:
                    reports.append(OrderCancelled(now, cid, "position already closed"))
                    continue
                fills, unfilled = self._take(request, spec, quote, qty, now)
                reports += fills
                if unfilled > 0:
                    reports.append(OrderCancelled(now, cid, f"book depth exhausted: {unfilled} not filled"))
        return reports

    def _liquidate(self, symbol: str, mark: Decimal, now: int) -> list[BrokerReport]:
        """Close the position on `symbol`, whose liquidation price `mark` crossed (`_crossed`)."""
        qty = self.account.positions[symbol].qty
        loss = self.account.liquidate(symbol)
        log.warning("paper_position_liquidated", symbol=symbol, qty=str(qty), mark=str(mark))
        reports: list[BrokerReport] = [PositionLiquidated(now, symbol, qty, mark, loss)]
        return reports + self._cancel_orphaned_protection(symbol, now)

    def _cancel_orphaned_protection(self, symbol: str, now: int) -> list[BrokerReport]:
        """Reduce-only orders left on a flat symbol protect nothing: cancel them."""
        if self.account.position(symbol) is not None:
            return []
        orphaned = [c for c, r in self._resting.items() if r.request.symbol == symbol and r.request.reduce_only]
        for cid in orphaned:
            del self._resting[cid]
        return [OrderCancelled(now, cid, "position closed") for cid in orphaned]

    def _pay_funding(self, event: MarkPrice | Bar, quote: Quote, now: int) -> list[BrokerReport]:
        symbol = event.symbol
        spec = self._specs[symbol]
        if spec.kind is not LINEAR:
            return []
        ts = event.timestamp if isinstance(event, MarkPrice) else event.open_time
        interval = self._funding_interval_ms
        if quote.next_funding_ms is None:
            quote.next_funding_ms = (ts // interval + 1) * interval
            return []
        reports: list[BrokerReport] = []
        while ts >= quote.next_funding_ms:
            pos = self.account.position(symbol)
            if pos is not None and quote.mark is not None:
                rate = quote.funding_rate
                if rate is None:
                    rate = Decimal(str(self._settings.default_funding_rate))
                amount = money(-pos.qty * quote.mark * spec.contract_size * rate)
                self.account.apply_funding(symbol, amount)
                reports.append(FundingPaid(now, symbol, rate, quote.mark, amount))
                if _crossed(self.account.positions.get(symbol), quote.mark):
                    reports += self._liquidate(symbol, quote.mark, now)
            quote.next_funding_ms += interval
        return reports


def _with_qty(request: OrderRequest, qty: Decimal) -> OrderRequest:
    return request if qty == request.qty else replace(request, qty=qty)


def _insufficient(need: Decimal, free: Decimal) -> str:
    return f"insufficient margin: needs {need:.2f}, free {free:.2f}"


def _crossed(pos: Position | None, mark: Decimal) -> bool:
    """Whether `mark` is at or beyond `pos`'s liquidation price."""
    if pos is None or (lp := pos.liquidation_price) is None:
        return False
    return mark <= lp if pos.qty > 0 else mark >= lp
