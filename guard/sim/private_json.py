"""The simulated private API's answers as Binance USDⓈ-M prints them, and its parameters as it reads them.

Pure shapes: an order, a conditional (algo) order, a position and the USDT asset as JSON bodies,
numbers as Binance's plain-notation strings, and the query parameters parsed with Binance's errors.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from guard.sim.books import SimAccount, SimBooks, SimOrder, SimTrade
from guard.sim.brackets import sim_brackets
from guard.sim.market import SimMarket
from guard.sim.public import ApiError


def order_json(market: SimMarket, o: SimOrder) -> dict[str, Any]:
    """A regular order as /fapi/v1/order answers it."""
    average = o.cum_quote / o.executed if o.executed else Decimal(0)
    return {
        "orderId": o.order_id,
        "symbol": market.ids[o.j],
        "status": o.status,
        "clientOrderId": o.client_id,
        "price": plain(o.price),
        "avgPrice": plain(average),
        "origQty": plain(o.qty),
        "executedQty": plain(o.executed),
        "cumQty": plain(o.executed),
        "cumQuote": plain(o.cum_quote),
        "timeInForce": o.time_in_force,
        "type": o.kind,
        "reduceOnly": o.reduce_only,
        "closePosition": False,
        "side": o.side,
        "positionSide": "BOTH",
        "stopPrice": plain(o.trigger),
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "origType": o.kind,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "NONE",
        "goodTillDate": 0,
        "time": o.created,
        "updateTime": o.updated,
    }


def algo_json(market: SimMarket, o: SimOrder) -> dict[str, Any]:
    """A conditional order as /fapi/v1/algoOrder answers it."""
    return {
        "algoId": o.order_id,
        "clientAlgoId": o.client_id,
        "algoType": "CONDITIONAL",
        "orderType": o.kind,
        "symbol": market.ids[o.j],
        "side": o.side,
        "positionSide": "BOTH",
        "timeInForce": "GTC",
        "quantity": plain(o.qty),
        "algoStatus": o.status,
        "actualOrderId": str(o.actual_order_id or ""),
        "triggerPrice": plain(o.trigger),
        "price": "0",
        "workingType": "CONTRACT_PRICE",
        "priceMatch": "NONE",
        "closePosition": False,
        "priceProtect": False,
        "reduceOnly": o.reduce_only,
        "createTime": o.created,
        "updateTime": o.updated,
        "triggerTime": o.updated if o.actual_order_id else 0,
        "goodTillDate": 0,
    }


def position_json(books: SimBooks, acct: SimAccount, j: int) -> dict[str, Any]:
    """One position as /fapi/v3/positionRisk answers it."""
    p = acct.position(j)
    now = books.now()
    mark = books.mark(j, now)
    notional = p.qty * mark
    unrealized = (mark - p.entry) * p.qty
    isolated = acct.margin_type.get(j, "CROSSED") == "ISOLATED"
    initial = abs(notional) / acct.lev(j)
    return {
        "symbol": books.market.ids[j],
        "positionSide": "BOTH",
        "positionAmt": plain(p.qty),
        "entryPrice": plain(p.entry),
        "breakEvenPrice": plain(p.entry),
        "markPrice": plain(mark),
        "unRealizedProfit": plain(unrealized),
        "liquidationPrice": "0",
        "isolatedMargin": plain(p.margin + unrealized if isolated else Decimal(0)),
        "notional": plain(notional),
        "marginAsset": "USDT",
        "isolatedWallet": plain(p.margin if isolated else Decimal(0)),
        "initialMargin": plain(initial),
        "maintMargin": plain(abs(notional) * Decimal("0.004")),
        "positionInitialMargin": plain(initial),
        "openOrderInitialMargin": "0",
        "adl": 0,
        "bidNotional": "0",
        "askNotional": "0",
        "updateTime": p.updated or now,
    }


def asset_json(books: SimBooks, acct: SimAccount) -> dict[str, Any]:
    """The USDT asset as /fapi/v3/account answers it."""
    now = books.now()
    unrealized = sum(
        ((books.mark(j, now) - p.entry) * p.qty for j, p in acct.positions.items() if p.qty != 0),
        Decimal(0),
    )
    used = acct.used_margin()
    margin_balance = acct.wallet + unrealized
    available = margin_balance - used
    return {
        "asset": "USDT",
        "walletBalance": plain(acct.wallet),
        "unrealizedProfit": plain(unrealized),
        "marginBalance": plain(margin_balance),
        "maintMargin": "0",
        "initialMargin": plain(used),
        "positionInitialMargin": plain(used),
        "openOrderInitialMargin": "0",
        "crossWalletBalance": plain(acct.wallet),
        "crossUnPnl": plain(unrealized),
        "availableBalance": plain(available),
        "maxWithdrawAmount": plain(available),
        "marginAvailable": True,
        "updateTime": now,
    }


def trade_json(mid: str, t: SimTrade) -> dict[str, Any]:
    """One of the account's trades as /fapi/v1/userTrades answers it."""
    return {
        "buyer": t.side == "BUY",
        "commission": plain(t.commission),
        "commissionAsset": "USDT",
        "id": t.trade_id,
        "maker": t.maker,
        "orderId": t.order_id,
        "price": plain(t.price),
        "qty": plain(t.qty),
        "quoteQty": plain(t.price * t.qty),
        "realizedPnl": plain(t.realized_pnl),
        "side": t.side,
        "positionSide": "BOTH",
        "symbol": mid,
        "time": t.time,
    }


def account_json(books: SimBooks, acct: SimAccount) -> dict[str, Any]:
    """The account as /fapi/v3/account answers it: the USDT asset and open positions."""
    asset = asset_json(books, acct)
    return {
        "totalInitialMargin": asset["initialMargin"],
        "totalMaintMargin": asset["maintMargin"],
        "totalWalletBalance": asset["walletBalance"],
        "totalUnrealizedProfit": asset["unrealizedProfit"],
        "totalMarginBalance": asset["marginBalance"],
        "totalPositionInitialMargin": asset["positionInitialMargin"],
        "totalOpenOrderInitialMargin": asset["openOrderInitialMargin"],
        "totalCrossWalletBalance": asset["crossWalletBalance"],
        "totalCrossUnPnl": asset["crossUnPnl"],
        "availableBalance": asset["availableBalance"],
        "maxWithdrawAmount": asset["maxWithdrawAmount"],
        "assets": [asset],
        "positions": [position_json(books, acct, j) for j, p in sorted(acct.positions.items()) if p.qty != 0],
    }


def balance_json(books: SimBooks, acct: SimAccount) -> dict[str, Any]:
    """The USDT balance as /fapi/v2/balance answers it."""
    a = asset_json(books, acct)
    return {
        "accountAlias": "SimAccount",
        "asset": "USDT",
        "balance": a["walletBalance"],
        "crossWalletBalance": a["crossWalletBalance"],
        "crossUnPnl": a["crossUnPnl"],
        "availableBalance": a["availableBalance"],
        "maxWithdrawAmount": a["maxWithdrawAmount"],
        "marginAvailable": True,
        "updateTime": a["updateTime"],
    }


def brackets_json(mid: str) -> dict[str, Any]:
    """A symbol's leverage brackets as /fapi/v1/leverageBracket answers them: the venue's own (`guard.sim.brackets`)."""
    brackets = [
        {
            "bracket": b.bracket,
            "initialLeverage": b.initial_leverage,
            "notionalCap": b.notional_cap,
            "notionalFloor": b.notional_floor,
            "maintMarginRatio": float(b.maint_margin_ratio),
            "cum": float(b.cum),
        }
        for b in sim_brackets(mid)
    ]
    return {"symbol": mid, "notionalCoef": 1.0, "brackets": brackets}


def plain(value: Decimal) -> str:
    """A Decimal as Binance prints numbers: plain notation, no exponent."""
    return format(value.normalize(), "f") if value else "0"


def decimal_param(params: dict[str, str], name: str, *, required: bool = True) -> Decimal:
    """A finite decimal parameter (0 when absent and not required)."""
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise ApiError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
        return Decimal(0)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'.") from None
    if not value.is_finite():
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'.")
    return value


def int_param(params: dict[str, str], name: str) -> int | None:
    """An integer parameter, or None when absent."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'.") from None
