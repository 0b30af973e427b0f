"""The only road to a broker: intent journaled durably first, the trading state checked last.

Every order goes: OrderSubmitted committed (fsync) → trading-state gate, checked right before
the call → broker → its reports committed. An order that the gate stops is recorded as
rejected, so the journal never holds an intent without an outcome for long.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import structlog

from guard.approval.recorder import Recorder
from guard.broker.base import Broker, BrokerReport
from guard.domain import (
    OrderPurpose,
    OrderRequest,
    OrderType,
    Position,
    Side,
    TradingState,
)
from guard.errors import BadInput, GuardError
from guard.events import Event, OrderRejected, OrderSubmitted, OrderUnknown, TradingStateChanged
from guard.risk.checks import increases_risk

log = structlog.get_logger(__name__)

ESCAPE_PURPOSES = frozenset({OrderPurpose.FLATTEN, OrderPurpose.DEADMAN})
"""Orders that take risk off on the guard's own authority; they pass every trading state."""


class Execution:
    def __init__(self, recorder: Recorder, broker: Broker) -> None:
        self._recorder = recorder
        self._broker = broker

    @property
    def broker(self) -> Broker:
        return self._broker

    def gate(self, request: OrderRequest) -> str:
        """Why this order may not go out now, or "" if it may."""
        state = self._recorder.state
        if request.purpose in ESCAPE_PURPOSES:
            return "" if request.reduce_only else "escape orders must be reduce-only"
        if state.trading_state is TradingState.HALTED:
            return f"trading is HALTED ({state.state_reason})"
        if state.trading_state is TradingState.REDUCING and not request.reduce_only:
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
        recorder = self._recorder
        await recorder.commit([*preceding, OrderSubmitted(recorder.now(), request)])
        why = self.gate(request)
        if why:
            rejected = OrderRejected(recorder.now(), request.client_order_id, f"not sent: {why}")
            await recorder.commit([rejected])
            return [rejected]
        try:
            reports = list(await self._broker.submit(request))
        except BadInput as e:
            # guard builds orders itself, so this is a bug; still, no intent is left without an outcome.
            await recorder.commit([OrderRejected(recorder.now(), request.client_order_id, f"invalid order: {e}")])
            raise
        except GuardError as e:
            await self._in_doubt(request, str(e))
            return []
        await recorder.commit(reports)
        return reports

    async def _in_doubt(self, request: OrderRequest, why: str) -> None:
        """The broker did not say what happened: never assume, never resend; stop adding risk."""
        recorder = self._recorder
        state = recorder.state
        events: list = [OrderUnknown(recorder.now(), request.client_order_id, why)]
        if state.trading_state is TradingState.ACTIVE:
            events.append(
                TradingStateChanged(
                    recorder.now(),
                    state.trading_state,
                    TradingState.REDUCING,
                    f"order {request.client_order_id} outcome unknown: {why}",
                    "guard",
                )
            )
        log.error("order_outcome_unknown", client_order_id=request.client_order_id, error=why)
        await recorder.commit(events)

    async def cancel(self, client_order_id: str, reason: str) -> list[BrokerReport]:
        reports = list(await self._broker.cancel(client_order_id, reason))
        await self._recorder.commit(reports)
        return reports

    async def record_reports(self, reports: Sequence[BrokerReport]) -> None:
        if reports:
            await self._recorder.commit(reports)


def reducing_order(
    client_order_id: str, position: Position, purpose: OrderPurpose, qty: Decimal | None = None
) -> OrderRequest:
    """A reduce-only market order that takes `qty` (default: all) off a position."""
    side = Side.SELL if position.qty > 0 else Side.BUY
    amount = abs(position.qty) if qty is None else min(qty, abs(position.qty))
    return OrderRequest(
        client_order_id=client_order_id,
        symbol=position.symbol,
        side=side,
        qty=amount,
        order_type=OrderType.MARKET,
        purpose=purpose,
        leverage=position.leverage,
        reduce_only=True,
    )
