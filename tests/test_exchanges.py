"""The ccxt edge: building exchanges, pointing them at the simulator, translating errors."""

from __future__ import annotations

import ccxt
import pytest

from guard.errors import BadInput, ExchangeRejected, ExchangeUnavailable, FeedError
from guard.exchanges import classify, make_exchange, point_at_sim, translate


class _Sim:
    url = "http://127.0.0.1:9"
    ws_url = "ws://127.0.0.1:9"


async def test_point_at_sim_rewrites_every_url() -> None:
    """Every API URL of binanceusdm points at the simulator afterwards; paths are kept."""
    exchange = make_exchange("sim", timeout_seconds=2.0, sim=_Sim())
    try:
        urls: list[str] = []

        def collect(value: object) -> None:
            if isinstance(value, dict):
                for v in value.values():
                    collect(v)
            elif isinstance(value, str) and "://" in value:
                urls.append(value)

        collect(exchange.urls["api"])
        assert urls and all(u.startswith(("http://127.0.0.1:9/", "ws://127.0.0.1:9/")) for u in urls)
        assert exchange.urls["api"]["fapiPublic"] == "http://127.0.0.1:9/fapi/v1"
        assert exchange.urls["api"]["ws"]["linear"] == "ws://127.0.0.1:9/ws"
        assert exchange.timeout == 2000 and exchange.enableRateLimit
        point_at_sim(exchange, _Sim())  # idempotent
        assert exchange.urls["api"]["fapiPublic"] == "http://127.0.0.1:9/fapi/v1"
    finally:
        await exchange.close()


def test_make_exchange_unknown_or_unaddressed() -> None:
    """An id ccxt does not know is a FeedError; "sim" without a simulator is bad input."""
    with pytest.raises(FeedError, match="not a ccxt exchange id"):
        make_exchange("nonsense", timeout_seconds=1.0)
    with pytest.raises(BadInput):
        make_exchange("sim", timeout_seconds=1.0)


def test_classify_ccxt_errors_by_what_to_do() -> None:
    """Rate limits, outages, timeouts and refusals map to guard errors and health reasons."""
    assert classify(ccxt.DDoSProtection("binanceusdm 429 Too Many Requests"), "x").reason == "rate limited"
    assert classify(ccxt.NetworkError("418, message='Invalid response status'"), "x").reason == "banned (418)"
    assert classify(ccxt.NetworkError("503, message='Invalid response status'"), "x").reason == (
        "exchange unavailable: 503"
    )
    assert classify(ccxt.OperationFailed('{"code": -1001}'), "x").reason == "exchange unavailable"
    assert classify(ccxt.RequestTimeout("GET"), "x").reason == "timed out"
    assert classify(ccxt.NetworkError("Connection closed by remote server"), "x").reason == "disconnected"
    assert isinstance(translate(ccxt.DDoSProtection("429"), "x"), ExchangeUnavailable)
    assert isinstance(translate(ccxt.BadSymbol("no"), "x"), FeedError)
    assert isinstance(translate(ccxt.AuthenticationError("key"), "x"), ExchangeRejected)
    assert isinstance(translate(ccxt.InvalidOrder("qty"), "x"), ExchangeRejected)
