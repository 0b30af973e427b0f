"""Protection: an approved entry, once filled, gets the proposal's stop and take-profit, whenever it fills.

A person approved the trade with its stop. The entry may fill in the broker's first answer, later while it
rests on the book (the paper venue's market walk, a venue's report), in parts, after an operator amended it,
or while the daemon was down. Whenever `Execution` records entry fills, on any of those roads, it asks
`Protection.owed` and records the protective orders' intents in the same durable commit as the fills (a filled
entry is never on disk without its stop on the way); the desk asks `protect_missing` at start and at re-arm for
fills that no protection followed.

What is owed is worked out from the journal alone: per proposal, what its entry orders filled minus what its
stop (and its take-profit) orders were placed for, each protective order counted for the quantity it was
placed with whatever became of it since (an operator's cancel or amend of a stop is theirs; a stop that
triggered did its work), except one the venue rejected, which is still owed. It is capped by the position:
resting reduce-only stops never add up to more than is held. Nothing is placed while trading is HALTED or a
kill is in progress: the kill switch owns the book, and a flattened position needs no stop.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

import structlog

from guard.approval.execution import Execution, order_id
from guard.approval.recorder import Recorder
from guard.approval.records import OrderRecord
from guard.broker.base import BrokerReport
from guard.domain import (
    HALTED,
    ORDER_REJECTED,
    STOP_PURPOSE,
    ZERO,
    OrderPurpose,
    OrderRequest,
    OrderType,
    Proposal,
)
from guard.errors import GuardError

log = structlog.get_logger(__name__)

_KINDS = (
    ("S", OrderType.STOP_MARKET, OrderPurpose.STOP),
    ("T", OrderType.TAKE_PROFIT_MARKET, OrderPurpose.TAKE_PROFIT),
)
_AMENDS = 1_000
"""More amendments of one order than anyone makes: a bound on walking an order's chain of replacements."""


class Protection:
    """Places the stop and take-profit a filled entry is owed, as reduce-only orders through `Execution`."""

    def __init__(self, recorder: Recorder, execution: Execution) -> None:
        self._recorder = recorder
        self._state = recorder.state
        self._execution = execution

    def owed(self, proposal_ids: Iterable[str]) -> list[OrderRequest]:
        """What these proposals' filled entries are owed now; nothing while trading is HALTED or a kill runs
        (the kill switch owns the orders then; a re-arm protects what is still owed)."""
        orders = [o for pid in sorted(set(proposal_ids)) for o in self._owed(pid)]
        if orders and (self._state.trading_state is HALTED or self._state.kill_in_progress):
            pids = sorted({o.proposal_id or "" for o in orders})
            log.warning("entry_protection_held", proposals=pids, reason="HALTED: the kill switch owns the orders")
            return []
        return orders

    async def protect(self, proposal_ids: Iterable[str], why: str = "entry filled") -> int:
        """Place what these proposals' filled entries are owed. Returns how many orders were sent.

        Entry fills that `Execution` records are protected on its own (their stop and take-profit join the fills'
        commit, see `owed`); this is for fills no protection followed (a restart, a re-arm)."""
        # Worked out and recorded (the intents applied to the state) before the first await: a second fill
        # arriving meanwhile sees these orders and is owed only what they do not cover.
        orders = self.owed(proposal_ids)
        if not orders:
            return 0
        try:
            answers = await self._execution.send_many(orders)
        except GuardError as e:
            self.failed(orders, e)
            return 0
        self.sent(orders, answers, why)
        return len(orders)

    def failed(self, orders: Sequence[OrderRequest], error: GuardError) -> None:
        """Recorded as rejected by `Execution`; the position stays open: say so loudly."""
        log.error("entry_protection_failed", proposals=sorted({o.proposal_id or "" for o in orders}), error=str(error))

    def sent(self, orders: Sequence[OrderRequest], answers: Sequence[list[BrokerReport]], why: str) -> None:
        """Log what became of each protective order."""
        placed_by_id = self._state.orders
        # What `log.info` would find, found once: the lazy proxy looks each name up and fails first (~1 us).
        logger = log.bind()
        # The fields are built only for a line that is written: a replay logs at "error" and places thousands.
        info = logger.is_enabled_for(logging.INFO)
        for order, reports in zip(orders, answers, strict=True):
            placed = placed_by_id[order.client_order_id]
            if placed.status is ORDER_REJECTED:  # the position is held without it: an operator must look
                logger.error("entry_protection_rejected", reason=placed.reason, **_fields(order, why))
            elif info:
                logger.info("entry_protected", status=placed.status.value, reports=len(reports), **_fields(order, why))

    async def protect_missing(self, why: str) -> int:
        """Protect every filled entry that no stop or take-profit followed (a fill learnt while the daemon was
        down or HALTED, a crash between a fill and its stop). Returns how many orders were sent."""
        filled = {
            o.request.proposal_id
            for o in self._state.orders.values()
            if o.request.purpose is OrderPurpose.ENTRY and o.request.proposal_id and o.filled > 0
        }
        return await self.protect(filled, why)

    def _owed(self, pid: str) -> list[OrderRequest]:
        """The protective orders proposal `pid` is owed now (none, a stop, a take-profit or both)."""
        state = self._state
        record = state.proposals.get(pid)
        if record is None:
            return []
        p = record.proposal
        root = order_id(state.journal_id, p.id)
        filled = _filled(state.orders, f"{root}-E")
        orders: list[OrderRequest] = []
        if filled <= 0:
            return orders
        for suffix, order_type, purpose in _KINDS:
            trigger = p.stop if purpose is STOP_PURPOSE else p.take_profit
            if trigger is None:
                continue
            n, covered = _placed(state.orders, f"{root}-{suffix}")
            if filled <= covered:  # the common case, found without reading the book
                continue
            qty = state.specs[p.symbol].round_qty(min(filled - covered, self._room(p, purpose)))
            if qty <= 0:
                continue
            n += 1
            orders.append(
                OrderRequest(
                    client_order_id=f"{root}-{suffix}" if n == 1 else f"{root}-{suffix}{n}",
                    symbol=p.symbol,
                    side=p.side.opposite,
                    qty=qty,
                    order_type=order_type,
                    purpose=purpose,
                    leverage=p.leverage,
                    trigger_price=trigger,
                    reduce_only=True,
                    proposal_id=p.id,
                )
            )
        return orders

    def _room(self, p: Proposal, purpose: OrderPurpose) -> Decimal:
        """How much more of `purpose` the position on `p`'s symbol can carry: what is held on `p`'s side, less
        what such orders already rest for (this proposal's and any other's)."""
        state = self._state
        position = state.account.position(p.symbol)
        if position is None or position.side is not p.side:
            return ZERO
        return abs(position.qty) - state.live.resting(p.symbol, purpose)


def _filled(orders: Mapping[str, OrderRecord], first: str) -> Decimal:
    """What an order and the replacements an operator's amends put in its place (`first`-A1, …) filled."""
    filled = ZERO
    record = orders.get(first)
    n = 0
    while record is not None and n < _AMENDS:
        filled += record.filled
        n += 1
        record = orders.get(f"{first}-A{n}")
    return filled


def _placed(orders: Mapping[str, OrderRecord], base: str) -> tuple[int, Decimal]:
    """How many protective orders `base`, `base`2, … were sent so far, and the quantity they cover. Each covers
    the quantity it was placed for unless it was rejected (that is still owed); an operator's amend or cancel of
    it since is theirs, and reopens nothing."""
    n, covered = 0, ZERO
    while (record := orders.get(base if n == 0 else f"{base}{n + 1}")) is not None:
        n += 1
        if record.status is not ORDER_REJECTED:
            covered += record.request.qty
    return n, covered


def _fields(order: OrderRequest, why: str) -> dict[str, str | None]:
    """What a log line about a protective order says of it."""
    return {
        "proposal_id": order.proposal_id,
        "client_order_id": order.client_order_id,
        "purpose": order.purpose.value,
        "qty": str(order.qty),
        "trigger": str(order.trigger_price),
        "why": why,
    }
