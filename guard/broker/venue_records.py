"""What the venue says, as guard types; and guard's orders, as the venue's parameters.

The sandbox broker's edge with ccxt: an order, a position, the account's trades and balance
arrive as ccxt's dicts (unified fields, with Binance's raw `info` preferred where it is exact)
and leave here as `VenueOrder`, `Position`, `Fill` and `Balance`; an `OrderRequest` is checked
against what the venue accepts and turned into `create_order`'s arguments.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog

from guard.domain import (
    ONE,
    ZERO,
    Balance,
    Fill,
    Liquidity,
    MarketKind,
    MarketSpec,
    OrderPurpose,
    OrderRequest,
    OrderType,
    Position,
    Side,
)
from guard.errors import InvalidCommand

log = structlog.get_logger(__name__)

CLIENT_ORDER_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
"""Binance's rule for client order ids."""


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """One order as the venue reports it (ccxt's dict, translated at this edge)."""

    client_order_id: str
    venue_id: str
    symbol: str
    side: Side
    qty: Decimal
    executed: Decimal
    status: str
    """ccxt's unified status: open, closed, canceled, expired or rejected."""
    algo: bool
    child_id: str = ""
    """A triggered conditional order's market order."""
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    trigger_price: Decimal | None = None
    reduce_only: bool = False

    @property
    def open(self) -> bool:
        return self.status == "open"


# --- from the venue -------------------------------------------------------------------------


def venue_order(raw: dict[str, Any], algo: bool, default_status: str = "") -> VenueOrder:
    """ccxt's order (regular, or conditional when `algo`) as a `VenueOrder`."""
    info = raw.get("info") or {}
    qty = dec(info.get("origQty", info.get("quantity", raw.get("amount"))))
    order_type = {
        "limit": OrderType.LIMIT,
        "stop_market": OrderType.STOP_MARKET,
        "take_profit_market": OrderType.TAKE_PROFIT_MARKET,
    }.get(str(raw.get("type") or info.get("orderType") or "").lower(), OrderType.MARKET)
    side = Side.BUY if str(raw.get("side") or info.get("side") or "").lower() == "buy" else Side.SELL
    return VenueOrder(
        client_order_id=str(raw.get("clientOrderId") or info.get("clientAlgoId") or ""),
        venue_id=str(raw.get("id") or info.get("orderId") or info.get("algoId") or ""),
        symbol=str(raw.get("symbol") or ""),
        side=side,
        qty=qty,
        executed=dec(info.get("executedQty", raw.get("filled"))),
        status=str(raw.get("status") or default_status or "open"),
        algo=algo,
        child_id=str(info.get("actualOrderId") or "") if algo else "",
        order_type=order_type,
        limit_price=dec(raw.get("price")) or None,
        trigger_price=dec(raw.get("triggerPrice")) or None,
        reduce_only=bool(raw.get("reduceOnly")),
    )


def venue_position(row: dict[str, Any], specs: Mapping[str, MarketSpec]) -> Position | None:
    """ccxt's position as a `Position`, or None when it is flat."""
    info = row.get("info") or {}
    qty = dec(info.get("positionAmt"))
    if qty == 0:
        contracts = dec(row.get("contracts"))
        qty = contracts if row.get("side") == "long" else -contracts
    if qty == 0:
        return None
    symbol = str(row.get("symbol"))
    notional = abs(dec(info.get("notional", row.get("notional"))))
    initial = dec(info.get("initialMargin", row.get("initialMargin")))
    leverage = dec(info.get("leverage", row.get("leverage")))
    if leverage <= 0:
        leverage = (notional / initial).to_integral_value() if initial > 0 else ONE
    margin = dec(info.get("isolatedWallet")) or initial
    liquidation = dec(info.get("liquidationPrice", row.get("liquidationPrice")))
    spec = specs.get(symbol)
    return Position(
        symbol=symbol,
        kind=spec.kind if spec else MarketKind.LINEAR,
        qty=qty,
        entry_price=dec(info.get("entryPrice", row.get("entryPrice"))),
        leverage=max(leverage, ONE),
        margin=margin,
        liquidation_price=liquidation if liquidation > 0 else None,
    )


def venue_balance(raw: dict[str, Any], quote: str) -> Balance:
    """ccxt's balance as the quote-currency account (`free + used == total`)."""
    info = raw.get("info") or {}
    for asset in info.get("assets", []) if isinstance(info, dict) else []:
        if asset.get("asset") == quote:
            free = dec(asset.get("availableBalance"))
            used = dec(asset.get("initialMargin"))
            return Balance(free + used, free, used)
    entry = raw.get(quote) or {}
    free, used = dec(entry.get("free")), dec(entry.get("used"))
    return Balance(free + used, free, used)


def venue_fills(
    request: OrderRequest,
    reported: Decimal,
    trades: Sequence[dict[str, Any]],
    *,
    exchange_id: str,
    quote: str,
    now_ms: int,
) -> list[Fill]:
    """The venue's trades of an order not yet reported (the first `reported` of its quantity was).

    Args:
        exchange_id: prefixes each fill id (the venue's trade id).
        quote: the currency fees are counted in (a fee in another asset counts as none, and is logged).
        now_ms: the time of a trade that has none.
    """
    skip = reported
    fills = []
    for trade in sorted(trades, key=lambda t: (t.get("timestamp") or 0, _int_id(t.get("id")))):
        info = trade.get("info") or {}
        qty = dec(info.get("qty", trade.get("amount")))
        if skip >= qty:
            skip -= qty
            continue
        qty -= skip
        skip = ZERO
        fee_info = trade.get("fee") or {}
        fee = dec(info.get("commission", fee_info.get("cost")))
        asset = info.get("commissionAsset", fee_info.get("currency")) or quote
        if asset != quote:
            log.warning("venue_fee_not_in_quote", client_order_id=request.client_order_id, asset=asset)
            fee = ZERO
        maker = trade.get("takerOrMaker") == "maker"
        fills.append(
            Fill(
                client_order_id=request.client_order_id,
                fill_id=f"{exchange_id}-{trade.get('id')}",
                symbol=request.symbol,
                side=request.side,
                qty=qty,
                price=dec(info.get("price", trade.get("price"))),
                fee=fee,
                liquidity=Liquidity.MAKER if maker else Liquidity.TAKER,
                timestamp=int(trade.get("timestamp") or now_ms),
            )
        )
    return fills


def foreign_request(order: VenueOrder) -> OrderRequest:
    """A venue order guard never sent, in guard's shape (shown and cancelled, never adopted)."""
    return OrderRequest(
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        qty=order.qty - order.executed,
        order_type=order.order_type,
        purpose=OrderPurpose.ENTRY,
        limit_price=order.limit_price,
        trigger_price=order.trigger_price,
        reduce_only=order.reduce_only,
    )


# --- to the venue ---------------------------------------------------------------------------


def checked_order(request: OrderRequest, specs: Mapping[str, MarketSpec]) -> MarketSpec:
    """The market of an order the venue can take as asked.

    Raises:
        InvalidCommand: what about the order the venue would refuse (guard builds orders itself).
    """
    spec = specs.get(request.symbol)
    if spec is None:
        raise InvalidCommand(f"unknown symbol {request.symbol!r}; known: {', '.join(specs)}")
    if spec.kind is not MarketKind.LINEAR:
        raise InvalidCommand(f"{request.symbol}: the sandbox broker trades linear perpetuals only")
    if not CLIENT_ORDER_ID.match(request.client_order_id):
        raise InvalidCommand(f"client order id {request.client_order_id!r} is not one the venue accepts")
    if not request.qty.is_finite() or request.qty <= 0 or request.qty % spec.step_size != 0:
        raise InvalidCommand(f"order quantity {request.qty} is not a positive multiple of {spec.step_size}")
    if request.order_type is OrderType.LIMIT and request.limit_price is None:
        raise InvalidCommand("a limit order needs a limit price")
    if is_algo(request) and request.trigger_price is None:
        raise InvalidCommand(f"a {request.order_type} order needs a trigger price")
    if not request.leverage.is_finite() or request.leverage < ONE:
        raise InvalidCommand(f"leverage must be at least 1, got {request.leverage}")
    return spec


def create_order_args(request: OrderRequest) -> tuple[str, str, str, float, float | None, dict[str, Any]]:
    """ccxt's `create_order` arguments for a checked order: symbol, type, side, amount, price, params."""
    params: dict[str, Any] = {"clientOrderId": request.client_order_id}
    if request.reduce_only:
        params["reduceOnly"] = True
    price = None
    kind = "market"
    if request.order_type is OrderType.LIMIT and request.limit_price is not None:
        kind = "limit"
        price = float(request.limit_price)
        params["timeInForce"] = "GTC"
    elif request.order_type is OrderType.STOP_MARKET and request.trigger_price is not None:
        params["triggerPrice"] = float(request.trigger_price)
    elif request.order_type is OrderType.TAKE_PROFIT_MARKET and request.trigger_price is not None:
        params["takeProfitPrice"] = float(request.trigger_price)
    return request.symbol, kind, request.side.value, float(request.qty), price, params


def id_params(client_order_id: str, algo: bool) -> dict[str, Any]:
    """The parameters that name an order by its client order id (a conditional one among the algo orders)."""
    params: dict[str, Any] = {"clientOrderId": client_order_id}
    if algo:
        params["trigger"] = True
    return params


def is_algo(request: OrderRequest) -> bool:
    """A conditional order (stop, take-profit): the venue keeps it among its algo orders."""
    return request.order_type in (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET)


def dec(value: Any) -> Decimal:
    """A venue's number as a Decimal; 0 for a missing, unreadable or infinite one."""
    if value is None or value == "":
        return ZERO
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return ZERO
    return result if result.is_finite() else ZERO


def _int_id(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
