"""Scripted faults of the simulated exchange: what drills and tests break on purpose.

Windows (stall, storms, error bursts) are measured in simulated seconds, so `--speed` shrinks
them with everything else. Retry-After is an HTTP header and therefore real seconds. Frame
faults (malformed, NaN, out-of-order, duplicate) are counts: the next N affected frames.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from guard.errors import BadInput
from guard.sim.process import SCENARIOS
from guard.sim.ticks import SimClock

RETRY_GRACE_SECONDS = 0.25
"""Requests already in flight when a 429 went out are not counted as ignoring it."""
BAN_AFTER_VIOLATIONS = 2
"""Requests inside a Retry-After window tolerated before the IP is banned (418): a stray
request already queued is not a client hammering the venue; a third one is."""


class Fault(StrEnum):
    """The fault scenarios (their names are `guard sim --scenario` values)."""

    STALL = "feed-stall"
    DISCONNECT_STORM = "disconnect-storm"
    RATE_LIMIT_STORM = "429-storm"
    SERVER_ERRORS = "5xx-burst"
    MALFORMED = "malformed"
    NAN_PRICE = "nan-price"
    OUT_OF_ORDER = "out-of-order"
    DUPLICATE_BARS = "duplicate-bars"


FAULT_SCENARIOS = tuple(f.value for f in Fault)
ALL_SCENARIOS = (*SCENARIOS, *FAULT_SCENARIOS)
"""Every name `guard sim --scenario` accepts: price scenarios, then fault scenarios."""


@dataclass(frozen=True, slots=True)
class HttpFault:
    """An error answer the server gives instead of the real one."""

    status: int
    code: int
    msg: str
    retry_after: float | None = None


@dataclass(slots=True)
class FaultStats:
    """What the fault layer has done so far (read by tests and benchmarks)."""

    rate_limited: int = 0
    ignored_retry_after: int = 0
    """Requests that arrived inside a Retry-After window they had been told about."""
    banned: int = 0
    server_errors: int = 0
    dropped_connections: int = 0
    malformed_sent: int = 0
    nan_sent: int = 0
    out_of_order_sent: int = 0
    duplicates_sent: int = 0
    stalled_frames: int = 0
    played: list[str] = field(default_factory=list)


class Faults:
    """The fault state of one simulated exchange.

    Args:
        clock: simulated time, which fault windows are measured in.
        n_symbols: how many symbols the exchange lists (faults address them by index).
    """

    def __init__(self, clock: SimClock, n_symbols: int) -> None:
        self._clock = clock
        self._n = n_symbols
        self._stall_until = [0] * n_symbols
        self._storm_until = 0
        self._storm_drop_after_ms = 1_000
        self._rate_limit_until = 0
        self._retry_after = 2.0
        self._retry_from = 0.0
        self._retry_until = 0.0
        self._violations = 0
        """Real monotonic seconds during which a request ignores the last Retry-After."""
        self._errors_until = 0
        self._error_status = 503
        self._counts: dict[Fault, list[int]] = {
            f: [0] * n_symbols for f in (Fault.MALFORMED, Fault.NAN_PRICE, Fault.OUT_OF_ORDER, Fault.DUPLICATE_BARS)
        }
        self._drop_now = False
        self.stats = FaultStats()

    def _symbols(self, symbols: Iterable[int] | None) -> list[int]:
        return list(range(self._n)) if symbols is None else list(symbols)

    # --- scripting -----------------------------------------------------------------

    def play(self, name: str, symbols: Iterable[int] | None = None) -> None:
        """Start a fault scenario with its default size (see `guard sim --help`)."""
        try:
            fault = Fault(name)
        except ValueError:
            raise BadInput(f"fault {name!r}: must be one of {', '.join(FAULT_SCENARIOS)}") from None
        match fault:
            case Fault.STALL:
                self.stall(10.0, symbols)
            case Fault.DISCONNECT_STORM:
                self.disconnect_storm(30.0)
            case Fault.RATE_LIMIT_STORM:
                self.rate_limit_storm(20.0)
            case Fault.SERVER_ERRORS:
                self.server_errors(10.0)
            case Fault.MALFORMED:
                self.frames(Fault.MALFORMED, 5, symbols)
            case Fault.NAN_PRICE:
                self.frames(Fault.NAN_PRICE, 3, symbols)
            case Fault.OUT_OF_ORDER:
                self.frames(Fault.OUT_OF_ORDER, 1, symbols)
            case Fault.DUPLICATE_BARS:
                self.frames(Fault.DUPLICATE_BARS, 1, symbols)

    def stall(self, seconds: float, symbols: Iterable[int] | None = None) -> None:
        """Stop streaming market data for these symbols; trading goes on unseen."""
        until = self._clock.now_ms() + int(seconds * 1000)
        for j in self._symbols(symbols):
            self._stall_until[j] = max(self._stall_until[j], until)
        self.stats.played.append(Fault.STALL)

    def disconnect_storm(self, seconds: float, drop_after: float = 1.0) -> None:
        """Drop every WebSocket now, and each new one `drop_after` seconds after it opens."""
        self._storm_until = self._clock.now_ms() + int(seconds * 1000)
        self._storm_drop_after_ms = int(drop_after * 1000)
        self._drop_now = True
        self.stats.played.append(Fault.DISCONNECT_STORM)

    def rate_limit_storm(self, seconds: float, retry_after: float = 2.0) -> None:
        """Answer 429 with Retry-After to every request and handshake; drop open sockets."""
        self._rate_limit_until = self._clock.now_ms() + int(seconds * 1000)
        self._retry_after = retry_after
        self._drop_now = True
        self.stats.played.append(Fault.RATE_LIMIT_STORM)

    def server_errors(self, seconds: float, status: int = 503) -> None:
        """Answer 5xx to every request and handshake; drop open sockets."""
        if not 500 <= status <= 599:
            raise BadInput(f"status {status}: must be a 5xx status")
        self._errors_until = self._clock.now_ms() + int(seconds * 1000)
        self._error_status = status
        self._drop_now = True
        self.stats.played.append(Fault.SERVER_ERRORS)

    def frames(self, fault: Fault, count: int, symbols: Iterable[int] | None = None) -> None:
        """Spoil the next `count` frames of a kind (malformed, NaN, out-of-order, duplicate)."""
        if fault not in self._counts:
            raise BadInput(f"fault {fault!r} is not a frame fault")
        for j in self._symbols(symbols):
            self._counts[fault][j] += count
        self.stats.played.append(fault)

    def clear(self) -> None:
        """End every fault at once."""
        self._stall_until = [0] * self._n
        self._storm_until = self._rate_limit_until = self._errors_until = 0
        for counts in self._counts.values():
            counts[:] = [0] * self._n

    # --- queries the server makes --------------------------------------------------

    def stalled(self, j: int, now_ms: int) -> bool:
        """True while symbol `j`'s streams are stalled."""
        return now_ms < self._stall_until[j]

    def storm_drop_after_ms(self, now_ms: int) -> int | None:
        """How long a socket may live during a disconnect storm, or None when calm."""
        return self._storm_drop_after_ms if now_ms < self._storm_until else None

    def take_drop_now(self) -> bool:
        """True once after a fault that drops every open socket began."""
        drop, self._drop_now = self._drop_now, False
        return drop

    def http_fault(self, now_ms: int, monotonic: float) -> HttpFault | None:
        """The error to answer a request or handshake with, if a fault window is open.

        Args:
            now_ms: simulated time (fault windows).
            monotonic: real seconds (Retry-After is real time).
        """
        if now_ms < self._rate_limit_until:
            if self._retry_from <= monotonic < self._retry_until:
                self.stats.ignored_retry_after += 1
                self._violations += 1
                if self._violations > BAN_AFTER_VIOLATIONS:
                    # Binance bans an IP that keeps sending after a 429 (HTTP 418).
                    self.stats.banned += 1
                    return HttpFault(418, -1003, "Way too many requests; IP banned.", self._retry_after * 2)
            else:
                self._violations = 0
            self.stats.rate_limited += 1
            # Requests already in flight get the grace; anything later ignored the header.
            self._retry_from = monotonic + RETRY_GRACE_SECONDS
            self._retry_until = monotonic + self._retry_after
            return HttpFault(
                429, -1003, "Too many requests; current limit is 2400 requests per minute.", self._retry_after
            )
        if now_ms < self._errors_until:
            self.stats.server_errors += 1
            return HttpFault(
                self._error_status, -1001, "Internal error; unable to process your request. Please try again."
            )
        return None

    def take(self, fault: Fault, j: int) -> bool:
        """Consume one spoiled frame of this kind for symbol `j`, if any is due."""
        counts = self._counts[fault]
        if counts[j] <= 0:
            return False
        counts[j] -= 1
        return True

    def pending(self, fault: Fault, j: int) -> int:
        """Spoiled frames of this kind still due for symbol `j`."""
        return self._counts[fault][j]
