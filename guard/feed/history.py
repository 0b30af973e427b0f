"""guard's history files: bars as CSV or Parquet (chosen by the file extension).

The format, for both:

    timestamp,open,high,low,close,volume,symbol,timeframe
    1767225600000,100014.7,100016.3,99981.7,99982.2,37.125,BTC/USDT:USDT,1m

`timestamp` is the bar's open time in integer milliseconds since the Unix epoch (UTC); prices
and volume are decimal numbers; `symbol` is a ccxt unified symbol and `timeframe` one of
1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 1d. A file may hold several symbols; each symbol's rows are
in strictly increasing time. Parquet files use the same column names (int64, float64 and
string columns). `guard history import` turns a plain six-column CSV
(`timestamp,open,high,low,close,volume`) into this format.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from guard.domain import TIMEFRAME_MS, Bar, timeframe_ms
from guard.errors import BadInput, InvalidMarketData
from guard.feed.validate import check_bar

COLUMNS = ("timestamp", "open", "high", "low", "close", "volume", "symbol", "timeframe")
PLAIN_COLUMNS = COLUMNS[:6]
_PARQUET = (".parquet", ".pq")
_EARLIEST_MS = 946_684_800_000  # 2000-01-01: anything earlier is seconds, not milliseconds
MAX_REPORTED_ERRORS = 20


def file_kind(path: Path | str) -> str:
    """"csv" or "parquet", from the extension.

    Raises:
        BadInput: for any other extension.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in _PARQUET:
        return "parquet"
    raise BadInput(f"{path}: history files end in .csv or .parquet")


# --- writing --------------------------------------------------------------------------


def write_bars(path: Path | str, bars: Sequence[Bar]) -> None:
    """Write bars in guard's format, atomically (a temporary file renamed into place)."""
    path = Path(path)
    kind = file_kind(path)
    tmp = path.with_name(path.name + ".tmp")
    if kind == "csv":
        with tmp.open("w", newline="", encoding="utf-8") as f:
            f.write(",".join(COLUMNS) + "\n")
            f.writelines(_csv_line(b) for b in bars)
    else:
        _write_parquet(tmp, bars)
    os.replace(tmp, path)


def append_csv(path: Path | str, bars: Iterable[Bar]) -> None:
    """Append bars to a CSV in guard's format (writing the header when the file is new)."""
    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="", encoding="utf-8") as f:
        if new:
            f.write(",".join(COLUMNS) + "\n")
        f.writelines(_csv_line(b) for b in bars)
        f.flush()
        os.fsync(f.fileno())


def _csv_line(b: Bar) -> str:
    # repr() is the shortest text that reads back to the same float.
    return f"{b.open_time},{b.open!r},{b.high!r},{b.low!r},{b.close!r},{b.volume!r},{b.symbol},{b.timeframe}\n"


def _write_parquet(path: Path, bars: Sequence[Bar]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "timestamp": pa.array([b.open_time for b in bars], pa.int64()),
            "open": pa.array([b.open for b in bars], pa.float64()),
            "high": pa.array([b.high for b in bars], pa.float64()),
            "low": pa.array([b.low for b in bars], pa.float64()),
            "close": pa.array([b.close for b in bars], pa.float64()),
            "volume": pa.array([b.volume for b in bars], pa.float64()),
            "symbol": pa.array([b.symbol for b in bars], pa.string()),
            "timeframe": pa.array([b.timeframe for b in bars], pa.string()),
        }
    ).replace_schema_metadata({"guard.format": "bars/1"})
    pq.write_table(table, path)


# --- reading --------------------------------------------------------------------------


def read_bars(path: Path | str) -> list[Bar]:
    """Read a history file in guard's format, checking every row.

    Raises:
        BadInput: the file is missing, unreadable, or lacks columns.
        InvalidMarketData: a row is not a possible bar, naming its line (CSV) or row (Parquet).
    """
    path = Path(path)
    kind = file_kind(path)
    if not path.exists():
        raise BadInput(f"{path}: no such file")
    rows = _parquet_rows(path) if kind == "parquet" else _csv_rows(path)
    bars: list[Bar] = []
    last: dict[str, int] = {}
    for where, row in rows:
        bar = _parse_row(row, where)
        if isinstance(bar, str):
            raise InvalidMarketData(f"{path}: {where}: {bar}")
        prev = last.get(bar.symbol)
        if prev is not None and bar.open_time <= prev:
            what = "duplicate timestamp" if bar.open_time == prev else "timestamp goes back"
            raise InvalidMarketData(f"{path}: {where}: {what} ({bar.open_time}) for {bar.symbol}")
        last[bar.symbol] = bar.open_time
        bars.append(bar)
    return bars


def _csv_rows(path: Path) -> Iterable[tuple[str, dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"{path}: cannot be read: {e}") from e
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise BadInput(f"{path}: empty file")
    header = [h.strip().lower() for h in header]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        hint = " (a plain OHLCV CSV? run `guard history import` first)" if "symbol" in missing else ""
        raise BadInput(f"{path}: line 1: missing column(s) {', '.join(missing)}{hint}")
    index = {c: header.index(c) for c in COLUMNS}
    for n, fields in enumerate(reader, start=2):
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) < len(header):
            yield f"line {n}", {"_error": f"expected {len(header)} fields, found {len(fields)}"}
            continue
        yield f"line {n}", {c: fields[i].strip() for c, i in index.items()}


def _parquet_rows(path: Path) -> Iterable[tuple[str, dict[str, str]]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises many types for a damaged file
        raise BadInput(f"{path}: not a readable Parquet file: {e}") from e
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise BadInput(f"{path}: missing column(s) {', '.join(missing)}")
    columns = {c: table.column(c).to_pylist() for c in COLUMNS}
    for i in range(table.num_rows):
        yield f"row {i + 1}", {c: columns[c][i] for c in COLUMNS}  # type: ignore[misc]


def _parse_row(row: dict[str, object], where: str) -> Bar | str:
    if "_error" in row:
        return str(row["_error"])
    symbol = str(row.get("symbol") or "")
    timeframe = str(row.get("timeframe") or "")
    if "/" not in symbol:
        return f"symbol {symbol!r} is not a ccxt unified symbol like BTC/USDT:USDT"
    if timeframe not in TIMEFRAME_MS:
        return f"timeframe {timeframe!r} is not one of {', '.join(TIMEFRAME_MS)}"
    parsed = _parse_ohlcv([row.get(c) for c in PLAIN_COLUMNS])
    if isinstance(parsed, str):
        return parsed
    t, o, h, lo, c, v = parsed
    if t % TIMEFRAME_MS[timeframe]:
        return f"timestamp {t} is not aligned to {timeframe}"
    return Bar(symbol, timeframe, t, o, h, lo, c, v)


def _parse_ohlcv(values: Sequence[object]) -> tuple[int, float, float, float, float, float] | str:
    raw_t = values[0]
    try:
        t = int(str(raw_t).strip()) if not isinstance(raw_t, int) else raw_t
    except ValueError:
        return f"timestamp {raw_t!r} is not a whole number of milliseconds"
    if t < _EARLIEST_MS:
        return f"timestamp {t} is before 2000 (seconds instead of milliseconds?)"
    numbers = []
    for name, raw in zip(PLAIN_COLUMNS[1:], values[1:], strict=True):
        try:
            x = float(raw) if not isinstance(raw, float) else raw  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return f"{name} {raw!r} is not a number"
        if not math.isfinite(x):
            return f"{name} is {x}"
        numbers.append(x)
    o, h, lo, c, v = numbers
    reason = check_bar(o, h, lo, c, v)
    if reason:
        return reason
    return t, o, h, lo, c, v


# --- importing ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What `import_plain_csv` found."""

    bars: list[Bar]
    errors: list[tuple[int, str]]
    """(line number, reason) of every refused row."""
    gaps: int
    """Places where bars are missing between two rows (not errors: markets pause)."""
    timeframe: str
    symbol: str


def import_plain_csv(path: Path | str, symbol: str | None = None, timeframe: str | None = None) -> ImportResult:
    """Check a plain `timestamp,open,high,low,close,volume` CSV and turn it into bars.

    A header line is optional. Rows that cannot be true bars are refused with their line
    numbers; so are rows out of time order or repeating a timestamp.

    Args:
        path: the CSV.
        symbol: ccxt unified symbol; by default guessed from the file name ("BTCUSDT-1m.csv").
        timeframe: by default the most common spacing between rows.

    Raises:
        BadInput: the file cannot be read, or symbol/timeframe cannot be decided.
    """
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"{path}: cannot be read: {e}") from e
    symbol = symbol or guess_symbol(path)
    if "/" not in symbol:
        raise BadInput(f"--symbol {symbol!r}: must be a ccxt unified symbol like BTC/USDT:USDT")
    rows: list[tuple[int, tuple[int, float, float, float, float, float]]] = []
    errors: list[tuple[int, str]] = []
    stamps: set[int] = set()
    for n, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not fields or all(not f.strip() for f in fields):
            continue
        if n == 1 and [f.strip().lower() for f in fields[:6]] == list(PLAIN_COLUMNS):
            continue
        if len(fields) != 6:
            errors.append((n, f"expected 6 fields (timestamp,open,high,low,close,volume), found {len(fields)}"))
            continue
        stamp = fields[0].strip()
        if stamp.isdigit() and int(stamp) >= _EARLIEST_MS:
            stamps.add(int(stamp))  # a row with bad prices still tells the spacing
        parsed = _parse_ohlcv(fields)
        if isinstance(parsed, str):
            errors.append((n, parsed))
            continue
        if rows and parsed[0] <= rows[-1][1][0]:
            what = "duplicate timestamp" if parsed[0] == rows[-1][1][0] else "out of order"
            errors.append((n, f"{what}: {parsed[0]} after {rows[-1][1][0]} (line {rows[-1][0]})"))
            continue
        rows.append((n, parsed))
    if timeframe is None:
        timeframe = _guess_timeframe(sorted(stamps))
    tf_ms = timeframe_ms(timeframe)
    bars: list[Bar] = []
    gaps = 0
    for n, (t, o, h, lo, c, v) in rows:
        if t % tf_ms:
            errors.append((n, f"timestamp {t} is not aligned to {timeframe}"))
            continue
        if bars and t - bars[-1].open_time > tf_ms:
            gaps += 1
        bars.append(Bar(symbol, timeframe, t, o, h, lo, c, v))
    errors.sort()
    return ImportResult(bars, errors, gaps, timeframe, symbol)


def guess_symbol(path: Path) -> str:
    """"BTCUSDT-1m-2024.csv" → "BTC/USDT:USDT" (a USDT perpetual); BadInput when unclear."""
    match = re.search(r"([A-Z0-9]{2,10})(USDT|USDC)(?![A-Z])", path.stem.upper())
    if not match:
        raise BadInput(f"{path}: cannot tell the symbol from the file name; pass --symbol BTC/USDT:USDT")
    base, quote = match.groups()
    return f"{base}/{quote}:{quote}"


def _guess_timeframe(times: Sequence[int]) -> str:
    # The greatest common divisor of the spacings: gaps are multiples of the timeframe.
    step = 0
    for a, b in pairwise(times):
        if b > a:
            step = math.gcd(step, b - a)
    if not step:
        raise BadInput("cannot tell the timeframe from fewer than two rows; pass --timeframe")
    for name, ms in TIMEFRAME_MS.items():
        if ms == step:
            return name
    raise BadInput(f"rows are {step} ms apart, which is no timeframe guard knows; pass --timeframe")
