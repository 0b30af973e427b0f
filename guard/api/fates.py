"""The daemon's side of what a source may read: its proposals' fate and the account (`guard.api.source_views`).

A source sees only the proposals it made (`Proposal.source` is its credential's name); an operator sees all.
Everything comes from the folded state, except the price of a fill, which the state does not keep: the
journal's `OrderFilled` events are read for it, in a worker thread and incrementally (each read starts after
the last event already read), so asking again and again costs only what was journaled since.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from aiohttp import web

from guard import codec
from guard.api.credentials import Identity, Scope
from guard.api.source_views import AccountView, ProposalFate, ProposalFates
from guard.domain import ZERO, Value
from guard.errors import BadInput, JournalError
from guard.events import OrderFilled
from guard.journal.chain import last_seq, read_entries
from guard.journal.positions import average_price

log = structlog.get_logger(__name__)

if TYPE_CHECKING:
    from guard.api.hub import Hub
    from guard.approval.records import ProposalRecord

MAX_LISTED = 200
"""At most this many proposals in one answer of `GET /v1/proposals`."""


@dataclass(slots=True)
class _Fills:
    qty: Decimal = ZERO
    cost: Decimal = ZERO
    last_price: Decimal = ZERO


class Fates:
    """Answers a source's questions about its own proposals and the account, from the hub's desk."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._fills: dict[str, _Fills] = {}
        """Fills by client order id, read from the journal up to `_read_to`."""
        self._read_to = 0
        self._reading = asyncio.Lock()

    def visible(self, record: ProposalRecord, identity: Identity) -> bool:
        """An operator sees every proposal; a source only its own."""
        return identity.scope is Scope.OPERATOR or record.proposal.source == identity.name

    async def fate(self, proposal_id: str, identity: Identity) -> ProposalFate | None:
        """The proposal's fate, or None when there is none with this id that `identity` may see (a source is
        not told whether another's proposal exists)."""
        record = self._hub.desk.state.proposals.get(proposal_id)
        if record is None or not self.visible(record, identity):
            return None
        if record.entry_order is not None:
            await self._catch_up()
        return self._fate(record)

    async def listed(self, identity: Identity, limit: int) -> tuple[ProposalFate, ...]:
        """The newest `limit` proposals `identity` may see, newest first."""
        records = reversed(self._hub.desk.state.proposals.values())
        mine = list(itertools.islice((r for r in records if self.visible(r, identity)), max(0, min(limit, MAX_LISTED))))
        if any(r.entry_order is not None for r in mine):
            await self._catch_up()
        return tuple(self._fate(r) for r in mine)

    # --- the answers of GET /v1/proposals/{id}, GET /v1/proposals, GET /v1/account --------------

    async def answer_fate(self, proposal_id: str, identity: Identity) -> web.Response:
        """A source asking for another's proposal is answered as for one that does not exist."""
        fate = await self.fate(proposal_id, identity)
        if fate is None:
            text = f"no proposal {proposal_id[:64]!r} that this credential may see (a source sees only its own)"
            return web.json_response({"error": text}, status=404)
        return _json(fate)

    async def answer_list(self, limit: str, identity: Identity) -> web.Response:
        """Raises BadInput (answered 400) for a limit that is not 1 to MAX_LISTED."""
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LISTED:
            raise BadInput(f"limit: a whole number from 1 to {MAX_LISTED}, got {limit[:20]!r}")
        return _json(ProposalFates(await self.listed(identity, int(limit))))

    def answer_account(self) -> web.Response:
        return _json(self.account())

    # --- the views -----------------------------------------------------------------------

    def account(self) -> AccountView:
        hub = self._hub
        status = hub.status()
        return AccountView(
            trading_state=status.trading_state,
            state_reason=status.state_reason,
            operator_present=status.operator_present,
            marks=dict(hub.desk.marks),
            feeds=status.feeds,
            positions=hub.positions(),
            equity=status.equity,
            server_time=status.server_time,
        )

    def _fate(self, record: ProposalRecord) -> ProposalFate:
        fills = self._fills.get(record.entry_order) if record.entry_order is not None else None
        price = None
        if fills is not None and fills.qty > 0:
            price = average_price(fills.cost, fills.qty, fills.last_price)
        order = self._hub.desk.state.orders.get(record.entry_order) if record.entry_order is not None else None
        return ProposalFate(
            proposal=record.proposal,
            status=record.status,
            final=record.status.is_final,
            decision=record.decision,
            decided_by=record.decided_by,
            reason=record.reason,
            filled_qty=order.filled if order is not None else ZERO,
            fill_price=price,
        )

    async def _catch_up(self) -> None:
        """Add the fills journaled since the last read (read in a worker thread: the loop never waits on SQLite,
        and the sums change only here, on the loop)."""
        async with self._reading:
            if self._hub.desk.last_seq <= self._read_to:
                return
            try:
                fills, read_to = await asyncio.to_thread(_read_fills, self._hub.desk.journal_path, self._read_to)
            except JournalError as e:  # a failing journal halts the desk; its readers see no fill price yet
                log.warning("fill_prices_unreadable", error=str(e))
                return
            self._read_to = read_to
            for cid, new in fills.items():
                total = self._fills.setdefault(cid, _Fills())
                total.qty += new.qty
                total.cost += new.cost
                total.last_price = new.last_price


def _json(value: Value) -> web.Response:
    return web.Response(body=codec.encode(value), content_type="application/json")


def _read_fills(path: Path, after: int) -> tuple[dict[str, _Fills], int]:
    """The fills committed after event `after`, by client order id, and the last event they cover. Events the
    writer commits while this reads are left for the next read (counting them now and again would be twice)."""
    upto = last_seq(path)
    fills: dict[str, _Fills] = {}
    for entry in read_entries(path, after_seq=after, types={"OrderFilled"}):
        if entry.seq > upto:
            break
        event = entry.event
        assert isinstance(event, OrderFilled)
        sums = fills.setdefault(event.fill.client_order_id, _Fills())
        sums.qty += event.fill.qty
        sums.cost += event.fill.qty * event.fill.price
        sums.last_price = event.fill.price
    return fills, max(after, upto)
