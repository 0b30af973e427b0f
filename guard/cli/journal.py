"""`guard journal verify|export|tail`: read the audit journal without touching it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from guard import codec
from guard.config import load_config
from guard.errors import BadInput, JournalCorrupt
from guard.journal.anchor import adopt
from guard.journal.chain import Entry, read_entries
from guard.journal.chain import verify as verify_journal
from guard.journal.export import iso_time, write_csv, write_parquet
from guard.paths import StatePaths


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `guard journal verify|export|tail`."""
    journal = sub.add_parser("journal", help="verify, export or follow the audit journal")
    journal_sub = journal.add_subparsers(dest="journal_command", required=True)
    verify_cmd = journal_sub.add_parser(
        "verify", help="check the hash chain of every event, and that none is missing at the end"
    )
    verify_cmd.add_argument(
        "--adopt", action="store_true",
        help="anchor a whole journal that has no anchor (one written by an older guard) at its current end",
    )
    verify_cmd.set_defaults(handler=verify)
    export_cmd = journal_sub.add_parser("export", help="write every event as CSV or Parquet")
    export_cmd.add_argument("--format", choices=("csv", "parquet"), default="csv")
    export_cmd.add_argument("--out", type=Path, default=None, help="file to write (default: stdout for CSV)")
    export_cmd.set_defaults(handler=export)
    tail_cmd = journal_sub.add_parser("tail", help="print the last events, and follow new ones")
    tail_cmd.add_argument("-n", type=int, default=20, help="how many past events to print")
    tail_cmd.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    tail_cmd.set_defaults(handler=tail)


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


def export(args: argparse.Namespace) -> int:
    path = _path(args)
    if args.format == "parquet":
        if args.out is None:
            raise BadInput("--format parquet needs --out FILE")
        written = write_parquet(path, args.out)
    elif args.out is None:
        write_csv(path, sys.stdout)
        return 0
    else:
        with open(args.out, "w", newline="", encoding="utf-8") as out:
            written = write_csv(path, out)
    print(f"wrote {written} events to {args.out}", file=sys.stderr)
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
    return f"{entry.seq:>7}  {iso_time(entry.event.at)}  {type(entry.event).__name__:<22} {summary}"


def _brief(plain: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in plain.items():
        if isinstance(value, dict):
            for inner in ("id", "client_order_id", "symbol", "side", "qty", "price"):
                if inner in value:
                    out[f"{key}.{inner}"] = value[inner]
        elif isinstance(value, float) and value:  # a zero is left out, as before
            # The events' floats are durations: past a microsecond in ms (or a millisecond in s) the digits are
            # measurement noise (`elapsed_ms=2.7268500000445783`).
            out[key] = round(value, 3)
        elif value not in (None, "", [], False):
            out[key] = value
    return out
