"""ccxt structures → validated market events, or the reason they were refused.

Each function returns either a domain event or a `str` naming what was wrong ("nan price",
"high < low"); the caller counts the refusal against the symbol and passes nothing on. The
trade path runs once per trade, so it is written for speed: plain comparisons, no exceptions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

from guard.domain import Bar, Book, MarkPrice, Side, Ticker, Trade

_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_INF = math.inf


def _bad_price(x: Any, what: str) -> str | None:
    if x is None:
        return f"malformed: no {what}"
    if x.__class__ is not float and x.__class__ is not int:
        return f"malformed: {what} is {type(x).__name__}"
    if x != x:
        return f"nan {what}"
    if x <= 0:
        return f"non-positive {what}"
    if x == _INF:
        return f"infinite {what}"
    return None


def trade_from_ccxt(t: Mapping[str, Any], symbol: str) -> Trade | str:
    """A unified ccxt trade → `Trade`, or why not."""
    price = t.get("price")
    amount = t.get("amount")
    # Fast path first: both finite positive floats.
    if not (price.__class__ is float and 0 < price < _INF):
        return _bad_price(price, "price") or "malformed: price"
    if not (amount.__class__ is float and 0 < amount < _INF):
        return _bad_price(amount, "amount") or "malformed: amount"
    ts = t.get("timestamp")
    if ts.__class__ is not int or ts <= 0:
        return "malformed: no timestamp"
    tid = t.get("id")
    if tid is None:
        return "malformed: no trade id"
    side = _SIDES.get(t.get("side"))  # type: ignore[arg-type]  # a missing or odd side is simply not found
    if side is None:
        return "malformed: no side"
    return Trade(symbol, tid, ts, price, amount, side)


def check_bar(o: Any, h: Any, lo: Any, c: Any, v: Any) -> str | None:
    """Why an OHLCV row cannot be true, or None."""
    for value, what in ((o, "open"), (h, "high"), (lo, "low"), (c, "close")):
        reason = _bad_price(value, what)
        if reason:
            return reason
    if v is None or v != v or not isinstance(v, (int, float)):
        return "malformed: volume"
    if v < 0:
        return "negative volume"
    if h < lo:
        return "high < low"
    if not lo <= c <= h:
        return "close outside [low, high]"
    if not lo <= o <= h:
        return "open outside [low, high]"
    return None


def bar_from_row(row: Sequence[Any], symbol: str, timeframe: str, tf_ms: int, closed: bool) -> Bar | str:
    """A ccxt OHLCV row `[t, o, h, l, c, v]` → `Bar`, or why not."""
    if len(row) < 6:
        return "malformed: short OHLCV row"
    t, o, h, lo, c, v = row[:6]
    if not isinstance(t, int) or t <= 0:
        return "malformed: bar time"
    if t % tf_ms:
        return f"bar time not aligned to {timeframe}"
    reason = check_bar(o, h, lo, c, v)
    if reason:
        return reason
    return Bar(symbol, timeframe, t, float(o), float(h), float(lo), float(c), float(v), closed)


def ticker_from_ccxt(t: Mapping[str, Any], symbol: str, now_ms: int) -> Ticker | str:
    """A ccxt ticker → `Ticker`, or why not."""
    last = t.get("last")
    if last is None:
        last = t.get("close")
    reason = _bad_price(last, "last price")
    if reason:
        return reason
    bid, ask = t.get("bid"), t.get("ask")
    for value, what in ((bid, "bid"), (ask, "ask")):
        if value is not None:
            reason = _bad_price(value, what)
            if reason:
                return reason
    if bid is not None and ask is not None and bid > ask:
        return "crossed ticker (bid > ask)"
    ts = t.get("timestamp")
    stamp = ts if isinstance(ts, int) and ts > 0 else now_ms
    return Ticker(symbol, stamp, float(last), bid, ask)  # type: ignore[arg-type]  # `_bad_price` refused a missing last


def mark_from_ccxt(t: Mapping[str, Any], symbol: str, now_ms: int) -> MarkPrice | str:
    """A ccxt mark-price ticker → `MarkPrice` (funding from Binance's raw fields when present)."""
    mark = t.get("markPrice")
    reason = _bad_price(mark, "mark price")
    if reason:
        return reason
    index = t.get("indexPrice")
    if index is not None and _bad_price(index, "index price"):
        index = None
    info = t.get("info") or {}
    funding = _float(info.get("r"))
    next_funding = info.get("T")
    ts = t.get("timestamp")
    return MarkPrice(
        symbol,
        ts if isinstance(ts, int) and ts > 0 else now_ms,
        float(mark),  # type: ignore[arg-type]  # `_bad_price` above refused a missing or non-numeric mark
        index,
        funding,
        int(next_funding) if isinstance(next_funding, (int, float)) and next_funding > 0 else None,
    )


def book_from_ccxt(ob: Mapping[str, Any], symbol: str, depth: int, now_ms: int) -> Book | str:
    """A ccxt order book → `Book` of `depth` levels a side, or why not."""
    bids = [(float(p), float(q)) for p, q, *_ in list(ob.get("bids") or [])[:depth]]
    asks = [(float(p), float(q)) for p, q, *_ in list(ob.get("asks") or [])[:depth]]
    if not bids or not asks:
        return "empty book"
    for side in (bids, asks):
        for p, q in side:
            if not (0 < p < _INF) or not (0 < q < _INF):
                return "nan or non-positive level in book"
    if any(b[0] <= a[0] for b, a in pairwise(bids)):
        return "bids not descending"
    if any(b[0] >= a[0] for b, a in pairwise(asks)):
        return "asks not ascending"
    if bids[0][0] >= asks[0][0]:
        return "crossed book"
    ts = ob.get("timestamp")
    return Book(symbol, ts if isinstance(ts, int) and ts > 0 else now_ms, tuple(bids), tuple(asks))


def _float(x: Any) -> float | None:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
