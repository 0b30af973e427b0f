"""The simulated venue's private books: accounts, orders, fills and positions, Binance USDⓈ-M style.

`private.py` serves these books over signed HTTP; everything here is computed against the
simulated market (`market.py`). Market orders walk the current order book, one trade per
level; limit orders take what crosses and rest the rest until the last price reaches them;
conditional (algo) orders trigger on the mark price and then send a market order; reduce-only
orders never open or flip a position. Client order ids are unique only among *open* orders,
as on Binance: once an order has ended, the same id is accepted again as a new order. That is
why a client must look an order up, never resend it blindly — and `created` keeps every order
ever created per client id, so tests can count duplicates.

Simplifications, on purpose: one-way position mode only; margin is `notional / leverage` for
isolated and cross alike; no liquidation and no funding in the private books; fees are paid in
USDT at the market's maker and taker rates.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from guard.sim.market import SimMarket
from guard.sim.public import ApiError

ZERO = Decimal(0)
MAKER_FEE = Decimal("0.0002")
TAKER_FEE = Decimal("0.0005")
STARTING_BALANCE = Decimal(10_000)
"""USDT in every new simulated account, as a fresh demo account has."""
DEFAULT_LEVERAGE = 20
"""Binance's initial leverage on a symbol nobody has set it for."""
MAX_LEVERAGE = 125
OPEN = frozenset({"NEW", "PARTIALLY_FILLED"})
ORDER_TYPES = frozenset({"MARKET", "LIMIT", "STOP_MARKET", "TAKE_PROFIT_MARKET"})
CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
"""Binance's rule for client order ids."""
_Q8 = Decimal("1e-8")


@dataclass(slots=True)
class SimOrder:
    """One order (regular or algo) as the venue keeps it."""

    order_id: int
    client_id: str
    j: int
    side: str
    """BUY or SELL."""
    kind: str
    """MARKET, LIMIT, STOP_MARKET or TAKE_PROFIT_MARKET."""
    qty: Decimal
    price: Decimal
    """Limit price; zero for market and conditional orders."""
    trigger: Decimal
    """Trigger (stop) price of a conditional order; zero otherwise."""
    reduce_only: bool
    time_in_force: str
    algo: bool
    created: int
    status: str = "NEW"
    executed: Decimal = ZERO
    cum_quote: Decimal = ZERO
    updated: int = 0
    actual_order_id: int = 0
    """For a triggered algo order: the market order it sent."""

    @property
    def open(self) -> bool:
        return self.status in OPEN


@dataclass(frozen=True, slots=True)
class SimTrade:
    """One execution of one order (what `GET /fapi/v1/userTrades` lists)."""

    trade_id: int
    order_id: int
    j: int
    side: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    realized_pnl: Decimal
    maker: bool
    time: int


@dataclass(slots=True)
class SimPosition:
    qty: Decimal = ZERO
    """Signed: positive long, negative short."""
    entry: Decimal = ZERO
    margin: Decimal = ZERO
    updated: int = 0


@dataclass(slots=True)
class SimAccount:
    """One API key's futures account."""

    api_key: str
    wallet: Decimal
    positions: dict[int, SimPosition] = field(default_factory=dict)
    leverage: dict[int, int] = field(default_factory=dict)
    margin_type: dict[int, str] = field(default_factory=dict)
    orders: dict[int, SimOrder] = field(default_factory=dict)
    trades: list[SimTrade] = field(default_factory=list)

    def find(self, *, algo: bool, client_id: str | None = None, order_id: int | None = None) -> SimOrder | None:
        """The order with this id (the newest, for a client id that was reused after it ended)."""
        if order_id is not None:
            order = self.orders.get(order_id)
            return order if order is not None and order.algo is algo else None
        matches = [o for o in self.orders.values() if o.algo is algo and o.client_id == client_id]
        return max(matches, key=lambda o: o.order_id) if matches else None

    def open_orders(self, *, algo: bool, j: int | None = None) -> list[SimOrder]:
        return [o for o in self.orders.values() if o.open and o.algo is algo and (j is None or o.j == j)]

    def position(self, j: int) -> SimPosition:
        return self.positions.setdefault(j, SimPosition())

    def lev(self, j: int) -> int:
        return self.leverage.get(j, DEFAULT_LEVERAGE)

    def used_margin(self) -> Decimal:
        """Margin locked in positions and reserved for resting limit orders that open."""
        held = sum((p.margin for p in self.positions.values()), ZERO)
        resting = sum(
            (
                (o.qty - o.executed) * o.price / self.lev(o.j)
                for o in self.orders.values()
                if o.open and o.kind == "LIMIT" and not o.reduce_only
            ),
            ZERO,
        )
        return held + resting


class SimBooks:
    """Every account of the simulated venue, priced and filled against one simulated market.

    Args:
        market: the simulated market (books, last and mark prices).
        starting_balance: USDT in each new account.
    """

    def __init__(self, market: SimMarket, starting_balance: Decimal = STARTING_BALANCE) -> None:
        self.market = market
        self.starting_balance = starting_balance
        self.accounts: dict[str, SimAccount] = {}
        self.created: dict[tuple[str, str], list[int]] = {}
        """(api key, client id) -> ids of every order ever created with that client id."""
        self._next_order = 8_000_000_000
        self._next_trade = 1
        self._steps = [Decimal(str(p.step_size)) for p in market.params]
        self._ticks = [Decimal(str(p.tick_size)) for p in market.params]

    # --- accounts and prices ---------------------------------------------------------

    def next_ids(self) -> tuple[int, int]:
        """The next order id and trade id to hand out."""
        return self._next_order, self._next_trade

    def set_next_ids(self, next_order: int, next_trade: int) -> None:
        """Go on from saved books' ids (`guard.sim.venue_store`)."""
        self._next_order, self._next_trade = next_order, next_trade

    def account(self, api_key: str) -> SimAccount:
        acct = self.accounts.get(api_key)
        if acct is None:
            acct = self.accounts[api_key] = SimAccount(api_key, self.starting_balance)
        return acct

    def now(self) -> int:
        return self.market.sync()

    def mark(self, j: int, now: int) -> Decimal:
        return Decimal(str(self.market.mark(j, now)[0]))

    def last(self, j: int, now: int) -> Decimal:
        return Decimal(str(self.market.last_price(j, now)))

    def step(self, j: int) -> Decimal:
        return self._steps[j]

    def min_notional(self, j: int) -> Decimal:
        base = self.market.symbols[j].split("/", 1)[0]
        return Decimal(100) if base in ("BTC", "ETH") else Decimal(5)

    # --- placing ---------------------------------------------------------------------

    def place(
        self,
        acct: SimAccount,
        *,
        j: int,
        side: str,
        kind: str,
        qty: Decimal,
        price: Decimal,
        trigger: Decimal,
        reduce_only: bool,
        time_in_force: str,
        client_id: str,
        algo: bool,
        partial: bool = False,
    ) -> SimOrder:
        """Validate, create and (for market and marketable limit orders) execute an order.

        Args:
            partial: fault injection: execute only half of what would fill now; a market order's
                rest expires, a limit order's rest rests.

        Raises:
            ApiError: Binance's answer for an order it refuses (nothing is created).
        """
        now = self.now()
        self._validate(acct, j, side, kind, qty, price, trigger, time_in_force, client_id, algo)
        position = acct.position(j)
        if reduce_only and not algo and not _reduces(position.qty, side):
            raise ApiError(400, -2022, "ReduceOnly Order is rejected.")
        if not reduce_only:
            reference = price if kind == "LIMIT" else self._best(j, side, now)
            if qty * reference < self.min_notional(j):
                raise ApiError(
                    400,
                    -4164,
                    f"Order's notional must be no smaller than {self.min_notional(j)} (unless you choose reduce only).",
                )
            opening = qty - (min(qty, abs(position.qty)) if _reduces(position.qty, side) else ZERO)
            need = opening * reference / acct.lev(j) + qty * reference * TAKER_FEE
            if opening > 0 and need > acct.wallet - acct.used_margin():
                raise ApiError(400, -2019, "Margin is insufficient.")
        order = SimOrder(
            order_id=self._order_id(),
            client_id=client_id,
            j=j,
            side=side,
            kind=kind,
            qty=qty,
            price=price,
            trigger=trigger,
            reduce_only=reduce_only,
            time_in_force=time_in_force,
            algo=algo,
            created=now,
            updated=now,
        )
        acct.orders[order.order_id] = order
        self.created.setdefault((acct.api_key, client_id), []).append(order.order_id)
        if not algo:
            self._work(acct, order, now, partial=partial)
        return order

    def _validate(
        self,
        acct: SimAccount,
        j: int,
        side: str,
        kind: str,
        qty: Decimal,
        price: Decimal,
        trigger: Decimal,
        time_in_force: str,
        client_id: str,
        algo: bool,
    ) -> None:
        if side not in ("BUY", "SELL"):
            raise ApiError(400, -1117, "Invalid side.")
        if kind not in ORDER_TYPES or algo != (kind in ("STOP_MARKET", "TAKE_PROFIT_MARKET")):
            raise ApiError(400, -1116, "Invalid orderType.")
        if not CLIENT_ID.match(client_id):
            raise ApiError(400, -4015, "Client order id is not valid.")
        if any(o.client_id == client_id for o in acct.open_orders(algo=algo)):
            # Binance keeps client ids unique among open orders only.
            raise ApiError(400, -4116, "ClientOrderId is duplicated.")
        if qty <= 0 or qty % self._steps[j] != 0:
            raise ApiError(400, -1111, "Precision is over the maximum defined for this asset.")
        if kind == "LIMIT":
            if price <= 0 or price % self._ticks[j] != 0:
                raise ApiError(400, -1111, "Precision is over the maximum defined for this asset.")
            if time_in_force not in ("GTC", "IOC", "FOK", "GTX"):
                raise ApiError(400, -1115, "Invalid timeInForce.")
        if algo and (trigger <= 0 or trigger % self._ticks[j] != 0):
            raise ApiError(400, -1102, "Mandatory parameter 'triggerPrice' was not sent, was empty/null, or malformed.")

    # --- cancelling --------------------------------------------------------------------

    def cancel(self, acct: SimAccount, order: SimOrder) -> SimOrder:
        """Cancel an open order; an order that has ended is "unknown" to a cancel, as on Binance."""
        if not order.open:
            raise ApiError(400, -2011, "Unknown order sent.")
        order.status = "CANCELED"
        order.updated = self.now()
        return order

    def cancel_all(self, acct: SimAccount, j: int) -> int:
        """Cancel every open order of a symbol, regular and conditional (the dead-man switch)."""
        cancelled = 0
        now = self.now()
        for order in acct.orders.values():
            if order.j == j and order.open:
                order.status = "CANCELED"
                order.updated = now
                cancelled += 1
        return cancelled

    # --- the matching engine -----------------------------------------------------------

    def sweep(self) -> None:
        """Fill resting limit orders the price has reached, and trigger conditional orders."""
        now = self.now()
        for acct in self.accounts.values():
            for order in [o for o in acct.orders.values() if o.open]:
                if order.algo:
                    if self._triggered(order, now):
                        self._trigger(acct, order, now)
                elif order.kind == "LIMIT" and self._crossed(order, now):
                    self._fill_resting(acct, order, now)

    def _work(self, acct: SimAccount, order: SimOrder, now: int, *, partial: bool = False) -> None:
        limit = order.price if order.kind == "LIMIT" else None
        want = order.qty
        if order.reduce_only:
            want = min(want, _closable(acct.position(order.j).qty, order.side))
        if partial:
            want = max(
                self._steps[order.j],
                (want / 2 / self._steps[order.j]).to_integral_value(ROUND_DOWN) * self._steps[order.j],
            )
        self._take(acct, order, want, now, limit)
        if order.executed == order.qty:
            return
        if order.kind == "MARKET" or order.time_in_force in ("IOC", "FOK"):
            # What a market order could not fill expires (Binance: thin book, price protection).
            order.status = "EXPIRED"
        elif order.reduce_only and _closable(acct.position(order.j).qty, order.side) == 0:
            order.status = "EXPIRED"

    def _take(self, acct: SimAccount, order: SimOrder, want: Decimal, now: int, limit: Decimal | None) -> None:
        book = self.market.current_book(order.j, now)
        levels = book.asks if order.side == "BUY" else book.bids
        for raw_price, raw_amount in levels:
            if want <= 0:
                break
            price = Decimal(str(raw_price))
            if limit is not None and (price > limit if order.side == "BUY" else price < limit):
                break
            take = min(want, Decimal(str(raw_amount)).quantize(self._steps[order.j], ROUND_DOWN))
            if take <= 0:
                continue
            self._fill(acct, order, take, price, maker=False, now=now)
            want -= take

    def _fill_resting(self, acct: SimAccount, order: SimOrder, now: int) -> None:
        qty = order.qty - order.executed
        if order.reduce_only:
            qty = min(qty, _closable(acct.position(order.j).qty, order.side))
            if qty == 0:
                order.status = "EXPIRED"
                order.updated = now
                return
        self._fill(acct, order, qty, order.price, maker=True, now=now)
        if order.executed < order.qty:
            order.status = "EXPIRED"

    def _crossed(self, order: SimOrder, now: int) -> bool:
        last = self.last(order.j, now)
        return last <= order.price if order.side == "BUY" else last >= order.price

    def _triggered(self, order: SimOrder, now: int) -> bool:
        mark = self.mark(order.j, now)
        # A stop buys above and sells below the market; a take-profit the other way round.
        rising = (order.kind == "STOP_MARKET") == (order.side == "BUY")
        return mark >= order.trigger if rising else mark <= order.trigger

    def _trigger(self, acct: SimAccount, algo: SimOrder, now: int) -> None:
        child = SimOrder(
            order_id=self._order_id(),
            client_id=algo.client_id,
            j=algo.j,
            side=algo.side,
            kind="MARKET",
            qty=algo.qty,
            price=ZERO,
            trigger=ZERO,
            reduce_only=algo.reduce_only,
            time_in_force="GTC",
            algo=False,
            created=now,
            updated=now,
        )
        acct.orders[child.order_id] = child
        algo.status = "FINISHED"
        algo.actual_order_id = child.order_id
        algo.updated = now
        if algo.reduce_only and _closable(acct.position(algo.j).qty, algo.side) == 0:
            child.status = "EXPIRED"  # nothing left to protect
            return
        self._work(acct, child, now)

    def _fill(self, acct: SimAccount, order: SimOrder, qty: Decimal, price: Decimal, *, maker: bool, now: int) -> None:
        fee = (qty * price * (MAKER_FEE if maker else TAKER_FEE)).quantize(_Q8)
        pos = acct.position(order.j)
        signed = qty if order.side == "BUY" else -qty
        realized = ZERO
        if pos.qty != 0 and (pos.qty > 0) != (signed > 0):
            closing = min(abs(signed), abs(pos.qty))
            direction = 1 if pos.qty > 0 else -1
            realized = ((price - pos.entry) * closing * direction).quantize(_Q8)
            released = pos.margin if closing == abs(pos.qty) else (pos.margin * closing / abs(pos.qty)).quantize(_Q8)
            pos.margin -= released
            pos.qty -= closing * direction
            signed += closing * direction
            if pos.qty == 0:
                pos.entry = pos.margin = ZERO
        if signed != 0:
            size = abs(pos.qty) + abs(signed)
            pos.entry = (pos.entry * abs(pos.qty) + price * abs(signed)) / size
            pos.qty += signed
            pos.margin += (abs(signed) * price / acct.lev(order.j)).quantize(_Q8)
        pos.updated = now
        acct.wallet += realized - fee
        order.executed += qty
        order.cum_quote += qty * price
        order.status = "FILLED" if order.executed == order.qty else "PARTIALLY_FILLED"
        order.updated = now
        acct.trades.append(
            SimTrade(self._next_trade, order.order_id, order.j, order.side, price, qty, fee, realized, maker, now)
        )
        self._next_trade += 1

    # --- helpers -----------------------------------------------------------------------

    def _best(self, j: int, side: str, now: int) -> Decimal:
        book = self.market.current_book(j, now)
        level = book.asks[0] if side == "BUY" else book.bids[0]
        return Decimal(str(level[0]))

    def _order_id(self) -> int:
        self._next_order += 1
        return self._next_order

    def orders_created(self, api_key: str, client_id: str) -> int:
        """How many orders the venue ever created under this client id (more than one is a duplicate)."""
        return len(self.created.get((api_key, client_id), ()))

    def all_orders(self, api_key: str) -> Iterator[SimOrder]:
        acct = self.accounts.get(api_key)
        return iter(acct.orders.values()) if acct else iter(())


def _reduces(position_qty: Decimal, side: str) -> bool:
    return (position_qty > 0 and side == "SELL") or (position_qty < 0 and side == "BUY")


def _closable(position_qty: Decimal, side: str) -> Decimal:
    return abs(position_qty) if _reduces(position_qty, side) else ZERO
