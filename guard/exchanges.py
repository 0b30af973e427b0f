"""The edge to ccxt: build an exchange, point it at the simulator, translate its errors.

Everything guard does with an exchange goes through a ccxt object built here. For the id
"sim" that object is ccxt's own, unmodified `binanceusdm` class with every URL rewritten to
the simulated exchange on loopback: the only difference from the real venue is where the
requests go.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

import ccxt
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import structlog

from guard.errors import (
    BadInput,
    ExchangeRejected,
    ExchangeUnavailable,
    FeedError,
    GuardError,
)

log = structlog.get_logger(__name__)

SIM_ID = "sim"
SIM_CCXT_CLASS = "binanceusdm"
"""The real exchange the simulator imitates; ccxt talks to the simulator through this class."""
BINANCE_FAMILY = frozenset({"binance", "binanceusdm", "binancecoinm", SIM_ID})
"""Venues whose trade ids are consecutive per symbol, so a missing id is a lost trade."""

_STATUS = re.compile(r"\b(418|429|5\d\d)\b")


SIM_API_KEY = "guard-sim-demo-key"
SIM_API_SECRET = "guard-sim-demo-secret"
"""The simulated exchange's demo key pair: it guards nothing (a real venue's keys come from the environment only)."""


class SimEndpoint(Protocol):
    """Where a simulated exchange listens (`SimExchange` is one)."""

    @property
    def url(self) -> str: ...

    @property
    def ws_url(self) -> str: ...


def ccxt_class_name(exchange_id: str) -> str:
    """The ccxt class behind a guard exchange id ("sim" is Binance USDⓈ-M)."""
    return SIM_CCXT_CLASS if exchange_id == SIM_ID else exchange_id


def make_exchange(
    exchange_id: str,
    *,
    timeout_seconds: float,
    sim: SimEndpoint | None = None,
    streaming: bool = True,
    config: dict[str, Any] | None = None,
) -> Any:
    """Build a ccxt exchange object for an id, ready for `load_markets()`.

    The daemon (market data) and the sandbox broker (orders) both call this, so both see
    the same venue the same way.

    Args:
        exchange_id: a ccxt id ("binanceusdm", "bybit", ...) or "sim".
        timeout_seconds: timeout of every REST request (and WebSocket dial).
        sim: the simulated exchange's addresses; required when `exchange_id` is "sim".
        streaming: a `ccxt.pro` object (WebSocket + REST) when the venue has one, else (or
            when False) a `ccxt.async_support` REST-only object.
        config: extra ccxt constructor settings (API keys for a sandbox, options).

    Returns:
        The ccxt exchange. The caller owns it and must `await exchange.close()`.

    Raises:
        FeedError: for an id ccxt does not know.
        BadInput: for "sim" without a simulator address.
    """
    name = ccxt_class_name(exchange_id)
    if name not in ccxt.exchanges:
        raise FeedError(f'exchange {exchange_id!r}: not a ccxt exchange id (e.g. binanceusdm, bybit, okx), or "sim"')
    settings: dict[str, Any] = {
        "enableRateLimit": True,
        "timeout": int(timeout_seconds * 1000),
        # Retry-After of a failed request is read from here (see `retry_after`).
        "enableLastResponseHeaders": True,
    }
    settings.update(config or {})
    use_pro = streaming and name in ccxt_pro.exchanges
    cls = getattr(ccxt_pro if use_pro else ccxt_async, name)
    exchange = cls(settings)
    if exchange_id == SIM_ID:
        if sim is None:
            raise BadInput('exchange "sim" needs a running simulated exchange to point at')
        point_at_sim(exchange, sim)
    return exchange


def point_at_sim(exchange: Any, sim: SimEndpoint) -> None:
    """Rewrite every API URL of a ccxt exchange to the simulator, keeping each path.

    `https://fapi.binance.com/fapi/v1` becomes `http://127.0.0.1:PORT/fapi/v1` and
    `wss://fstream.binance.com/ws` becomes `ws://127.0.0.1:PORT/ws`; hosts the simulator does
    not implement (spot, margin, options) also point here, so nothing can leak to the internet.
    """

    def rewrite(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: rewrite(v) for k, v in value.items()}
        if isinstance(value, str) and "://" in value:
            scheme, rest = value.split("://", 1)
            path = rest[rest.find("/") :] if "/" in rest else ""
            base = sim.ws_url if scheme in ("ws", "wss") else sim.url
            return base + path
        return value

    exchange.urls["api"] = rewrite(exchange.urls["api"])
    for key in ("test", "demo"):
        if key in exchange.urls:
            exchange.urls[key] = rewrite(exchange.urls[key])


def http_status(error: BaseException) -> int | None:
    """The HTTP status a ccxt error came from (429, 418, 5xx), if its text names one."""
    match = _STATUS.search(str(error))
    return int(match.group(1)) if match else None


def retry_after(exchange: Any) -> float | None:
    """Seconds the venue asked us to wait (Retry-After of the last response), if any."""
    headers = getattr(exchange, "last_response_headers", None) or {}
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


@dataclass(frozen=True, slots=True)
class Failure:
    """A ccxt error, classified: what it means for the feed and what to tell the operator."""

    reason: str
    """Short text for feed health: "rate limited", "exchange unavailable: 503", ..."""
    retryable: bool
    rate_limited: bool
    error: GuardError


def classify(error: BaseException, exchange_id: str) -> Failure:
    """Translate a ccxt (or socket) error into a guard error and a health reason."""
    status = http_status(error)
    text = _one_line(error)
    if isinstance(error, (ccxt.DDoSProtection, ccxt.RateLimitExceeded)) or status in (418, 429):
        what = "banned (418)" if status == 418 else "rate limited"
        return Failure(what, True, True, ExchangeUnavailable(f"{exchange_id}: {what}: {text}"))
    if isinstance(error, ccxt.ExchangeNotAvailable) or (status is not None and status >= 500):
        what = f"exchange unavailable: {status}" if status else "exchange unavailable"
        if isinstance(error, ccxt.ExchangeNotAvailable) and status is None and _is_unreachable(error):
            what = "unreachable"
        return Failure(what, True, False, ExchangeUnavailable(f"{exchange_id}: {what}: {text}"))
    if isinstance(error, ccxt.OperationFailed) and not isinstance(error, ccxt.NetworkError):
        # Binance answers a 5xx with code -1001, which ccxt raises as OperationFailed.
        return Failure("exchange unavailable", True, False, ExchangeUnavailable(f"{exchange_id}: {text}"))
    if isinstance(error, ccxt.RequestTimeout):
        return Failure("timed out", True, False, ExchangeUnavailable(f"{exchange_id}: timed out: {text}"))
    if isinstance(error, ccxt.NetworkError):
        return Failure("disconnected", True, False, ExchangeUnavailable(f"{exchange_id}: disconnected: {text}"))
    if isinstance(error, ccxt.BadSymbol):
        return Failure("no such symbol", False, False, FeedError(f"{exchange_id}: {text}"))
    if isinstance(error, (ccxt.AuthenticationError, ccxt.PermissionDenied)):
        return Failure("not allowed", False, False, ExchangeRejected(f"{exchange_id}: {text}"))
    if isinstance(error, ccxt.NotSupported):
        return Failure("not supported", False, False, FeedError(f"{exchange_id}: {text}"))
    if isinstance(error, ccxt.ExchangeError):
        return Failure("exchange error", True, False, ExchangeRejected(f"{exchange_id}: {text}"))
    if isinstance(error, (ConnectionError, OSError)):
        return Failure("disconnected", True, False, ExchangeUnavailable(f"{exchange_id}: disconnected: {text}"))
    return Failure("feed error", True, False, FeedError(f"{exchange_id}: {type(error).__name__}: {text}"))


def translate(error: BaseException, exchange_id: str) -> GuardError:
    """The guard error for a ccxt error; raise it `from` the original."""
    return classify(error, exchange_id).error


def _is_unreachable(error: BaseException) -> bool:
    cause = error.__cause__
    return cause is not None and isinstance(cause, OSError)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 240 else text[:237] + "..."
