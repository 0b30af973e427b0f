"""Money in the account's currency: a replay of a pair quoted in another currency, converted through a series.

guard's account is kept in USDT. A pair's money (notional, margin, fees, PnL) is in its quote currency
(spot) or settlement currency (perpetual): for ETH/BTC that is BTC. Counting BTC as USDT makes every
figure wrong (354 BTC of notional is not "354" against a 25,000 USDT limit), so such a replay needs
BTC's price in USDT over the replay — a history file the user supplies, `--convert BTC/USDT=FILE`
— or it is refused with a message that says so.

With a conversion, the desk keeps the account in the pair's currency, as a person who turned USDT into
BTC to trade ETH/BTC would: the starting balance and every money limit are converted at the first
bar's rate, and the report converts the account back to USDT at each bar's rate. Its PnL in USDT
therefore includes what BTC's own price did to the BTC held, and the report says how much of it the
trading made.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import msgspec
import numpy as np

from guard.config import Config
from guard.errors import BadInput
from guard.markets.record import SpecRecord
from guard.replay.history import load_histories
from guard.replay.result import ReplayResult
from guard.timeframes import timeframe_ms
from guard.wording import utc_minute

ACCOUNT_CURRENCY = "USDT"
"""The currency guard's paper account is kept in."""

_LIMIT_QUANTUM = Decimal("1e-8")


def money_currency(record: SpecRecord) -> str:
    """The currency a market's money is counted in: its settlement currency, or its quote currency on spot."""
    return record.settle or record.spec.quote


@dataclass(frozen=True, slots=True, eq=False)
class Conversion:
    """The price of `currency` in the account's currency over time, from a history file the user supplied."""

    currency: str
    source: str
    close_times: np.ndarray
    """Close time of each bar of the series, ms."""
    closes: np.ndarray
    first_open: float
    """The rate before the first bar closed."""

    def rate(self, at_ms: int) -> Decimal:
        """The last close at or before `at_ms` (the first bar's open before its first close)."""
        return Decimal(str(float(self.rates(np.array([at_ms]))[0])))

    def rates(self, times: np.ndarray) -> np.ndarray:
        """The rate at each time (float, for charts): never a price from after that time."""
        k = np.searchsorted(self.close_times, times, side="right") - 1
        return np.where(k >= 0, self.closes[np.maximum(k, 0)], self.first_open).astype(np.float64)


def parse_convert(text: str) -> tuple[str, str, str]:
    """`--convert BTC/USDT=FILE` as (currency, account currency, file).

    Raises:
        BadInput: not PAIR=FILE with a pair into the account's currency.
    """
    pair, sep, path = text.partition("=")
    base, slash, quote = pair.partition("/")
    quote = quote.split(":", 1)[0]
    if not sep or not slash or not path or not base:
        raise BadInput(f"--convert {text!r}: give PAIR=FILE, e.g. BTC/USDT=btc-usdt-1h.csv")
    if quote.upper() != ACCOUNT_CURRENCY:
        raise BadInput(f"--convert {text!r}: the pair must price a currency in the account's {ACCOUNT_CURRENCY}")
    return base.upper(), quote.upper(), path


def plan_conversion(
    records: Mapping[str, SpecRecord], converts: Sequence[str], first_ms: int, last_ms: int
) -> Conversion | None:
    """The conversion a replay of these markets needs (None when their money is already in USDT).

    Raises:
        BadInput: markets counted in different currencies, a currency with no conversion given (the message
            says how to give one), or a conversion series that does not cover the replay.
    """
    currencies = {money_currency(r) for r in records.values()}
    given = {currency: path for currency, _, path in map(parse_convert, converts)}
    if len(currencies) > 1:
        listed = ", ".join(f"{s} in {money_currency(r)}" for s, r in records.items())
        raise BadInput(
            f"one replay keeps one account, and these markets count money in different currencies "
            f"({listed}): replay them separately"
        )
    (currency,) = currencies
    if currency == ACCOUNT_CURRENCY:
        return None
    symbols = ", ".join(records)
    if currency not in given:
        raise BadInput(
            f"{symbols} counts money in {currency}, and the account is kept in {ACCOUNT_CURRENCY}: give {currency}'s "
            f"price in {ACCOUNT_CURRENCY} over the replay ({utc_minute(first_ms)} to {utc_minute(last_ms)}) with "
            f"`--convert {currency}/{ACCOUNT_CURRENCY}=FILE`, FILE a history of {currency}/{ACCOUNT_CURRENCY} bars "
            f"(e.g. `guard history fetch --exchange binance --symbol {currency}/{ACCOUNT_CURRENCY} --timeframe 1h "
            f"--since {utc_minute(first_ms)[:10]} --out FILE`)"
        )
    return load_conversion(currency, given[currency], first_ms, last_ms)


def load_conversion(currency: str, path: str, first_ms: int, last_ms: int) -> Conversion:
    """Read a conversion series and check it covers [first_ms, last_ms].

    Raises:
        BadInput: unreadable, not one symbol pricing `currency` in USDT, or not covering the replay.
    """
    histories = load_histories([path])
    wanted = {f"{currency}/{ACCOUNT_CURRENCY}", f"{currency}/{ACCOUNT_CURRENCY}:{ACCOUNT_CURRENCY}"}
    found = [h for h in histories if h.symbol in wanted]
    if len(histories) != 1 or not found:
        raise BadInput(
            f"--convert {path}: holds {', '.join(h.symbol for h in histories)}, not {currency}/{ACCOUNT_CURRENCY} alone"
        )
    h = found[0]
    step = timeframe_ms(h.timeframe)
    close_times = h.open_times + step
    if int(h.open_times[0]) > first_ms or int(close_times[-1]) + max(step, 86_400_000) < last_ms:
        raise BadInput(
            f"--convert {path}: its {currency}/{ACCOUNT_CURRENCY} bars run from {utc_minute(int(h.open_times[0]))} "
            f"to {utc_minute(int(close_times[-1]))}; the replay runs from {utc_minute(first_ms)} to "
            f"{utc_minute(last_ms)}: the series must cover it"
        )
    return Conversion(currency, Path(path).name, close_times, h.closes, float(h.opens[0]))


def desk_config(config: Config, rate: Decimal) -> Config:
    """The config in the pair's currency: starting balance and money limits divided by the rate at the start."""

    def convert(value: Decimal) -> Decimal:
        return (value / rate).quantize(_LIMIT_QUANTUM)

    risk = config.risk
    return msgspec.structs.replace(
        config,
        paper=msgspec.structs.replace(config.paper, starting_balance=convert(config.paper.starting_balance)),
        risk=msgspec.structs.replace(
            risk,
            max_order_notional=convert(risk.max_order_notional),
            max_position_notional=convert(risk.max_position_notional),
            max_gross_exposure=convert(risk.max_gross_exposure),
            daily_loss_limit=convert(risk.daily_loss_limit),
        ),
        operators=msgspec.structs.replace(
            config.operators, four_eyes_notional=convert(config.operators.four_eyes_notional)
        ),
    )


def in_account_currency(result: ReplayResult, conversion: Conversion, config: Config) -> ReplayResult:
    """The replay's figures in USDT: equity at each bar's rate, the end at the last rate, and a note saying how."""
    c = conversion.currency
    start, end = conversion.rate(result.first_ms), conversion.rate(result.last_ms)
    trading = result.final_equity - result.starting_balance
    risk = config.risk
    note = (
        f"Money in {ACCOUNT_CURRENCY}: {', '.join(result.symbols)} counts money in {c}, converted with {c}/"
        f"{ACCOUNT_CURRENCY} from {conversion.source} (1 {c} = {start:,.2f} {ACCOUNT_CURRENCY} at the first bar, "
        f"{end:,.2f} at the last). The desk kept the account in {c}: {config.paper.starting_balance:,.0f} "
        f"{ACCOUNT_CURRENCY} = {_plain(result.starting_balance)} {c} to start; the limits at the first bar's rate "
        f"(order {risk.max_order_notional:,.0f} {ACCOUNT_CURRENCY} = {_plain(risk.max_order_notional / start)} {c}, "
        f"daily loss {risk.daily_loss_limit:,.0f} = {_plain(risk.daily_loss_limit / start)} {c}). The trading made "
        f"{_plain(trading)} {c} ({trading * end:+,.2f} {ACCOUNT_CURRENCY} at the last rate); the rest of the PnL is "
        f"what {c}'s own price did to the {c} held."
    )
    return dataclasses.replace(
        result,
        equity=result.equity * conversion.rates(result.times),
        starting_balance=config.paper.starting_balance,
        final_equity=result.final_equity * end,
        realized_pnl=result.realized_pnl * end,
        fees=result.fees * end,
        funding=result.funding * end,
        liquidation_losses=result.liquidation_losses * end,
        currency=ACCOUNT_CURRENCY,
        money_note=note,
    )


def _plain(amount: Decimal) -> str:
    """An amount to 8 decimals without trailing zeros: 0.09993404, 25,000, -8.88794107."""
    return format(amount.quantize(_LIMIT_QUANTUM).normalize(), ",f")


def first_and_last(open_times: Sequence[np.ndarray], tf_ms: int) -> tuple[int, int]:
    """The replay's first bar open and last bar close, ms."""
    return min(int(t[0]) for t in open_times), max(int(t[-1]) for t in open_times) + tf_ms
