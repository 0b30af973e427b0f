"""The phrases a proposal's story is told in, shared by the trace's steps and the printed summary."""

from __future__ import annotations

from decimal import Decimal

from guard.domain import OrderPurpose, OrderRequest, Proposal
from guard.events import KillRequested
from guard.journal.positions import PositionEnd, PositionLife


def purpose_name(purpose: OrderPurpose) -> str:
    """An order's purpose as a person says it: `entry`, `stop`, `take-profit`, `flatten`."""
    return {OrderPurpose.TAKE_PROFIT: "take-profit"}.get(purpose, purpose.value)


def side_word(qty: Decimal) -> str:
    """`long` or `short` for a signed position quantity."""
    return "long" if qty > 0 else "short"


def order_text(r: OrderRequest) -> str:
    """`stop_market sell 0.030 BTC/USDT:USDT trigger 104500 at 3x reduce-only`."""
    price = ""
    if r.limit_price is not None:
        price = f" limit {r.limit_price}"
    if r.trigger_price is not None:
        price = f" trigger {r.trigger_price}"
    reduce = " reduce-only" if r.reduce_only else ""
    return f"{r.order_type.value} {r.side.value} {r.qty} {r.symbol}{price} at {r.leverage}x{reduce}"


def levels(p: Proposal) -> str:
    """`: stop 103077.8, liquidation 70415.0`: a version's protective levels ("" when it has none)."""
    parts = [f"{name} {value}" for name, value in (("stop", p.stop), ("take-profit", p.take_profit)) if value]
    if p.liquidation_price is not None:
        parts.append(f"liquidation {p.liquidation_price}")
    return f": {', '.join(parts)}" if parts else ""


def done_by(purpose: OrderPurpose | None, proposal_id: str | None, cid: str) -> str:
    """Who moved a position, from the order's purpose: `P000003's stop`, `the kill switch's flatten`."""
    if purpose is None:
        return "a liquidation" if not cid else f"order {cid}"
    if purpose is OrderPurpose.ENTRY:
        return f"{proposal_id}'s entry"
    if proposal_id:
        return f"{proposal_id}'s {purpose_name(purpose)}"
    return {
        OrderPurpose.FLATTEN: "the kill switch's flatten",
        OrderPurpose.DEADMAN: "the dead-man switch",
        OrderPurpose.CLOSE: f"an operator's close [{cid}]",
    }.get(purpose, f"order {cid}")


def quote_of(symbol: str) -> str:
    """`USDT` for `BTC/USDT:USDT` or `BTC/USDT`: the currency PnL and fees are counted in."""
    return symbol.partition("/")[2].partition(":")[0] or "USDT"


def ending(life: PositionLife, kill: KillRequested | None = None) -> str:
    """How a position lifecycle ended (or that it is open), and what it made: `closed by its take-profit at
    104000.0: realized +200.00, fees 5.10, net +194.90 USDT`."""
    if life.end is PositionEnd.OPEN:
        return f"still open: {side_word(life.qty)} {abs(life.qty)} {life.symbol}, average entry {life.entry_price}"
    last = life.changes[-1]
    by = done_by(last.purpose, last.proposal_id, last.client_order_id)
    how = {
        PositionEnd.CLOSED: f"closed by {by}",
        PositionEnd.STOPPED: f"stopped out by {by}",
        PositionEnd.TAKE_PROFIT: f"closed by {by}",
        PositionEnd.KILLED: "flattened by the kill switch"
        + (f" (KILL by {kill.operator}: {kill.reason})" if kill is not None else ""),
        PositionEnd.DEADMAN: "flattened by the dead-man switch (no operator attached)",
        PositionEnd.OFFSET: f"closed by {by}",
        PositionEnd.REVERSED: f"reversed by {by}",
        PositionEnd.LIQUIDATED: "LIQUIDATED",
    }[life.end]
    price = f"at mark {life.exit_price}" if life.end is PositionEnd.LIQUIDATED else f"at {life.exit_price}"
    quote = quote_of(life.symbol)
    figures = f"realized {life.realized_pnl:+.2f}, fees {life.fees:.2f}"
    if life.funding:
        figures += f", funding {life.funding:+.2f}"
    if life.liquidation_loss:
        figures += f", margin lost {life.liquidation_loss:.2f}"
    return f"{how} {price}: {figures}, net {life.net_pnl:+.2f} {quote}"
