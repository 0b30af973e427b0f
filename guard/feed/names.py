"""What a history file's name says: its market, its kind (spot or perpetual) and its timeframe.

The names people's tools write, and what guard reads from them:

    ETH_BTC-5m.csv                 ETH/BTC, spot, 5m          (freqtrade, spot)
    XRP_USDT_USDT-5m-futures.csv   XRP/USDT:USDT, perpetual   (freqtrade, futures: PAIR_SETTLE)
    BTC-USDT.csv                   BTC/USDT, spot             (OKX-style; "-SWAP" makes it a perpetual)
    BTCUSDT-1m-2024-01.csv         BTC/USDT:USDT, perpetual   (Binance's data dumps: see below)
    ETHBTC-5m.csv                  ETH/BTC, spot

A name with separate base and quote is spot unless it carries a settlement currency or a word
such as futures, swap or perp. A run-together name (`BTCUSDT`) is split at a known quote
currency (`--quote` adds one); it is a USDT or USDC perpetual when quoted in those (Binance's
USDⓈ-M dumps are named this way) and spot otherwise. Every such reading is a guess, and the
importer prints it; `--symbol` and `--kind` settle it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from guard.domain import MarketKind
from guard.errors import BadInput
from guard.timeframes import TIMEFRAME_MS

KNOWN_QUOTES = (
    "FDUSD",
    "USDT",
    "USDC",
    "BUSD",
    "TUSD",
    "USDP",
    "EUR",
    "USD",
    "BTC",
    "ETH",
    "BNB",
    "TRY",
    "GBP",
    "JPY",
    "DAI",
    "BRL",
    "AUD",
)
"""Quote currencies a run-together name is split at, longest first (so BTCUSDT is not BTCUSD+T)."""
PERPETUAL_QUOTES = ("USDT", "USDC")
_LINEAR_WORDS = {"FUTURES", "FUTURE", "SWAP", "PERP", "PERPETUAL", "UM", "USDM", "LINEAR"}
_SPOT_WORDS = {"SPOT"}
_IGNORED_WORDS = {"MARK", "INDEX", "KLINES", "KLINE", "OHLCV", "CANDLES", "DATA", "HISTORY", "BARS", "TRADES"}
_TIMEFRAME = re.compile(r"^\d+[smhdw]$")
_TIMEFRAME_LIKE = re.compile(r"^\d+[A-Za-z]{1,2}$")
"""1M, 1w, 3d: a timeframe guard does not read, not a currency."""
_CURRENCY = re.compile(r"^[A-Z0-9]{2,12}$")


@dataclass(frozen=True, slots=True)
class NameGuess:
    """What a file name says, and the sentences saying what was guessed."""

    symbol: str
    kind: MarketKind
    timeframe: str | None
    """The timeframe the name mentions, if guard knows it."""
    guesses: tuple[str, ...]


def symbol_from_name(path: Path | str, *, kind: MarketKind | None = None, quote: str | None = None) -> NameGuess:
    """Read a ccxt unified symbol, its kind and a timeframe from a history file's name.

    Args:
        kind: spot or linear when the caller knows (overrides what the name suggests).
        quote: the quote currency when the caller knows (splits run-together names such as XRPEUR).

    Raises:
        BadInput: the name does not say the market, or contradicts `quote`.
    """
    path = Path(path)
    stem = path.name.split(".", 1)[0]
    quote = quote.upper() if quote else None
    words = [w for w in re.split(r"[-_ .]+", stem) if w]
    timeframe = next((w for w in words if _TIMEFRAME.match(w) and w in TIMEFRAME_MS), None)
    said_kind: MarketKind | None = None
    currencies: list[str] = []
    for word in words:
        upper = word.upper()
        if _TIMEFRAME_LIKE.match(word) or word.isdigit() or upper in _IGNORED_WORDS:
            continue
        if upper in _LINEAR_WORDS:
            said_kind = MarketKind.LINEAR
        elif upper in _SPOT_WORDS:
            said_kind = MarketKind.SPOT
        elif _CURRENCY.match(upper) and any(ch.isalpha() for ch in upper):
            currencies.append(upper)
    guesses: list[str] = []
    settle: str | None = None
    if len(currencies) == 1:
        base, named_quote = _split(currencies[0], quote, path)
        if said_kind is None and kind is None:
            said_kind = MarketKind.LINEAR if named_quote in PERPETUAL_QUOTES else MarketKind.SPOT
            what = f"a {named_quote} perpetual" if said_kind is MarketKind.LINEAR else "spot"
            other = "spot" if said_kind is MarketKind.LINEAR else "linear"
            guesses.append(f"{currencies[0]} read as {what} from the file name (pass --kind {other} if it is not)")
    elif len(currencies) in (2, 3):
        base, named_quote = currencies[0], currencies[1]
        if quote and quote != named_quote:
            raise BadInput(f"{path.name}: the name says quote {named_quote}, --quote says {quote}")
        if len(currencies) == 3:
            settle = currencies[2]
            said_kind = said_kind or MarketKind.LINEAR
        elif said_kind is None and kind is None:
            said_kind = MarketKind.SPOT
            guesses.append(
                f"{base}/{named_quote} read as spot: the file name has no futures, swap or perp word "
                "(pass --kind linear if it is a perpetual)"
            )
    else:
        raise BadInput(
            f"{path.name}: cannot tell the market from the file name; pass --symbol (e.g. BTC/USDT:USDT for a "
            "perpetual, ETH/BTC for spot)"
        )
    final_kind = kind or said_kind or MarketKind.SPOT
    if final_kind is MarketKind.LINEAR:
        symbol = f"{base}/{named_quote}:{settle or named_quote}"
    else:
        symbol = f"{base}/{named_quote}"
    return NameGuess(symbol, final_kind, timeframe, tuple(guesses))


def _split(run_together: str, quote: str | None, path: Path) -> tuple[str, str]:
    """BTCUSDT → (BTC, USDT), at `quote` when given, else at the longest known quote it ends with."""
    candidates = (quote,) if quote else KNOWN_QUOTES
    for q in candidates:
        if run_together.endswith(q) and len(run_together) - len(q) >= 2:
            return run_together[: -len(q)], q
    if quote:
        raise BadInput(f"{path.name}: {run_together} does not end with --quote {quote}")
    raise BadInput(
        f"{path.name}: cannot split {run_together} into base and quote; pass --quote (e.g. --quote EUR) or --symbol"
    )


def parse_symbol(symbol: str) -> tuple[str, str, str | None]:
    """A ccxt unified symbol → (base, quote, settle or None).

    Raises:
        BadInput: for text that is not a unified symbol ("BTC/USDT", "BTC/USDT:USDT").
    """
    pair, colon, settle = symbol.partition(":")
    base, slash, quote = pair.partition("/")
    if not (slash and base and quote) or (colon and not settle):
        raise BadInput(f"--symbol {symbol!r}: must be a ccxt unified symbol like BTC/USDT:USDT or ETH/BTC")
    return base, quote, settle if colon else None
