"""An OHLCV CSV's rows as `guard history import` reads them: the columns its header names (or the first six
when it has none), and each row's open time in milliseconds, whatever unit or format the file writes it in.

Rows that cannot be read are errors with their line numbers; what was detected is a note. The importer
(`guard.feed.importer`) decides the market, the timeframe and the spec from what this reads.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from guard.errors import BadInput

_TIME_NAMES = ("timestamp", "time", "date", "datetime", "open_time", "opentime", "open time", "ts", "unix")
_NAMES = {
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "volume": ("volume", "vol", "v", "base_volume", "volume_base"),
}
_EARLIEST_MS = 946_684_800_000
"""2000-01-01: no crypto history is older, and anything earlier is a unit mistake."""
_LATEST_MS = 7_258_118_400_000
"""2200-01-01: anything later is a unit mistake too."""
_UNITS = (  # (name, smallest value read in it, ms per unit)
    ("nanoseconds", 1e17, 1e-6),
    ("microseconds", 1e14, 1e-3),
    ("milliseconds", 1e11, 1.0),
    ("seconds", _EARLIEST_MS / 1000, 1000.0),
)


@dataclass(frozen=True, slots=True)
class Row:
    """A data row as read: its line, its time as written, its open, high, low, close and volume as text."""

    line: int
    time: str
    fields: tuple[str, str, str, str, str]
    symbol: str | None
    timeframe: str | None


# --- rows and columns ------------------------------------------------------------------


def read_rows(path: Path, text: str, errors: list[tuple[int, str]], notes: list[str]) -> list[Row]:
    lines = [(n, f) for n, f in enumerate(csv.reader(io.StringIO(text)), start=1) if f and any(x.strip() for x in f)]
    if not lines:
        return []
    first_line, first = lines[0]
    columns = _columns(path, first, first_line, notes)
    if columns is not None:
        lines = lines[1:]
    else:
        columns = (0, 1, 2, 3, 4, 5, None, None)
        if len(first) > 6:
            notes.append(
                f"no header: the first six of {len(first)} fields read as timestamp,open,high,low,close,volume"
            )
    need = max(c for c in columns if c is not None) + 1
    out: list[Row] = []
    for n, fields in lines:
        if len(fields) < need:
            what = "timestamp,open,high,low,close,volume" if need == 6 else "the header's"
            errors.append((n, f"expected {need} fields ({what}), found {len(fields)}"))
            continue
        t, o, h, lo, c, v, s, tf = (fields[i].strip() if i is not None else None for i in columns)
        assert t is not None and o is not None and h is not None and lo is not None and c is not None
        assert v is not None
        out.append(Row(n, t, (o, h, lo, c, v), s or None, tf or None))
    return out


def _columns(path: Path, header: Sequence[str], line: int, notes: list[str]) -> tuple[int | None, ...] | None:
    """Column positions (time, open, high, low, close, volume, symbol, timeframe), or None for no header."""
    first = header[0].strip()
    if _number(first) is not None or _iso(first) is not None:
        return None
    names = [h.strip().lower() for h in header]
    time = next((names.index(n) for n in _TIME_NAMES if n in names), None)
    if time is None and names[0] in ("", "unnamed: 0", "index"):
        time = 0
    found: dict[str, int | None] = {"time": time}
    for key, aliases in _NAMES.items():
        found[key] = next((names.index(a) for a in aliases if a in names), None)
    missing = [k for k, v in found.items() if v is None]
    if missing:
        raise BadInput(
            f"{path}: line {line}: the header has no {', '.join(missing)} column "
            f"(it has {', '.join(repr(h.strip()) for h in header)}); "
            f"guard reads time ({', '.join(_TIME_NAMES)}), open, high, low, close and volume"
        )
    symbol = names.index("symbol") if "symbol" in names else None
    timeframe = names.index("timeframe") if "timeframe" in names else None
    used = {*found.values(), symbol, timeframe}
    ignored = [header[i].strip() or f"#{i + 1}" for i in range(len(header)) if i not in used]
    if ignored:
        notes.append(f"column(s) {', '.join(ignored)} ignored")
    return (*found.values(), symbol, timeframe)


# --- timestamps -------------------------------------------------------------------------


def read_timestamps(rows: Sequence[Row], errors: list[tuple[int, str]], notes: list[str]) -> dict[int, int]:
    """Each row's open time in ms, by line; rows whose time cannot be read get an error instead."""
    kinds: dict[int, tuple[str, float | datetime]] = {}
    for row in rows:
        number = _number(row.time)
        if number is not None:
            kinds[row.line] = (_unit_of(number), number)
            continue
        moment = _iso(row.time)
        if moment is not None:
            kinds[row.line] = ("ISO", moment)
        else:
            errors.append((row.line, f"timestamp {row.time!r} is neither a number nor an ISO date and time"))
    counts = Counter(k for k, _ in kinds.values() if k != "before 2000")
    if not counts:
        unit = ""
    else:
        unit = counts.most_common(1)[0][0]
        notes.append("timestamps read as " + ("ISO-8601 text" if unit == "ISO" else unit + " since 1970"))
    naive = False
    out: dict[int, int] = {}
    raw_of = {r.line: r.time for r in rows}
    for line, (kind, value) in kinds.items():
        raw = raw_of[line]
        if kind == "before 2000":
            errors.append(
                (line, f"timestamp {raw} is before 2000 in seconds, milliseconds, microseconds and nanoseconds")
            )
        elif kind != unit:
            errors.append((line, f"timestamp {raw} is in {kind} instead of {unit} like the rest of the file"))
        elif isinstance(value, datetime):
            naive = naive or value.tzinfo is None
            moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
            ms = round(moment.timestamp() * 1000)
            out[line] = ms
        else:
            ms_per = next(m for name, _, m in _UNITS if name == kind)
            ms_float = value * ms_per
            if ms_float != math.floor(ms_float):
                errors.append((line, f"timestamp {value!r} is not a whole number of milliseconds"))
            else:
                out[line] = int(ms_float)
    for line, ms in list(out.items()):
        if not _EARLIEST_MS <= ms < _LATEST_MS:
            errors.append((line, f"timestamp {raw_of[line]} is {'before 2000' if ms < _EARLIEST_MS else 'after 2200'}"))
            del out[line]
    if naive:
        notes.append("times without a zone read as UTC")
    return out


def _unit_of(value: float) -> str:
    for name, smallest, _ in _UNITS:
        if value >= smallest:
            return name
    return "before 2000"


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _iso(text: str) -> datetime | None:
    if len(text) < 8 or not text[:4].isdigit():
        return None
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        return None
