"""The journal as a table, one row per event, for `guard journal export`: CSV or Parquet.

Each row keeps what verifies it (sequence, both hashes) and the event as its stored JSON text.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from guard import codec
from guard.journal.chain import read_entries

COLUMNS = ("seq", "time", "type", "payload", "prev_hash", "hash")
"""The export's columns, in order."""


def iso_time(ms: int) -> str:
    """`2026-01-01T00:00:00.000Z`: an epoch-milliseconds time in ISO 8601, UTC, to the millisecond."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def rows(path: Path) -> Iterator[dict[str, Any]]:
    """Every event of the journal at `path`, oldest first, as a row keyed by COLUMNS."""
    for entry in read_entries(path):
        yield {
            "seq": entry.seq,
            "time": iso_time(entry.event.at),
            "type": type(entry.event).__name__,
            "payload": codec.dumps(entry.event),
            "prev_hash": entry.prev_hash,
            "hash": entry.hash,
        }


def write_csv(path: Path, out: TextIO) -> int:
    """Write the journal at `path` to `out` as CSV with a header row; return the number of events."""
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    written = 0
    for row in rows(path):
        writer.writerow(row)
        written += 1
    return written


def write_parquet(path: Path, out: Path) -> int:
    """Write the journal at `path` to the Parquet file `out`; return the number of events."""
    import pyarrow as pa  # only an export needs pyarrow
    import pyarrow.parquet as pq

    table_rows = list(rows(path))
    table = pa.table({c: [r[c] for r in table_rows] for c in COLUMNS})
    pq.write_table(table, out)
    return len(table_rows)
