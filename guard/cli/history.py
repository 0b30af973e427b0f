"""`guard history fetch|import`: download or import OHLCV history files (CSV or Parquet)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from guard import logs
from guard.config import load_config
from guard.errors import BadInput
from guard.wording import count, utc_minute

if TYPE_CHECKING:
    from guard.feed.fetch import FetchResult


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `guard history fetch|import`."""
    history = sub.add_parser("history", help="download or import OHLCV history files (CSV or Parquet)")
    history_sub = history.add_subparsers(dest="history_command", required=True)
    hfetch = history_sub.add_parser("fetch", help="download closed bars through ccxt; resumable")
    hfetch.add_argument("--exchange", required=True, metavar="ID", help='a ccxt exchange id, or "sim"')
    hfetch.add_argument("--symbol", required=True, metavar="S", help="ccxt unified symbol, e.g. BTC/USDT:USDT")
    hfetch.add_argument("--timeframe", required=True, metavar="TF", help="1m, 5m, 15m, 1h, ...")
    hfetch.add_argument("--since", default=None, metavar="DATE", help="first bar, e.g. 2024-01-01 (UTC)")
    hfetch.add_argument("--limit", type=int, default=None, metavar="N", help="most bars to fetch")
    hfetch.add_argument("--out", required=True, metavar="FILE", help="output .csv or .parquet")
    hfetch.set_defaults(handler=fetch)
    himport = history_sub.add_parser("import", help="check a timestamp,open,high,low,close,volume CSV")
    himport.add_argument("file", metavar="FILE")
    himport.add_argument("--out", required=True, metavar="FILE", help="output .csv or .parquet")
    himport.add_argument("--symbol", default=None, help="ccxt symbol (default: from the file name)")
    himport.add_argument("--timeframe", default=None, help="default: the rows' spacing")
    himport.add_argument("--skip-bad", action="store_true", help="write the good rows, report the bad")
    himport.set_defaults(handler=import_)


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
    from guard.feed.fetch import fetch_history, parse_since  # ccxt: only when a fetch runs

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
    from guard.feed.history import MAX_REPORTED_ERRORS, import_plain_csv, write_bars  # numpy, via the simulator

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
