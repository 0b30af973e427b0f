"""`guard journal verify|export|tail|show`: read the audit journal without touching it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from guard import codec
from guard.config import load_config
from guard.errors import BadInput, JournalCorrupt
from guard.events import EVENT_TYPES
from guard.journal.anchor import adopt
from guard.journal.chain import Entry, last_seq, read_entries, verify as verify_journal
from guard.journal.export import ALL_TABLES, iso_time, table_named, write_csv, write_parquet
from guard.journal.story import printable
from guard.paths import StatePaths

HIDDEN_BY_DEFAULT = ("BarRecorded",)
"""Event types `guard journal tail` leaves out unless asked: closed bars are nearly every event of a journal."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `guard journal verify|export|tail|show`."""
    journal = sub.add_parser("journal", help="verify, export, follow or question the audit journal")
    journal_sub = journal.add_subparsers(dest="journal_command", required=True)
    verify_cmd = journal_sub.add_parser(
        "verify", help="check the hash chain of every event, and that none is missing at the end"
    )
    verify_cmd.add_argument(
        "--adopt",
        action="store_true",
        help="anchor a whole journal that has no anchor (one written by an older guard) at its current end",
    )
    verify_cmd.set_defaults(handler=verify)
    export_help = (
        "write the journal as a table (CSV or Parquet): every event, or typed rows of fills, orders, "
        "decisions, proposals or positions"
    )
    export_cmd = journal_sub.add_parser("export", help=export_help, description=export_help)
    export_cmd.add_argument(
        "--table",
        default="events",
        metavar="T",
        help=f"which table: {', '.join(ALL_TABLES)} (default: events, one row per event with its JSON)",
    )
    export_cmd.add_argument("--format", choices=("csv", "parquet"), default="csv")
    export_cmd.add_argument("--out", type=Path, default=None, help="file to write (default: stdout for CSV)")
    export_cmd.set_defaults(handler=export)
    tail_help = (
        "print the last events, and follow new ones; closed bars (BarRecorded, nearly every event of a journal) "
        "are left out unless asked for with --type BarRecorded or --all"
    )
    tail_cmd = journal_sub.add_parser("tail", help=tail_help, description=tail_help)
    tail_cmd.add_argument("-n", type=int, default=20, help="how many past events to print (default 20)")
    tail_cmd.add_argument("--follow", "-f", action="store_true", help="keep printing new events (with the filter)")
    which = tail_cmd.add_mutually_exclusive_group()
    which.add_argument(
        "--type",
        action="append",
        default=None,
        metavar="T",
        dest="types",
        help="only events of this type (repeatable, any case), e.g. --type OrderFilled --type decisionrecorded",
    )
    which.add_argument("--all", action="store_true", help="every event, closed bars included")
    tail_cmd.set_defaults(handler=tail)
    show_help = (
        "the whole story of one proposal: as queued, its versions, model and hash, risk checks, who "
        "decided what and when, orders, fills, the position and its end, the outcome (times UTC)"
    )
    show_cmd = journal_sub.add_parser("show", help=show_help, description=show_help)
    show_cmd.add_argument("proposal_id", metavar="ID", help="the proposal id, e.g. P000123 (or p123, 123)")
    show_cmd.add_argument("--json", action="store_true", help="the story as one JSON object, for machines")
    show_cmd.set_defaults(handler=show)


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
    table = table_named(args.table)
    if args.format == "parquet" and args.out is None:
        raise BadInput("--format parquet needs --out FILE")
    path = _path(args)
    if args.out is None:
        write_csv(path, sys.stdout, table)
        return 0
    try:
        if args.format == "parquet":
            written = write_parquet(path, args.out, table)
        else:
            with open(args.out, "w", newline="", encoding="utf-8") as out:
                written = write_csv(path, out, table)
    except OSError as e:
        raise BadInput(f"cannot write {args.out}: {e.strerror or e}") from e
    print(f"wrote {written} {table.name} rows to {args.out}", file=sys.stderr)
    return 0


def event_types(given: Iterable[str] | None, everything: bool = False) -> frozenset[str] | None:
    """The event type names `tail` prints (None: all of them), from `--type` values in any case.

    Raises:
        BadInput: a type that does not exist; the message lists those that do.
    """
    if everything:
        return None
    if not given:
        return frozenset(EVENT_TYPES) - set(HIDDEN_BY_DEFAULT)
    by_lower = {name.lower(): name for name in EVENT_TYPES}
    chosen = set()
    for text in given:
        for part in text.split(","):
            name = by_lower.get(part.strip().lower())
            if name is None:
                raise BadInput(f"unknown event type {part.strip()!r}; the types are: {', '.join(sorted(EVENT_TYPES))}")
            chosen.add(name)
    return frozenset(chosen)


class _Cursor:
    """Where `tail` has read to: the journal's end when it last looked, whatever the type of the events there,
    so following resumes right after it and never reads past events again."""

    def __init__(self, path: Path, types: frozenset[str] | None) -> None:
        self.path = path
        self.types = types
        self.last = 0

    def last_events(self, n: int) -> list[Entry]:
        """The last `n` events that pass the filter (fewer when the journal has fewer). Read back from the end
        in windows that grow fourfold, so that the last few events never cost a read of the whole journal."""
        end = last_seq(self.path)
        window = max(4 * n, 256)
        while n:
            start = max(0, end - window)
            kept: deque[Entry] = deque(maxlen=n)
            for entry in read_entries(self.path, after_seq=start, types=self.types):
                kept.append(entry)
                self.last = max(self.last, entry.seq)
            if len(kept) == n or start == 0:
                break
            window *= 4
        else:
            kept = deque()
        self.last = max(self.last, end)
        return list(kept)

    def read(self) -> Iterator[Entry]:
        """The events after the last read that pass the filter (the others are not even decoded)."""
        end = last_seq(self.path)  # first: every event up to it is committed, so the read below covers it
        for entry in read_entries(self.path, after_seq=self.last, types=self.types):
            self.last = max(self.last, entry.seq)
            yield entry
        self.last = max(self.last, end)


def tail(args: argparse.Namespace) -> int:
    if args.n < 0:
        raise BadInput(f"-n must be 0 or more, got {args.n}")
    types = event_types(args.types, args.all)  # a bad --type is named before anything is read
    cursor = _Cursor(_path(args), types)
    for entry in cursor.last_events(args.n):
        print(describe(entry))
    if args.follow:
        sys.stdout.flush()  # into a pipe (`tail -f | grep`), the past events must not wait for the first new one
    while args.follow:
        try:
            time.sleep(0.5)
            for entry in cursor.read():
                print(describe(entry), flush=True)
        except KeyboardInterrupt:
            return 0
        except JournalCorrupt as e:
            print(f"guard: {e}", file=sys.stderr)
            return 1
    return 0


def show(args: argparse.Namespace) -> int:
    from guard.journal import story
    from guard.journal.trace import parse_proposal_id, trace

    proposal_id = parse_proposal_id(args.proposal_id)
    found = trace(_path(args), proposal_id)
    if args.json:
        # ASCII only: still the same JSON for a machine, and nothing in it a terminal would act on.
        print(json.dumps(story.to_plain(found), indent=2))
    else:
        print(story.render(found))
    return 0


def describe(entry: Entry) -> str:
    """One line per event: sequence, time, type and the fields that matter."""
    plain = codec.to_plain(entry.event)
    plain.pop("at", None)
    plain.pop("type", None)  # a tagged event's class name, printed in its own column
    summary = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in _brief(plain).items())
    return printable(f"{entry.seq:>7}  {iso_time(entry.event.at)}  {type(entry.event).__name__:<22} {summary}")


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
