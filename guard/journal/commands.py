"""`guard journal verify|export|tail`: read the audit journal without touching it."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from guard import codec
from guard.config import load_config
from guard.errors import BadInput, JournalCorrupt
from guard.journal.anchor import adopt
from guard.journal.chain import Entry, read_entries
from guard.journal.chain import verify as verify_journal
from guard.paths import StatePaths

COLUMNS = ("seq", "time", "type", "payload", "prev_hash", "hash")


def _path(args: argparse.Namespace) -> Path:
    path = StatePaths(load_config(args.config).state_dir).journal
    if not path.exists():
        raise BadInput(f"no journal at {path} (set GUARD_HOME or --config to point at the state directory)")
    return path


def verify(args: argparse.Namespace) -> int:
    path = _path(args)
    report = verify_journal(path)
    if not report.ok:
        print(f"{path}: BROKEN after {report.events} good events: {report.problem}", file=sys.stderr)
        return 1
    print(f"{path}: {report.events} events, hash chain intact" + (f" ({report.note})" if report.note else ""))
    if getattr(args, "adopt", False):
        point = adopt(path)
        if point is None:
            print(f"{path}: already anchored; nothing to adopt")
        else:
            print(f"{path}: anchored at event {point.seq}: the daemon will refuse it if it ever ends before that")
    return 0


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    for entry in read_entries(path):
        yield {
            "seq": entry.seq,
            "time": _iso(entry.event.at),
            "type": type(entry.event).__name__,
            "payload": codec.dumps(entry.event),
            "prev_hash": entry.prev_hash,
            "hash": entry.hash,
        }


def export(args: argparse.Namespace) -> int:
    path = _path(args)
    if args.format == "parquet":
        if args.out is None:
            raise BadInput("--format parquet needs --out FILE")
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = list(_rows(path))
        table = pa.table({c: [r[c] for r in rows] for c in COLUMNS})
        pq.write_table(table, args.out)
        print(f"wrote {len(rows)} events to {args.out}", file=sys.stderr)
        return 0
    out = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout
    try:
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        count = 0
        for row in _rows(path):
            writer.writerow(row)
            count += 1
    finally:
        if args.out:
            out.close()
    if args.out:
        print(f"wrote {count} events to {args.out}", file=sys.stderr)
    return 0


def tail(args: argparse.Namespace) -> int:
    path = _path(args)
    if args.n < 0:
        raise BadInput(f"-n must be 0 or more, got {args.n}")
    entries = list(read_entries(path))
    for entry in entries[len(entries) - args.n :] if args.n else []:
        print(describe(entry))
    last = entries[-1].seq if entries else 0
    while args.follow:
        try:
            time.sleep(0.5)
            for entry in read_entries(path, after_seq=last):
                print(describe(entry), flush=True)
                last = entry.seq
        except KeyboardInterrupt:
            return 0
        except JournalCorrupt as e:
            print(f"guard: {e}", file=sys.stderr)
            return 1
    return 0


def describe(entry: Entry) -> str:
    """One line per event: sequence, time, type and the fields that matter."""
    plain = codec.to_plain(entry.event)
    plain.pop("at", None)
    summary = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in _brief(plain).items())
    return f"{entry.seq:>7}  {_iso(entry.event.at)}  {type(entry.event).__name__:<22} {summary}"


def _brief(plain: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in plain.items():
        if isinstance(value, dict):
            for inner in ("id", "client_order_id", "symbol", "side", "qty", "price"):
                if inner in value:
                    out[f"{key}.{inner}"] = value[inner]
        elif value not in (None, "", [], False):
            out[key] = value
    return out


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
