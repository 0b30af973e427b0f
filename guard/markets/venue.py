"""ccxt markets → `MarketSpec`: precision, limits, fees, contract size and leverage tiers.

Binance publishes its maintenance-margin brackets only to signed requests, so without API
keys guard uses its built-in tables (`guard.markets.builtin`: Binance USDⓈ-M's published
brackets for BTCUSDT and ETHUSDT, and a conservative table for other symbols) and says that it
did. Brackets change: with keys, `fetch_leverage_tiers` wins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ccxt
import structlog

from guard.domain import ONE, ZERO, LeverageTier, MarketKind, MarketSpec
from guard.errors import ExchangeUnavailable, FeedError
from guard.exchanges import translate
from guard.markets.builtin import builtin_tiers, tiers_are_guessed
from guard.markets.record import SpecRecord
from guard.risk.liquidation import tiers_from_brackets

log = structlog.get_logger(__name__)


def tiers_from_ccxt(rows: Iterable[Mapping[str, Any]]) -> tuple[LeverageTier, ...]:
    """Unified ccxt leverage tiers → `LeverageTier`s (cum from the venue when it gives one)."""
    parsed = []
    for row in sorted(rows, key=lambda r: float(r.get("minNotional") or 0)):
        parsed.append(
            (
                _dec(row.get("minNotional"), ZERO),
                _dec(row.get("maxNotional"), Decimal("Infinity")),
                _dec(row.get("maintenanceMarginRate"), ZERO),
                _dec(row.get("maxLeverage"), ONE),
                (row.get("info") or {}).get("cum"),
            )
        )
    computed = tiers_from_brackets([(f, m, x) for f, _, m, x, _ in parsed])
    return tuple(
        LeverageTier(t.floor, cap, t.mmr, _dec(venue_cum, t.cum), t.max_leverage)
        for t, (_, cap, *_, venue_cum) in zip(computed, parsed, strict=True)
    )


def market_spec(market: Mapping[str, Any], precision_mode: int, tiers: tuple[LeverageTier, ...]) -> MarketSpec:
    """Build guard's view of one ccxt market.

    Raises:
        FeedError: for markets guard does not trade (inverse or dated futures, options).
    """
    symbol = str(market["symbol"])
    if market.get("spot"):
        kind = MarketKind.SPOT
    elif market.get("swap") and market.get("linear"):
        kind = MarketKind.LINEAR
    else:
        raise FeedError(f"{symbol}: guard trades spot and linear (USDT-margined) perpetuals only")
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    tick = _size(precision.get("price"), precision_mode)
    step = _size(precision.get("amount"), precision_mode)
    min_qty = _dec((limits.get("amount") or {}).get("min"), step)
    min_notional = _dec((limits.get("cost") or {}).get("min"), ZERO)
    leverage_max = (limits.get("leverage") or {}).get("max")
    if kind is MarketKind.SPOT:
        max_leverage, tiers = ONE, ()
    elif leverage_max:
        max_leverage = _dec(leverage_max, ONE)
    else:
        max_leverage = max((t.max_leverage for t in tiers), default=ONE)
    return MarketSpec(
        symbol=symbol,
        base=str(market.get("base")),
        quote=str(market.get("quote")),
        kind=kind,
        tick_size=tick,
        step_size=step,
        min_qty=min_qty,
        min_notional=min_notional,
        maker_fee=_dec(market.get("maker"), ZERO),
        taker_fee=_dec(market.get("taker"), ZERO),
        max_leverage=max_leverage,
        tiers=tiers,
        contract_size=_dec(market.get("contractSize"), ONE),
    )


def _size(value: Any, precision_mode: int) -> Decimal:
    if value is None:
        raise FeedError("market has no price or amount precision")
    if precision_mode == ccxt.TICK_SIZE:
        return _dec(value, ONE)
    # DECIMAL_PLACES / SIGNIFICANT_DIGITS: a count of decimals.
    return Decimal(1).scaleb(-int(value))


def _dec(value: Any, default: Decimal) -> Decimal:
    if value is None or value == "":
        return default
    try:
        result = Decimal(str(value))
    except ArithmeticError:
        return default
    return result if result.is_finite() or result == Decimal("Infinity") else default


async def load_specs(
    exchange: Any, exchange_id: str, symbols: Sequence[str], timeout_seconds: float
) -> dict[str, MarketSpec]:
    """Load a ccxt exchange's markets (once) and build specs for `symbols`.

    Raises:
        ExchangeUnavailable: the venue could not be reached (network, 5xx, rate limit).
        FeedError: a symbol is not listed, or its market is not one guard trades.
    """
    timeout = timeout_seconds * 3
    try:
        await asyncio.wait_for(exchange.load_markets(), timeout)
    except TimeoutError as e:
        raise ExchangeUnavailable(f"{exchange_id}: loading markets timed out after {timeout:g} s") from e
    except ccxt.BaseError as e:
        raise translate(e, exchange_id) from e
    missing = [s for s in symbols if s not in exchange.markets]
    if missing:
        listed = ", ".join(sorted(exchange.markets)[:5])
        raise FeedError(f"{exchange_id} does not list {', '.join(missing)} (it lists e.g. {listed})")
    tiers = await _load_tiers(exchange, exchange_id, symbols, timeout_seconds)
    specs = {
        symbol: market_spec(exchange.markets[symbol], exchange.precisionMode, tiers.get(symbol, ()))
        for symbol in symbols
    }
    log.info("feed.markets_loaded", exchange=exchange_id, symbols=list(specs))
    return specs


async def _load_tiers(
    exchange: Any, exchange_id: str, symbols: Sequence[str], timeout_seconds: float
) -> dict[str, tuple[LeverageTier, ...]]:
    linear = [s for s in symbols if exchange.markets[s].get("linear")]
    if not linear:
        return {}
    fetched, why = await _venue_tiers(exchange, linear, timeout_seconds)
    if fetched is not None:
        return fetched
    log.info("feed.leverage_tiers_builtin", exchange=exchange_id, symbols=linear, why=why)
    return {s: builtin_tiers(s) for s in linear}


async def _venue_tiers(
    exchange: Any, linear: Sequence[str], timeout_seconds: float
) -> tuple[dict[str, tuple[LeverageTier, ...]] | None, str]:
    """The venue's own tiers for `linear` symbols, or None and why it would not give them."""
    if not exchange.has.get("fetchLeverageTiers"):
        return None, "the venue does not publish them through ccxt"
    try:
        rows = await asyncio.wait_for(exchange.fetch_leverage_tiers(list(linear)), timeout_seconds)
        return {s: tiers_from_ccxt(rows[s]) for s in linear if rows.get(s)}, ""
    except (ccxt.AuthenticationError, ccxt.PermissionDenied, ccxt.ArgumentsRequired) as e:
        return None, f"the venue publishes them to signed requests only ({type(e).__name__})"
    except (ccxt.BaseError, TimeoutError) as e:
        return None, f"fetching them failed ({type(e).__name__})"


async def venue_record(exchange: Any, exchange_id: str, symbol: str, timeout_seconds: float) -> SpecRecord:
    """The venue's spec for one symbol of a loaded ccxt exchange, with where it came from (for a spec file).

    Leverage tiers come from the venue (`fetch_leverage_tiers`) where it gives them; otherwise from
    guard's built-in table, and the record says so as a guess.

    Raises:
        FeedError: the symbol's market is not one guard trades (inverse or dated futures, options).
    """
    market = exchange.markets[symbol]
    guesses: list[str] = []
    tiers: tuple[LeverageTier, ...] = ()
    if market.get("linear") and market.get("swap"):
        fetched, why = await _venue_tiers(exchange, [symbol], timeout_seconds)
        if fetched and fetched.get(symbol):
            tiers = fetched[symbol]
        else:
            tiers = builtin_tiers(symbol)
            table = "guard's conservative altcoin table" if tiers_are_guessed(symbol) else "guard's built-in table"
            guesses.append(f"leverage tiers from {table}: {why or 'the venue gave none for ' + symbol}")
    spec = market_spec(market, exchange.precisionMode, tiers)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    settle = market.get("settle") if spec.kind is MarketKind.LINEAR else None
    return SpecRecord(
        spec=spec,
        source=f"{exchange_id} via ccxt {ccxt.__version__}, {when}",
        settle=str(settle or spec.quote) if spec.kind is MarketKind.LINEAR else None,
        guesses=tuple(guesses),
    )
