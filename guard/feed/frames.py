"""A guard around ccxt.pro's frame handler: bad frames are refused, not fatal.

ccxt.pro parses each WebSocket frame inside an event-loop callback. When a frame breaks its
parser (a "NaN" price, a missing field), the exception escapes that callback and the
socket's receive loop silently stops: the stream goes quiet with no error. `FrameGuard`
wraps the exchange object's `handle_message` so such a frame is counted as refused, with its
reason, and the stream carries on.

For Binance-style kline frames it also refuses candles older than the newest one seen
before ccxt stores them: ccxt would otherwise rewrite its cached history in place and,
depending on timing, never show the rewrite to the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

Refusal = Callable[[str | None, str], None]
"""Called with (unified symbol or None, reason) for every refused frame."""


class FrameGuard:
    """Wraps `exchange.handle_message`; install before the first watch call.

    Args:
        exchange: a ccxt.pro exchange object.
        refuse: told about every refused frame.
        kline_order: check Binance kline frames for out-of-order and duplicate candles.
    """

    def __init__(self, exchange: Any, refuse: Refusal, *, kline_order: bool) -> None:
        self._exchange = exchange
        self._refuse = refuse
        self._kline_order = kline_order
        self._newest: dict[tuple[str, str], int] = {}
        self._previous: dict[tuple[str, str], int] = {}
        self.refused = 0
        self._original = exchange.handle_message
        exchange.handle_message = self._handle

    def _handle(self, client: Any, message: Any) -> Any:
        if self._kline_order and message.__class__ is dict and message.get("e") == "kline":
            reason = self._kline_reason(message)
            if reason is not None:
                self._refused(message, reason)
                return None
        try:
            return self._original(client, message)
        except Exception as e:  # a frame ccxt could not parse: refuse it, keep the socket alive
            event = message.get("e") if isinstance(message, dict) else None
            self._refused(message, f"malformed {event or 'frame'}: {type(e).__name__}: {_short(e)}")
            return None

    def _kline_reason(self, message: dict[str, Any]) -> str | None:
        k = message.get("k")
        if not isinstance(k, dict):
            return None  # ccxt's parser will refuse it
        t = k.get("t")
        key = (str(message.get("s")), str(k.get("i")))
        if not isinstance(t, int):
            return None
        newest = self._newest.get(key)
        if newest is None or t > newest:
            if newest is not None:
                self._previous[key] = newest
            self._newest[key] = t
            return None
        if t == newest:
            return None
        return "duplicate bar" if t == self._previous.get(key) else "out-of-order bar"

    def _refused(self, message: Any, reason: str) -> None:
        self.refused += 1
        symbol = self._symbol(message)
        self._refuse(symbol, reason)

    def _symbol(self, message: Any) -> str | None:
        if not isinstance(message, dict):
            return None
        market_id = message.get("s")
        if market_id is None and isinstance(message.get("k"), dict):
            market_id = message["k"].get("s")
        markets = (getattr(self._exchange, "markets_by_id", None) or {}).get(market_id) or []
        return markets[0]["symbol"] if markets else None

    def uninstall(self) -> None:
        """Give the exchange back its own frame handler."""
        self._exchange.handle_message = self._original


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 120 else text[:117] + "..."
