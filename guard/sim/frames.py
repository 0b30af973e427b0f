"""The text of the simulated exchange's WebSocket frames, in Binance USDⓈ-M's raw-stream dialect.

Pure formatting of what `SimMarket` computes: one function per frame (`aggTrade`, `trade`,
`kline`, `24hrTicker`, `24hrMiniTicker`, `markPriceUpdate`, `depthUpdate`, `bookTicker`), the
spoiled trade frames the fault injector sends, and the bytes of a server's text frame (RFC 6455).
Which frames go to whom, and when, is `guard.sim.ws`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

from guard.sim.market import BookState, Kline, SimMarket

MALFORMED_VARIANTS = 4
"""How many kinds of malformed trade frame `malformed_trade` makes (chosen in turn)."""


def agg_trade_format(market: SimMarket, j: int) -> str:
    """A %-format of symbol `j`'s aggTrade frame: (E, a, p, q, f, l, T, m)."""
    mid = market.ids[j]
    return (
        '{"e":"aggTrade","E":%d,"s":"'
        + mid
        + '","a":%d,"p":"%.'
        + str(market.price_decimals[j])
        + 'f","q":"%.'
        + str(market.amount_decimals[j])
        + 'f","f":%d,"l":%d,"T":%d,"m":%s}'
    )


def raw_trade_format(market: SimMarket, j: int) -> str:
    """A %-format of symbol `j`'s trade frame: (E, T, t, p, q, m)."""
    mid = market.ids[j]
    return (
        '{"e":"trade","E":%d,"T":%d,"s":"'
        + mid
        + '","t":%d,"p":"%.'
        + str(market.price_decimals[j])
        + 'f","q":"%.'
        + str(market.amount_decimals[j])
        + 'f","X":"MARKET","m":%s}'
    )


def agg_trade_frames(market: SimMarket, j: int, g0: int, g1: int) -> list[str]:
    """The aggTrade frames the simulator streams for trades g0..g1-1 of symbol `j` (benchmarks)."""
    batch = market.trades(j, g0, g1)
    fmt = agg_trade_format(market, j)
    return [
        fmt % (ts, tid, price, amount, tid, tid, ts, "true" if maker else "false")
        for tid, ts, price, amount, maker in batch.rows()
    ]


def nan_trade(mid: str, tid: int, ts: int, amount: float) -> str:
    """An aggTrade frame whose price is NaN."""
    return (
        f'{{"e":"aggTrade","E":{ts},"s":"{mid}","a":{tid},"p":"NaN","q":"{amount}",'
        f'"f":{tid},"l":{tid},"T":{ts},"m":false}}'
    )


def malformed_trade(variant: int, mid: str, tid: int, ts: int, amount: float) -> str:
    """An aggTrade frame broken in one of `MALFORMED_VARIANTS` ways (chosen by `variant`)."""
    variant %= MALFORMED_VARIANTS
    if variant == 0:  # a price that is not a number
        return (
            f'{{"e":"aggTrade","E":{ts},"s":"{mid}","a":{tid},"p":"abc","q":"{amount}",'
            f'"f":{tid},"l":{tid},"T":{ts},"m":false}}'
        )
    if variant == 1:  # no quantity
        return f'{{"e":"aggTrade","E":{ts},"s":"{mid}","a":{tid},"p":"1.0","f":{tid},"T":{ts}}}'
    if variant == 2:  # no timestamp, negative quantity
        return f'{{"e":"aggTrade","E":{ts},"s":"{mid}","a":{tid},"p":"1.0","q":"-{amount}","m":true}}'
    return f'{{"e":"aggTrade","E":{ts},"s":"{mid}","a":{tid},"p":null,"q":null,"T":{ts}}}'


def kline_frame(market: SimMarket, j: int, interval: str, k: Kline, now: int, *, nan: bool = False) -> str:
    """Symbol `j`'s kline frame for candle `k` (its close NaN when `nan`)."""
    mid = market.ids[j]
    pd, ad = market.price_decimals[j], market.amount_decimals[j]
    close = "NaN" if nan else f"{k.close:.{pd}f}"
    return (
        f'{{"e":"kline","E":{now},"s":"{mid}","k":{{"t":{k.open_time},"T":{k.close_time},'
        f'"s":"{mid}","i":"{interval}","f":{k.first_id},"L":{k.last_id},"o":"{k.open:.{pd}f}",'
        f'"c":"{close}","h":"{k.high:.{pd}f}","l":"{k.low:.{pd}f}","v":"{k.volume:.{ad}f}",'
        f'"n":{k.trades},"x":{"true" if k.closed else "false"},"q":"{k.quote_volume:.4f}",'
        f'"V":"0","Q":"0","B":"0"}}}}'
    )


def ticker_frames(market: SimMarket, j: int, now: int) -> tuple[str, str]:
    """Symbol `j`'s 24hrTicker and 24hrMiniTicker frames at `now`."""
    mid = market.ids[j]
    pd = market.price_decimals[j]
    t = market.ticker_24h(j, now)
    change = float(t["last"]) - float(t["open"])
    pct = change / float(t["open"]) * 100 if t["open"] else 0.0
    vwap = float(t["quote_volume"]) / float(t["volume"]) if t["volume"] else float(t["last"])
    ticker = (
        f'{{"e":"24hrTicker","E":{now},"s":"{mid}","p":"{change:.{pd}f}","P":"{pct:.3f}",'
        f'"w":"{vwap:.{pd}f}","c":"{t["last"]:.{pd}f}","Q":"0","o":"{t["open"]:.{pd}f}",'
        f'"h":"{t["high"]:.{pd}f}","l":"{t["low"]:.{pd}f}","v":"{t["volume"]}",'
        f'"q":"{t["quote_volume"]}","O":{t["open_time"]},"C":{t["close_time"]},'
        f'"F":{t["first_id"]},"L":{t["last_id"]},"n":{t["count"]}}}'
    )
    mini = (
        f'{{"e":"24hrMiniTicker","E":{now},"s":"{mid}","c":"{t["last"]:.{pd}f}",'
        f'"o":"{t["open"]:.{pd}f}","h":"{t["high"]:.{pd}f}","l":"{t["low"]:.{pd}f}",'
        f'"v":"{t["volume"]}","q":"{t["quote_volume"]}"}}'
    )
    return ticker, mini


def mark_frame(market: SimMarket, j: int, now: int, *, nan: bool = False) -> str:
    """Symbol `j`'s markPriceUpdate frame at `now` (its mark NaN when `nan`)."""
    mid = market.ids[j]
    pd = market.price_decimals[j]
    mark, index, funding, next_funding = market.mark(j, now)
    mark_text = "NaN" if nan else f"{mark:.{pd}f}"
    return (
        f'{{"e":"markPriceUpdate","E":{now},"s":"{mid}","p":"{mark_text}","i":"{index:.{pd}f}",'
        f'"P":"{mark:.{pd}f}","r":"{funding:.8f}","T":{next_funding}}}'
    )


def book_ticker_frame(mid: str, state: BookState, now: int) -> str:
    """The bookTicker frame of a book's best levels."""
    (bid, bq), (ask, aq) = state.bids[0], state.asks[0]
    return (
        f'{{"e":"bookTicker","u":{state.update_id},"E":{now},"T":{now},"s":"{mid}",'
        f'"b":"{bid}","B":"{bq}","a":"{ask}","A":"{aq}"}}'
    )


def depth_frame(mid: str, state: BookState, previous: BookState | None, now: int) -> str:
    """The depthUpdate frame from `previous` to `state` (every level of `state`, and removals)."""

    def diff(new: Iterable[tuple[float, float]], old: Iterable[tuple[float, float]]) -> list[list[str]]:
        new_map = dict(new)
        changes = [[_num(p), _num(q)] for p, q in new_map.items()]
        changes += [[_num(p), "0"] for p, _ in old if p not in new_map]
        return changes

    old_bids = previous.bids if previous else ()
    old_asks = previous.asks if previous else ()
    pu = previous.update_id if previous else state.update_id - 1
    body = {
        "e": "depthUpdate",
        "E": now,
        "T": now,
        "s": mid,
        "U": state.update_id,
        "u": state.update_id,
        "pu": pu,
        "b": diff(state.bids, old_bids),
        "a": diff(state.asks, old_asks),
    }
    return json.dumps(body, separators=(",", ":"))


def ws_text_frame(payload: bytes) -> bytes:
    """One unmasked, final WebSocket text frame (RFC 6455 §5.2), as a server sends it."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65_536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


def _num(x: float) -> str:
    if math.isfinite(x) and x == int(x) and abs(x) < 1e15:
        return f"{x:.1f}"
    return repr(x)
