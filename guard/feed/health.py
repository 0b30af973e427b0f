"""Per-symbol feed health: last event age, gaps, refusals, errors, and who to tell.

A symbol is unhealthy (no proposals, approvals blocked; invariant 6) while any of these hold,
in this order of precedence: no event for `stale_after_seconds` ("stale"); the venue asked us
to back off ("rate limited"); one of its streams is failing ("disconnected",
"exchange unavailable: 503", ...); a gap in its trades or bars is being filled or could not
be ("gap in trades: 12 missing, backfilling"); an event was refused for bad data within the
last `invalid_hold_seconds` ("invalid data: nan price"). Every condition clears by itself
when the cause goes away. `FeedStatistics` counts what the feed delivered, refused and lost.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import structlog

from guard.clock import Clock
from guard.domain import FeedHealth

log = structlog.get_logger(__name__)

HealthListener = Callable[[FeedHealth], object]
"""Told a symbol's health when it changes (what it returns is ignored)."""
ERROR_WINDOW_SECONDS = 300.0


@dataclass(slots=True)
class _State:
    started: float
    last_event: float | None = None
    gaps: int = 0
    rejected: int = 0
    errors: deque[float] = field(default_factory=deque)
    stream_errors: dict[str, str] = field(default_factory=dict)
    backfilling: int = 0
    backfill_what: str = "trades"
    unrecovered: int = 0
    unrecovered_what: str = "trades"
    unrecovered_at: float = -1e18
    last_reject_reason: str = ""
    last_reject_at: float = -1e18
    reported: FeedHealth | None = None


class HealthBoard:
    """Tracks health per symbol and tells listeners whenever a symbol's health changes.

    Args:
        symbols: the symbols watched.
        clock: measures event age (its monotonic time).
        stale_after: seconds without an event before a symbol is stale.
        hold: seconds a refusal or an unrecovered gap keeps a symbol unhealthy.
        rate_limited: returns the seconds left before the venue lets us in again.
    """

    def __init__(
        self,
        symbols: Iterable[str],
        clock: Clock,
        *,
        stale_after: float,
        hold: float,
        rate_limited: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self._clock = clock
        self._stale_after = stale_after
        self._hold = hold
        self._rate_limited = rate_limited
        now = clock.monotonic()
        self._states = {s: _State(started=now) for s in symbols}
        self._listeners: list[HealthListener] = []
        self._changed = asyncio.Event()
        self._unhealthy: set[str] = set()

    # --- what happened -------------------------------------------------------------

    def event(self, symbol: str) -> None:
        """A valid event arrived (the hot path: one store, one set lookup)."""
        self._states[symbol].last_event = self._clock.monotonic()
        if symbol in self._unhealthy:
            self.check(symbol)

    def rejected(self, symbol: str, reason: str) -> None:
        """An event was refused for bad data."""
        st = self._states[symbol]
        st.rejected += 1
        st.last_reject_reason = reason
        st.last_reject_at = self._clock.monotonic()
        self.check(symbol)

    def stream_failed(self, symbol: str, stream: str, reason: str) -> None:
        """One of the symbol's streams failed (it is being retried)."""
        st = self._states[symbol]
        st.stream_errors[stream] = reason
        st.errors.append(self._clock.monotonic())
        self.check(symbol)

    def stream_ok(self, symbol: str, stream: str) -> None:
        """A stream delivered again after failing."""
        st = self._states[symbol]
        if st.stream_errors.pop(stream, None) is not None:
            self.check(symbol)

    def gap_found(self, symbol: str, missing: int, what: str) -> None:
        """`missing` events are known lost and being fetched."""
        st = self._states[symbol]
        st.gaps += 1
        st.backfilling += missing
        st.backfill_what = what
        self.check(symbol)

    def gap_closed(self, symbol: str, missing: int, unrecovered: int, what: str) -> None:
        """A gap was dealt with: `unrecovered` of its `missing` could not be fetched."""
        st = self._states[symbol]
        st.backfilling = max(0, st.backfilling - missing)
        if unrecovered:
            st.unrecovered += unrecovered
            st.unrecovered_what = what
            st.unrecovered_at = self._clock.monotonic()
        self.check(symbol)

    # --- what it means -------------------------------------------------------------

    def snapshot(self, symbol: str) -> FeedHealth:
        """The symbol's health now."""
        st = self._states[symbol]
        now = self._clock.monotonic()
        age = None if st.last_event is None else now - st.last_event
        silent_for = now - (st.last_event if st.last_event is not None else st.started)
        while st.errors and now - st.errors[0] > ERROR_WINDOW_SECONDS:
            st.errors.popleft()
        error_rate = len(st.errors) / (ERROR_WINDOW_SECONDS / 60.0)
        reason = ""
        wait = self._rate_limited()
        if silent_for > self._stale_after:
            reason = f"stale: no data for {silent_for:.1f} s"
        elif wait > 0:
            reason = f"rate limited: retry in {wait:.1f} s"
        elif st.stream_errors:
            stream, why = sorted(st.stream_errors.items())[0]
            reason = f"{why} ({stream})"
        elif st.backfilling:
            reason = f"gap in {st.backfill_what}: {st.backfilling} missing, backfilling"
        elif now - st.unrecovered_at < self._hold:
            reason = f"gap in {st.unrecovered_what}: {st.unrecovered} unrecovered"
        elif now - st.last_reject_at < self._hold:
            reason = f"invalid data: {st.last_reject_reason}"
        return FeedHealth(
            symbol=symbol,
            healthy=not reason,
            reason=reason,
            last_event_age_seconds=age,
            gaps=st.gaps,
            rejected=st.rejected,
            error_rate=error_rate,
        )

    def all(self) -> dict[str, FeedHealth]:
        """Every symbol's health now."""
        return {s: self.snapshot(s) for s in self._states}

    def check(self, symbol: str | None = None) -> None:
        """Recompute health and notify listeners of every symbol whose state changed."""
        symbols = [symbol] if symbol is not None else list(self._states)
        changed = symbol is not None  # a mutation: counters moved even if the state did not
        for s in symbols:
            snap = self.snapshot(s)
            st = self._states[s]
            prev = st.reported
            if prev is not None and prev.healthy == snap.healthy and _kind(prev.reason) == _kind(snap.reason):
                continue
            changed = True
            st.reported = snap
            if snap.healthy:
                self._unhealthy.discard(s)
            else:
                self._unhealthy.add(s)
            if prev is None and snap.healthy:
                continue
            log.info("feed.health_changed", symbol=s, healthy=snap.healthy, reason=snap.reason)
            for listener in list(self._listeners):
                listener(snap)
        if changed:
            # Wake every waiter, then start a fresh generation for the next change.
            self._changed.set()
            self._changed = asyncio.Event()

    def add_listener(self, listener: HealthListener) -> None:
        """Call `listener(FeedHealth)` (on the event loop) whenever a symbol's health changes."""
        self._listeners.append(listener)

    def remove_listener(self, listener: HealthListener) -> None:
        """Stop calling a listener added with `add_listener`."""
        self._listeners.remove(listener)

    async def wait_until(
        self, predicate: Callable[[dict[str, FeedHealth]], bool], seconds: float
    ) -> dict[str, FeedHealth]:
        """Wait until `predicate(health)` holds; raise TimeoutError after `seconds`."""
        async with asyncio.timeout(seconds):
            while True:
                health = self.all()
                if predicate(health):
                    return health
                changed = self._changed
                await changed.wait()


def _kind(reason: str) -> str:
    # "stale: no data for 3.1 s" and "stale: no data for 3.4 s" are the same state.
    return reason.split(":", 1)[0] + (reason.split("(", 1)[1] if "(" in reason else "")


@dataclass(slots=True)
class FeedStatistics:
    """Counters since the feed started (for status, tests and benchmarks)."""

    events: Counter[str] = field(default_factory=Counter)
    """Events delivered, by type name."""
    rejected: Counter[str] = field(default_factory=Counter)
    """Events and frames refused, by reason."""
    trade_gaps: int = 0
    trades_missing: int = 0
    """Trades found missing by id (gaps), whether later recovered or not."""
    trades_backfilled: int = 0
    trades_lost: int = 0
    """Missing trades that could not be recovered (their bars are marked incomplete)."""
    lost_ranges: deque[tuple[str, int, int]] = field(default_factory=lambda: deque(maxlen=10_000))
    """(symbol, first id, last id) of the most recent runs of lost trades, for audits."""
    bar_gaps: int = 0
    bars_backfilled: int = 0
    bars_lost: int = 0
    stream_errors: Counter[str] = field(default_factory=Counter)
    """Stream failures, by reason ("disconnected", "rate limited", ...)."""
    watchdog_resets: int = 0
    queue_high_water: int = 0
