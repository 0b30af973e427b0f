"""How the sandbox broker calls its venue: a backstop timeout on every ccxt call, and what an error says.

An answer lost to a timeout, a dropped connection or a 5xx leaves an order's fate unknown; an
error that proves the request was refused, or that the venue has no such order, settles it.
`classify` tells which from ccxt's error class, Binance's error code and the HTTP status;
`VenueCalls.reason` makes an error fit for the journal: one line, no API key, no signature.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Sequence
from typing import Any

import aiohttp
import ccxt

from guard.exchanges import http_status

_AMBIGUOUS_CODES = frozenset({-1000, -1001, -1003, -1006, -1007, -1008, -4116})
"""Binance codes that do not say whether the order was taken: unknown/internal errors, timeouts
to the matching engine ("send status unknown"), overload, and a duplicate client id (an order
with our id is open: it can only be ours, from this very intent)."""
_NOT_FOUND_CODES = frozenset({-2011, -2013})
_CODE = re.compile(r'"code"\s*:\s*"?(-\d+)')
_SIGNATURE = re.compile(r"signature=[0-9a-fA-F]+")

NOT_FOUND = "not found"
AMBIGUOUS = "ambiguous"
REFUSED = "refused"


EDGE_ERRORS = (ccxt.BaseError, aiohttp.ClientError, OSError, TimeoutError)
"""What a ccxt call can fail with: ccxt's errors, the transport's, and our own backstop timeout."""


def classify(error: BaseException) -> str:
    """Whether an error proves the request was refused, proves the order is unknown, or proves nothing."""
    if isinstance(error, TimeoutError):
        return AMBIGUOUS
    match = _CODE.search(str(error))
    code = int(match.group(1)) if match else None
    if isinstance(error, ccxt.OrderNotFound) or code in _NOT_FOUND_CODES:
        return NOT_FOUND
    if code in _AMBIGUOUS_CODES:
        return AMBIGUOUS
    if code is not None and code <= -1010:
        return REFUSED  # Binance's request and order errors: the same request fails again, nothing was made
    status = http_status(error)
    if status is not None and (status >= 500 or status in (418, 429)):
        return AMBIGUOUS
    if isinstance(error, (ccxt.NetworkError, aiohttp.ClientError, OSError)):
        return AMBIGUOUS
    if isinstance(error, ccxt.OperationFailed) and not isinstance(error, ccxt.ExchangeError):
        return AMBIGUOUS
    if isinstance(error, ccxt.ExchangeError):
        return REFUSED
    return AMBIGUOUS


class VenueCalls:
    """Awaits a venue's ccxt calls with a backstop timeout, and tells what went wrong without a secret.

    Args:
        venue: the venue's name, for messages.
        timeout: the backstop, in seconds: ccxt times the request out itself, but its rate
            limiter may hold a call in a queue first.
        secrets: texts never to repeat (the API key and secret).
    """

    def __init__(self, venue: str, timeout: float, secrets: Sequence[str] = ()) -> None:
        self.venue = venue
        self.timeout = timeout
        self._secrets = tuple(s for s in secrets if s)

    async def __call__(self, awaitable: Awaitable[Any]) -> Any:
        """Await a ccxt call (a timeout is an ambiguous outcome, like ccxt's own)."""
        async with asyncio.timeout(self.timeout):
            return await awaitable

    def reason(self, error: BaseException) -> str:
        """An error as text fit for a journal event: one line, no key, no secret, no signature."""
        text = f"{type(error).__name__}: {' '.join(str(error).split())}"
        if isinstance(error, TimeoutError):
            text = f"no answer within {self.timeout:g} s"
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        text = _SIGNATURE.sub("signature=[redacted]", text)
        return text if len(text) <= 300 else text[:297] + "..."
