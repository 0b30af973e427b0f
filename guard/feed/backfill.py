"""Filling holes from REST: trades by id, closed bars by time, paced like everything else.

Each request waits for the shared Retry-After gate; a rate-limit answer closes the gate
for everyone. What comes back is validated like streamed data; a bad row ends the fill
(what follows it is counted missing by the caller).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from guard.domain import Bar, Trade
from guard.exchanges import classify
from guard.feed.pacing import RateGate
from guard.feed.validate import bar_from_row, trade_from_ccxt
from guard.timeframes import timeframe_ms

log = structlog.get_logger(__name__)

ATTEMPTS = 3
PAGE = 1_000
"""Rows per request: Binance's cap for aggTrades and klines (and ccxt's)."""


class Backfill:
    """REST backfill for one exchange.

    Args:
        exchange: returns the ccxt exchange (it may be opened after this is built).
        exchange_id: for error translation and logs.
        timeframe: the bar size bars are fetched in.
        gate: the feed's shared Retry-After gate.
        timeout_seconds: timeout of each request.
        retry_delay: wait before retrying a failed request (at least).
        retry_after: how long the venue asked us to wait after a rate-limit answer.
        refuse: told about every refused row, with (symbol, reason).
    """

    def __init__(
        self,
        exchange: Callable[[], Any],
        exchange_id: str,
        timeframe: str,
        *,
        gate: RateGate,
        timeout_seconds: float,
        retry_delay: float,
        retry_after: Callable[[], float],
        refuse: Callable[[str, str], None],
    ) -> None:
        self._exchange = exchange
        self._id = exchange_id
        self._timeframe = timeframe
        self._tf_ms = timeframe_ms(timeframe)
        self._gate = gate
        self._timeout = timeout_seconds
        self._retry_delay = retry_delay
        self._retry_after = retry_after
        self._refuse = refuse

    async def trades(self, symbol: str, first: int, last: int) -> list[Trade]:
        """Trades with ids first..last (inclusive), in order, as far as the venue gives them."""
        out: list[Trade] = []
        want = first
        attempts = 0
        while want <= last:

            def page(w: int = want) -> Any:
                return self._exchange().fetch_trades(symbol, limit=min(PAGE, last - w + 1), params={"fromId": w})

            rows = await self._call(symbol, "trades", page)
            if rows is None:
                attempts += 1
                if attempts >= ATTEMPTS:
                    break
                continue
            progressed = False
            for raw in rows:
                try:
                    i = int(raw.get("id"))
                except (TypeError, ValueError):
                    continue
                if i != want or i > last:
                    continue
                trade = trade_from_ccxt(raw, symbol)
                if isinstance(trade, str):
                    self._refuse(symbol, f"backfill: {trade}")
                    return out
                out.append(trade)
                want += 1
                progressed = True
            if not progressed:
                break
        return out

    async def bars(self, symbol: str, first: int, last: int) -> list[Bar]:
        """Closed bars with open times first..last (inclusive), in order, up to the first missing one."""
        count = (last - first) // self._tf_ms + 1
        rows = await self._call(
            symbol,
            "bars",
            lambda: self._exchange().fetch_ohlcv(
                symbol, self._timeframe, since=first, limit=min(PAGE, count), params={"until": last}
            ),
        )
        out: list[Bar] = []
        expect = first
        for row in rows or ():
            if not row or row[0] != expect or expect > last:
                continue
            bar = bar_from_row(row, symbol, self._timeframe, self._tf_ms, closed=True)
            if isinstance(bar, str):
                self._refuse(symbol, f"backfill: {bar}")
                break
            out.append(bar)
            expect += self._tf_ms
        return out

    async def _call(self, symbol: str, what: str, request: Callable[[], Any]) -> Any:
        """One request after the gate opens; None (after pacing) when it failed."""
        await self._gate.wait()
        try:
            return await asyncio.wait_for(request(), self._timeout)
        except Exception as e:  # every failure just leaves the hole for the caller to count
            if not isinstance(e, TimeoutError) and classify(e, self._id).rate_limited:
                self._gate.close_for(self._retry_after())
            log.warning("feed.backfill_failed", symbol=symbol, what=what, error=" ".join(str(e).split())[:200])
            await asyncio.sleep(max(self._gate.remaining(), self._retry_delay))
            return None
