"""Spec files: the market spec that travels beside a history file, and finding the spec for a replay.

A history file `FILE` (CSV or Parquet) may have a sidecar `FILE.spec.json`, written by
`guard history fetch` (the venue's spec) and `guard history import` (what the options said, or
what was guessed, each guess listed). The format:

    {"format": "guard.market-specs/1",
     "markets": [{"symbol": "XRP/USDT:USDT", "base": "XRP", "quote": "USDT", "settle": "USDT",
                  "kind": "linear", "tick_size": "0.0001", "step_size": "0.1", "min_qty": "0.1",
                  "min_notional": "5", "contract_size": "1", "maker_fee": "0.0002",
                  "taker_fee": "0.0005", "max_leverage": "75",
                  "tiers": [{"floor": "0", "cap": "5000", "mmr": "0.005", "cum": "0",
                             "max_leverage": "75"}, ...],
                  "source": "binanceusdm via ccxt 4.5.3, 2026-01-02 03:04 UTC",
                  "guesses": []}]}

Numbers are decimal strings (exact); a last tier's cap may be "Infinity". Unknown keys are
refused, so a misspelt field cannot be silently ignored.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from guard.domain import LeverageTier, MarketKind, MarketSpec
from guard.errors import BadInput
from guard.markets.builtin import builtin_spec
from guard.markets.record import SpecRecord

FORMAT = "guard.market-specs/1"
SUFFIX = ".spec.json"
_MARKET_KEYS = (
    "symbol",
    "base",
    "quote",
    "settle",
    "kind",
    "tick_size",
    "step_size",
    "min_qty",
    "min_notional",
    "contract_size",
    "maker_fee",
    "taker_fee",
    "max_leverage",
    "tiers",
    "source",
    "guesses",
)
_TIER_KEYS = ("floor", "cap", "mmr", "cum", "max_leverage")
MAX_FEE = Decimal("0.1")
"""No venue charges 10 % a trade: a fee beyond it is a mistake (a percentage written as a rate)."""
SMALLEST_INCREMENT = Decimal("1e-18")
LARGEST_INCREMENT = Decimal("1e9")
"""Ticks, steps and contract sizes outside these are mistakes; beyond them, rounding a price overflows."""
LARGEST_LEVERAGE = Decimal(1000)


def spec_path(history: Path | str) -> Path:
    """The spec file beside a history file: `btc.csv` → `btc.csv.spec.json`."""
    history = Path(history)
    return history.with_name(history.name + SUFFIX)


# --- writing --------------------------------------------------------------------------


def write_specs(path: Path | str, records: Iterable[SpecRecord]) -> Path:
    """Write a spec file atomically (a temporary file renamed into place); return its path."""
    path = Path(path)
    text = json.dumps({"format": FORMAT, "markets": [_record_json(r) for r in records]}, indent=1) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _number(value: Decimal) -> str:
    """A Decimal as plain text: "0.00001", "25000", "Infinity" (not "1E-5" or "2.5E+4")."""
    return str(value) if not value.is_finite() else format(value.normalize(), "f")


def _record_json(record: SpecRecord) -> dict[str, Any]:
    s = record.spec
    return {
        "symbol": s.symbol,
        "base": s.base,
        "quote": s.quote,
        "settle": record.settle,
        "kind": s.kind.value,
        "tick_size": _number(s.tick_size),
        "step_size": _number(s.step_size),
        "min_qty": _number(s.min_qty),
        "min_notional": _number(s.min_notional),
        "contract_size": _number(s.contract_size),
        "maker_fee": _number(s.maker_fee),
        "taker_fee": _number(s.taker_fee),
        "max_leverage": _number(s.max_leverage),
        "tiers": [
            {
                "floor": _number(t.floor),
                "cap": _number(t.cap),
                "mmr": _number(t.mmr),
                "cum": _number(t.cum),
                "max_leverage": _number(t.max_leverage),
            }
            for t in s.tiers
        ],
        "source": record.source,
        "guesses": list(record.guesses),
    }


# --- reading --------------------------------------------------------------------------


def read_specs(path: Path | str) -> dict[str, SpecRecord]:
    """Read a spec file, checking every field.

    Raises:
        BadInput: the file is missing, not JSON, or a field is missing, unknown or impossible (the
            message names the file, the field's path and what is allowed).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path}: no such spec file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"{path}: cannot be read: {e}") from e
    except json.JSONDecodeError as e:
        raise BadInput(f"{path}: not JSON ({e})") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BadInput(f'{path}: not a guard spec file (expected "format": "{FORMAT}")')
    _no_unknown(data, ("format", "markets"), f"{path}: $")
    markets = data.get("markets")
    if not isinstance(markets, list) or not markets:
        raise BadInput(f"{path}: $.markets: a non-empty list of markets")
    out: dict[str, SpecRecord] = {}
    for i, market in enumerate(markets):
        record = _parse_market(market, f"{path}: $.markets[{i}]")
        if record.symbol in out:
            raise BadInput(f"{path}: $.markets[{i}]: {record.symbol} appears twice")
        out[record.symbol] = record
    return out


def _parse_market(m: object, where: str) -> SpecRecord:
    if not isinstance(m, dict):
        raise BadInput(f"{where}: an object with {', '.join(_MARKET_KEYS)}")
    _no_unknown(m, _MARKET_KEYS, where)
    symbol, base, quote = (_text(m, k, where) for k in ("symbol", "base", "quote"))
    settle = m.get("settle")
    if settle is not None and (not isinstance(settle, str) or not settle):
        raise BadInput(f"{where}.settle: a currency code or null")
    try:
        kind = MarketKind(str(m.get("kind")))
    except ValueError:
        raise BadInput(f"{where}.kind: {m.get('kind')!r} is not one of spot, linear") from None
    expected = f"{base}/{quote}" + (f":{settle}" if kind is MarketKind.LINEAR else "")
    if kind is MarketKind.LINEAR and settle is None:
        raise BadInput(f"{where}.settle: a linear perpetual needs its settlement currency")
    if kind is MarketKind.SPOT and settle is not None:
        raise BadInput(f"{where}.settle: a spot market settles nothing (null)")
    if symbol != expected:
        raise BadInput(f"{where}.symbol: {symbol!r} does not match base, quote, settle and kind ({expected!r})")
    tick, step, contract_size = (_increment(m, k, where) for k in ("tick_size", "step_size", "contract_size"))
    min_qty = _decimal(m, "min_qty", where)
    min_notional = _decimal(m, "min_notional", where)
    maker, taker = (_decimal(m, k, where, signed=True) for k in ("maker_fee", "taker_fee"))
    for name, fee in (("maker_fee", maker), ("taker_fee", taker)):
        if abs(fee) >= MAX_FEE:
            raise BadInput(f"{where}.{name}: {fee} is not a fee rate (0.0005 is 0.05 %)")
    max_leverage = _decimal(m, "max_leverage", where, positive=True)
    if not 1 <= max_leverage <= LARGEST_LEVERAGE:
        raise BadInput(f"{where}.max_leverage: {max_leverage}: at least 1, at most {LARGEST_LEVERAGE}")
    tiers = _parse_tiers(m.get("tiers"), f"{where}.tiers")
    if kind is MarketKind.SPOT and (tiers or max_leverage != 1):
        raise BadInput(f"{where}: a spot market has no leverage (max_leverage 1, no tiers)")
    guesses = m.get("guesses", [])
    if not isinstance(guesses, list) or not all(isinstance(g, str) for g in guesses):
        raise BadInput(f"{where}.guesses: a list of sentences")
    spec = MarketSpec(
        symbol=symbol,
        base=base,
        quote=quote,
        kind=kind,
        tick_size=tick,
        step_size=step,
        min_qty=min_qty,
        min_notional=min_notional,
        maker_fee=maker,
        taker_fee=taker,
        max_leverage=max_leverage,
        tiers=tiers,
        contract_size=contract_size,
    )
    return SpecRecord(spec=spec, source=_text(m, "source", where), settle=settle, guesses=tuple(guesses))


def _parse_tiers(rows: object, where: str) -> tuple[LeverageTier, ...]:
    if rows is None:
        return ()
    if not isinstance(rows, list):
        raise BadInput(f"{where}: a list of tiers")
    tiers: list[LeverageTier] = []
    for i, row in enumerate(rows):
        at = f"{where}[{i}]"
        if not isinstance(row, dict):
            raise BadInput(f"{at}: an object with {', '.join(_TIER_KEYS)}")
        _no_unknown(row, _TIER_KEYS, at)
        floor, cum = _decimal(row, "floor", at), _decimal(row, "cum", at)
        cap = _decimal(row, "cap", at, positive=True, infinite=True)
        mmr = _decimal(row, "mmr", at, positive=True)
        leverage = _decimal(row, "max_leverage", at, positive=True)
        if cap <= floor:
            raise BadInput(f"{at}.cap: {cap} is not above the floor {floor}")
        if mmr >= 1:
            raise BadInput(f"{at}.mmr: {mmr}: a maintenance margin rate is below 1")
        if tiers and floor != tiers[-1].cap:
            raise BadInput(f"{at}.floor: {floor} is not the previous tier's cap {tiers[-1].cap}")
        tiers.append(LeverageTier(floor=floor, cap=cap, mmr=mmr, cum=cum, max_leverage=leverage))
    if tiers and tiers[0].floor != 0:
        raise BadInput(f"{where}[0].floor: the first tier starts at 0")
    return tuple(tiers)


def _increment(m: Mapping[str, Any], key: str, where: str) -> Decimal:
    value = _decimal(m, key, where, positive=True)
    check_increment(value, f"{where}.{key}")
    return value


def check_increment(value: Decimal, what: str) -> None:
    """Refuse a tick, step or contract size no market has (it would overflow price rounding).

    Raises:
        BadInput: naming `what` and the range allowed.
    """
    if not (value.is_finite() and SMALLEST_INCREMENT <= value <= LARGEST_INCREMENT):
        raise BadInput(f"{what}: {value}: must be between {SMALLEST_INCREMENT} and {LARGEST_INCREMENT:f}")


def _no_unknown(obj: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    unknown = [k for k in obj if k not in allowed]
    if unknown:
        raise BadInput(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}")


def _text(m: Mapping[str, Any], key: str, where: str) -> str:
    value = m.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{where}.{key}: a non-empty string")
    return value


def _decimal(
    m: Mapping[str, Any], key: str, where: str, *, positive: bool = False, signed: bool = False, infinite: bool = False
) -> Decimal:
    raw = m.get(key)
    if raw is None or isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise BadInput(f'{where}.{key}: a decimal number as a string, e.g. "0.01"')
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise BadInput(f"{where}.{key}: {raw!r} is not a number") from None
    if value.is_nan() or (value.is_infinite() and not (infinite and value > 0)):
        raise BadInput(f"{where}.{key}: {raw!r} is not a finite number")
    if positive and value <= 0:
        raise BadInput(f"{where}.{key}: {raw!r}: must be > 0")
    if not positive and not signed and value < 0:
        raise BadInput(f"{where}.{key}: {raw!r}: must be >= 0")
    return value


# --- finding the spec for history ------------------------------------------------------


def spec_for_history(history: Path | str) -> dict[str, SpecRecord]:
    """The specs saved beside a history file (`FILE.spec.json`), by symbol; {} when there is none.

    Raises:
        BadInput: the spec file exists but cannot be used.
    """
    path = spec_path(history)
    return read_specs(path) if path.exists() else {}


def resolve_specs(
    symbols: Iterable[str], histories: Sequence[Path | str], spec_files: Sequence[Path | str] = ()
) -> dict[str, SpecRecord]:
    """The spec of every symbol in some history: from a spec file given, else the one saved beside the
    history, else guard's built-in spec when it describes the symbol. Replay and training call this.

    Raises:
        BadInput: two spec files disagree about a symbol, or a symbol has no spec at all (the message
            says what to pass).
    """
    given: dict[str, SpecRecord] = {}
    for path in spec_files:
        for symbol, record in read_specs(path).items():
            given.setdefault(symbol, record)
    saved: dict[str, tuple[Path, SpecRecord]] = {}
    for history in histories:
        for symbol, record in spec_for_history(history).items():
            if symbol in saved and saved[symbol][1].spec != record.spec and symbol not in given:
                first = saved[symbol][0]
                raise BadInput(
                    f"{symbol}: {first} and {spec_path(history)} give different specs; choose one with --spec FILE"
                )
            saved.setdefault(symbol, (spec_path(history), record))
    out: dict[str, SpecRecord] = {}
    missing: list[str] = []
    for symbol in dict.fromkeys(symbols):
        if symbol in given:
            out[symbol] = given[symbol]
        elif symbol in saved:
            out[symbol] = saved[symbol][1]
        elif (spec := builtin_spec(symbol)) is not None:
            out[symbol] = SpecRecord(spec=spec, source="guard's built-in spec", settle=_settle(symbol))
        else:
            missing.append(symbol)
    if missing:
        files = ", ".join(str(spec_path(h)) for h in histories) or "beside the history"
        raise BadInput(
            f"no market spec for {', '.join(missing)}: none was given, none is saved beside the history "
            f"({files}), and guard has no built-in one; fetch the bars with `guard history fetch` (saves the "
            "venue's spec), re-import them with `guard history import FILE --tick T --step S --out FILE`, "
            "or pass --spec FILE"
        )
    return out


def _settle(symbol: str) -> str | None:
    _, colon, settle = symbol.partition(":")
    return settle if colon else None
