"""The Broker port: one interface for the paper broker and venue brokers.

Brokers speak in guard's own events (`OrderAccepted`, `OrderFilled`, ...): whatever a venue
says is translated at this edge. Business outcomes (a rejected order) are returned reports;
exceptions mean the broker could not find out what happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from decimal import Decimal
from typing import Protocol, TypeVar

from guard.broker.ledger import Account
from guard.domain import Balance, MarketEvent, OrderRequest, Position
from guard.errors import GuardError
from guard.events import (
    FundingPaid,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    PositionLiquidated,
)

BrokerReport = OrderAccepted | OrderFilled | OrderCancelled | OrderRejected | FundingPaid | PositionLiquidated
Answer = list[BrokerReport] | GuardError
"""One order's outcome in a batch: what the broker reported, or the error that left it unknown or refused."""

T = TypeVar("T")


async def answer(call: Awaitable[Sequence[BrokerReport]]) -> Answer:
    """Await one broker call; its GuardError becomes its answer (anything else is a bug and is raised)."""
    try:
        return list(await call)
    except GuardError as e:
        return e


def answer_now(call: Callable[[T], Sequence[BrokerReport]], arg: T) -> Answer:
    """`answer` for a broker call that answers at once (the paper venue's): `call(arg)`, its GuardError its answer."""
    try:
        return list(call(arg))
    except GuardError as e:
        return e


async def answers_at_once(calls: Iterable[Awaitable[Sequence[BrokerReport]]]) -> list[Answer]:
    """Await broker calls concurrently (a venue's round trips overlap), answered as `answer` does."""
    return list(await asyncio.gather(*map(answer, calls)))


class Broker(Protocol):
    name: str
    needs_marks: bool
    """True when the broker fills only at prices guard feeds it (the paper venue); a venue has its own."""

    async def submit(self, request: OrderRequest) -> Sequence[BrokerReport]:
        """Send an order. Returns what the venue said: accepted, filled (maybe partly), rejected."""
        ...

    async def cancel(self, client_order_id: str, reason: str) -> Sequence[BrokerReport]:
        """Cancel a resting order. Cancelling an order that is already gone reports nothing."""
        ...

    async def submit_many(self, requests: Sequence[OrderRequest]) -> list[Answer]:
        """`submit` for several orders (a kill's flatten): a venue gets them at once. Each answer, in order,
        is that order's reports or the GuardError its submit raised."""
        ...

    async def cancel_many(self, client_order_ids: Sequence[str], reason: str) -> list[Answer]:
        """`cancel` for several orders, answered like `submit_many`."""
        ...

    async def open_orders(self) -> Sequence[OrderRequest]:
        """Orders resting at the venue now, as the venue sees them."""
        ...

    async def positions(self) -> Sequence[Position]:
        """Open positions as the venue sees them. Raises rather than answer "flat" when unsure."""
        ...

    async def balance(self) -> Balance: ...

    async def recover(
        self,
        account: Account,
        open_orders: Sequence[tuple[OrderRequest, Decimal]],
        sent: Collection[str],
        in_doubt: Sequence[OrderRequest],
    ) -> Sequence[BrokerReport]:
        """After a restart: take the journal's view of the books, and resolve orders in doubt.

        Args:
            account: the account as the journal rebuilt it.
            open_orders: resting orders the journal knows of, with their unfilled quantity.
            sent: every client order id ever journaled (none may be reused).
            in_doubt: orders whose intent was journaled but whose outcome was not.

        Returns:
            Reports that settle each order in doubt (and anything else the venue says differs).
        """
        ...

    def on_market(self, event: MarketEvent) -> Sequence[BrokerReport]:
        """Market data, for brokers that simulate a venue (fills, liquidations, funding)."""
        ...
