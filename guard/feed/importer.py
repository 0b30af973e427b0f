"""`guard history import`: someone else's OHLCV CSV → guard's bars and a spec, saying what was guessed.

What it reads:

- a header or none. With a header, columns are found by name (time: timestamp, time, date,
  datetime, open_time, or an unnamed first column as pandas writes its index; then open, high,
  low, close, volume; `symbol` and `timeframe` when the file is in guard's own format); extra
  columns are ignored and said so. Without one, the first six fields are
  `timestamp,open,high,low,close,volume` (Binance's dumps add six more, ignored).
- timestamps in seconds, milliseconds, microseconds or nanoseconds since the epoch (the unit
  most rows' magnitude says; a row in another unit is refused), or ISO-8601 text (read as UTC
  when it names no zone).
- the market from `--symbol`, else the file name (`guard.feed.names`); the timeframe from
  `--timeframe`, else the rows' spacing (the file name's when the rows are sparser).
- the spec from `--tick/--step/--kind/--quote`, else guard's built-in spec when it describes the
  symbol, else guesses: the tick from the prices' decimals, the step from the volumes' (a sum of
  whole steps has no more decimals than a step). Every guess is returned as a sentence.

Rows that cannot be bars, and bad ticks (`guard.feed.hygiene`), are reported with their line
numbers; gaps are counted, and filled on request.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from pathlib import Path

from guard.domain import Bar, MarketKind, MarketSpec
from guard.errors import BadInput
from guard.feed.csv_rows import Row, read_rows, read_timestamps
from guard.feed.history import parse_ohlcv
from guard.feed.hygiene import BAD_TICK_FACTOR, count_gaps, fill_gaps, find_bad_ticks
from guard.feed.names import parse_symbol, symbol_from_name
from guard.markets.builtin import builtin_spec, builtin_tiers, tiers_are_guessed
from guard.markets.files import check_increment, spec_for_history
from guard.markets.record import SpecRecord
from guard.timeframes import TIMEFRAME_MS, Timeframe

NOISE_DECIMALS = 10
"""A number written with this many decimals is float noise (0.30000000000000004), not a venue's tick."""
NOISE_SHARE = 0.05
"""Up to this share of noisy numbers is set aside; beyond it, the decimals say nothing."""
_DAY_MS = 86_400_000
SPOT_FEE = Decimal("0.001")
LINEAR_FEES = (Decimal("0.0002"), Decimal("0.0005"))


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """What the person said; None leaves it to the file, its name, or a guess."""

    symbol: str | None = None
    timeframe: str | None = None
    kind: MarketKind | None = None
    quote: str | None = None
    tick: Decimal | None = None
    step: Decimal | None = None
    fill_gaps: bool = False
    bad_tick_factor: float = BAD_TICK_FACTOR


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What `import_plain_csv` found and made."""

    bars: list[Bar]
    """The good bars (and, with `fill_gaps`, the flat incomplete bars filling the gaps)."""
    errors: list[tuple[int, str]]
    """(line number, reason) of every row that cannot be a bar."""
    gaps: int
    """Places where bars are missing between two rows (not errors: markets pause)."""
    timeframe: str
    symbol: str
    bad_ticks: list[tuple[int, str]]
    """(line number, reason) of every row refused as a bad tick (left out of `bars`)."""
    spec: SpecRecord
    rows: int
    """Data rows read."""
    filled: int
    """Flat bars inserted into gaps."""
    longest_gap_ms: int
    notes: tuple[str, ...]
    """What was detected or guessed about the file, one sentence each (the spec's guesses are in `spec`)."""


def import_plain_csv(
    path: Path | str, symbol: str | None = None, timeframe: str | None = None, *, options: ImportOptions | None = None
) -> ImportResult:
    """Check an OHLCV CSV and turn it into guard's bars and a market spec.

    Args:
        path: the CSV.
        symbol: ccxt unified symbol (same as `options.symbol`).
        timeframe: "1m", "5m", ... (same as `options.timeframe`).
        options: everything else the person said.

    Raises:
        BadInput: the file cannot be read, or the symbol, timeframe or timestamp unit cannot be decided.
    """
    path = Path(path)
    opts = options or ImportOptions()
    symbol, timeframe = symbol or opts.symbol, timeframe or opts.timeframe
    if not path.exists():
        raise BadInput(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"{path}: cannot be read: {e}") from e
    notes: list[str] = []
    errors: list[tuple[int, str]] = []
    rows = read_rows(path, text, errors, notes)
    if not rows:
        raise BadInput(f"{path}: no data rows")
    named_symbol = next((r.symbol for r in rows if r.symbol), None)
    (symbol, kind, name_tf), guesses = _market(path, symbol or named_symbol, opts, notes)
    stamps = read_timestamps(rows, errors, notes)
    parsed: list[tuple[Row, tuple[int, float, float, float, float, float]]] = []
    for row in rows:
        t = stamps.get(row.line)
        if t is None:
            continue
        if row.symbol and row.symbol != symbol:
            errors.append((row.line, f"symbol {row.symbol} is not {symbol}: import one symbol per file"))
            continue
        values = parse_ohlcv([t, *row.fields])
        if isinstance(values, str):
            errors.append((row.line, values))
            continue
        if parsed and values[0] <= parsed[-1][1][0]:
            prev_line, prev = parsed[-1][0].line, parsed[-1][1][0]
            what = "duplicate timestamp" if values[0] == prev else "out of order"
            errors.append((row.line, f"{what}: {values[0]} after {prev} (line {prev_line})"))
            continue
        parsed.append((row, values))
    named_tf = timeframe or next((r.timeframe for r in rows if r.timeframe), None)
    tf = Timeframe.parse(named_tf) if named_tf else _guess_timeframe(sorted(stamps.values()), name_tf, notes)
    aligned = []
    for row, values in parsed:
        if values[0] % tf.ms:
            errors.append((row.line, f"timestamp {values[0]} is not aligned to {tf}"))
        else:
            aligned.append((row, values))
    bad = (
        find_bad_ticks(*zip(*[(v[1], v[2], v[3], v[4]) for _, v in aligned], strict=True), factor=opts.bad_tick_factor)
        if aligned
        else []
    )
    bad_rows = {b.index for b in bad}
    bad_ticks = [(aligned[b.index][0].line, b.reason()) for b in bad]
    good = [(row, v) for i, (row, v) in enumerate(aligned) if i not in bad_rows]
    bars = [
        Bar(symbol=symbol, timeframe=tf.name, open_time=t, open=o, high=h, low=lo, close=c, volume=v)
        for _, (t, o, h, lo, c, v) in good
    ]
    gaps, filled, longest = count_gaps(bars), 0, 0
    if opts.fill_gaps and bars:
        fill = fill_gaps(bars)
        bars, filled, longest = fill.bars, fill.filled, fill.longest_ms
    spec = _spec(path, symbol, kind, opts, good, guesses)
    errors.sort()
    return ImportResult(
        bars=bars,
        errors=errors,
        gaps=gaps,
        timeframe=tf.name,
        symbol=symbol,
        bad_ticks=bad_ticks,
        spec=spec,
        rows=len(rows),
        filled=filled,
        longest_gap_ms=longest,
        notes=tuple(notes),
    )


# --- market and timeframe ---------------------------------------------------------------


def _market(
    path: Path, symbol: str | None, opts: ImportOptions, notes: list[str]
) -> tuple[tuple[str, MarketKind, str | None], list[str]]:
    """((symbol, kind, timeframe the name mentions), guesses)."""
    quote = opts.quote.upper() if opts.quote else None
    if symbol:
        _, sym_quote, settle = parse_symbol(symbol)
        kind = MarketKind.LINEAR if settle else MarketKind.SPOT
        if opts.kind is not None and opts.kind is not kind:
            raise BadInput(f"--kind {opts.kind.value} contradicts --symbol {symbol} ({kind.value})")
        if quote and quote != sym_quote:
            raise BadInput(f"--quote {quote} contradicts --symbol {symbol}")
        hint = None
        try:
            hint = symbol_from_name(path).timeframe
        except BadInput:
            pass
        return (symbol, kind, hint), []
    guess = symbol_from_name(path, kind=opts.kind, quote=quote)
    notes.append(f"symbol {guess.symbol} read from the file name")
    return (guess.symbol, guess.kind, guess.timeframe), list(guess.guesses)


def _guess_timeframe(times: Sequence[int], named: str | None, notes: list[str]) -> Timeframe:
    step = 0
    for a, b in pairwise(times):
        if b > a:
            step = math.gcd(step, b - a)
    hint = Timeframe.parse(named) if named else None
    if not step:
        if hint:
            notes.append(f"timeframe {hint} read from the file name (too few rows to tell)")
            return hint
        raise BadInput("cannot tell the timeframe from fewer than two rows; pass --timeframe")
    spacings = sorted(b - a for a, b in pairwise(times) if b > a)
    typical = spacings[len(spacings) // 2]
    if 28 * _DAY_MS <= typical <= 31 * _DAY_MS:
        raise BadInput(
            "rows are a calendar month apart (28 to 31 days): guard reads bars of one fixed length "
            f"({', '.join(TIMEFRAME_MS)}); pass --timeframe 1d to import them as daily bars with gaps"
        )
    if hint is not None:
        if step % hint.ms == 0:
            if step != hint.ms:
                notes.append(f"timeframe {hint} read from the file name (the rows are sparser: {step} ms apart)")
            return hint
        raise BadInput(f"the file name says {hint}, but rows are {step} ms apart; pass --timeframe")
    found = Timeframe.of_ms(step)
    if found is None:
        raise BadInput(f"rows are {step} ms apart, which is no timeframe guard knows; pass --timeframe")
    return found


# --- the spec ------------------------------------------------------------------------------


def _spec(
    path: Path,
    symbol: str,
    kind: MarketKind,
    opts: ImportOptions,
    good: Sequence[tuple[Row, tuple[int, float, float, float, float, float]]],
    guesses: list[str],
) -> SpecRecord:
    base, quote, settle = parse_symbol(symbol)
    saved = spec_for_history(path).get(symbol)
    if saved is not None and opts.tick is None and opts.step is None and saved.spec.kind is kind:
        return saved  # importing guard's own file again (to fill gaps, say): its spec stands
    builtin = builtin_spec(symbol)
    prices = _decimal_counts(p for row, _ in good for p in row.fields[:4])
    volumes = _decimal_counts(row.fields[4] for row, v in good if v[5] > 0)
    closes = sorted(v[4] for _, v in good)
    level = closes[len(closes) // 2] if closes else None
    for name, value in (("--tick", opts.tick), ("--step", opts.step)):
        if value is not None:
            check_increment(value, name)
    if opts.tick is not None:
        tick = opts.tick
    elif builtin is not None:
        tick = builtin.tick_size
    else:
        tick, note = _guess_increment(prices, "tick", level)
        guesses.append(note)
    finest = _finest(prices)
    if finest is not None and finest < tick:
        guesses.append(
            f"the prices have increments as fine as {finest:f}, finer than the tick {tick:f}: "
            "pass --tick if the venue's is finer"
        )
    if opts.step is not None:
        step = opts.step
    elif builtin is not None:
        step = builtin.step_size
    else:
        step, note = _guess_increment(volumes, "step", None)
        guesses.append(note)
    if builtin is not None and (opts.tick is None or opts.step is None):
        guesses.append(f"{symbol}: guard's built-in spec used for what the options did not say")
    tiers = builtin_tiers(symbol) if kind is MarketKind.LINEAR else ()
    if kind is MarketKind.LINEAR and tiers_are_guessed(symbol):
        guesses.append("leverage tiers: guard's conservative altcoin table (no venue's tiers were given)")
    if builtin is not None:
        min_notional, maker, taker = builtin.min_notional, builtin.maker_fee, builtin.taker_fee
        min_qty = max(builtin.min_qty, step) if opts.step is not None else builtin.min_qty
    else:
        min_qty, min_notional = step, Decimal(0)
        maker, taker = LINEAR_FEES if kind is MarketKind.LINEAR else (SPOT_FEE, SPOT_FEE)
        guesses.append(f"minimum quantity one step; no minimum notional; fees {maker}/{taker} maker/taker assumed")
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
        max_leverage=tiers[0].max_leverage if tiers else Decimal(1),
        tiers=tiers,
    )
    return SpecRecord(spec=spec, source=f"guard history import of {path.name}", settle=settle, guesses=tuple(guesses))


def _decimals(text: str) -> int:
    text = text.strip()
    if "e" in text or "E" in text:
        try:
            exponent = Decimal(text).normalize().as_tuple().exponent
        except InvalidOperation:
            return 0
        return max(0, -exponent) if isinstance(exponent, int) else 0
    _, dot, fraction = text.partition(".")
    return len(fraction.rstrip("0")) if dot else 0


def _decimal_counts(texts: Iterable[str]) -> Counter[int]:
    """How many numbers are written with each count of decimals (prices repeat: each text is read once)."""
    counts: Counter[int] = Counter()
    for text, n in Counter(texts).items():
        counts[_decimals(text)] += n
    return counts


def _finest(counts: Counter[int]) -> Decimal | None:
    """The finest increment the numbers are written in, ignoring float noise; None when there are none."""
    clean = [d for d in counts if d < NOISE_DECIMALS]
    return Decimal(1).scaleb(-max(clean)) if clean else None


def _guess_increment(counts: Counter[int], what: str, level: float | None) -> tuple[Decimal, str]:
    """A tick (from prices) or step (from volumes) as the finest decimal the numbers are written in."""
    total = sum(counts.values())
    noisy = sum(c for d, c in counts.items() if d >= NOISE_DECIMALS)
    clean = [d for d in counts if d < NOISE_DECIMALS]
    source = "prices'" if what == "tick" else "volumes'"
    if clean and noisy <= total * NOISE_SHARE:
        increment = Decimal(1).scaleb(-max(clean))
        note = f"{what} {increment:f} guessed from the {source} decimals (pass --{what} to set it)"
        if noisy:
            note += f"; {noisy} value(s) with float noise ignored"
        return increment, note
    if what == "tick" and level:
        increment = Decimal(1).scaleb(math.floor(math.log10(level)) - 4)
        return increment, (
            f"tick {increment:f} guessed from the price level (five significant digits at {level:g}): the prices "
            "carry float noise, so their decimals say nothing (pass --tick to set it)"
        )
    increment = Decimal("0.00000001")
    why = "the volumes carry float noise" if total else "no row has volume"
    return increment, f"{what} {increment:f} assumed: {why} (pass --{what} to set it)"
