"""CcxtFeed on the simulated exchange: real ccxt.pro, real sockets, every fault detected and recovered."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from itertools import pairwise

import msgspec
import pytest

from guard.clock import SystemClock
from guard.config import ExchangeSection, FeedSection
from guard.domain import Book, MarketKind, MarkPrice, Ticker
from guard.errors import ExchangeUnavailable, FeedError
from guard.feed.source import CcxtFeed
from guard.sim.server import SimExchange
from tests.feed.support import BTC, FAST_FEED, FAST_SIM, hog_event_loop, rig, trade_ids, wait_until

ETH = "ETH/USDT:USDT"


async def test_feed_markets_load_specs_with_builtin_tiers() -> None:
    """Markets load once into MarketSpecs: tick and step sizes, fees, and (keyless) built-in tiers."""
    async with rig(symbols=(BTC, ETH)) as r:
        specs = await r.feed.markets()
        assert await r.feed.markets() is specs
    btc = specs[BTC]
    assert btc.kind is MarketKind.LINEAR
    assert (btc.tick_size, btc.step_size, btc.min_notional) == (Decimal("0.1"), Decimal("0.001"), Decimal(100))
    assert btc.taker_fee == Decimal("0.0005")
    assert btc.tiers[0].mmr == Decimal("0.004") and btc.tiers[1].cum == Decimal(50)
    assert btc.max_leverage == 125


async def test_feed_bars_trades_ticker_mark_book_flow_in_order() -> None:
    """Closed bars arrive once each, consecutive and in order; trade ids run without a hole; every type flows."""
    sim = msgspec.structs.replace(FAST_SIM, speed=40.0)  # a 1m bar closes every 1.5 s
    async with rig(sim=sim) as r:
        await r.rec.wait_for(lambda: len(r.rec.bars()) >= 3, 15)
        health = r.feed.health()[BTC]
    bars = r.rec.bars()
    times = [b.open_time for b in bars]
    assert all(b.closed and b.complete for b in bars)
    assert times == sorted(set(times)) and all(b - a == 60_000 for a, b in pairwise(times))
    ids = trade_ids(r.rec.trades())
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    kinds = {type(e) for e in r.rec.events}
    assert {Ticker, MarkPrice, Book} <= kinds
    assert health.healthy and health.rejected == 0


async def test_feed_stall_marks_stale_within_threshold_and_recovers() -> None:
    """A 10-second stall (at ×10) makes the symbol stale within stale_after; recovery clears it and fills the gap."""
    async with rig() as r:
        await r.rec.wait_for(lambda: len(r.rec.trades()) > 5)
        loop = asyncio.get_running_loop()
        started = loop.time()
        r.sim.stall(seconds=10.0)
        await r.feed.wait_health(lambda h: h[BTC].reason.startswith("stale"), 3.0)
        detected = loop.time() - started
        await r.wait_healthy(5.0)
        await r.rec.wait_for(lambda: r.feed.stats.trades_backfilled > 0, 5.0)
    assert detected <= FAST_FEED.stale_after_seconds + 0.3
    assert any(reason.startswith("stale") for reason in r.rec.reasons())
    assert r.feed.stats.trades_lost == 0
    ids = trade_ids(r.rec.trades())
    assert ids == list(range(ids[0], ids[0] + len(ids)))


async def test_feed_long_stall_backs_off_reconnects_and_recovers_on_the_open_socket() -> None:
    """A silent stream is reset after stale_after, then 2x and 4x that: no reconnect storm in a long stall.

    A stall of 4 real seconds with stale_after 0.6 s: resetting at a fixed 0.6 s would reconnect
    each of the five streams six times; backing off, three at most (0.6, 1.8, 4.2 s). The data
    then arrives on the socket that is open when the stall ends.
    """
    async with rig() as r:
        await r.rec.wait_for(lambda: len(r.rec.trades()) > 5)
        r.sim.stall(seconds=40.0)  # x10: 4 real seconds
        await asyncio.sleep(4.0)
        resets_in_stall = r.feed.stats.watchdog_resets
        await r.wait_healthy(5.0)
        before = len(r.rec.trades())
        await r.rec.wait_for(lambda: len(r.rec.trades()) > before + 10, 5.0)
    streams = 5
    assert streams <= resets_in_stall <= 3 * streams
    ids = trade_ids(r.rec.trades())
    assert ids == list(range(ids[0], ids[0] + len(ids)))


async def test_feed_disconnect_storm_reported_and_recovered() -> None:
    """A disconnect storm shows as "disconnected" and the feed streams again after it."""
    async with rig() as r:
        await r.rec.wait_for(lambda: len(r.rec.trades()) > 5)
        r.sim.disconnect_storm(seconds=8.0, drop_after=2.0)
        await r.rec.wait_for(lambda: any("disconnected" in x for x in r.rec.reasons()), 5.0)
        before = len(r.rec.trades())
        await r.wait_healthy(6.0)
        await r.rec.wait_for(lambda: len(r.rec.trades()) > before + 10, 5.0)
    assert r.sim.statistics().faults.dropped_connections >= 1
    assert r.feed.stats.trades_lost == 0


async def test_feed_rate_limit_storm_honours_retry_after() -> None:
    """A 429 storm shows as "rate limited"; every stream waits out Retry-After (no 418 ban); then recovers."""
    async with rig(symbols=(BTC, ETH)) as r:
        await r.rec.wait_for(lambda: len(r.rec.trades(ETH)) > 5)
        r.sim.rate_limit_storm(seconds=10.0, retry_after=1.0)
        await r.rec.wait_for(lambda: any(x.startswith("rate limited") for x in r.rec.reasons()), 5.0)
        await r.wait_healthy(8.0, (BTC, ETH))
    stats = r.sim.statistics().faults
    assert stats.rate_limited >= 1
    assert stats.banned == 0 and stats.ignored_retry_after <= 2


async def test_feed_server_error_burst_reported_and_recovered() -> None:
    """A 5xx burst shows as "exchange unavailable" and clears when the venue answers again."""
    async with rig() as r:
        await r.rec.wait_for(lambda: len(r.rec.trades()) > 5)
        r.sim.server_errors(seconds=6.0)
        await r.rec.wait_for(lambda: any("exchange unavailable" in x for x in r.rec.reasons()), 5.0)
        await r.wait_healthy(6.0)
    assert r.sim.statistics().faults.server_errors >= 1


async def test_feed_malformed_frames_refused_stream_continues() -> None:
    """Malformed trade frames are refused with a reason and the stream keeps going without a hole."""
    async with rig() as r:
        await r.rec.wait_for(lambda: len(r.rec.trades()) > 5)
        r.sim.malformed(count=4)
        await r.rec.wait_for(lambda: r.feed.health()[BTC].rejected >= 4, 5.0)
        before = len(r.rec.trades())
        await r.rec.wait_for(lambda: len(r.rec.trades()) > before + 10, 5.0)
        await r.wait_healthy(3.0)
    assert any(x.startswith("invalid data: malformed") for x in r.rec.reasons())
    ids = trade_ids(r.rec.trades())
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # the refused ones were backfilled from REST
    assert r.feed.stats.watchdog_resets == 0


async def test_feed_nan_price_refused_never_passed_on() -> None:
    """NaN prices are refused ("nan"), no NaN reaches the consumer, and the trades are backfilled."""
    async with rig() as r:
        await r.rec.wait_for(lambda: len(r.rec.trades()) > 5)
        r.sim.nan_price(count=3)
        await r.rec.wait_for(lambda: r.feed.health()[BTC].rejected >= 3, 5.0)
        await r.wait_healthy(3.0)
    assert any("nan" in x.lower() for x in r.rec.reasons())
    prices = [e.price for e in r.rec.trades()] + [e.mark for e in r.rec.events if isinstance(e, MarkPrice)]
    assert all(p == p for p in prices)
    assert r.feed.stats.trades_lost == 0


async def test_feed_out_of_order_bar_refused() -> None:
    """An old bar re-sent after newer ones is refused as "out-of-order bar"; bars stay in order."""
    sim = msgspec.structs.replace(FAST_SIM, speed=40.0)
    async with rig(sim=sim) as r:
        await r.rec.wait_for(lambda: len(r.rec.bars()) >= 1, 10)
        r.sim.out_of_order(count=1)
        await r.rec.wait_for(lambda: r.feed.stats.rejected["out-of-order bar"] >= 1, 10)
        await r.rec.wait_for(lambda: len(r.rec.bars()) >= 4, 10)
    times = [b.open_time for b in r.rec.bars()]
    assert times == sorted(set(times))
    assert "invalid data: out-of-order bar" in r.rec.reasons()


async def test_feed_duplicate_bar_refused_closed_once() -> None:
    """A closed bar sent twice is refused as "duplicate bar" and emitted exactly once."""
    sim = msgspec.structs.replace(FAST_SIM, speed=40.0)
    async with rig(sim=sim) as r:
        await r.rec.wait_for(lambda: len(r.rec.bars()) >= 1, 10)
        r.sim.duplicate_bars(count=2)
        await r.rec.wait_for(lambda: r.feed.stats.rejected["duplicate bar"] >= 2, 10)
    times = [b.open_time for b in r.rec.bars()]
    assert len(times) == len(set(times))
    assert "invalid data: duplicate bar" in r.rec.reasons()


async def test_feed_flash_crash_bars_pass_validation() -> None:
    """A flash crash is real data: its bars pass, show the ~30 % drop, and the feed stays healthy."""
    sim = msgspec.structs.replace(FAST_SIM, speed=60.0)
    async with rig(sim=sim) as r:
        await r.rec.wait_for(lambda: len(r.rec.bars()) >= 1, 10)
        r.sim.flash_crash()
        await r.rec.wait_for(lambda: len(r.rec.bars()) >= 4, 15)
        health = r.feed.health()[BTC]
    bars = r.rec.bars()
    assert min(b.low for b in bars) < 0.75 * bars[0].close
    assert health.rejected == 0


async def test_feed_slow_consumer_costs_latency_not_trades() -> None:
    """A consumer that stops reading loses nothing: trades are held (bounded) and arrive in order."""
    sim = msgspec.structs.replace(FAST_SIM, speed=100.0, trades_per_tick=25)  # 500 trades/s
    async with rig(sim=sim, consume=False, queue_size=50, trades_cache=1_000, streams=("trades",)) as r:
        generated = lambda: r.sim.statistics().stream.last_trade_id.get("BTCUSDT", 0)  # noqa: E731
        await wait_until(lambda: generated() > 0, 5.0)
        first = generated()
        await wait_until(lambda: generated() > first + 2_500, 10.0)  # far past ccxt's cache
        r.consuming.set()
        target = generated()
        await r.rec.wait_for(lambda: bool(r.rec.trades()) and int(r.rec.trades()[-1].trade_id) >= target, 20.0)
    ids = trade_ids(r.rec.trades())
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert r.feed.stats.trades_lost == 0 and r.feed.stats.queue_high_water <= 2 * 50


async def test_feed_blocked_event_loop_overflow_found_and_backfilled() -> None:
    """A blocked event loop overflows ccxt's 1,000-trade cache; every lost trade is found by id and fetched."""
    sim = msgspec.structs.replace(FAST_SIM, speed=100.0, trades_per_tick=50)  # 1,000 trades/s
    async with rig(sim=sim, trades_cache=1_000, streams=("trades",)) as r:
        await r.rec.wait_for(lambda: len(r.rec.trades()) > 100)
        hog_event_loop(2.0)  # CPU-bound work inline: ~2,000 frames pile up in the socket
        await r.rec.wait_for(lambda: r.feed.stats.trade_gaps >= 1, 10.0)
        await r.rec.wait_for(lambda: r.feed.stats.trades_backfilled >= r.feed.stats.trades_missing > 0, 10.0)
    ids = trade_ids(r.rec.trades())
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert r.feed.stats.trades_missing >= 500 and r.feed.stats.trades_lost == 0


async def test_feed_rest_transport_polls_same_events() -> None:
    """With transport "rest" the feed polls REST and still delivers ordered bars and hole-free trades."""
    sim = msgspec.structs.replace(FAST_SIM, speed=60.0)
    async with rig(sim=sim, transport="rest", streams=("bars", "trades", "ticker", "mark")) as r:
        await r.rec.wait_for(lambda: len(r.rec.bars()) >= 2, 15)
    times = [b.open_time for b in r.rec.bars()]
    assert times == sorted(set(times))
    ids = trade_ids(r.rec.trades())
    assert ids == list(range(ids[0], ids[0] + len(ids)))


async def test_feed_bars_from_trades_match_venue_bars() -> None:
    """Bars built from the trade stream equal the venue's own klines for the same minutes."""
    sim = msgspec.structs.replace(FAST_SIM, speed=60.0)
    async with rig(sim=sim, bars_from_trades=True, streams=("bars",)) as r:
        await r.rec.wait_for(lambda: len(r.rec.bars()) >= 3, 15)
        rows = await r.feed.exchange.fetch_ohlcv(BTC, "1m", since=r.rec.bars()[1].open_time, limit=2)
    built = {b.open_time: b for b in r.rec.bars()[1:]}  # the first bar started mid-minute
    for t, o, h, lo, c, v in rows:
        b = built[t]
        assert (b.open, b.high, b.low, b.close) == (o, h, lo, c)
        assert b.volume == pytest.approx(v)


async def test_feed_unknown_symbol_is_feed_error() -> None:
    """A configured symbol the venue does not list stops the feed at start with a FeedError."""
    async with SimExchange(FAST_SIM, (BTC,)) as sim:
        xs = ExchangeSection(id="sim", symbols=("XRP/USDT:USDT",), timeout_seconds=5.0)
        async with CcxtFeed(xs, FAST_FEED, SystemClock(), sim=sim) as feed:
            with pytest.raises(FeedError, match="does not list XRP/USDT:USDT"):
                await feed.run()


async def test_feed_unreachable_venue_is_exchange_unavailable() -> None:
    """With no network, loading a live venue's markets raises ExchangeUnavailable, not a ccxt error."""
    xs = ExchangeSection(id="binanceusdm", symbols=(BTC,), timeout_seconds=3.0)
    async with CcxtFeed(xs, FeedSection(), SystemClock()) as feed:
        with pytest.raises(ExchangeUnavailable):
            await feed.markets()


async def test_feed_recent_bars_are_closed_history() -> None:
    """recent_bars returns the last closed bars, oldest first, without the one still open."""
    async with rig(streams=("ticker",)) as r:
        bars = await r.feed.recent_bars(BTC, 50)
        now = r.sim.now_ms()
    assert len(bars) == 50
    assert all(b.closed for b in bars)
    assert [b.open_time for b in bars] == sorted(b.open_time for b in bars)
    assert bars[-1].open_time + 60_000 <= now
