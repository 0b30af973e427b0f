"""Positions as lifecycles, folded from the journal's fills: opened, changed, ended, and by what.

A position in guard is one-way per symbol (its quantity is signed), so a lifecycle starts when a
symbol's quantity leaves zero and ends when it returns to zero, is liquidated, or is reversed by a
fill larger than it (the remainder opens the next lifecycle at the same price). What ended it is
read from the purpose of the order whose fill took it to zero: a stop, a take-profit, the kill
switch's flatten, the dead-man switch, an operator's close, or another proposal's entry.

The figures are the journal's own: average entry and exit prices of the fills, realized PnL on the
quantity closed (price difference × quantity, contract size 1 as on guard's linear markets), fees,
funding and the isolated margin a liquidation took. Derived averages are rounded to 8 decimals.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum

from guard.domain import ZERO, Fill, OrderPurpose, OrderRequest, Side
from guard.events import Event, FundingPaid, KillRequested, OrderFilled, OrderSubmitted, PositionLiquidated

AVERAGE_QUANTUM = Decimal("1e-8")
"""Averages of prices are rounded to this (the ledger's money precision); sums of recorded amounts stay exact."""


class PositionEnd(StrEnum):
    """How a position lifecycle ended (or that it has not)."""

    OPEN = "open"
    CLOSED = "closed"
    """An operator's close order took it to zero."""
    STOPPED = "stopped"
    TAKE_PROFIT = "take_profit"
    KILLED = "killed"
    """The kill switch flattened it."""
    DEADMAN = "deadman"
    """The dead-man switch (no operator attached) flattened it."""
    OFFSET = "offset"
    """An entry the other way (another proposal) took it to zero."""
    REVERSED = "reversed"
    """An entry the other way, larger than the position, closed it and opened the opposite one."""
    LIQUIDATED = "liquidated"


_END_BY_PURPOSE = {
    OrderPurpose.CLOSE: PositionEnd.CLOSED,
    OrderPurpose.STOP: PositionEnd.STOPPED,
    OrderPurpose.TAKE_PROFIT: PositionEnd.TAKE_PROFIT,
    OrderPurpose.FLATTEN: PositionEnd.KILLED,
    OrderPurpose.DEADMAN: PositionEnd.DEADMAN,
    OrderPurpose.ENTRY: PositionEnd.OFFSET,
}


@dataclass(frozen=True, slots=True)
class PositionChange:
    """One fill (or the liquidation) that moved a position, with the quantity after it (signed)."""

    seq: int
    at: int
    client_order_id: str
    """"" for a liquidation."""
    purpose: OrderPurpose | None
    proposal_id: str | None
    side: Side
    qty: Decimal
    """The quantity of this fill that applied to this lifecycle (a reversing fill is split)."""
    price: Decimal
    fee: Decimal
    qty_after: Decimal
    realized_pnl: Decimal
    """PnL realized by this change (before fees); for a liquidation, minus the margin lost."""


@dataclass(frozen=True, slots=True)
class PositionLife:
    """One position from the fill that opened it to the one that ended it (or to the end of the journal)."""

    number: int
    """1 for the journal's first position lifecycle, counting every symbol."""
    symbol: str
    side: Side
    opened_seq: int
    opened_at: int
    closed_seq: int | None
    closed_at: int | None
    qty: Decimal
    """Signed quantity now: 0 once it has ended."""
    max_qty: Decimal
    """The largest size it reached (unsigned)."""
    entry_price: Decimal
    """Average price of the fills that opened or added to it."""
    exit_price: Decimal | None
    """Average price of the fills that reduced it (the mark, for a liquidation); None while nothing was taken off."""
    realized_pnl: Decimal
    """Price difference × quantity on what was taken off, before fees (0 for what a liquidation took)."""
    fees: Decimal
    funding: Decimal
    """Signed: received is positive."""
    liquidation_loss: Decimal
    """The isolated margin a liquidation took (positive), or 0."""
    end: PositionEnd
    ended_by: str
    """Client order id of the order whose fill ended it ("" while open, and for a liquidation)."""
    proposals: tuple[str, ...]
    """Proposals whose entry fills opened or added to it, in order."""
    changes: tuple[PositionChange, ...]

    @property
    def net_pnl(self) -> Decimal:
        """Realized PnL after fees, funding and any liquidation loss."""
        return self.realized_pnl - self.fees + self.funding - self.liquidation_loss


@dataclass(slots=True)
class _Life:
    number: int
    symbol: str
    side: Side
    opened_seq: int
    opened_at: int
    qty: Decimal = ZERO
    max_qty: Decimal = ZERO
    entry_cost: Decimal = ZERO
    """Sum of price × quantity of the fills that opened or added (for the average entry)."""
    entry_qty: Decimal = ZERO
    entry_like: Decimal = ZERO
    """A price of the entry fills: averages are written with its decimals when they are exact."""
    average: Decimal = ZERO
    """The running average entry of what is still open (realized PnL is measured against it)."""
    exit_cost: Decimal = ZERO
    exit_qty: Decimal = ZERO
    exit_like: Decimal = ZERO
    realized: Decimal = ZERO
    fees: Decimal = ZERO
    funding: Decimal = ZERO
    liquidation_loss: Decimal = ZERO
    closed_seq: int | None = None
    closed_at: int | None = None
    end: PositionEnd = PositionEnd.OPEN
    ended_by: str = ""
    proposals: list[str] = field(default_factory=list)
    changes: list[PositionChange] = field(default_factory=list)

    def frozen(self) -> PositionLife:
        return PositionLife(
            number=self.number,
            symbol=self.symbol,
            side=self.side,
            opened_seq=self.opened_seq,
            opened_at=self.opened_at,
            closed_seq=self.closed_seq,
            closed_at=self.closed_at,
            qty=self.qty,
            max_qty=self.max_qty,
            entry_price=average_price(self.entry_cost, self.entry_qty, self.entry_like) or ZERO,
            exit_price=average_price(self.exit_cost, self.exit_qty, self.exit_like),
            realized_pnl=self.realized,
            fees=self.fees,
            funding=self.funding,
            liquidation_loss=self.liquidation_loss,
            end=self.end,
            ended_by=self.ended_by,
            proposals=tuple(self.proposals),
            changes=tuple(self.changes),
        )


def average_price(cost: Decimal, qty: Decimal, like: Decimal) -> Decimal | None:
    """`cost / qty`, written with the decimals of `like` (a price of the fills) when that is exact, else
    rounded to 8 decimals; None for no quantity. Fills all at one price average to that very price."""
    if qty == 0:
        return None
    exact = cost / qty
    exponent = like.as_tuple().exponent
    if isinstance(exponent, int) and exponent <= 0:
        same = exact.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_EVEN)
        if same == exact:
            return same
    return exact.quantize(AVERAGE_QUANTUM, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class PositionUpdate:
    """What one event did to one lifecycle."""

    life: int
    """The lifecycle's number."""
    symbol: str
    change: PositionChange | None
    """The fill or liquidation; None for funding."""
    funding: Decimal
    ended: PositionLife | None
    """The lifecycle as it ended, when this event ended it."""


class PositionBook:
    """Folds fills, liquidations and funding into position lifecycles, one event at a time.

    `apply` says what an event did to which lifecycle (a reader following one proposal's position
    keeps the updates of its lifecycles; an export keeps the ended ones); `open_lives` gives what is
    still open at the end.
    """

    def __init__(self) -> None:
        self._open: dict[str, _Life] = {}
        self._orders: dict[str, OrderRequest] = {}
        self._count = 0
        self.last_kill: KillRequested | None = None
        """The most recent kill request: who pulled the switch whose flatten ended a position, and why."""

    def order(self, client_order_id: str) -> OrderRequest | None:
        """The request of an order submitted so far, by client order id."""
        return self._orders.get(client_order_id)

    def current(self, symbol: str) -> PositionLife | None:
        """The open lifecycle of a symbol, as it stands."""
        life = self._open.get(symbol)
        return life.frozen() if life is not None else None

    def open_lives(self) -> Iterator[PositionLife]:
        """Lifecycles still open, oldest first."""
        for life in sorted(self._open.values(), key=lambda life: life.number):
            yield life.frozen()

    def apply(self, seq: int, event: Event) -> list[PositionUpdate]:
        """Fold one event; return what it did to which lifecycles (usually nothing)."""
        if isinstance(event, OrderSubmitted):
            self._orders[event.request.client_order_id] = event.request
        elif isinstance(event, OrderFilled):
            return self._fill(seq, event.at, event.fill)
        elif isinstance(event, PositionLiquidated):
            return self._liquidated(seq, event)
        elif isinstance(event, FundingPaid):
            life = self._open.get(event.symbol)
            if life is not None:
                life.funding += event.amount
                return [PositionUpdate(life.number, life.symbol, None, event.amount, None)]
        elif isinstance(event, KillRequested):
            self.last_kill = event
        return []

    def _open_life(self, seq: int, at: int, symbol: str, side: Side) -> _Life:
        self._count += 1
        life = _Life(self._count, symbol, side, seq, at)
        self._open[symbol] = life
        return life

    def _fill(self, seq: int, at: int, fill: Fill) -> list[PositionUpdate]:
        request = self._orders.get(fill.client_order_id)
        purpose = request.purpose if request is not None else None
        proposal_id = request.proposal_id if request is not None else None
        updates: list[PositionUpdate] = []
        remaining, fee_left = fill.qty, fill.fee
        life = self._open.get(fill.symbol)
        if life is not None and life.side is not fill.side:
            closing = min(fill.qty, abs(life.qty))
            direction = life.side.sign
            realized = (fill.price - life.average) * closing * direction
            # A reversing fill's fee is shared by quantity; the new lifecycle gets the exact rest.
            fee = fill.fee if closing == fill.qty else (fill.fee * closing / fill.qty).quantize(AVERAGE_QUANTUM)
            life.qty -= closing * direction
            life.exit_cost += fill.price * closing
            life.exit_qty += closing
            life.exit_like = fill.price
            life.realized += realized
            life.fees += fee
            change = PositionChange(
                seq,
                at,
                fill.client_order_id,
                purpose,
                proposal_id,
                fill.side,
                closing,
                fill.price,
                fee,
                life.qty,
                realized,
            )
            life.changes.append(change)
            remaining -= closing
            fee_left -= fee
            ended = None
            if life.qty == 0:
                life.end = _END_BY_PURPOSE.get(purpose, PositionEnd.CLOSED) if purpose else PositionEnd.CLOSED
                if remaining > 0 and life.end is PositionEnd.OFFSET:
                    life.end = PositionEnd.REVERSED
                life.ended_by = fill.client_order_id
                ended = self._close(life, seq, at)
            updates.append(PositionUpdate(life.number, life.symbol, change, ZERO, ended))
            if remaining == 0:
                return updates
        life = self._open.get(fill.symbol) or self._open_life(seq, at, fill.symbol, fill.side)
        held = abs(life.qty)
        life.average = (life.average * held + fill.price * remaining) / (held + remaining)
        life.qty += remaining * fill.side.sign
        life.max_qty = max(life.max_qty, abs(life.qty))
        life.entry_cost += fill.price * remaining
        life.entry_qty += remaining
        life.entry_like = fill.price
        life.fees += fee_left
        if purpose is OrderPurpose.ENTRY and proposal_id and proposal_id not in life.proposals:
            life.proposals.append(proposal_id)
        change = PositionChange(
            seq,
            at,
            fill.client_order_id,
            purpose,
            proposal_id,
            fill.side,
            remaining,
            fill.price,
            fee_left,
            life.qty,
            ZERO,
        )
        life.changes.append(change)
        updates.append(PositionUpdate(life.number, life.symbol, change, ZERO, None))
        return updates

    def _liquidated(self, seq: int, event: PositionLiquidated) -> list[PositionUpdate]:
        life = self._open.get(event.symbol)
        if life is None:
            return []
        taken = abs(life.qty)
        life.liquidation_loss += event.loss
        life.exit_cost += event.price * taken
        life.exit_qty += taken
        life.exit_like = event.price
        change = PositionChange(
            seq, event.at, "", None, None, life.side.opposite, taken, event.price, ZERO, ZERO, -event.loss
        )
        life.changes.append(change)
        life.qty = ZERO
        life.end = PositionEnd.LIQUIDATED
        return [PositionUpdate(life.number, life.symbol, change, ZERO, self._close(life, seq, event.at))]

    def _close(self, life: _Life, seq: int, at: int) -> PositionLife:
        life.closed_seq, life.closed_at = seq, at
        del self._open[life.symbol]
        return life.frozen()
