"""`guard journal export`: the journal as a table, CSV or Parquet, with typed columns.

The default table, `events`, has one row per event: what verifies it (sequence, both hashes) and
the event as its stored JSON text. The other tables (`guard.journal.tables`) hold one row per fill,
order, decision, proposal version or position lifecycle, in typed columns.

How each kind of column is written:

| kind      | Parquet                          | CSV                                   |
|-----------|----------------------------------|---------------------------------------|
| int       | int64                            | digits                                |
| timestamp | timestamp[ms, tz=UTC]            | ISO 8601, `2026-01-01T00:00:00.000Z`  |
| decimal   | decimal128(38, s) (*)            | fixed-point text, exact               |
| float     | float64                          | shortest round-trip text              |
| bool      | bool                             | `true` / `false`                      |
| text      | string (enums by their value)    | text                                  |

(*) s is the largest number of decimals among the column's values, so every value is exact;
decimal256(76, s) for a column whose values need more than 38 digits.

A missing value is null in Parquet and an empty field in CSV; so is an empty text (no reason given, no
model id), so that the two formats read back the same.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from guard import codec
from guard.errors import BadInput
from guard.journal.chain import Entry, read_entries
from guard.journal.tables import TABLES, Column, Kind, Table

COLUMNS = ("seq", "time", "type", "payload", "prev_hash", "hash")
"""The events table's columns, in order."""

_DECIMAL128_DIGITS = 38


def iso_time(ms: int) -> str:
    """`2026-01-01T00:00:00.000Z`: an epoch-milliseconds time in ISO 8601, UTC, to the millisecond."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _event_rows(entries: Iterable[Entry]) -> Iterator[tuple[Any, ...]]:
    for entry in entries:
        yield (
            entry.seq,
            entry.event.at,
            type(entry.event).__name__,
            codec.dumps(entry.event),
            entry.prev_hash,
            entry.hash,
        )


EVENTS = Table(
    "events",
    "one row per event, with its stored JSON and its hashes",
    tuple(Column(n, k) for n, k in zip(COLUMNS, (Kind.INT, Kind.TIMESTAMP, *[Kind.TEXT] * 4), strict=True)),
    _event_rows,
)

ALL_TABLES: dict[str, Table] = {"events": EVENTS, **TABLES}
"""Every table `guard journal export --table` knows, by name."""


def table_named(name: str) -> Table:
    """The table called `name` (case-insensitive).

    Raises:
        BadInput: no such table; the message lists those there are.
    """
    table = ALL_TABLES.get(name.strip().lower())
    if table is None:
        raise BadInput(f"unknown table {name!r}; the tables are: {', '.join(ALL_TABLES)}")
    return table


def rows(path: Path) -> Iterator[dict[str, Any]]:
    """Every event of the journal at `path`, oldest first, as a row keyed by COLUMNS (time as ISO 8601)."""
    for row in _event_rows(read_entries(path)):
        yield dict(zip(COLUMNS, (row[0], iso_time(row[1]), *row[2:]), strict=True))


# --- CSV ------------------------------------------------------------------------------------------


def _csv_bool(value: bool) -> str:
    return "true" if value else "false"


def _csv_decimal(value: Decimal) -> str:
    return format(value, "f")  # never `1E+2` or `0E-8`: a reader's decimal parser takes fixed-point text


_CSV: dict[Kind, Callable[[Any], str]] = {
    Kind.INT: str,
    Kind.TIMESTAMP: iso_time,
    Kind.DECIMAL: _csv_decimal,
    Kind.FLOAT: repr,
    Kind.BOOL: _csv_bool,
    Kind.TEXT: str,
}


def write_csv(path: Path, out: TextIO, table: Table = EVENTS) -> int:
    """Write `table` of the journal at `path` to `out` as CSV with a header row; return the number of rows."""
    writer = csv.writer(out)
    writer.writerow([c.name for c in table.columns])
    formats = [_CSV[c.kind] for c in table.columns]
    written = 0
    for row in table.rows(read_entries(path, types=table.reads)):
        writer.writerow(["" if v is None else f(v) for f, v in zip(formats, row, strict=True)])
        written += 1
    return written


# --- Parquet --------------------------------------------------------------------------------------


def _decimal_type(values: list[Any]) -> Any:
    """The smallest scale that holds every value of the column exactly, at the widest precision pyarrow has."""
    import pyarrow as pa

    scale, whole = 0, 1
    for value in values:
        if value is None:
            continue
        _, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)  # journaled decimals are finite (the codec refuses NaN and infinities)
        scale = max(scale, -exponent)
        whole = max(whole, len(digits) + exponent)
    if whole + scale <= _DECIMAL128_DIGITS:
        return pa.decimal128(_DECIMAL128_DIGITS, scale)
    return pa.decimal256(76, scale)


def arrow_type(column: Column, values: list[Any] | None = None) -> Any:
    """The pyarrow type of a column (a decimal column's scale is read from its values)."""
    import pyarrow as pa

    if column.kind is Kind.DECIMAL:
        return _decimal_type(values or [])
    return {
        Kind.INT: pa.int64(),
        Kind.TIMESTAMP: pa.timestamp("ms", tz="UTC"),
        Kind.FLOAT: pa.float64(),
        Kind.BOOL: pa.bool_(),
        Kind.TEXT: pa.string(),
    }[column.kind]


def write_parquet(path: Path, out: Path, table: Table = EVENTS) -> int:
    """Write `table` of the journal at `path` to the Parquet file `out`; return the number of rows."""
    import pyarrow as pa  # only an export needs pyarrow
    import pyarrow.parquet as pq

    table_rows = list(table.rows(read_entries(path, types=table.reads)))
    columns = {}
    for i, column in enumerate(table.columns):
        values = [row[i] for row in table_rows]
        if column.kind is Kind.TEXT:
            values = [None if v == "" else v for v in values]  # as CSV can only say it: empty is missing
        columns[column.name] = pa.array(values, type=arrow_type(column, values))
    pq.write_table(pa.table(columns), out)
    return len(table_rows)
