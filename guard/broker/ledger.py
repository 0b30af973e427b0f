"""The account ledger: exact money, isolated margin, one-way positions.

`free + used == total` holds after every step, where `total` is the wallet balance (deposits
+ realized PnL − fees + funding − liquidation losses), `used` is the margin locked in positions
and reserved for resting orders, and `free` is tracked as its own running balance, so the
invariant is a real check rather than a definition.

The paper broker keeps one Account as its venue book; the guard folds its own Account from the
journal with the same methods, so the two can be compared.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import msgspec
from msgspec.structs import replace

from guard import codec
from guard.domain import BUY, LIMIT_ORDER, SELL, SPOT, ZERO, Balance, Fill, MarketSpec, OrderRequest, Position
from guard.errors import GuardError
from guard.risk.liquidation import isolated_liquidation_price

MONEY_QUANTUM = Decimal("1e-8")


def money(amount: Decimal) -> Decimal:
    """Round an amount of quote currency to the ledger's precision (8 decimals, like USDT)."""
    return amount.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)


class LedgerError(GuardError):
    """The ledger's books do not balance: a bug, and trading must stop."""


class FillEffect(msgspec.Struct, frozen=True, gc=False):
    """What a fill did to the account beyond its fee (a struct: built in one call, at every fill)."""

    realized_pnl: Decimal
    opened: bool
    closed: bool


@dataclass(slots=True)
class _Reservation:
    amount: Decimal
    qty: Decimal


class Account:
    """A quote-currency margin account with isolated, one-way positions."""

    def __init__(self, specs: Mapping[str, MarketSpec], asset: str = "USDT", bookings: Bookings | None = None) -> None:
        """
        Args:
            bookings: shared with the other ledger of the same account (the venue's and the journal's fold), so
                each fill is worked out once; by default this ledger's own.
        """
        self.specs = specs
        self.bookings = bookings or Bookings()
        self.asset = asset
        self.total = ZERO
        self.free = ZERO
        self.positions: dict[str, Position] = {}
        self._reserved: dict[str, _Reservation] = {}
        self.realized_pnl = ZERO
        self.fees = ZERO
        self.funding = ZERO
        self.liquidation_losses = ZERO

    # --- reading ---------------------------------------------------------------------

    @property
    def used(self) -> Decimal:
        return sum((p.margin for p in self.positions.values()), ZERO) + sum(
            (r.amount for r in self._reserved.values()), ZERO
        )

    def balance(self) -> Balance:
        return Balance(total=self.total, free=self.free, used=self.used)

    def position(self, symbol: str) -> Position | None:
        return self.positions.get(symbol)

    def equity(self, marks: Mapping[str, Decimal]) -> Decimal:
        """Wallet balance plus unrealized PnL at the given marks."""
        unrealized = ZERO  # a loop, not sum() over a generator: read once a proposal
        for symbol, position in self.positions.items():
            if symbol in marks:
                unrealized += position.unrealized_pnl(marks[symbol])
        return self.total + unrealized

    def check(self) -> None:
        """Raise LedgerError unless free + used == total and no position is empty."""
        used = self.used
        if self.free + used != self.total:
            raise LedgerError(f"ledger out of balance: free {self.free} + used {used} != total {self.total}")
        for symbol, p in self.positions.items():
            if p.qty == 0:
                raise LedgerError(f"empty position kept for {symbol}")

    def required_margin(self, spec: MarketSpec, qty: Decimal, price: Decimal, leverage: Decimal) -> Decimal:
        return required_margin(spec, qty, price, leverage)

    # --- changing --------------------------------------------------------------------

    def deposit(self, amount: Decimal) -> None:
        amount = money(amount)
        self.total += amount
        self.free += amount

    def reserve(self, client_order_id: str, qty: Decimal, amount: Decimal) -> None:
        """Lock margin for a resting order so it cannot be spent twice."""
        amount = money(amount)
        self.free -= amount
        self._reserved[client_order_id] = _Reservation(amount, qty)

    def reserve_for(self, request: OrderRequest) -> None:
        """Reserve what an accepted limit order needs: its whole quantity at its limit price.

        The venue and the journal's fold both call this on acceptance, and fills release it
        proportionally, so the two books agree to the last unit.
        """
        if request.order_type is LIMIT_ORDER and not request.reduce_only and request.limit_price:
            spec = self.specs[request.symbol]
            margin = self.required_margin(spec, request.qty, request.limit_price, request.leverage)
            self.reserve(request.client_order_id, request.qty, margin)

    def release(self, client_order_id: str) -> None:
        reservation = self._reserved.pop(client_order_id, None)
        if reservation is not None:
            self.free += reservation.amount

    def reserved(self, client_order_id: str) -> Decimal:
        r = self._reserved.get(client_order_id)
        return r.amount if r else ZERO

    def apply_fill(self, fill: Fill, leverage: Decimal) -> FillEffect:
        """Book a fill: fee, margin, entry price, realized PnL and the new liquidation price."""
        if self._reserved:
            self._release_part(fill.client_order_id, fill.qty)
        fee = fill.fee.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)  # money(), inlined: at every fill
        self.total -= fee
        self.free -= fee
        self.fees += fee

        pos = self.positions.get(fill.symbol)
        booking = self.bookings.booking(self.specs[fill.symbol], pos, fill, leverage)
        if booking.closing:
            realized = booking.effect.realized_pnl
            self.total += realized
            self.free += booking.released + realized
            self.realized_pnl += realized
        if booking.effect.opened:
            self.free -= booking.locked
        if booking.after is None:
            self.positions.pop(fill.symbol, None)
        else:
            self.positions[fill.symbol] = booking.after
        return booking.effect

    def apply_funding(self, symbol: str, amount: Decimal) -> None:
        """Funding moves the isolated wallet balance of the position, and so its liquidation price."""
        pos = self.positions[symbol]
        paid = money(amount)
        self.total += paid
        self.funding += paid
        self.positions[symbol] = self.bookings.funded(self.specs[symbol], pos, amount, paid)

    def liquidate(self, symbol: str) -> Decimal:
        """Close a position by liquidation: its whole isolated margin is lost. Returns the loss."""
        pos = self.positions.pop(symbol)
        self.total -= pos.margin
        self.liquidation_losses += pos.margin
        return pos.margin

    def copy(self) -> Account:
        clone = copy.copy(self)
        clone.positions = dict(self.positions)
        clone._reserved = {k: _Reservation(v.amount, v.qty) for k, v in self._reserved.items()}
        return clone

    def snapshot(self) -> dict[str, Any]:
        """Plain, comparable view of the books (for restart and replay equality checks)."""
        return {
            "total": str(self.total),
            "free": str(self.free),
            "positions": {s: codec.to_plain(p) for s, p in sorted(self.positions.items())},
            "reserved": {k: [str(r.amount), str(r.qty)] for k, r in sorted(self._reserved.items())},
            "realized_pnl": str(self.realized_pnl),
            "fees": str(self.fees),
            "funding": str(self.funding),
            "liquidation_losses": str(self.liquidation_losses),
        }

    # --- internals -------------------------------------------------------------------

    def _release_part(self, client_order_id: str, qty: Decimal) -> None:
        r = self._reserved.get(client_order_id)
        if r is None:
            return
        if qty >= r.qty:
            self.release(client_order_id)
            return
        part = money(r.amount * qty / r.qty)
        self.free += part
        r.amount -= part
        r.qty -= qty


class _Booking(msgspec.Struct, frozen=True, gc=False):
    """What one fill does to a position, apart from its fee and reservation (each ledger's own).

    The venue's ledger and the journal's fold book every fill in turn, from the same position:
    the second finds the first's booking (`Bookings`) instead of working it out again. A struct, not a frozen
    dataclass: built at every fill, and a frozen dataclass's __init__ sets each field through object.__setattr__.
    """

    spec: MarketSpec
    before: Position | None
    fill: Fill
    leverage: Decimal
    after: Position | None
    closing: bool
    """Part of the fill reduced `before`: `released` margin (and the PnL) go back to free."""
    released: Decimal
    locked: Decimal
    """Margin the opening part locks."""
    effect: FillEffect


_RECENT = 64
"""Bookings a `Bookings` keeps: the venue books every fill of one market event before the journal's fold books any."""


class Bookings:
    """What fills and funding did to positions, kept a moment for a second ledger of the same account.

    The paper venue's ledger and the desk's fold of the journal book every fill in turn, from the same position:
    built in the wiring and handed to both `Account`s, this lets the second find the first's booking instead of
    working it out again. A booking is reused only for the very same objects (values are immutable, so the same
    objects give the same booking); anything else is worked out, so sharing one never changes a result.
    """

    def __init__(self) -> None:
        self._recent: dict[str, _Booking] = {}
        """The latest bookings by fill id, oldest first."""
        self._last_funding: dict[str, tuple[MarketSpec, Position, Decimal, Position]] = {}
        """Each symbol's latest funding: (spec, position before, amount, position after)."""

    def booking(self, spec: MarketSpec, pos: Position | None, fill: Fill, leverage: Decimal) -> _Booking:
        """The fill's booking from `pos`."""
        known = self._recent.get(fill.fill_id)
        if known and known.fill is fill and known.before is pos and known.leverage is leverage and known.spec is spec:
            return known
        booking = self._recent[fill.fill_id] = _book(spec, pos, fill, leverage)
        if len(self._recent) > _RECENT:
            del self._recent[next(iter(self._recent))]
        return booking

    def funded(self, spec: MarketSpec, pos: Position, amount: Decimal, paid: Decimal) -> Position:
        """The position once `paid` (`amount` to the ledger's precision) moved its margin."""
        last = self._last_funding.get(spec.symbol)
        if last is not None and last[0] is spec and last[1] is pos and last[2] is amount:
            return last[3]
        margin = pos.margin + paid
        lp = _liquidation_price(spec, pos.qty, pos.entry_price, margin)
        after = replace(pos, margin=margin, liquidation_price=lp)
        self._last_funding[spec.symbol] = (spec, pos, amount, after)
        return after


def _book(spec: MarketSpec, pos: Position | None, fill: Fill, leverage: Decimal) -> _Booking:
    before = pos
    signed = fill.qty * _SIGNS[fill.side]
    realized = released = locked = ZERO
    closing = closed = opened = False
    if pos is not None and (pos.qty > 0) != (signed > 0):
        qty = min(abs(signed), abs(pos.qty))
        realized, released, pos = _reduce(spec, pos, qty, fill.price)
        closing, closed = True, pos is None
        signed += qty * (1 if signed < 0 else -1)
    if signed != 0:
        locked, pos = _increase(spec, pos, signed, fill.price, leverage)
        opened = True
    effect = FillEffect(realized, opened, closed)
    return _Booking(spec, before, fill, leverage, pos, closing, released, locked, effect)


_SIGNS = {BUY: 1, SELL: -1}
"""`Side.sign` as a table: read at every fill."""


def _reduce(spec: MarketSpec, pos: Position, qty: Decimal, price: Decimal) -> tuple[Decimal, Decimal, Position | None]:
    """Close `qty` of the position at `price`: (realized PnL, margin released, what is left)."""
    direction = 1 if pos.qty > 0 else -1
    pnl = money((price - pos.entry_price) * qty * direction * spec.contract_size)
    remaining = abs(pos.qty) - qty
    if remaining == 0:
        return pnl, pos.margin, None
    released = money(pos.margin * qty / abs(pos.qty))
    left, margin = remaining * direction, pos.margin - released
    lp = _liquidation_price(spec, left, pos.entry_price, margin)
    return pnl, released, replace(pos, qty=left, margin=margin, liquidation_price=lp)


def _increase(
    spec: MarketSpec, pos: Position | None, signed: Decimal, price: Decimal, leverage: Decimal
) -> tuple[Decimal, Position]:
    """Open or add `signed` at `price`: (margin locked, the position). Each position is built once, with its
    liquidation price."""
    qty = abs(signed)
    margin = required_margin(spec, qty, price, leverage)
    if pos is None:
        new = Position(
            symbol=spec.symbol,
            kind=spec.kind,
            qty=signed,
            entry_price=price,
            leverage=leverage,
            margin=margin,
            liquidation_price=_liquidation_price(spec, signed, price, margin),
        )
    else:
        total_qty = abs(pos.qty) + qty
        entry = (pos.entry_price * abs(pos.qty) + price * qty) / total_qty
        held, margin_held = pos.qty + signed, pos.margin + margin
        new = replace(
            pos,
            qty=held,
            entry_price=entry,
            leverage=leverage,
            margin=margin_held,
            liquidation_price=_liquidation_price(spec, held, entry, margin_held),
        )
    return margin, new


def _liquidation_price(spec: MarketSpec, qty: Decimal, entry_price: Decimal, margin: Decimal) -> Decimal | None:
    """Where a position of signed `qty`, entered at `entry_price` with `margin`, is liquidated."""
    return isolated_liquidation_price(spec, BUY if qty > 0 else SELL, abs(qty), entry_price, margin)


def required_margin(spec: MarketSpec, qty: Decimal, price: Decimal, leverage: Decimal) -> Decimal:
    """Initial margin of `qty` at `price` (spot: its whole cost)."""
    notional = qty * price * spec.contract_size
    margin = notional if spec.kind is SPOT else notional / leverage
    return margin.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)  # money(), inlined: several times a fill
