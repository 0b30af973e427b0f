"""The hub: turns what the daemon committed into views, and fans them out to every attached client.

Each client gets a bounded queue (`guard.api.clients`). A client that stops reading fills its queue and is dropped
(it reconnects and gets a fresh snapshot); it never slows the daemon or the kill switch. Price
updates are batched to a few per second: screens redraw on batches, not on ticks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

import structlog

from guard import codec
from guard.api.clients import Presence, Subscription
from guard.api.desk_status import limit_views, order_views
from guard.api.protocol import (
    Alert,
    AlertRaised,
    DeskPolicy,
    EventsLogged,
    LoggedEvent,
    Message,
    ModelStatus,
    PositionsChanged,
    PositionView,
    Prices,
    ProposalsChanged,
    ProposalView,
    Snapshot,
    StatusChanged,
    StatusView,
    encode,
)
from guard.api.sourcing import ProposalSource, SourceView
from guard.approval.desk import ACKNOWLEDGMENT_PHRASES, REARM_PHRASE, ApprovalDesk
from guard.approval.records import ProposalRecord
from guard.approval.sources import Standing, is_source
from guard.domain import HARD_LEVERAGE_CAP, AcknowledgmentKind, FeedHealth, ProposalStatus, TradingState
from guard.events import (
    AcknowledgmentRecorded,
    ApprovalCounted,
    DecisionRecorded,
    Event,
    FeedHealthChanged,
    FundingPaid,
    JournalFailed,
    JournalRecovered,
    KillCompleted,
    KillRequested,
    ModelPaused,
    ModelResumed,
    OperatorPresenceLost,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    OrderUnknown,
    PositionLiquidated,
    ProposalExpired,
    ProposalFailed,
    ProposalKilled,
    ProposalQueued,
    ProposalRepriced,
    RiskLimitChanged,
    SourcePaused,
    SourceResumed,
    ThrottleReenabled,
    ThrottleTripped,
    TradingStateChanged,
)
from guard.journal.chain import Entry
from guard.journal.describe import describe_event
from guard.risk.checks import leverage_acknowledgment_above

log = structlog.get_logger(__name__)

TICK_SECONDS = 0.25
PRICE_HISTORY = 120
EVENT_HISTORY = 200
ALERT_HISTORY = 50
REVIEW_SECONDS = 0.02
"""How long after a change that can touch every pending proposal (a decision, a fill, a kill) their views are
worked out again: the command's own reply goes out first, and a burst of changes costs one pass (a queue of a
few hundred source proposals takes ~10 ms to re-view). The log lines of the changes follow the views."""

_PROPOSAL_EVENTS = (
    ProposalQueued,
    ProposalRepriced,
    DecisionRecorded,
    ApprovalCounted,
    ProposalExpired,
    ProposalKilled,
    ProposalFailed,
)
_STATUS_EVENTS = (
    TradingStateChanged,
    JournalFailed,
    JournalRecovered,
    AcknowledgmentRecorded,
    ThrottleTripped,
    ThrottleReenabled,
    ModelPaused,
    ModelResumed,
    SourcePaused,
    SourceResumed,
    RiskLimitChanged,
    FeedHealthChanged,
    OperatorPresenceLost,
    KillRequested,
    KillCompleted,
)
_BOOK_EVENTS = (OrderFilled, PositionLiquidated, FundingPaid)
_ORDER_EVENTS = (OrderSubmitted, OrderAccepted, OrderCancelled, OrderRejected, OrderUnknown)
"""What changes the resting orders the status lists (fills are book events)."""
_LEAVES_QUEUE = (DecisionRecorded, ProposalExpired, ProposalKilled, ProposalFailed, SourcePaused, SourceResumed)
"""A proposal that leaves the queue can unblock another: the newer of two for one symbol and side is a duplicate
only while the older is pending (as a fill changes the exposure every other proposal is judged against)."""


class Hub:
    def __init__(
        self,
        desk: ApprovalDesk,
        presence: Presence,
        *,
        exchange: str,
        broker: str,
        model_status: Callable[[], ModelStatus],
        hit_rates: Callable[[float], tuple[float | None, float | None]] = lambda _c: (None, None),
        symbols: Sequence[str] = (),
    ) -> None:
        self.desk = desk
        self.presence = presence
        self._exchange = exchange
        self._broker = broker
        self._model_status = model_status
        self._hit_rates = hit_rates
        self._symbols = tuple(symbols) or tuple(desk.specs)
        self._subscriptions: set[Subscription] = set()
        self._events: deque[LoggedEvent] = deque(maxlen=EVENT_HISTORY)
        self._alerts: deque[Alert] = deque(maxlen=ALERT_HISTORY)
        self._prices: dict[str, deque[float]] = {s: deque(maxlen=PRICE_HISTORY) for s in self._symbols}
        self._marks_dirty = False
        self._last_status: StatusView | None = None
        self._review: asyncio.TimerHandle | None = None
        """The pending re-view of every pending proposal, if one is due."""
        self._held_log: list[LoggedEvent] = []
        """Log lines committed while a re-view is due: sent after it, as the state always goes out before the log."""
        self._source_views: dict[str, tuple[Standing, SourceView]] = {}
        """Each source's view, with the standing it was made from."""
        self._sent_views: dict[str, ProposalView] = {}  # the last view of each pending proposal sent to clients

    # --- clients ---------------------------------------------------------------------

    def attach(self) -> tuple[Subscription, Snapshot]:
        subscription = Subscription()
        self._subscriptions.add(subscription)
        return subscription, self.snapshot()

    def detach(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    @property
    def clients(self) -> int:
        return len(self._subscriptions)

    def publish(self, message: Message) -> None:
        if not self._subscriptions:
            return
        frame = encode(message)
        for subscription in list(self._subscriptions):
            subscription.offer_frame(frame)

    def snapshot(self) -> Snapshot:
        return Snapshot(
            status=self.status(),
            proposals=tuple(self.proposal_view(r) for r in self.desk.state.pending()),
            positions=self.positions(),
            events=tuple(self._events),
            alerts=tuple(self._alerts),
            prices={s: tuple(p) for s, p in self._prices.items()},
        )

    # --- inputs ----------------------------------------------------------------------

    def on_committed(self, entries: Sequence[Entry]) -> None:
        """Called on the event loop for every committed batch, before the committing command replies.

        The state goes out first, the log last: a kill's HALTED must not queue behind its thousand
        log lines, which every client decodes in order.
        """
        touched: set[str] = set()
        status = books = everyone = False
        for entry in entries:
            event = entry.event
            if isinstance(event, _PROPOSAL_EVENTS):
                touched.add(_proposal_id(event))
            elif isinstance(event, OrderSubmitted) and event.request.proposal_id:
                touched.add(event.request.proposal_id)
            if isinstance(event, _STATUS_EVENTS):
                status = everyone = True
            if isinstance(event, _BOOK_EVENTS):
                books = status = everyone = True
            if isinstance(event, _ORDER_EVENTS):
                status = True
            if isinstance(event, _LEAVES_QUEUE):
                everyone = True
            if isinstance(event, (ProposalQueued, ProposalExpired, ProposalKilled, DecisionRecorded)):
                status = True
        if status:
            self._publish_status(force=True)
        if books:
            self.publish(PositionsChanged(self.positions()))
        if touched:
            self._publish_proposals(touched)
        if everyone:
            self._review_soon()
        logged = tuple(map(self._log, entries))
        if self._review is not None:  # the log follows the views it explains
            self._held_log.extend(logged)
        elif logged:
            self.publish(EventsLogged(logged))
        for entry in entries:
            self._alert_for(entry.event)

    def on_mark(self, symbol: str, price: float) -> None:
        history = self._prices.get(symbol)
        if history is not None:
            history.append(price)
            self._marks_dirty = True

    def alert(self, level: str, kind: str, text: str) -> None:
        alert = Alert(self.desk.clock.now_ms(), level, kind, text)
        self._alerts.append(alert)
        self.publish(AlertRaised(alert))
        log.warning("alert_raised", level=level, kind=kind, text=text)

    async def run(self) -> None:
        """Batch price-driven updates: marks, position PnL and equity, a few times a second."""
        while True:
            await asyncio.sleep(TICK_SECONDS)
            if self._marks_dirty and self._subscriptions:
                self._marks_dirty = False
                marks = {s: float(p) for s, p in self.desk.marks.items()}
                self.publish(Prices(self.desk.clock.now_ms(), marks))
                if self.desk.state.account.positions:
                    self.publish(PositionsChanged(self.positions()))
            self._publish_status(force=False)

    # --- views -----------------------------------------------------------------------

    def status(self) -> StatusView:
        desk = self.desk
        state = desk.state
        unrealized = desk.unrealized_pnl()
        balance = state.account.balance()
        model = self._model_status()
        needs: list[AcknowledgmentKind] = []
        if model.loaded and not desk.model_acknowledged():
            needs.append(AcknowledgmentKind.MODEL_PROPOSALS)
        return StatusView(
            trading_state=state.trading_state,
            state_reason=state.state_reason,
            equity=balance.total + unrealized,
            balance=balance.total,
            free=balance.free,
            unrealized_pnl=unrealized,
            daily_pnl=desk.daily_pnl(),
            operators=self.presence.operators(),
            operator_present=desk.operator_present,
            feeds=tuple(self._feed(s) for s in self._symbols),
            model=model,
            leverage_acknowledged=desk.leverage_acknowledged(),
            throttle_latched=state.throttle_latched,
            pending=len(state.pending()),
            exchange=self._exchange,
            broker=self._broker,
            server_time=desk.clock.now_ms(),
            kill_in_progress=state.kill_in_progress,
            orders=order_views(desk),
            limits=limit_views(desk),
            rearm_phrase=REARM_PHRASE,
            acknowledgment_phrases=tuple(ACKNOWLEDGMENT_PHRASES.items()),
            needs_acknowledgment=tuple(needs),
            policy=self.policy(),
            sources=tuple(self.source_view(name) for name in desk.sources.names()),
        )

    def policy(self) -> DeskPolicy:
        """The rules the consoles explain, as this daemon runs them (limits changed at run time included)."""
        operators, limits = self.desk.settings.operators, self.desk.limits()
        return DeskPolicy(
            heartbeat_timeout_seconds=operators.heartbeat_timeout_seconds,
            deadman_policy=operators.deadman_policy,
            leverage_acknowledgment_above=leverage_acknowledgment_above(limits),
            conservative_leverage=Decimal(str(limits.max_leverage)),
            hard_leverage_cap=HARD_LEVERAGE_CAP,
        )

    def _feed(self, symbol: str) -> FeedHealth:
        health = self.desk.feed_health.get(symbol)
        if health is not None:
            return health
        if symbol in self.desk.marks:
            return FeedHealth(symbol, True, "")
        return FeedHealth(symbol, False, "no market data yet")

    def proposal_view(self, record: ProposalRecord) -> ProposalView:
        p = record.proposal
        why_not = self.desk.approvable(record)
        liquidation = None
        if p.liquidation_price is not None:
            liquidation = float((p.liquidation_price - p.price) / p.price * 100)
        claimed, live = self._hit_rates(p.confidence)
        return ProposalView(
            proposal=p,
            status=record.status,
            can_approve=not why_not,
            why_not=why_not,
            approvals=record.approvals,
            needs_two_approvals=self.desk.needs_two(p),
            liquidation_distance_pct=liquidation,
            fee_estimate=(p.notional * self.desk.specs[p.symbol].taker_fee).quantize(Decimal("0.01")),
            hit_rate_at_confidence=claimed,
            live_hit_rate_at_confidence=live,
            source=self._proposal_source(p.source) if is_source(p.source) else None,
        )

    # --- proposal sources ----------------------------------------------------------------

    def source_view(self, name: str) -> SourceView:
        """A source's standing and record (made again only when they changed)."""
        s = self.desk.sources.standing(name)
        cached = self._source_views.get(name)
        if cached is not None and cached[0] is s:
            return cached[1]
        view = SourceView(s.name, s.paused, s.reason, s.graded, s.settled, s.hit_rate, s.claimed, s.buckets)
        self._source_views[name] = (s, view)
        return view

    def _proposal_source(self, name: str) -> ProposalSource:
        paused = self.desk.state.paused_sources.get(name)
        if paused is None:
            return ProposalSource(name)
        return ProposalSource(name, True, f"{paused.cause}: {paused.reason}")

    def market(self, source: str | None) -> dict[str, Any]:
        """What a source may read: trading state, each symbol's price and feed health, and its own standing."""
        desk = self.desk
        markets = []
        for symbol in self._symbols:
            health = self._feed(symbol)
            mark = desk.marks.get(symbol)
            markets.append(
                {
                    "symbol": symbol,
                    "mark": str(mark) if mark is not None else None,
                    "healthy": health.healthy,
                    "reason": health.reason,
                }
            )
        view: dict[str, Any] = {
            "trading_state": desk.state.trading_state.value,
            "accepting_proposals": desk.state.trading_state is not TradingState.HALTED and desk.operator_present,
            "markets": markets,
            "server_time": desk.clock.now_ms(),
        }
        if source is not None:
            view["source"] = codec.to_plain(self.source_view(source))
        return view

    def positions(self) -> tuple[PositionView, ...]:
        views = []
        for symbol, pos in sorted(self.desk.state.account.positions.items()):
            mark = self.desk.marks.get(symbol)
            distance = None
            if mark is not None and pos.liquidation_price is not None:
                distance = float(abs(mark - pos.liquidation_price) / mark * 100)
            views.append(PositionView(pos, mark, pos.unrealized_pnl(mark) if mark is not None else None, distance))
        return tuple(views)

    # --- internals -------------------------------------------------------------------

    def _publish_proposals(self, ids: Iterable[str]) -> None:
        """Send the views that changed since they were last sent: a state change touches every pending
        proposal, and a thousand unchanged views would be a megabyte for every client to decode."""
        upserted, removed = [], []
        for pid in sorted(ids):
            record = self.desk.state.proposals.get(pid)
            if record is not None and record.status is ProposalStatus.PENDING:
                view = self.proposal_view(record)
                if self._sent_views.get(pid) != view:
                    self._sent_views[pid] = view
                    upserted.append(view)
            else:
                self._sent_views.pop(pid, None)
                removed.append(pid)
        if upserted or removed:
            self.publish(ProposalsChanged(tuple(upserted), tuple(removed)))

    def _review_soon(self) -> None:
        """Re-view every pending proposal REVIEW_SECONDS from now (once, however many changes ask meanwhile)."""
        if self._review is None:
            self._review = asyncio.get_running_loop().call_later(REVIEW_SECONDS, self._review_all)

    def _review_all(self) -> None:
        self._review = None
        self._publish_proposals({r.proposal.id for r in self.desk.state.pending()})
        held, self._held_log = tuple(self._held_log), []
        if held:
            self.publish(EventsLogged(held))

    def publish_status(self) -> None:
        """Push the status now (operators came or went, something outside the journal changed)."""
        self._publish_status(force=True)

    def _publish_status(self, force: bool) -> None:
        status = self.status()
        if force or self._last_status is None or _changed(self._last_status, status):
            self._last_status = status
            self.publish(StatusChanged(status))

    def _log(self, entry: Entry) -> LoggedEvent:
        event = entry.event
        logged = LoggedEvent(entry.seq, event.at, type(event).__name__, describe_event(event))
        self._events.append(logged)
        return logged

    def _alert_for(self, event: Event) -> None:
        if isinstance(event, TradingStateChanged):
            level = {TradingState.HALTED: "critical", TradingState.REDUCING: "warning"}.get(event.state, "info")
            self.alert(level, "trading_state", f"{event.state.value}: {event.reason}")
        elif isinstance(event, ThrottleTripped):
            self.alert("warning", "throttle", describe_event(event))
        elif isinstance(event, ModelPaused):
            self.alert("warning", "model", describe_event(event))
        elif isinstance(event, SourcePaused):
            self.alert("warning", "source", describe_event(event))
        elif isinstance(event, OperatorPresenceLost):
            self.alert("critical", "deadman", describe_event(event))
        elif isinstance(event, (PositionLiquidated, OrderUnknown)):
            self.alert("critical", "orders", describe_event(event))
        elif isinstance(event, KillCompleted):
            self.alert("info" if event.flat else "critical", "kill", describe_event(event))
        elif isinstance(event, FeedHealthChanged):
            self.alert("info" if event.healthy else "warning", "feed", describe_event(event))
        elif isinstance(event, JournalFailed):
            self.alert("critical", "journal", describe_event(event))
        elif isinstance(event, JournalRecovered):
            self.alert("warning", "journal", describe_event(event))


def _changed(old: StatusView, new: StatusView) -> bool:
    """Status differs in anything but the clock."""
    return any(getattr(old, f) != getattr(new, f) for f in StatusView.__struct_fields__ if f != "server_time")


def _proposal_id(event: Event) -> str:
    if isinstance(event, (ProposalQueued, ProposalRepriced)):
        return event.proposal.id
    proposal_id = getattr(event, "proposal_id", None)  # every other proposal event names its proposal by id
    if not isinstance(proposal_id, str):
        raise TypeError(f"{type(event).__name__} names no proposal")
    return proposal_id
