"""`guard history fetch|import|resample`: download, import or resample OHLCV history files (CSV or Parquet)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from guard import logs
from guard.config import load_config
from guard.domain import MarketKind
from guard.errors import BadInput
from guard.timeframes import TIMEFRAME_MS
from guard.wording import count, utc_minute

if TYPE_CHECKING:
    from guard.feed.fetch import FetchResult
    from guard.markets.record import SpecRecord


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
    himport = history_sub.add_parser(
        "import",
        help="check an OHLCV CSV and write it in guard's format, with a spec file beside it",
        description="Reads a timestamp,open,high,low,close,volume CSV (with or without a header; timestamps in "
        "s, ms, us, ns or ISO text), refuses rows that cannot be bars and bad ticks, counts (and optionally "
        "fills) gaps, and writes the bars to --out and the market spec to --out's .spec.json. Prints every guess.",
    )
    himport.add_argument("file", metavar="FILE")
    himport.add_argument("--out", required=True, metavar="FILE", help="output .csv or .parquet")
    himport.add_argument(
        "--symbol", default=None, help="ccxt symbol, e.g. ETH/BTC or XRP/USDT:USDT (default: from the file name)"
    )
    himport.add_argument("--timeframe", default=None, help="default: the rows' spacing")
    himport.add_argument(
        "--kind",
        default=None,
        choices=[k.value for k in MarketKind],
        help="spot or linear (a USDT-margined perpetual); default: from the file name",
    )
    himport.add_argument("--quote", default=None, metavar="Q", help="quote currency (splits names like XRPEUR)")
    himport.add_argument(
        "--tick",
        default=None,
        metavar="X",
        help="price tick size (default: guard's built-in "
        "spec for BTC/ETH/SOL USDT, else guessed from the prices' decimals)",
    )
    himport.add_argument(
        "--step",
        default=None,
        metavar="X",
        help="quantity step size (default: built-in, else guessed from the volumes' decimals)",
    )
    himport.add_argument(
        "--fill-gaps",
        action="store_true",
        help="fill gaps with flat bars at the previous close, zero volume, marked filled",
    )
    himport.add_argument(
        "--skip-bad", action="store_true", help="write the good rows, dropping bad rows and bad ticks (counted)"
    )
    himport.add_argument(
        "--bad-tick-factor",
        type=float,
        default=None,
        metavar="X",
        help="a wick more than X times its neighbours' median range is a bad tick (default 20; 0 turns the check off)",
    )
    himport.set_defaults(handler=import_)
    hresample = history_sub.add_parser(
        "resample",
        help="aggregate a history file into a longer timeframe (exact OHLCV)",
        description="First open, highest high, lowest low, last close, summed volume, in buckets aligned to the "
        "Unix epoch. A bucket its source bars do not fully cover (the data's ends, gaps, filled bars) is "
        "dropped, or with --keep-partial kept and marked filled. The spec file travels along.",
    )
    hresample.add_argument("file", metavar="FILE", help="a history file in guard's format")
    hresample.add_argument(
        "--to",
        required=True,
        metavar="TF",
        choices=tuple(TIMEFRAME_MS),
        help="target timeframe: " + ", ".join(TIMEFRAME_MS),
    )
    hresample.add_argument("--out", required=True, metavar="FILE", help="output .csv or .parquet")
    hresample.add_argument(
        "--keep-partial", action="store_true", help="keep buckets not fully covered, marked filled (default: drop them)"
    )
    hresample.set_defaults(handler=resample)


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
    from guard.exchanges import SIM_ID
    from guard.feed.fetch import fetch_history, parse_since  # ccxt: only when a fetch runs

    config = load_config(args.config)
    logs.configure(level="warning", fmt=config.log.format)
    since = parse_since(args.since) if args.since else None
    progress = ProgressBar(sys.stderr, f"{args.exchange} {args.symbol} {args.timeframe}")
    symbols = tuple(dict.fromkeys((*config.exchange.symbols, args.symbol)))

    async def fetch() -> FetchResult:
        async with contextlib.AsyncExitStack() as stack:
            sim = None
            if args.exchange == SIM_ID:  # the simulated exchange, started here for this fetch
                from guard.sim.server import SimExchange

                sim = await stack.enter_async_context(SimExchange(config.sim, symbols))
            return await fetch_history(
                args.exchange,
                args.symbol,
                args.timeframe,
                Path(args.out),
                since=since,
                limit=args.limit,
                request_timeout=config.exchange.timeout_seconds,
                sim=sim,
                progress=progress,
            )

    try:
        result = asyncio.run(fetch())
    finally:
        progress.close()
    resumed = " (resumed)" if result.resumed_from is not None else ""
    gaps = f", {count(result.gaps, 'gap')} in the venue's data" if result.gaps else ""
    print(f"{result.path}: {result.written} new bars{resumed}, {result.total} in file{gaps}")
    if result.in_range < result.asked:
        print(_shortfall(args.exchange, result))
    if result.spec is not None:
        from guard.markets.files import spec_path

        print(f"spec: {spec_path(result.path)}")
        _print_spec(result.spec)
    for note in result.spec_notes:
        print(f"  {note}")
    return 0


def _print_spec(record: SpecRecord) -> None:
    print(f"  {record.describe()}")
    for guess in record.guesses:
        print(f"  guessed: {guess}")


def _shortfall(exchange: str, result: FetchResult) -> str:
    """Why the file has fewer bars than were asked for, when the venue's history explains it."""
    held = f"{result.in_range} of the {result.asked} bars asked for"
    if result.first is None:
        return f"{held}: {exchange} has no bars from {utc_minute(result.since)} on"
    if result.first > result.since:
        return f"{held}: {exchange} has none before {utc_minute(result.first)}"
    return f"{held}: {exchange} has no bars for the rest of the range"


def import_(args: argparse.Namespace) -> int:
    """guard history import FILE --out FILE [--symbol S] [--timeframe TF] [--kind K] [--quote Q] [--tick X]
    [--step X] [--fill-gaps] [--skip-bad] [--bad-tick-factor X]."""
    from guard.feed.history import MAX_REPORTED_ERRORS, file_kind, write_bars
    from guard.feed.hygiene import BAD_TICK_FACTOR
    from guard.feed.importer import ImportOptions, import_plain_csv
    from guard.markets.files import spec_path, write_specs

    out = Path(args.out)
    file_kind(out)  # refuse a bad extension before reading anything
    options = ImportOptions(
        symbol=args.symbol,
        timeframe=args.timeframe,
        kind=MarketKind(args.kind) if args.kind else None,
        quote=args.quote,
        tick=_decimal("--tick", args.tick),
        step=_decimal("--step", args.step),
        fill_gaps=args.fill_gaps,
        bad_tick_factor=BAD_TICK_FACTOR if args.bad_tick_factor is None else args.bad_tick_factor,
    )
    result = import_plain_csv(Path(args.file), options=options)
    print(f"{args.file}: {count(result.rows, 'row')} read; " + "; ".join(result.notes))
    refused = sorted([*result.errors, *result.bad_ticks])
    for line, reason in refused[:MAX_REPORTED_ERRORS]:
        print(f"{args.file}: line {line}: {reason}", file=sys.stderr)
    if len(refused) > MAX_REPORTED_ERRORS:
        print(f"{args.file}: ... and {len(refused) - MAX_REPORTED_ERRORS} more refused rows", file=sys.stderr)
    bad = [count(n, noun) for n, noun in ((len(result.errors), "bad row"), (len(result.bad_ticks), "bad tick")) if n]
    if refused and not args.skip_bad:
        raise BadInput(f"{args.file}: {', '.join(bad)}; nothing written (fix them, or pass --skip-bad)")
    if not result.bars:
        raise BadInput(f"{args.file}: no bars to import")
    write_bars(out, result.bars)
    spec_file = write_specs(spec_path(out), [result.spec])
    skipped = f", {' and '.join(bad)} skipped" if bad else ""
    gaps = ""
    if result.gaps:
        gaps = f", {count(result.gaps, 'gap')}"
        if result.filled:
            longest = result.longest_gap_ms // TIMEFRAME_MS[result.timeframe]
            gaps += f" filled with {count(result.filled, 'flat bar')} marked filled (longest {count(longest, 'bar')})"
        else:
            gaps += " (not filled: --fill-gaps fills them)"
    real = len(result.bars) - result.filled
    print(f"{args.out}: {real} {result.symbol} {result.timeframe} bars{skipped}{gaps}")
    print(f"spec: {spec_file}")
    _print_spec(result.spec)
    return 0


def resample(args: argparse.Namespace) -> int:
    """guard history resample FILE --to TF --out FILE [--keep-partial]."""
    import shutil

    from guard.feed.history import file_kind, read_bars, write_bars
    from guard.feed.hygiene import resample as resample_bars
    from guard.markets.files import spec_path

    out = Path(args.out)
    file_kind(out)
    bars = read_bars(args.file)
    if not bars:
        raise BadInput(f"{args.file}: no bars to resample")
    result = resample_bars(bars, args.to, keep_partial=args.keep_partial)
    if not result.bars:
        raise BadInput(
            f"{args.file}: no complete {args.to} bucket in {count(len(bars), 'bar')}"
            + ("" if args.keep_partial else " (--keep-partial keeps partial ones, marked filled)")
        )
    write_bars(out, result.bars)
    source = spec_path(args.file)
    if source.exists() and source.resolve() != spec_path(out).resolve():
        shutil.copyfile(source, spec_path(out))
    symbols = ", ".join(dict.fromkeys(b.symbol for b in result.bars))
    timeframes = ", ".join(dict.fromkeys(b.timeframe for b in bars))
    line = f"{out}: {count(len(result.bars), args.to + ' bar')} of {symbols} from {len(bars)} {timeframes} bars"
    if result.partial:
        what = "kept, marked filled" if result.kept_partial else "dropped"
        first = result.partial[0]
        line += (
            f"; {count(len(result.partial), 'partial bucket')} {what} (e.g. {first.symbol} "
            f"{utc_minute(first.open_time)}: {first.real} of {first.needed} source bars)"
        )
    print(line)
    if source.exists():
        print(f"spec: {spec_path(out)}")
    return 0


def _decimal(option: str, text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise BadInput(f"{option} {text!r}: a positive number, e.g. 0.01") from None
    if not value.is_finite() or value <= 0:
        raise BadInput(f"{option} {text}: must be a positive number")
    return value
