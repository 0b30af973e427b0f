"""What the console knows about the daemon: the last snapshot plus every change pushed since.

Pure data, no Textual. The app applies each protocol message here, then pushes the result down
into its widgets. The daemon makes every judgement (can_approve, why_not, liquidation distance);
this module keeps the latest copy in queue order and knows how old it is.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Flag, auto

from guard.api.protocol import (
    Alert,
    AlertRaised,
    EventsLogged,
    LoggedEvent,
    Message,
    PositionsChanged,
    PositionView,
    Prices,
    ProposalsChanged,
    ProposalView,
    Snapshot,
    StatusChanged,
    StatusView,
)

LOG_LINES = 300
"""Event and alert lines kept for the log pane."""
PRICE_POINTS = 120
"""Marks kept per symbol for its sparkline (the daemon's snapshot carries as many)."""
QUIET_EVENTS = frozenset({"BarRecorded"})
"""Journal events too frequent and too routine for a person's log (every bar of every symbol)."""


class Changed(Flag):
    """Which parts of the picture a message touched (what needs a redraw)."""

    NOTHING = 0
    STATUS = auto()
    PROPOSALS = auto()
    POSITIONS = auto()
    LOG = auto()
    PRICES = auto()
    EVERYTHING = STATUS | PROPOSALS | POSITIONS | LOG | PRICES


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of the alert and event log."""

    at: int
    """Daemon time, ms since the epoch."""
    level: str
    """"critical", "warning" or "info" for alerts; "event" for journal events."""
    kind: str
    text: str


def _order_key(view: ProposalView) -> tuple[int, str]:
    return view.proposal.created_at, view.proposal.id


@dataclass
class ConsoleModel:
    """The daemon's state as last heard, proposals oldest first."""

    status: StatusView | None = None
    """The daemon's last status, or None before the first snapshot."""
    proposals: dict[str, ProposalView] = field(default_factory=dict)
    """Pending proposals by id."""
    order: list[str] = field(default_factory=list)
    """Pending proposal ids, oldest first (by creation time, then id)."""
    positions: tuple[PositionView, ...] = ()
    log: deque[LogLine] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    prices: dict[str, deque[float]] = field(default_factory=dict)
    """Recent marks per symbol, oldest first."""
    heard_at: float | None = None
    """Local monotonic seconds when the daemon was last heard from."""
    _offset_ms: float | None = None
    """Daemon clock minus local monotonic clock (ms): "time left" never trusts the local wall clock."""
    _keys: list[tuple[int, str]] = field(default_factory=list)

    # --- applying what the daemon says ------------------------------------------------

    def load(self, snapshot: Snapshot, now: float) -> Changed:
        """Replace everything with a fresh snapshot (on every connect)."""
        self.status = snapshot.status
        self.proposals = {v.proposal.id: v for v in snapshot.proposals}
        self._reorder()
        self.positions = snapshot.positions
        self.log.clear()
        lines = [_event_line(e) for e in snapshot.events if e.type not in QUIET_EVENTS]
        lines += [_alert_line(a) for a in snapshot.alerts]
        self.log.extend(sorted(lines, key=lambda line: line.at))
        self.prices = {s: deque(p, maxlen=PRICE_POINTS) for s, p in snapshot.prices.items()}
        self._sync(snapshot.status.server_time, now)
        return Changed.EVERYTHING

    def apply(self, message: Message, now: float) -> Changed:
        """Apply one pushed message; returns what it changed."""
        self.heard_at = now
        if isinstance(message, Snapshot):
            return self.load(message, now)
        if isinstance(message, StatusChanged):
            self.status = message.status
            self._sync(message.status.server_time, now)
            return Changed.STATUS
        if isinstance(message, ProposalsChanged):
            self._upsert(message.upserted)
            self._remove(message.removed)
            return Changed.PROPOSALS
        if isinstance(message, PositionsChanged):
            self.positions = message.positions
            return Changed.POSITIONS
        if isinstance(message, EventsLogged):
            shown = [e for e in message.events if e.type not in QUIET_EVENTS]
            # A kill that ends a thousand proposals is one frame: only the lines the pane keeps are worth writing.
            self.log.extend(map(_event_line, shown[-LOG_LINES:]))
            return Changed.LOG if shown else Changed.NOTHING
        if isinstance(message, AlertRaised):
            self.log.append(_alert_line(message.alert))
            return Changed.LOG
        if isinstance(message, Prices):
            for symbol, mark in message.marks.items():
                self.prices.setdefault(symbol, deque(maxlen=PRICE_POINTS)).append(mark)
            self._sync(message.at, now)
            return Changed.PRICES
        return Changed.NOTHING

    def _upsert(self, views: Iterable[ProposalView]) -> None:
        for view in views:
            pid = view.proposal.id
            old = self.proposals.get(pid)
            self.proposals[pid] = view
            if old is not None and _order_key(old) == _order_key(view):
                continue  # a new version of a queued proposal keeps its place
            if old is not None:
                self._reorder()
                continue
            key = _order_key(view)
            i = bisect.bisect(self._keys, key)
            self._keys.insert(i, key)
            self.order.insert(i, pid)

    def _remove(self, ids: Iterable[str]) -> None:
        gone = {pid for pid in ids if pid in self.proposals}
        if not gone:
            return
        for pid in gone:
            del self.proposals[pid]
        # One pass, not one list.remove per id: a kill removes every pending proposal at once.
        kept = [(k, pid) for k, pid in zip(self._keys, self.order, strict=True) if pid not in gone]
        self._keys = [k for k, _ in kept]
        self.order = [pid for _, pid in kept]

    def _reorder(self) -> None:
        views = sorted(self.proposals.values(), key=_order_key)
        self._keys = [_order_key(v) for v in views]
        self.order = [v.proposal.id for v in views]

    def _sync(self, server_ms: int, now: float) -> None:
        self.heard_at = now
        self._offset_ms = server_ms - now * 1000

    # --- reading ---------------------------------------------------------------------

    def server_now_ms(self, now: float) -> float | None:
        """The daemon's clock now, from its last report and the local monotonic clock."""
        return None if self._offset_ms is None else now * 1000 + self._offset_ms

    def seconds_left(self, view: ProposalView, now: float) -> float | None:
        """Seconds until the proposal expires, by the daemon's clock."""
        server = self.server_now_ms(now)
        return None if server is None else max(0.0, (view.proposal.expires_at - server) / 1000)

    def view_at(self, index: int) -> ProposalView | None:
        """The pending proposal at this place in the queue, if any."""
        return self.proposals[self.order[index]] if 0 <= index < len(self.order) else None

    def index_of(self, proposal_id: str | None) -> int | None:
        """The place of a proposal in the queue, or None when it is not pending."""
        if proposal_id is None or proposal_id not in self.proposals:
            return None
        return bisect.bisect_left(self._keys, _order_key(self.proposals[proposal_id]))


def _event_line(event: LoggedEvent) -> LogLine:
    return LogLine(event.at, "event", event.type, event.text)


def _alert_line(alert: Alert) -> LogLine:
    return LogLine(alert.at, alert.level, alert.kind, alert.text)


@dataclass(frozen=True, slots=True)
class LinkState:
    """The console's connection to the daemon, as the banner tells it."""

    up: bool = False
    reason: str = "connecting to the daemon"
    attempt: int = 0
    retry_in: float = 0.0
    since: float | None = None
    """Local monotonic seconds when it went down (None: never connected yet, or up)."""


@dataclass(frozen=True, slots=True)
class Notice:
    """A line the operator must see now: a command sent and not yet echoed, or a refusal."""

    text: str
    style: str = "bold"
    until_halted: bool = False
    """A kill on its way: the daemon's HALTED, once heard, says the rest and replaces it."""
