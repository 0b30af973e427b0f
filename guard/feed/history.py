"""guard's history files: bars as CSV or Parquet (chosen by the file extension).

The format, for both:

    timestamp,open,high,low,close,volume,symbol,timeframe
    1767225600000,100014.7,100016.3,99981.7,99982.2,37.125,BTC/USDT:USDT,1m

`timestamp` is the bar's open time in integer milliseconds since the Unix epoch (UTC); prices
and volume are decimal numbers; `symbol` is a ccxt unified symbol and `timeframe` one of
`guard.timeframes.TIMEFRAME_MS` (1m … 1d). A file may hold several symbols; each symbol's rows are
in strictly increasing time. Parquet files use the same column names (int64, float64 and
string columns).

An optional ninth column, `filled` (0 or 1; bool in Parquet), marks bars that are not a full
record of trading in their interval: gaps filled flat by `guard history import --fill-gaps`,
and partial buckets kept by `guard history resample --keep-partial`. They read back as
`Bar(complete=False)`; nothing may learn from them as real moves. The column is written only
when a file has such a bar, so files without them are byte-for-byte what they always were.

The market spec travels beside the file as `FILE.spec.json` (see `guard.markets.files`).
`guard history import` turns other OHLCV files into this format (see `guard.feed.importer`).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from guard.domain import Bar
from guard.errors import BadInput, InvalidMarketData
from guard.feed.validate import check_bar
from guard.timeframes import TIMEFRAME_MS

COLUMNS = ("timestamp", "open", "high", "low", "close", "volume", "symbol", "timeframe")
PLAIN_COLUMNS = COLUMNS[:6]
FILLED = "filled"
"""The optional column marking bars that are not a full record of their interval (`Bar.complete` False)."""
_FLAGS = {"0": False, "1": True, "false": False, "true": True, "": False}
_PARQUET = (".parquet", ".pq")
_EARLIEST_MS = 946_684_800_000  # 2000-01-01: anything earlier is seconds, not milliseconds
MAX_REPORTED_ERRORS = 20


def file_kind(path: Path | str) -> str:
    """ "csv" or "parquet", from the extension.

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
    flagged = any(not b.complete for b in bars)
    if kind == "csv":
        with tmp.open("w", newline="", encoding="utf-8") as f:
            f.write(",".join(_header(flagged)) + "\n")
            f.writelines(_csv_line(b, flagged) for b in bars)
    else:
        _write_parquet(tmp, bars, flagged)
    os.replace(tmp, path)


def append_csv(path: Path | str, bars: Iterable[Bar]) -> None:
    """Append bars to a CSV in guard's format (writing the header when the file is new).

    Raises:
        BadInput: a bar is not complete and the file has no `filled` column to say so.
    """
    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    if new:
        flagged = False
    else:
        with path.open(encoding="utf-8") as f:
            flagged = FILLED in f.readline().strip().lower().split(",")
    bars = list(bars)
    if new:
        flagged = any(not b.complete for b in bars)
    elif not flagged and any(not b.complete for b in bars):
        raise BadInput(f"{path}: has no {FILLED} column to mark incomplete bars; write a new file")
    with path.open("a", newline="", encoding="utf-8") as f:
        if new:
            f.write(",".join(_header(flagged)) + "\n")
        f.writelines(_csv_line(b, flagged) for b in bars)
        f.flush()
        os.fsync(f.fileno())


def _header(flagged: bool) -> tuple[str, ...]:
    return (*COLUMNS, FILLED) if flagged else COLUMNS


def _csv_line(b: Bar, flagged: bool = False) -> str:
    # repr() is the shortest text that reads back to the same float.
    line = f"{b.open_time},{b.open!r},{b.high!r},{b.low!r},{b.close!r},{b.volume!r},{b.symbol},{b.timeframe}"
    if flagged:
        line += ",0" if b.complete else ",1"
    return line + "\n"


def _write_parquet(path: Path, bars: Sequence[Bar], flagged: bool) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {
        "timestamp": pa.array([b.open_time for b in bars], pa.int64()),
        "open": pa.array([b.open for b in bars], pa.float64()),
        "high": pa.array([b.high for b in bars], pa.float64()),
        "low": pa.array([b.low for b in bars], pa.float64()),
        "close": pa.array([b.close for b in bars], pa.float64()),
        "volume": pa.array([b.volume for b in bars], pa.float64()),
        "symbol": pa.array([b.symbol for b in bars], pa.string()),
        "timeframe": pa.array([b.timeframe for b in bars], pa.string()),
    }
    if flagged:
        columns[FILLED] = pa.array([not b.complete for b in bars], pa.bool_())
    table = pa.table(columns).replace_schema_metadata({"guard.format": "bars/1"})
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
    index = {c: header.index(c) for c in (*COLUMNS, FILLED) if c in header}
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
    names = [c for c in (*COLUMNS, FILLED) if c in table.column_names]
    columns = {c: table.column(c).to_pylist() for c in names}
    for i in range(table.num_rows):
        yield f"row {i + 1}", {c: columns[c][i] for c in names}


def _parse_row(row: Mapping[str, object], where: str) -> Bar | str:
    if "_error" in row:
        return str(row["_error"])
    symbol = str(row.get("symbol") or "")
    timeframe = str(row.get("timeframe") or "")
    if "/" not in symbol:
        return f"symbol {symbol!r} is not a ccxt unified symbol like BTC/USDT:USDT"
    if timeframe not in TIMEFRAME_MS:
        return f"timeframe {timeframe!r} is not one of {', '.join(TIMEFRAME_MS)}"
    parsed = parse_ohlcv([row.get(c) for c in PLAIN_COLUMNS])
    if isinstance(parsed, str):
        return parsed
    t, o, h, lo, c, v = parsed
    if t % TIMEFRAME_MS[timeframe]:
        return f"timestamp {t} is not aligned to {timeframe}"
    flag = row.get(FILLED, False)
    filled = _FLAGS.get(str(flag).strip().lower()) if not isinstance(flag, bool) else flag
    if filled is None:
        return f"{FILLED} {flag!r} is not 0 or 1"
    return Bar(symbol, timeframe, t, o, h, lo, c, v, complete=not filled)


def parse_ohlcv(values: Sequence[object]) -> tuple[int, float, float, float, float, float] | str:
    """A `timestamp,open,high,low,close,volume` row (ms, numbers) → values, or why it cannot be a bar."""
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
            x = float(raw) if not isinstance(raw, float) else raw  # type: ignore[arg-type]  # any cell: float() refuses it below
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
