"""`guard history fetch`: download OHLCV through ccxt, page by page, resumably.

Pages are appended to the output as they arrive (CSV), or to `<out>.partial.csv` beside a
Parquet output, so an interrupted fetch continues where it stopped when run again with the
same arguments. Only closed bars are written.

The venue's spec for the symbol (tick, step, minimums, fees, contract size, base/quote/settle,
and its leverage tiers where the venue gives them) is saved beside the bars as
`<out>.spec.json` (`guard.markets.files`), so replay and training price the market as the
venue does. For the simulator, the fetch signs with the simulator's demo key, so its own
leverage brackets are fetched as a keyed client would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import ccxt
import structlog

from guard.domain import Bar
from guard.errors import BadInput, ExchangeUnavailable, FeedError, GuardError
from guard.exchanges import (
    SIM_API_KEY,
    SIM_API_SECRET,
    SIM_ID,
    SimEndpoint,
    classify,
    make_exchange,
    retry_after,
    translate,
)
from guard.feed.history import append_csv, file_kind, read_bars, write_bars
from guard.feed.validate import bar_from_row
from guard.markets.files import read_specs, spec_path, write_specs
from guard.markets.record import SpecRecord
from guard.markets.venue import venue_record
from guard.timeframes import timeframe_ms

log = structlog.get_logger(__name__)

PAGE = 1000
"""Bars per request (Binance's and ccxt's cap)."""
DEFAULT_LIMIT = 1000
MAX_ATTEMPTS = 5

Progress = Callable[[int, int | None], None]
"""Called with (bars written so far, bars expected or None)."""


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one `fetch_history` run did."""

    path: Path
    written: int
    """Bars written by this run."""
    total: int
    """Bars in the file now."""
    resumed_from: int | None
    """Open time the run resumed after, when the file already had bars."""
    first: int | None
    """Open time of the file's first bar in the range asked for."""
    last: int | None
    gaps: int
    since: int
    """Open time the range asked for starts at."""
    asked: int
    """Bars in that range asked for (at most --limit; closed bars only)."""
    in_range: int
    """Bars the file holds in that range now: fewer than asked when the venue has fewer."""
    spec: SpecRecord | None = None
    """The venue's spec, saved beside the file; None when guard does not trade the market."""
    spec_notes: tuple[str, ...] = ()
    """What to tell the person about the spec: why none was saved, or what changed since the last fetch."""


def parse_since(text: str) -> int:
    """ "2024-01-01", "2024-01-01T12:00:00Z" (UTC unless an offset is given) or ms → ms.

    Raises:
        BadInput: for anything else.
    """
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"--since {text!r}: use a date like 2024-01-01, 2024-01-01T12:00:00Z, or milliseconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


class RunningSim(SimEndpoint, Protocol):
    """A simulated exchange someone started (`guard.sim.server.SimExchange` is one), with its clock."""

    def now_ms(self) -> int: ...


@contextlib.asynccontextmanager
async def _venue(
    exchange_id: str, request_timeout: float, sim: RunningSim | None
) -> AsyncIterator[tuple[Any, Callable[[], int]]]:
    """The ccxt exchange (REST) and a clock of the venue's time (the simulator's own, for "sim")."""
    if exchange_id == SIM_ID and sim is None:
        raise BadInput("--exchange sim needs a running simulated exchange (the command line starts one)")
    exchange = make_exchange(exchange_id, timeout_seconds=request_timeout, sim=sim, streaming=False)
    try:
        now: Callable[[], int] = sim.now_ms if sim is not None else exchange.milliseconds
        yield exchange, now
    finally:
        await exchange.close()


async def fetch_history(
    exchange_id: str,
    symbol: str,
    timeframe: str,
    out: Path,
    *,
    since: int | None = None,
    limit: int | None = None,
    request_timeout: float = 10.0,
    sim: RunningSim | None = None,
    progress: Progress | None = None,
) -> FetchResult:
    """Fetch closed bars into `out` (CSV or Parquet), continuing a previous run's file.

    Args:
        exchange_id: ccxt id or "sim" (the simulated exchange, started in this process).
        since: first open time wanted; default `limit` bars back from now.
        limit: most bars to fetch in total; default 1000 when `since` is not given, else all.
        sim: the simulated exchange to fetch from when `exchange_id` is "sim" (started by the caller).

    Raises:
        BadInput: bad arguments, or an output file of another symbol or timeframe.
        ExchangeUnavailable: the venue cannot be reached (the message says what to do).
        FeedError: the venue or symbol does not exist or has no OHLCV.
    """
    tf_ms = timeframe_ms(timeframe)
    kind = file_kind(out)
    if limit is not None and limit <= 0:
        raise BadInput(f"--limit {limit}: must be > 0")
    partial = out.with_name(out.name + ".partial.csv") if kind == "parquet" else out
    existing = _existing(out, partial, kind, symbol, timeframe)
    resumed_from = existing[-1].open_time if existing else None
    async with _venue(exchange_id, request_timeout, sim) as (exchange, now_ms):
        await _load_markets(exchange, exchange_id, request_timeout)
        if symbol not in exchange.markets:
            listed = ", ".join(sorted(exchange.markets)[:5])
            raise FeedError(f"{exchange_id} does not list {symbol} (it lists e.g. {listed})")
        if not exchange.has.get("fetchOHLCV"):
            raise FeedError(f"{exchange_id} does not serve OHLCV history through ccxt")
        if exchange_id == SIM_ID:
            # Signed from here on (after the public market load): the simulator's brackets, as a keyed client
            # of the venue would get them. Its demo key guards nothing; a real venue's keys are never used here.
            exchange.apiKey, exchange.secret = SIM_API_KEY, SIM_API_SECRET
        spec, spec_notes = await _spec(exchange, exchange_id, symbol, out, request_timeout)
        now = now_ms()
        end = now - now % tf_ms  # open time of the bar still open: never written
        if since is None:
            since = end - (limit or DEFAULT_LIMIT) * tf_ms
        since -= since % tf_ms
        start = since
        if resumed_from is not None:
            start = max(since, resumed_from + tf_ms)
        total_wanted = (end - since) // tf_ms
        if limit is not None:
            total_wanted = min(total_wanted, limit)
        already = sum(1 for b in existing if b.open_time >= since)
        written, gaps = 0, 0
        cursor = start
        last = resumed_from
        first = next((b.open_time for b in existing if b.open_time >= since), None)
        if progress:
            progress(already, total_wanted)
        while cursor < end and already + written < total_wanted:
            want = min(PAGE, total_wanted - already - written)
            rows = await _page(exchange, exchange_id, symbol, timeframe, cursor, want, request_timeout)
            page: list[Bar] = []
            for row in rows:
                if not row or row[0] < cursor or row[0] >= end:
                    continue
                bar = bar_from_row(row, symbol, timeframe, tf_ms, closed=True)
                if isinstance(bar, str):
                    raise FeedError(f"{exchange_id} sent a bad bar at {row[0]}: {bar}")
                if page and bar.open_time <= page[-1].open_time:
                    continue
                if (last is not None and bar.open_time > last + tf_ms) or (
                    page and bar.open_time > page[-1].open_time + tf_ms
                ):
                    gaps += 1
                page.append(bar)
                last = bar.open_time
            page = page[: total_wanted - already - written]
            if not page:
                # Nothing at or after the cursor in this window: skip it (a venue's gap).
                cursor += want * tf_ms
                continue
            append_csv(partial, page)
            first = first if first is not None else page[0].open_time
            written += len(page)
            cursor = page[-1].open_time + tf_ms
            if progress:
                progress(already + written, total_wanted)
    if kind == "parquet":
        bars = [*existing, *read_bars(partial)] if partial.exists() else list(existing)
        write_bars(out, bars)
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        total = len(bars)
    else:
        total = len(existing) + written
    if spec is not None:
        _save_spec(out, spec)
    return FetchResult(
        out, written, total, resumed_from, first, last, gaps, since, total_wanted, already + written, spec, spec_notes
    )


async def _spec(
    exchange: Any, exchange_id: str, symbol: str, out: Path, request_timeout: float
) -> tuple[SpecRecord | None, tuple[str, ...]]:
    """The venue's spec for `symbol`, and what to say about it (what changed since the file's last spec)."""
    try:
        record = await venue_record(exchange, exchange_id, symbol, request_timeout)
    except FeedError as e:
        return None, (f"no spec saved: {e}",)
    return record, _changes(spec_path(out), record)


def _save_spec(out: Path, spec: SpecRecord) -> None:
    """Write the spec beside the bars (when there are bars to be beside)."""
    if out.exists():
        write_specs(spec_path(out), [spec])


def _changes(saved: Path, record: SpecRecord) -> tuple[str, ...]:
    """What differs between the spec saved by an earlier fetch and the venue's now."""
    if not saved.exists():
        return ()
    try:
        before = read_specs(saved).get(record.symbol)
    except BadInput as e:
        return (f"the old spec file was unreadable and is replaced ({e})",)
    if before is None:
        return ()
    changed = [
        f"{name} {getattr(before.spec, name)} → {getattr(record.spec, name)}"
        for name in ("tick_size", "step_size", "min_qty", "min_notional", "maker_fee", "taker_fee")
        if getattr(before.spec, name) != getattr(record.spec, name)
    ]
    return (f"the venue's spec changed since the last fetch: {', '.join(changed)}",) if changed else ()


def _existing(out: Path, partial: Path, kind: str, symbol: str, timeframe: str) -> list[Bar]:
    bars: list[Bar] = []
    if kind == "parquet" and out.exists():
        bars += read_bars(out)
    if partial.exists() and partial.stat().st_size > 0:
        bars += [b for b in read_bars(partial) if not bars or b.open_time > bars[-1].open_time]
    for bar in bars[:1]:
        if bar.symbol != symbol or bar.timeframe != timeframe:
            raise BadInput(
                f"{out}: holds {bar.symbol} {bar.timeframe} bars, not {symbol} {timeframe}; choose another --out"
            )
    return bars


async def _load_markets(exchange: Any, exchange_id: str, request_timeout: float) -> None:
    timeout = request_timeout
    try:
        await asyncio.wait_for(exchange.load_markets(), timeout * 3)
    except TimeoutError as e:
        raise ExchangeUnavailable(
            f"cannot reach {exchange_id}: no answer within {timeout * 3:g} s; check the network, or use --exchange sim"
        ) from e
    except ccxt.BaseError as e:
        raise _unreachable(e, exchange_id) from e


def _unreachable(error: ccxt.BaseError, exchange_id: str) -> GuardError:
    failure = classify(error, exchange_id)
    if isinstance(failure.error, ExchangeUnavailable):
        return ExchangeUnavailable(
            f"cannot reach {exchange_id} ({failure.reason}); check the network connection, "
            "or use --exchange sim for the simulated exchange"
        )
    return failure.error


async def _page(
    exchange: Any, exchange_id: str, symbol: str, timeframe: str, since: int, limit: int, request_timeout: float
) -> list[list[Any]]:
    """One page of OHLCV, retrying transient failures (honouring Retry-After)."""
    timeout = request_timeout
    delay = 0.5
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return await asyncio.wait_for(exchange.fetch_ohlcv(symbol, timeframe, since=since, limit=limit), timeout)
        except (TimeoutError, ccxt.NetworkError) as e:
            if attempt == MAX_ATTEMPTS:
                if isinstance(e, TimeoutError):
                    raise ExchangeUnavailable(f"{exchange_id}: no answer within {timeout:g} s") from e
                raise translate(e, exchange_id) from e
            wait = max(delay, retry_after(exchange) or 0.0) if isinstance(e, ccxt.DDoSProtection) else delay
            log.warning("history.page_retry", attempt=attempt, wait=wait, error=" ".join(str(e).split())[:160])
            await asyncio.sleep(wait)
            delay *= 2
        except ccxt.BaseError as e:
            raise translate(e, exchange_id) from e
    raise AssertionError("unreachable")
