"""`guard history fetch|import`: the command-line side of history files."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import TextIO

from guard import logs
from guard.config import load_config
from guard.errors import BadInput
from guard.feed.fetch import FetchResult, fetch_history, parse_since
from guard.feed.history import MAX_REPORTED_ERRORS, import_plain_csv, write_bars
from guard.wording import count, utc_minute


class ProgressBar:
    """A one-line progress bar on a terminal; occasional plain lines when not a terminal."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self._stream = stream
        self._label = label
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last = 0.0
        self._open = False

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        finished = total is not None and done >= total
        if not finished and now - self._last < (0.1 if self._tty else 5.0):
            return
        self._last = now
        if total:
            share = min(1.0, done / total)
            bar = "#" * int(share * 30)
            text = f"{self._label} [{bar:<30}] {share:4.0%} {done}/{total} bars"
        else:
            text = f"{self._label} {done} bars"
        if self._tty:
            self._stream.write("\r" + text)
            if finished:
                self._stream.write("\n")
        else:
            self._stream.write(text + "\n")
        self._stream.flush()
        self._open = self._tty and not finished

    def close(self) -> None:
        """End a bar left short of 100 % (fewer bars than asked, or an error), so what follows starts a line."""
        if self._open:
            self._stream.write("\n")
            self._stream.flush()
            self._open = False


def fetch(args: argparse.Namespace) -> int:
    """guard history fetch --exchange ID --symbol S --timeframe TF [--since DATE] [--limit N] --out FILE."""
    config = load_config(args.config)
    logs.configure(level="warning", fmt=config.log.format)
    since = parse_since(args.since) if args.since else None
    progress = ProgressBar(sys.stderr, f"{args.exchange} {args.symbol} {args.timeframe}")
    try:
        result = asyncio.run(
            fetch_history(
                args.exchange, args.symbol, args.timeframe, Path(args.out),
                since=since, limit=args.limit, request_timeout=config.exchange.timeout_seconds,
                sim_section=config.sim, sim_symbols=config.exchange.symbols, progress=progress,
            )
        )
    finally:
        progress.close()
    resumed = " (resumed)" if result.resumed_from is not None else ""
    gaps = f", {count(result.gaps, 'gap')} in the venue's data" if result.gaps else ""
    print(f"{result.path}: {result.written} new bars{resumed}, {result.total} in file{gaps}")
    if result.in_range < result.asked:
        print(_shortfall(args.exchange, result))
    return 0


def _shortfall(exchange: str, result: FetchResult) -> str:
    """Why the file has fewer bars than were asked for, when the venue's history explains it."""
    held = f"{result.in_range} of the {result.asked} bars asked for"
    if result.first is None:
        return f"{held}: {exchange} has no bars from {utc_minute(result.since)} on"
    if result.first > result.since:
        return f"{held}: {exchange} has none before {utc_minute(result.first)}"
    return f"{held}: {exchange} has no bars for the rest of the range"


def import_(args: argparse.Namespace) -> int:
    """guard history import FILE --out FILE [--symbol S] [--timeframe TF] [--skip-bad]."""
    result = import_plain_csv(Path(args.file), symbol=args.symbol, timeframe=args.timeframe)
    for line, reason in result.errors[:MAX_REPORTED_ERRORS]:
        print(f"{args.file}: line {line}: {reason}", file=sys.stderr)
    if len(result.errors) > MAX_REPORTED_ERRORS:
        print(f"{args.file}: ... and {len(result.errors) - MAX_REPORTED_ERRORS} more bad rows", file=sys.stderr)
    if result.errors and not args.skip_bad:
        raise BadInput(
            f"{args.file}: {count(len(result.errors), 'bad row')}; nothing written (fix them, or pass --skip-bad)"
        )
    if not result.bars:
        raise BadInput(f"{args.file}: no bars to import")
    write_bars(Path(args.out), result.bars)
    skipped = f", {count(len(result.errors), 'bad row')} skipped" if result.errors else ""
    gaps = f", {count(result.gaps, 'gap')}" if result.gaps else ""
    print(f"{args.out}: {len(result.bars)} {result.symbol} {result.timeframe} bars{skipped}{gaps}")
    return 0
