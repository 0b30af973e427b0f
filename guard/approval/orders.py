"""Resting orders: what is working at the venue (limit entries, stops, take-profits), and an operator's cancel
or amend of one.

A cancel or an amend is an operator's decision like any other: journaled with who, what and why
(`OrderCancelRequested`, `OrderAmendRequested`) before the broker is asked. An amend is a cancel and a
replacement: the replacement is sent only once the venue confirmed the cancel, through the one road every
order takes (`Execution`: intent journaled, trading state checked right before the broker), so the kill
switch sees it like any other order. An amend may move a price and shrink a quantity, never grow it: more
size is a new proposal, approved as such.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import structlog
from msgspec.structs import replace

from guard.approval.answers import CommandResult, refuse
from guard.approval.execution import Execution, order_id
from guard.approval.gate import Gate
from guard.approval.recorder import Recorder
from guard.approval.records import OrderRecord
from guard.approval.validation import check_prices
from guard.domain import MarketSpec, OrderPurpose, OrderRequest, OrderStatus, OrderType, TradingState
from guard.errors import GuardError
from guard.events import OrderAmendRequested, OrderCancelRequested

log = structlog.get_logger(__name__)

_AMENDED = re.compile(r"-A\d+$")
KINDS = {
    OrderPurpose.ENTRY: "entry",
    OrderPurpose.STOP: "stop",
    OrderPurpose.TAKE_PROFIT: "take-profit",
    OrderPurpose.CLOSE: "close",
    OrderPurpose.FLATTEN: "flatten",
    OrderPurpose.DEADMAN: "dead-man",
}


def order_kind(request: OrderRequest) -> str:
    """What an order is, in a word or two: "limit entry", "stop", "take-profit"."""
    kind = KINDS[request.purpose]
    return f"limit {kind}" if request.order_type is OrderType.LIMIT else kind


def order_price(request: OrderRequest) -> Decimal | None:
    """The price an order rests at: its limit, or the trigger of a stop or take-profit (None for a market order)."""
    return request.limit_price if request.order_type is OrderType.LIMIT else request.trigger_price


def short_id(client_order_id: str, journal_id: str) -> str:
    """An order's id as an operator types it: the client order id without the journal's prefix ("P000004-E")."""
    return client_order_id.removeprefix(order_id(journal_id, ""))


@dataclass(frozen=True, slots=True)
class Amendment:
    """What an operator asked to change; None leaves it as it is."""

    price: Decimal | None = None
    qty: Decimal | None = None


class Orders:
    """The resting orders, and an operator's cancel or amend of one."""

    def __init__(self, recorder: Recorder, execution: Execution, gate: Gate, marks: Mapping[str, Decimal]) -> None:
        self._recorder = recorder
        self._state = recorder.state
        self._execution = execution
        self._gate = gate
        self._marks = marks
        self._busy: set[str] = set()
        """Orders with a cancel or amend on its way to the venue: a second one waits for the first's answer."""

    def resting(self) -> list[OrderRecord]:
        """Orders working at the venue as the journal knows them (open or partly filled), oldest first."""
        return sorted(self._state.open_orders(), key=lambda o: (o.submitted_at, o.request.client_order_id))

    def find(self, ident: str) -> tuple[OrderRecord | None, str]:
        """The resting order an operator named, or why none: its client order id, its short id ("P000004-E"),
        or its proposal's id when that proposal has one order resting."""
        ident = ident.strip()
        resting = self.resting()
        journal_id = self._state.journal_id
        by_id = [o for o in resting if ident in (cid := o.request.client_order_id, short_id(cid, journal_id))]
        if by_id:
            return by_id[0], ""
        of_proposal = [o for o in resting if o.request.proposal_id == ident]
        if len(of_proposal) == 1:
            return of_proposal[0], ""
        if of_proposal:
            names = ", ".join(short_id(o.request.client_order_id, journal_id) for o in of_proposal)
            return None, f"{ident} has {len(of_proposal)} resting orders ({names}): name one"
        return None, f"no resting order {ident}: see `guard orders`"

    async def _target(self, ident: str, operator: str, command: str) -> tuple[OrderRecord | None, CommandResult]:
        """The order to act on, or the refusal (journaled) that says why not."""
        why = self._gate.journal_refusal()
        if not why and self._state.trading_state is TradingState.HALTED:
            why = "trading is HALTED: the kill switch owns orders"
        record = None
        if not why:
            record, why = self.find(ident)
        if not why and record is not None and record.request.client_order_id in self._busy:
            why = f"a cancel or amend of {ident} is already on its way to the venue"
        if why or record is None:
            return None, await refuse(self._recorder, operator, command, None, why)
        return record, CommandResult(True)

    async def cancel(self, ident: str, operator: str, reason: str, credential: str = "") -> CommandResult:
        """Cancel a resting order, journaled with who and why first."""
        record, refusal = await self._target(ident, operator, "cancel_order")
        if record is None:
            return refusal
        cid = record.request.client_order_id
        name = short_id(cid, self._state.journal_id)
        self._busy.add(cid)
        try:
            now = self._recorder.now()
            await self._recorder.commit([OrderCancelRequested(now, cid, operator, reason, credential or operator)])
            log.info("order_cancel_requested", client_order_id=cid, operator=operator, reason=reason)
            ended, why = await self._cancelled(cid, f"cancelled by {operator}" + (f": {reason}" if reason else ""))
        finally:
            self._busy.discard(cid)
        return CommandResult(ended, f"{name} cancelled" if ended else f"{name} not cancelled: {why}")

    async def amend(
        self, ident: str, operator: str, change: Amendment, reason: str, credential: str = ""
    ) -> CommandResult:
        """Move a resting order's price or shrink its quantity: cancel it, then send its replacement."""
        record, refusal = await self._target(ident, operator, "amend_order")
        if record is None:
            return refusal
        old = record.request
        cid = old.client_order_id
        replacement, why = self._replacement(record, change)
        if replacement is None:
            return await refuse(self._recorder, operator, "amend_order", old.proposal_id, why)
        name = short_id(cid, self._state.journal_id)
        new_name = short_id(replacement.client_order_id, self._state.journal_id)
        self._busy.add(cid)
        try:
            event = OrderAmendRequested(
                self._recorder.now(),
                cid,
                replacement.client_order_id,
                operator,
                reason,
                order_price(old),
                order_price(replacement),
                record.remaining,
                replacement.qty,
                credential or operator,
            )
            await self._recorder.commit([event])
            log.info("order_amend_requested", client_order_id=cid, replacement=new_name, operator=operator)
            ended, why = await self._cancelled(cid, f"amended by {operator}: replaced by {new_name}")
            if not ended:
                return CommandResult(False, f"{name} not amended: {why}; nothing was sent in its place")
            # A venue may fill part of the order while the cancel travels: the replacement never adds to what
            # was approved.
            left = self._state.specs[old.symbol].round_qty(self._state.orders[cid].remaining)
            if left < replacement.qty:
                if left <= 0:
                    return CommandResult(False, f"{name} filled while it was being amended: nothing left to replace")
                replacement = replace(replacement, qty=left)
            reports = await self._execution.send(replacement)
        finally:
            self._busy.discard(cid)
        placed = self._state.orders[replacement.client_order_id]
        if placed.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED):
            at = order_price(replacement)
            shown = format(at.normalize(), "f") if at is not None else "market"
            where = "filled" if placed.status is OrderStatus.FILLED else f"resting at {shown}"
            qty = format(replacement.qty.normalize(), "f")
            return CommandResult(True, f"{name} amended: {new_name} {qty} {where}")
        reasons = "; ".join(r for r in (getattr(x, "reason", "") for x in reports) if r) or placed.status.value
        return CommandResult(False, f"{name} was cancelled but its replacement {new_name} was not placed: {reasons}")

    def _replacement(self, record: OrderRecord, change: Amendment) -> tuple[OrderRequest | None, str]:
        """The order to send in place of `record`, or why the amendment cannot be made."""
        old = record.request
        spec: MarketSpec = self._state.specs[old.symbol]
        price = order_price(old)
        if price is None:
            return None, f"a {old.order_type.value} order has no price to amend"
        if change.price is None and change.qty is None:
            return None, "give a new price, a new quantity or both"
        new_price = spec.round_price(change.price) if change.price is not None else price
        new_qty = spec.round_qty(change.qty) if change.qty is not None else record.remaining
        if change.qty is not None and change.qty > record.remaining:
            return None, (
                f"an amend may lower the quantity, not raise it ({change.qty} is more than the {record.remaining} "
                "still to fill): for more, propose again"
            )
        if new_qty <= 0 or new_qty < spec.min_qty:
            return None, f"quantity {change.qty} is below the market minimum {spec.min_qty} once rounded"
        if new_price <= 0:
            return None, f"price {change.price} rounds to nothing at the tick size {spec.tick_size}"
        if (new_price, new_qty) == (price, record.remaining):
            return None, "nothing to change: that is the order's price and quantity now"
        name = "limit_price" if old.order_type is OrderType.LIMIT else "trigger_price"
        check_prices(old.symbol, self._marks.get(old.symbol), **{name: new_price})
        limit = self._state.limits.max_order_notional
        notional = new_qty * new_price * spec.contract_size
        if old.purpose is OrderPurpose.ENTRY and notional > limit:
            return None, f"the amended order's notional {notional:.2f} is above the limit of {limit}"
        root = _AMENDED.sub("", old.client_order_id)
        n = sum(1 for c in self._state.orders if c.startswith(f"{root}-A")) + 1
        replacement = replace(old, client_order_id=f"{root}-A{n}", qty=new_qty, **{name: new_price})
        if why := self._execution.gate(replacement):
            return None, why
        return replacement, ""

    async def _cancelled(self, cid: str, reason: str) -> tuple[bool, str]:
        """Ask the venue to cancel; (True, "") once the journal has it cancelled, else (False, what happened)."""
        try:
            await self._execution.cancel(cid, reason)
        except GuardError as e:
            log.warning("order_cancel_failed", client_order_id=cid, error=str(e))
            return False, f"the venue did not confirm the cancel ({e})"
        order = self._state.orders[cid]
        if order.status is OrderStatus.CANCELLED:
            return True, ""
        if order.status is OrderStatus.FILLED:
            return False, "it filled before the cancel reached the venue"
        return False, f"the venue did not report it cancelled (on record: {order.status.value})"
