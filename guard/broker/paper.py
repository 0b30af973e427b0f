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

from guard.broker.base import Answer, BrokerReport, answer
from guard.broker.ledger import Account, money
from guard.broker.paper_market import (
    Quote,
    Resting,
    RestingBook,
    book_walk,
    limit_crossed,
    next_level,
    triggered,
    update_quote,
)
from guard.clock import Clock
from guard.config import PaperSection
from guard.domain import (
    BUY,
    LIMIT_ORDER,
    LINEAR,
    MAKER,
    MARKET_ORDER,
    ONE,
    SELL,
    SPOT,
    STOP_MARKET_ORDER,
    TAKE_PROFIT_ORDER,
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
    Side,
)
from guard.errors import InvalidCommand
from guard.events import (
    FundingPaid,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    PositionLiquidated,
)

log = structlog.get_logger(__name__)

_BPS = Decimal("0.0001")


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
        self._fee_rates = {MAKER: _bps(settings.maker_fee_bps), TAKER: _bps(settings.taker_fee_bps)}

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
        self._validate(request)
        now = self._clock.now_ms()
        cid = request.client_order_id
        if cid in self._seen:
            return [OrderRejected(now, cid, "duplicate client order id: this order was already sent")]
        self._seen.add(cid)
        spec = self._specs[request.symbol]
        quote = self._quotes[request.symbol]
        if quote.mark is None:
            return [OrderRejected(now, cid, f"no market price for {request.symbol} yet")]
        qty, why = self._effective_qty(request, spec)
        if why:
            return [OrderRejected(now, cid, why)]
        request = _with_qty(request, qty)
        taking = request.order_type is MARKET_ORDER or (
            request.order_type is LIMIT_ORDER and self._marketable(request, quote)
        )
        estimate = (
            self._slipped_price(request.side, spec, quote, qty, request.limit_price)
            if taking
            else request.limit_price or request.trigger_price or quote.mark
        )
        opening = qty - self._closing_qty(request, qty)
        if opening:  # only what it opens needs margin (a protective order needs none)
            need = self.account.required_margin(spec, opening, request.limit_price or estimate, request.leverage)
            if taking:
                need += self._fee_of(spec, qty, estimate, TAKER)
            if need > self.account.free:
                return [OrderRejected(now, cid, _insufficient(need, self.account.free))]
        reports: list[BrokerReport] = [OrderAccepted(now, cid, f"paper-{cid}")]
        self.account.reserve_for(request)
        if taking:
            fills, unfilled = self._take(request, spec, quote, qty, now, limit=request.limit_price, slipped=estimate)
            reports += fills
            if unfilled == 0:
                return reports
            if request.order_type is MARKET_ORDER:
                reports.append(OrderCancelled(now, cid, f"book depth exhausted: {unfilled} not filled"))
                return reports
            qty = unfilled  # the rest of a marketable limit order rests on the book
        self._resting[cid] = Resting(request, qty)
        return reports

    async def submit_many(self, requests: Sequence[OrderRequest]) -> list[Answer]:
        # One after another: each answers at once, and a replay drives this without an event loop.
        return [await answer(self.submit(r)) for r in requests]

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
        quote = self._quotes.get(event.symbol)
        if quote is None:
            return []
        before, gap = quote.mark, quote.gap
        update_quote(quote, event)
        if quote.mark is None:
            return []
        reports: list[BrokerReport] = []
        now = self._clock.now_ms()
        priced = isinstance(event, (MarkPrice, Bar))
        if priced and before is not None and not gap and quote.mark != before:
            reports += self._travel(event.symbol, quote, before, now)
        reports += self._liquidate_if_crossed(event.symbol, quote, now)
        reports += self._work_resting(event.symbol, quote, now)
        if isinstance(event, (MarkPrice, Bar)):  # `priced`, spelt out for the type checker
            reports += self._pay_funding(event, quote, now)
            quote.gap = isinstance(event, Bar)
        return reports

    def _travel(self, symbol: str, quote: Quote, start: Decimal, now: int) -> list[BrokerReport]:
        """Move the mark from `start` to the quote's mark level by level, acting at each level it reaches."""
        end = quote.mark
        assert end is not None
        reports: list[BrokerReport] = []
        at = start
        while (level := next_level(at, end, self._levels(symbol))) is not None:
            quote.mark = at = level
            reports += self._liquidate_if_crossed(symbol, quote, now)
            reports += self._work_resting(symbol, quote, now)
        quote.mark = end
        return reports

    def _levels(self, symbol: str) -> list[Decimal | None]:
        """Every price on `symbol` at which something happens: the liquidation price, triggers and limits."""
        pos = self.account.position(symbol)
        return [pos.liquidation_price if pos is not None else None, *self._resting.of(symbol).levels]

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

    def _validate(self, request: OrderRequest) -> None:
        if request.symbol not in self._specs:
            raise InvalidCommand(f"unknown symbol {request.symbol!r}; known: {', '.join(self._specs)}")
        if not request.qty.is_finite() or request.qty <= 0:
            raise InvalidCommand(f"order quantity must be a positive number, got {request.qty}")
        if not request.leverage.is_finite() or request.leverage < ONE:
            raise InvalidCommand(f"leverage must be at least 1, got {request.leverage}")
        for name, value in (("limit price", request.limit_price), ("trigger price", request.trigger_price)):
            if value is not None and (not value.is_finite() or value <= 0):
                raise InvalidCommand(f"{name} must be a positive number, got {value}")
        if request.order_type is LIMIT_ORDER and request.limit_price is None:
            raise InvalidCommand("a limit order needs a limit price")
        if request.order_type in (STOP_MARKET_ORDER, TAKE_PROFIT_ORDER):
            if request.trigger_price is None:
                raise InvalidCommand(f"a {request.order_type} order needs a trigger price")

    def _effective_qty(self, request: OrderRequest, spec: MarketSpec) -> tuple[Decimal, str]:
        """The quantity the venue will work, or a reason to reject the order."""
        qty = spec.round_qty(request.qty)
        pos = self.account.position(request.symbol)
        if request.reduce_only:
            if pos is None or pos.side is request.side:
                return ZERO, "reduce-only order would not reduce a position"
            return min(qty, abs(pos.qty)), ""
        if request.leverage > spec.max_leverage:
            return ZERO, f"leverage {request.leverage}x is above the market's maximum {spec.max_leverage}x"
        if spec.kind is SPOT:
            if request.leverage != ONE:
                return ZERO, "spot orders cannot use leverage"
            held = pos.qty if pos else ZERO
            if request.side is SELL and qty > held:
                return ZERO, f"spot sell of {qty} is more than the {held} held; spot cannot go short"
        if qty < spec.min_qty:
            return ZERO, f"quantity {request.qty} is below the market minimum {spec.min_qty}"
        return qty, ""

    def _marketable(self, request: OrderRequest, quote: Quote) -> bool:
        limit = request.limit_price
        assert limit is not None
        if request.side is BUY:
            ask = quote.ask or quote.mark
            return ask is not None and ask <= limit
        bid = quote.bid or quote.mark
        return bid is not None and bid >= limit

    def _take(
        self,
        request: OrderRequest,
        spec: MarketSpec,
        quote: Quote,
        qty: Decimal,
        now: int,
        limit: Decimal | None = None,
        slipped: Decimal | None = None,
    ) -> tuple[list[BrokerReport], Decimal]:
        """Execute as a taker: walk the book when one is known, else the mark plus slippage (`slipped`: that
        price for `qty` and `limit`, when the caller has worked it out already).

        Returns the reports and the quantity left unfilled (thin book, or margin ran out).
        """
        levels = quote.asks if request.side is BUY else quote.bids
        if levels:
            slices = book_walk(levels, qty, request.side, limit)
        else:
            if slipped is None:
                slipped = self._slipped_price(request.side, spec, quote, qty, limit)
            slices = [(qty, slipped)]
        reports: list[BrokerReport] = []
        remaining = qty
        for slice_qty, price in slices:
            closing = self._closing_qty(request, slice_qty)
            opening = slice_qty - closing
            fee = self._fee_of(spec, slice_qty, price, TAKER)
            if opening > 0:
                available = self.account.free + self.account.reserved(request.client_order_id)
                if self.account.required_margin(spec, opening, price, request.leverage) + fee > available:
                    break  # the book walked further than the estimate: stop, never overdraw
            remaining -= slice_qty
            reports.append(self._fill(request, slice_qty, price, fee, TAKER, remaining, now))
        reports += self._cancel_orphaned_protection(request.symbol, now)
        return reports, remaining

    def _closing_qty(self, request: OrderRequest, qty: Decimal) -> Decimal:
        pos = self.account.position(request.symbol)
        if pos is None or pos.side is request.side:
            return ZERO
        return min(qty, abs(pos.qty))

    def _slipped_price(
        self, side: Side, spec: MarketSpec, quote: Quote, qty: Decimal, limit: Decimal | None
    ) -> Decimal:
        reference = (quote.ask if side is BUY else quote.bid) or quote.mark
        assert reference is not None
        notional = float(qty * reference)
        s = self._settings
        bps = (
            s.slippage_bps
            + s.slippage_size_bps_per_million * notional / 1_000_000
            + s.slippage_vol_multiplier * math.sqrt(quote.variance) * 10_000
        )
        price = reference * (ONE + Decimal(side.sign) * Decimal(str(round(bps, 6))) * _BPS)
        price = spec.round_price(price)
        if limit is not None:
            price = min(price, limit) if side is BUY else max(price, limit)
        return price

    def _fee_of(self, spec: MarketSpec, qty: Decimal, price: Decimal, liquidity: Liquidity) -> Decimal:
        """The fee of trading `qty` at `price` as a maker or taker."""
        return money(qty * price * spec.contract_size * self._fee_rates[liquidity])

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

    def _work_resting(self, symbol: str, quote: Quote, now: int) -> list[BrokerReport]:
        orders = self._resting.of(symbol)
        if orders.quiet(quote):
            return []  # what the loop below finds too, in fewer steps: the venue looks at every price
        reports: list[BrokerReport] = []
        for cid in orders.ids:
            resting = self._resting.get(cid)
            if resting is None:
                continue
            request = resting.request
            spec = self._specs[symbol]
            if request.order_type is LIMIT_ORDER:
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
                    fee = self._fee_of(spec, qty, request.limit_price, MAKER)
                    reports.append(self._fill(request, qty, request.limit_price, fee, MAKER, ZERO, now))
                    reports += self._cancel_orphaned_protection(symbol, now)
            elif triggered(request, quote):
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

    def _liquidate_if_crossed(self, symbol: str, quote: Quote, now: int) -> list[BrokerReport]:
        pos = self.account.position(symbol)
        if pos is None or pos.liquidation_price is None or quote.mark is None:
            return []
        crossed = quote.mark <= pos.liquidation_price if pos.qty > 0 else quote.mark >= pos.liquidation_price
        if not crossed:
            return []
        loss = self.account.liquidate(symbol)
        log.warning("paper_position_liquidated", symbol=symbol, qty=str(pos.qty), mark=str(quote.mark))
        reports: list[BrokerReport] = [PositionLiquidated(now, symbol, pos.qty, quote.mark, loss)]
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
                reports += self._liquidate_if_crossed(symbol, quote, now)
            quote.next_funding_ms += interval
        return reports


def _bps(value: float) -> Decimal:
    """A fee rate given in basis points, as a fraction."""
    return Decimal(str(value)) * _BPS


def _with_qty(request: OrderRequest, qty: Decimal) -> OrderRequest:
    return request if qty == request.qty else replace(request, qty=qty)


def _insufficient(need: Decimal, free: Decimal) -> str:
    return f"insufficient margin: needs {need:.2f}, free {free:.2f}"
