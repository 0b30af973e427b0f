"""A ccxt REST client for a venue's test or demo account, its API keys, the account checked: no real money.

`build_venue` switches ccxt to the venue's test or demo URLs as its first call (Binance futures:
demo trading, which replaced the futures testnet) and then checks that no API URL still points
at a live host; if ccxt has no test URLs for the exchange it raises `RealMoneyRefused`. API keys
come from environment variables only (`sandbox_credentials`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import ccxt
import structlog

from guard.broker.venue_calls import EDGE_ERRORS, VenueCalls
from guard.config import ExchangeSection
from guard.domain import MarketSpec
from guard.errors import BadInput, ExchangeRejected, ExchangeUnavailable, RealMoneyRefused
from guard.exchanges import SIM_API_KEY, SIM_API_SECRET, SIM_ID, SimEndpoint, ccxt_class_name, make_exchange

log = structlog.get_logger(__name__)

DEMO_TRADING = frozenset({"binance", "binanceusdm", "binancecoinm"})
"""ccxt classes whose futures testnet was replaced by demo trading (`enable_demo_trading`)."""


def sandbox_credentials(settings: ExchangeSection, environ: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """The API key and secret from `<credentials_env>_API_KEY` / `_API_SECRET`, never from a file.

    Raises:
        BadInput: when they are not set (for a venue other than the simulator).
    """
    key_name = f"{settings.credentials_env}_API_KEY"
    secret_name = f"{settings.credentials_env}_API_SECRET"
    key, secret = environ.get(key_name, ""), environ.get(secret_name, "")
    if key and secret:
        return key, secret
    if settings.id == SIM_ID:
        # The simulated exchange's built-in test key pair: it protects nothing, the simulator is offline.
        return SIM_API_KEY, SIM_API_SECRET
    raise BadInput(
        f'exchange.broker = "sandbox" needs the venue\'s testnet/demo API key in the environment: set {key_name} '
        f"and {secret_name} (API keys come from environment variables only, never from a config file)"
    )


def build_venue(
    settings: ExchangeSection,
    key: str,
    secret: str,
    sim: SimEndpoint | None = None,
    *,
    rate_limit_ms: float | None = None,
) -> Any:
    """A ccxt REST client for the venue's test or demo account, or `RealMoneyRefused`.

    Switching to the test URLs is the first call after construction (ccxt requires it). The
    result is then checked: every API URL must be one of the venue's test/demo URLs.

    Args:
        rate_limit_ms: ccxt's pacing per unit of request weight; None keeps ccxt's own figure for
            the venue (tests on the simulator, which meters nothing, go faster).
    """
    config: dict[str, Any] = {
        "apiKey": key,
        "secret": secret,
        "options": {
            "recvWindow": round(settings.recv_window_seconds * 1000),
            "fetchOpenOrders": {"warnWithoutSymbol": False},
            "warnOnFetchOpenOrdersWithoutSymbol": False,
        },
    }
    if rate_limit_ms is not None:
        config["rateLimit"] = rate_limit_ms
    exchange = make_exchange(
        settings.id, timeout_seconds=settings.timeout_seconds, sim=sim, streaming=False, config=config
    )
    name = ccxt_class_name(settings.id)
    demo = name in DEMO_TRADING
    test_urls = exchange.urls.get("demo" if demo else "test") or {}
    refused = RealMoneyRefused(
        f"exchange {settings.id!r}: ccxt has no sandbox or demo URLs for it, so its orders would trade real "
        'money; guard trades paper and sandbox accounts only (use broker = "paper", or a venue with a testnet)'
    )
    if not test_urls:
        raise refused
    try:
        if demo:
            exchange.enable_demo_trading(True)
        else:
            exchange.set_sandbox_mode(True)
    except (ccxt.NotSupported, TypeError, KeyError) as e:
        raise refused from e
    allowed = set(_urls(test_urls))
    live = sorted(u for u in _urls(exchange.urls.get("api", {})) if u not in allowed)
    if live or not allowed:
        raise RealMoneyRefused(
            f"exchange {settings.id!r}: sandbox mode left live endpoints in place ({', '.join(live[:3]) or 'none'}); "
            "guard refuses to send orders that could trade real money"
        )
    return exchange


def _urls(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _urls(item)


async def prepare_account(exchange: Any, call: VenueCalls, specs: Mapping[str, MarketSpec]) -> None:
    """Load markets and check the account is one guard's arithmetic fits: one-way, isolated.

    Raises:
        ExchangeUnavailable: the venue did not answer.
        ExchangeRejected: the account is in hedge mode.
    """
    venue = call.venue
    try:
        await call(exchange.load_markets())
    except EDGE_ERRORS as e:
        raise ExchangeUnavailable(f"{venue}: could not load markets: {call.reason(e)}") from e
    try:
        mode = await call(exchange.fetch_position_mode())
        if mode.get("hedged"):
            raise ExchangeRejected(
                f"{venue}: the account is in hedge (dual-side) position mode; guard trades one-way mode only: "
                "switch it at the venue"
            )
    except (ccxt.NotSupported, AttributeError):
        pass
    except ExchangeRejected:
        raise
    except EDGE_ERRORS as e:
        raise ExchangeUnavailable(f"{venue}: could not read the position mode: {call.reason(e)}") from e
    for symbol in specs:
        try:
            await call(exchange.set_margin_mode("isolated", symbol))
        except EDGE_ERRORS as e:
            text = call.reason(e)
            if "-4046" not in text and "No need to change" not in text:
                log.warning("venue_margin_mode_not_set", symbol=symbol, error=text)
    log.info("sandbox_broker_connected", exchange=venue, symbols=list(specs))
