"""The only road to a broker: intent journaled durably first, the trading state checked last.

Every order goes: OrderSubmitted committed (fsync) → trading-state gate, checked right before
the call → broker → its reports committed. An order that the gate stops is recorded as
rejected, so the journal never holds an intent without an outcome for long. Orders that reports make
owed (a filled entry's stop and take-profit) have their intents committed with those reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol

import structlog

from guard.approval.recorder import Recorder
from guard.broker.base import Answer, Broker, BrokerReport
from guard.domain import (
    ACTIVE,
    BUY,
    ENTRY_PURPOSE,
    HALTED,
    MARKET_ORDER,
    REDUCING,
    SELL,
    OrderPurpose,
    OrderRequest,
    Position,
)
from guard.errors import BadInput, GuardError, JournalFailing
from guard.events import Event, OrderFilled, OrderRejected, OrderSubmitted, OrderUnknown, TradingStateChanged
from guard.risk.checks import increases_risk

log = structlog.get_logger(__name__)

ESCAPE_PURPOSES = frozenset({OrderPurpose.FLATTEN, OrderPurpose.DEADMAN})
"""Orders that take risk off on the guard's own authority; they pass every trading state."""
_NOT_DURABLE = "not sent: the journal failed before the decision was durable"
_KEPT_PURPOSES = ESCAPE_PURPOSES | {OrderPurpose.STOP, OrderPurpose.TAKE_PROFIT}
"""Orders that still go out while the journal is failing (their record is kept and written later): taking
risk off, or protecting a position that is already open, must never wait on a disk."""


class FollowUp(Protocol):
    """Orders owed once some events are on record (`guard.approval.protection`: a filled entry's stop and
    take-profit), recorded in the same durable commit as those events and sent once it is on disk."""

    def owed(self, proposal_ids: Sequence[str]) -> list[OrderRequest]:
        """The orders owed now that these proposals' entries filled (the events are applied to the state)."""
        ...

    def sent(self, orders: Sequence[OrderRequest], answers: Sequence[list[BrokerReport]], why: str) -> None:
        """Told what became of the owed orders."""
        ...

    def failed(self, orders: Sequence[OrderRequest], error: GuardError) -> None:
        """Told that guard built an owed order the broker refused as invalid (a bug)."""
        ...


class Execution:
    def __init__(self, recorder: Recorder, broker: Broker) -> None:
        self._recorder = recorder
        self._broker = broker
        self.follow_up: FollowUp | None = None
        """Asked, whenever entry fills are recorded (whichever road they came by: the broker's answer, a cancel's,
        or a report of its own), for the orders they are owed; those orders' intents join the fills' commit."""

    @property
    def broker(self) -> Broker:
        return self._broker

    def gate(self, request: OrderRequest) -> str:
        """Why this order may not go out now, or "" if it may."""
        state = self._recorder.state
        if request.purpose in ESCAPE_PURPOSES:
            return "" if request.reduce_only else "escape orders must be reduce-only"
        if state.trading_state is HALTED:
            return f"trading is HALTED ({state.state_reason})"
        if state.trading_state is REDUCING and not request.reduce_only:
            position = state.account.position(request.symbol)
            if increases_risk(request.side, request.qty, position):
                return "trading is REDUCING: only orders that reduce a position pass"
        return ""

    async def send(self, request: OrderRequest, preceding: Sequence[Event] = ()) -> list[BrokerReport]:
        """Journal the intent, pass the gate, send, journal what the broker said.

        Args:
            preceding: events committed in the same durable transaction as the intent (the
                operator's decision), so the decision is on disk before the order can leave.
        """
        return (await self.send_many([request], preceding))[0]

    async def send_many(
        self, requests: Sequence[OrderRequest], preceding: Sequence[Event] = ()
    ) -> list[list[BrokerReport]]:
        """`send` for several orders at once (a kill's flatten, a stop with its take-profit): one durable
        commit for all intents, the gate for each right before the broker's call, one call for those that
        pass, one commit for all outcomes. Returns each order's reports, in order.

        Raises:
            BadInput: guard built an invalid order (a bug); its rejection is journaled first.
        """
        recorder = self._recorder
        keep = not preceding and all(r.purpose in _KEPT_PURPOSES for r in requests)
        intents = list(preceding)
        for r in requests:
            intents.append(OrderSubmitted(recorder.now(), r))
        receipt = recorder.record(intents, durable=True, failing="keep" if keep else "refuse")
        if receipt is not None:
            try:
                await receipt
            except JournalFailing:
                if not keep:
                    # The decision is not durable, so its order must not leave; what was recorded says so.
                    await recorder.commit(
                        [OrderRejected(recorder.now(), r.client_order_id, _NOT_DURABLE) for r in requests],
                        failing="keep",
                    )
                    raise
        return await self._dispatch(requests)

    async def _dispatch(self, requests: Sequence[OrderRequest]) -> list[list[BrokerReport]]:
        """Send orders whose intents are on record: the gate for each right before the broker's call, one call
        for those that pass, then what the broker said recorded (`_settle`)."""
        recorder = self._recorder
        refusals = list(map(self.gate, requests))
        passing = [r for r, why in zip(requests, refusals, strict=True) if not why] if any(refusals) else requests
        answers = iter(await self._broker.submit_many(passing) if passing else [])
        events: list[Event] = []
        out: list[list[BrokerReport]] = []
        bad: BadInput | None = None
        in_doubt = ""
        for request, why in zip(requests, refusals, strict=True):
            cid = request.client_order_id
            if why:
                rejected = OrderRejected(recorder.now(), cid, f"not sent: {why}")
                events.append(rejected)
                out.append([rejected])
                continue
            answer = next(answers)
            if isinstance(answer, BadInput):
                # guard builds orders itself, so this is a bug; still, no intent is left without an outcome.
                events.append(OrderRejected(recorder.now(), cid, f"invalid order: {answer}"))
                bad = bad or answer
                answer = []
            elif isinstance(answer, GuardError):
                # The broker did not say what happened: never assume, never resend; stop adding risk.
                log.error("order_outcome_unknown", client_order_id=cid, error=str(answer))
                events.append(OrderUnknown(recorder.now(), cid, str(answer)))
                in_doubt = in_doubt or f"order {cid} outcome unknown: {answer}"
                answer = []
            events += answer
            out.append(answer)
        if in_doubt and recorder.state.trading_state is ACTIVE:
            events.append(TradingStateChanged(recorder.now(), ACTIVE, REDUCING, in_doubt, "guard"))
        await self._settle(events, "entry filled")
        if bad is not None:
            raise bad
        return out

    async def cancel(self, client_order_id: str, reason: str) -> list[BrokerReport]:
        """Cancel one order and journal what the broker said. Raises the broker's GuardError."""
        (answer,) = await self.cancel_many([client_order_id], reason)
        if isinstance(answer, GuardError):
            raise answer
        return answer

    async def cancel_many(self, client_order_ids: Sequence[str], reason: str) -> list[Answer]:
        """Cancel several orders at once and journal what the broker said in one commit."""
        answers = await self._broker.cancel_many(client_order_ids, reason)
        await self._settle([r for a in answers if not isinstance(a, GuardError) for r in a], "entry filled")
        return answers

    async def record_reports(self, reports: Sequence[BrokerReport]) -> None:
        """Journal what a broker reported on its own (fills of resting orders, funding, liquidations): it
        happened, so it is kept even while the journal is failing."""
        if reports:
            await self._settle(reports, "entry filled")

    async def _settle(self, events: Sequence[Event], why: str) -> None:
        """Record what happened (kept even while the journal is failing), with the intents of the orders it
        makes owed (a filled entry's stop and take-profit) in the same durable commit; then send those."""
        owed: list[OrderRequest] = []
        recorder = self._recorder

        def intents() -> list[Event]:
            owed.extend(self._owed_after(events))
            return [OrderSubmitted(recorder.now(), r) for r in owed] if owed else []

        await recorder.commit_followed(events, intents)
        if not owed or self.follow_up is None:
            return
        try:
            answers = await self._dispatch(owed)
        except GuardError as e:  # recorded as rejected by `_dispatch`; the position stays open: say so loudly
            self.follow_up.failed(owed, e)
            return
        self.follow_up.sent(owed, answers, why)

    def _owed_after(self, events: Sequence[Event]) -> list[OrderRequest]:
        """The orders owed for the entries that filled among these events (applied to the state)."""
        follow_up = self.follow_up
        if follow_up is None:
            return []
        orders = self._recorder.state.orders
        filled: list[str] = []
        for e in events:
            if isinstance(e, OrderFilled):
                request = orders[e.fill.client_order_id].request
                if request.purpose is ENTRY_PURPOSE and request.proposal_id:
                    filled.append(request.proposal_id)
        return follow_up.owed(filled) if filled else []


def order_id(journal_id: str, local: str) -> str:
    """A client order id: the journal's prefix, so ids never collide across journals, then the local part an
    operator reads and types ("P000004-E", "C3", "D1-BTCUSDT")."""
    return f"g{journal_id}-{local}"


def symbol_tag(symbol: str) -> str:
    """A symbol as it goes into a client order id: BTC/USDT and BTC/USDT:USDT must differ there."""
    return "".join(ch for ch in symbol if ch.isalnum())


def reducing_order(
    client_order_id: str, position: Position, purpose: OrderPurpose, qty: Decimal | None = None
) -> OrderRequest:
    """A reduce-only market order that takes `qty` (default: all) off a position."""
    side = SELL if position.qty > 0 else BUY
    amount = abs(position.qty) if qty is None else min(qty, abs(position.qty))
    return OrderRequest(
        client_order_id=client_order_id,
        symbol=position.symbol,
        side=side,
        qty=amount,
        order_type=MARKET_ORDER,
        purpose=purpose,
        leverage=position.leverage,
        reduce_only=True,
    )
