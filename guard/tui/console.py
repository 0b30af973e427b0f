"""The main screen: banner, queue, decision card, positions, keys; the operator's decisions start here.

The screen renders the daemon's state (a `ConsoleModel` the app keeps current) and turns keys into
commands. Every key is a priority binding, so the app runs it as it reads it, in the order typed:
a key that opens a dialog has opened it before the next key arrives. A key that is greyed out
(`check_action`) does nothing but say why.

A decision applies to the proposal version the card showed when the key was pressed: when the
proposal under the cursor changed by itself (it left the queue, or was re-priced), or the card has
not drawn the new one yet, every decision waits. Dialogs are bound to that version and refuse to
answer once it is no longer pending as shown.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from functools import partial
from typing import ClassVar, Protocol

import structlog
from textual import events, on
from textual.actions import parse as parse_action
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen

from guard.api.protocol import (
    Acknowledge,
    Approve,
    ClosePosition,
    Command,
    Override,
    PauseModel,
    PerformanceView,
    ProposalView,
    Rearm,
    ReenableThrottle,
    Reject,
    Reply,
    ResumeModel,
)
from guard.config import OperatorsSection
from guard.domain import AcknowledgmentKind, TradingState
from guard.tui import availability
from guard.tui.availability import Facts, needs_leverage_acknowledgment
from guard.tui.model import Changed, ConsoleModel, LinkState, Notice
from guard.tui.screens.acknowledge import acknowledgment_screen, rearm_screen
from guard.tui.screens.base import DecisionDialog
from guard.tui.screens.close import ClosePositionScreen, CloseRequest
from guard.tui.screens.dialogs import NoveltyScreen, RejectScreen, TypedConfirmScreen
from guard.tui.screens.info import HelpScreen, ModelCardScreen, PerformanceScreen
from guard.tui.screens.override import OverrideRequest, OverrideScreen
from guard.tui.widgets.banner import Banner
from guard.tui.widgets.card import DecisionCard
from guard.tui.widgets.keybar import KeyBar, KeyLabel
from guard.tui.widgets.panes import EventLog, PositionsPane, PositionsSummary, PricesPane
from guard.tui.widgets.queue import ProposalQueue

log = structlog.get_logger(__name__)

REDRAW_SECONDS = 0.25
"""Batched redraws (positions, prices, log, the queue): four a second, never per tick."""
TOAST_AGAIN_AFTER = 3.0
"""The same "cannot" toast is not repeated within this many seconds (a typed phrase is one toast, not 30)."""


class Sender(Protocol):
    """Where commands go: the app, which owns the link to the daemon and shows its answers."""

    async def send(self, make: Callable[[str], Command], label: str) -> Reply | None:
        """Send a command built around a fresh id; the daemon's reply, or None when none came."""
        ...


class InfoSource(Protocol):
    """What the information screens fetch from the daemon over REST."""

    async def model_card(self) -> str: ...

    async def performance(self) -> PerformanceView: ...


def _key(keys: str, action: str, label: str, tooltip: str, *, show: bool = True) -> Binding:
    """A console key: priority (run as the app reads it, in the order typed); tooltip "Title\\nwhat it does"."""
    return Binding(keys, action, label, show=show, priority=True, tooltip=tooltip)


class ConsoleScreen(Screen[None]):
    """The console's main screen.

    Args:
        model: The daemon's state as last heard (the app applies what the daemon pushes).
        sender: Where commands go (the app).
        info: Where the model card and the live record come from (None: no daemon).
        operators: The local operators section (what the acknowledgment explains about the dead-man switch).
        clock: Local monotonic seconds.
        selection_grace: How long decisions wait after the proposal under the cursor changed by itself.
        reconnect_grace: How long every key but the kill waits after the console (re)connects.
    """

    DEFAULT_CSS = """
    ConsoleScreen #body { height: 1fr; }
    ConsoleScreen #main { width: 1fr; min-width: 84; }
    ConsoleScreen #side { display: none; width: 40%; max-width: 72; }
    ConsoleScreen #queue { height: 8; }
    ConsoleScreen #card { height: 1fr; }
    ConsoleScreen.-wide.-tall #side { display: block; }
    ConsoleScreen.-wide.-tall #summary { display: none; }
    ConsoleScreen.-tall #queue { height: 2fr; border-top: solid $primary; border-title-align: left; }
    ConsoleScreen.-tall #card { height: 3fr; border-top: solid $primary; }
    ConsoleScreen.-tall #summary { height: 3; border-top: solid $primary; }
    ConsoleScreen #side > * { border-top: solid $primary; }
    ConsoleScreen #positions { height: auto; max-height: 14; }
    ConsoleScreen #prices { height: auto; max-height: 14; }
    ConsoleScreen #log { height: 1fr; }
    """
    AUTO_FOCUS = None
    BINDINGS: ClassVar[list[BindingType]] = [
        _key("a", "approve", "approve", "Approve the selected proposal\nas shown; a novel one asks for a confirmation"),
        _key("o", "override", "override", "Override the selected proposal\nedit size, leverage, stop, take-profit or "
             "limit price, then approve"),
        _key("r", "reject", "reject", "Reject the selected proposal\nwith an optional reason"),
        _key("ctrl+r", "rearm", "rearm", "Re-arm trading\nleave HALTED or REDUCING (type RE-ARM)"),
        _key("p", "pause_model", "pause", "Pause or resume the model\nstop or restart the model's proposals"),
        _key("c", "close_position", "close", "Close a position\nall of it, a quantity or a percentage "
             "(reduce-only market order)"),
        _key("m", "model_card", "card", "Model card\nwhat the model is, what it was trained on, its risks and limits"),
        _key("l", "performance", "live", "Live performance vs claimed\nhit rate and calibration per confidence bucket"),
        _key("question_mark", "help", "help", "Help\nkeys and screens"),
        _key("q", "quit", "quit", "Quit the console\nthe daemon keeps running (ctrl+q quits even while disconnected)",
             show=False),
        _key("down,j", "cursor(1)", "next", "Next proposal\nthe queue is oldest first; pgdn pgup home end jump",
             show=False),
        _key("up,k", "cursor(-1)", "previous", "Previous proposal\ntowards the oldest", show=False),
        _key("pagedown", "cursor(10)", "", "", show=False),
        _key("pageup", "cursor(-10)", "", "", show=False),
        _key("home", "cursor_to(0)", "", "", show=False),
        _key("end", "cursor_to(-1)", "", "", show=False),
    ]
    _ACTION_OF_KEY: ClassVar[dict[str, str]] = {
        b.key: parse_action(b.action)[1] for b in Binding.make_bindings(BINDINGS)
    }
    """Key -> action, derived from the bindings (for saying why a greyed-out key did nothing)."""

    def __init__(
        self,
        model: ConsoleModel,
        sender: Sender,
        *,
        info: InfoSource | None,
        operators: OperatorsSection,
        clock: Callable[[], float],
        selection_grace: float,
        reconnect_grace: float,
    ) -> None:
        super().__init__(id="console")
        self.model = model
        self.link = LinkState()
        """The connection to the daemon, as the app last told it."""
        self._sender = sender
        self._info = info
        self._operators = operators
        self._clock = clock
        self._selection_grace = selection_grace
        self._reconnect_grace = reconnect_grace
        self._connected_at: float | None = None
        self.in_flight: dict[str, str] = {}
        """Proposal id -> the decision sent on it and not yet answered."""
        self._dirty = Changed.NOTHING
        self._enabled: tuple[bool, ...] = ()
        self._status_key: tuple[object, ...] = ()
        self._shown_version: tuple[str, int] | None = None
        self._ack_declined: set[AcknowledgmentKind] = set()
        self._ack_sending: set[AcknowledgmentKind] = set()
        self._toasts: dict[str, float] = {}
        self.banner = Banner(id="banner")
        self.queue = ProposalQueue(self.model, self._clock, id="queue")
        self.card = DecisionCard(id="card")
        self.summary = PositionsSummary(id="summary")
        self.positions = PositionsPane(id="positions")
        self.prices = PricesPane(self.model, id="prices")
        self.events = EventLog(self.model, id="log")
        self.keys = KeyBar((), self._available, id="keys")

    # --- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield self.banner
        with Horizontal(id="body"):
            with Vertical(id="main"):
                yield self.queue
                yield self.card
                yield self.summary
            with Vertical(id="side"):
                yield self.positions
                yield self.prices
                yield self.events
        yield self.keys

    def on_mount(self) -> None:
        self.queue.border_title = "Proposals, oldest first"
        self.card.border_title = "Decision card"
        self.positions.border_title = "Positions"
        self.prices.border_title = "Prices"
        self.events.border_title = "Alerts and events"
        self.keys.keys = self.key_labels()
        self.set_focus(self.queue)
        self.set_interval(REDRAW_SECONDS, self._redraw)
        self.set_interval(1.0, self._tick)

    def key_labels(self) -> tuple[KeyLabel, ...]:
        """The key bar, from the bindings: the app's kill key, the screen's shown keys, the palette."""
        app = self.app
        labels = [
            KeyLabel(app.get_key_display(b), b.description, b.action, alarm=True)
            for b in Binding.make_bindings(app.BINDINGS)
            if b.show and b.action == "kill"
        ]
        labels += [
            KeyLabel(app.get_key_display(b), b.description, b.action)
            for b in Binding.make_bindings(self.BINDINGS)
            if b.show
        ]
        palette = Binding(app.COMMAND_PALETTE_BINDING, "command_palette")
        labels.append(KeyLabel(app.get_key_display(palette), "more", "command_palette"))
        return tuple(labels)

    def help_rows(self) -> list[tuple[str, str]]:
        """The help screen's rows, from the bindings: keys, then what they do."""
        rows: dict[str, tuple[list[str], str]] = {}
        app = self.app
        bindings = [*Binding.make_bindings(app.BINDINGS), *Binding.make_bindings(self.BINDINGS)]
        for b in bindings:
            if b.tooltip and not b.system:
                keys, _ = rows.setdefault(b.action, ([], b.tooltip.replace("\n", ": ")))
                keys.append(app.get_key_display(b))
        out = [("  ".join(keys), what) for keys, what in rows.values()]
        palette = Binding(app.COMMAND_PALETTE_BINDING, "command_palette")
        out.append((app.get_key_display(palette), "command palette: every action, and the risk acknowledgments"))
        return out

    # --- what the daemon says (the app calls these) -------------------------------------

    def show_link(self, link: LinkState) -> None:
        """The connection changed: stale when down; on (re)connecting, keys wait a moment."""
        if link.up and not self.link.up:
            self._connected_at = self._clock()
            self.set_timer(self._reconnect_grace + 0.05, self._show_selected)
        self.link = link
        self._redraw(Changed.EVERYTHING)
        self._follow_dialogs()

    def show(self, changed: Changed) -> None:
        """The daemon pushed: what must be seen now is drawn now, the rest in the next batch."""
        self._dirty |= changed
        status_key = availability.status_key(self.model.status)
        if status_key != self._status_key:
            self._status_key = status_key
            # The banner alone in the next frame (HALTED in red as soon as possible); the rest in the one after.
            self._show_status()
            self.call_after_refresh(self._redraw)
        elif Changed.PROPOSALS in changed and self.model.proposals.get(self.queue.selected_id or "") != self.card.view:
            self._redraw()
        if changed & (Changed.PROPOSALS | Changed.POSITIONS):
            self._follow_dialogs()

    @property
    def notice(self) -> Notice | None:
        """A line the operator must see now in the banner (a kill sent and not yet echoed)."""
        return self.banner.notice

    @notice.setter
    def notice(self, notice: Notice | None) -> None:
        self.banner.notice = notice

    def _redraw(self, extra: Changed = Changed.NOTHING) -> None:
        """Push what changed down into the widgets (the 4 Hz batch, or at once for what is urgent)."""
        dirty, self._dirty = self._dirty | extra, Changed.NOTHING
        stale = not self.link.up
        self.banner.link = self.link
        if Changed.STATUS in dirty:
            status = self.model.status
            self._show_status()
            self.card.leverage_acknowledged = status.leverage_acknowledged if status else True
            self.card.trading_state = status.trading_state if status else None
        if Changed.PROPOSALS in dirty or stale != self.queue.stale:
            self.queue.sync(stale)
        if Changed.POSITIONS in dirty:
            self.positions.positions = self.summary.positions = self.model.positions
        if Changed.PRICES in dirty:
            self.prices.update_prices()
        if Changed.LOG in dirty:
            self.events.refresh()
        for pane in (self.positions, self.summary, self.prices, self.events):
            pane.stale = stale
        if dirty & (Changed.PROPOSALS | Changed.STATUS):
            self._show_selected()
        if Changed.STATUS in dirty:
            self.offer_acknowledgments()

    def _show_status(self) -> None:
        banner = self.banner
        status = banner.status = self.model.status
        if status is not None and status.trading_state is TradingState.HALTED and banner.notice is not None:
            if banner.notice.text.startswith("KILL sent"):
                banner.notice = None  # the daemon's echo replaces "KILL sent"

    def _tick(self) -> None:
        """Once a second: time left, "down for N s", and the end of the graces."""
        if not self.link.up:
            self.banner.clock = self._clock()
        if self.model.order:
            self.queue.refresh()
        self._show_selected()
        self.offer_acknowledgments()

    def _follow_dialogs(self) -> None:
        """Tell open dialogs what became of their proposal or position."""
        for screen in self.app.screen_stack:
            if isinstance(screen, DecisionDialog):
                screen.follow(self.model.proposals.get(screen.view.proposal.id), self.link.up)
            elif isinstance(screen, ClosePositionScreen):
                screen.follow(self.model.positions, self.link.up)

    # --- the selection -----------------------------------------------------------------

    def action_cursor(self, delta: int) -> None:
        """Move through the queue; the card follows in the same frame."""
        if self.queue.move(delta):
            self._show_selected()

    def action_cursor_to(self, index: int) -> None:
        if self.queue.select(index if index >= 0 else len(self.model.order) - 1):
            self._show_selected()

    @on(ProposalQueue.Selected)
    def _selected(self, message: ProposalQueue.Selected) -> None:
        """The proposal under the cursor left: decisions wait a moment, so nobody decides on what they did not read."""
        if message.proposal_id is not None:
            self.set_timer(self._selection_grace + 0.05, self._show_selected)
        self._show_selected()

    @on(DecisionCard.Drawn)
    def _drawn(self) -> None:
        self._update_bindings()

    def selected_view(self) -> ProposalView | None:
        """The proposal under the cursor, as the daemon last described it."""
        return self.queue.view()

    def _show_selected(self) -> None:
        view = self.selected_view()
        shown = (view.proposal.id, view.proposal.version) if view is not None else None
        if shown is not None and self._shown_version is not None and shown != self._shown_version:
            if shown[0] == self._shown_version[0]:
                # The same proposal, re-priced under the operator's eyes: as if the cursor had moved by itself.
                self.queue.moved_by_itself_at = self._clock()
                self.set_timer(self._selection_grace + 0.05, self._show_selected)
        self._shown_version = shown
        card = self.card
        card.view = view
        card.stale = not self.link.up
        card.blocker = self._why_not("approve", drawn=True) if view is not None else ""
        self._update_bindings()

    # --- what may be done now ----------------------------------------------------------

    def why_not(self, action: str) -> str:
        """Why an action is greyed out now, in words ("" when it is available)."""
        return self._why_not(action, drawn=False)

    def _why_not(self, action: str, drawn: bool) -> str:
        view = self.selected_view()
        shown = self.card.drawn
        on_screen = drawn or (
            view is not None
            and shown is not None
            and (shown.proposal.id, shown.proposal.version) == (view.proposal.id, view.proposal.version)
        )
        facts = Facts(
            link_up=self.link.up,
            status=self.model.status,
            view=view,
            in_flight=self.in_flight,
            cursor_moved_by_itself=self._recently(self.queue.moved_by_itself_at, self._selection_grace),
            has_positions=bool(self.model.positions),
            has_daemon=self._info is not None,
            just_connected=self._recently(self._connected_at, self._reconnect_grace),
            on_screen=on_screen,
        )
        return availability.why_not(action, facts)

    def _recently(self, at: float | None, grace: float) -> bool:
        return at is not None and self._clock() - at < grace

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Grey out (None) what cannot be done now; the card and a key press say why."""
        return None if self.why_not(action) else True

    def _available(self, action: str) -> bool:
        return bool(self.check_action(action, ()))

    def _update_bindings(self) -> None:
        # Redraw the key bar only when what is available changed.
        enabled = tuple(self._available(k.action) for k in self.keys.keys)
        if enabled != self._enabled:
            self._enabled = enabled
            self.keys.refresh()

    def on_key(self, event: events.Key) -> None:
        """A greyed-out key reaches the screen (its binding did not run): say why instead of doing nothing."""
        action = self._ACTION_OF_KEY.get(event.key)
        if action is not None:
            event.stop()
            reason = self.why_not(action)
            if reason:
                self.cannot(action, reason)

    def cannot(self, action: str, reason: str) -> None:
        """Say why an action did not run (once per reason within a few seconds)."""
        now = self._clock()
        if now - self._toasts.get(reason, -TOAST_AGAIN_AFTER) < TOAST_AGAIN_AFTER:
            return
        self._toasts[reason] = now
        self.notify(reason, title=f"cannot {action.replace('_', ' ')}", severity="warning")

    # --- sending -----------------------------------------------------------------------

    async def _send(self, make: Callable[[str], Command], label: str, proposal_id: str | None = None) -> Reply | None:
        try:
            return await self._sender.send(make, label)
        finally:
            if proposal_id is not None:
                self.in_flight.pop(proposal_id, None)
                self._show_selected()

    def _run(self, work: Awaitable[object]) -> None:
        self.run_worker(work, group="commands")

    def _decide(self, make: Callable[[str], Command], label: str, view: ProposalView, what: str) -> None:
        """Send a decision on `view`, if it is still pending at the version the operator saw."""
        current = self.model.proposals.get(view.proposal.id)
        if current is None or current.proposal.version != view.proposal.version or not self.link.up:
            shown = f"{view.proposal.id} v{view.proposal.version}"
            self.cannot(what, f"{shown} is no longer pending as shown: nothing sent")
            return
        pid = view.proposal.id
        self.in_flight[pid] = what
        self._show_selected()
        self._run(self._send(make, label, pid))

    # --- decisions -----------------------------------------------------------------------

    def action_approve(self) -> None:
        view = self.selected_view()
        if view is None:
            return
        status = self.model.status
        if needs_leverage_acknowledgment(view, status.leverage_acknowledged if status else True):
            self.open_acknowledgment(AcknowledgmentKind.LEVERAGE)
            return
        p = view.proposal

        def approve(confirm_novel: bool) -> None:
            label = f"approve {p.id} v{p.version}"
            self._decide(lambda cid: Approve(cid, p.id, p.version, "", confirm_novel), label, view, "approval")

        if p.novel:
            self.app.push_screen(NoveltyScreen(view), lambda yes: approve(True) if yes else None)
        else:
            approve(False)

    def action_override(self) -> None:
        view = self.selected_view()
        if view is None:
            return
        p = view.proposal

        def send(request: OverrideRequest, confirm_novel: bool) -> None:
            def make(cid: str) -> Override:
                return Override(
                    cid,
                    p.id,
                    p.version,
                    request.edits,
                    request.reason,
                    confirm_risk_increase=request.confirm_risk_increase,
                    confirm_novel=confirm_novel,
                )

            self._decide(make, f"override {p.id} v{p.version}", view, "override")

        def edited(request: OverrideRequest | None) -> None:
            if request is None:
                return
            if p.novel:
                self.app.push_screen(NoveltyScreen(view), lambda yes: send(request, True) if yes else None)
            else:
                send(request, False)

        self.app.push_screen(OverrideScreen(view), edited)

    def action_reject(self) -> None:
        view = self.selected_view()
        if view is None:
            return
        p = view.proposal

        def reject(reason: str | None) -> None:
            if reason is not None:
                self._decide(lambda cid: Reject(cid, p.id, reason), f"reject {p.id} v{p.version}", view, "rejection")

        self.app.push_screen(RejectScreen(view), reject)

    # --- other commands ------------------------------------------------------------------

    def action_rearm(self) -> None:
        self._open_rearm()

    def _open_rearm(self, error: str = "") -> None:
        def typed(text: str | None) -> None:
            if text is not None:
                self._run(self._rearm(text))

        self.app.push_screen(rearm_screen(self.model.status, error), typed)

    async def _rearm(self, text: str) -> None:
        reply = await self._send(lambda cid: Rearm(cid, text, "re-armed from the console"), "re-arm")
        if reply is not None and not reply.ok and "type" in reply.reason:
            self._open_rearm(reply.reason)

    def action_pause_model(self) -> None:
        status = self.model.status
        if status is not None and status.model.paused:
            self._run(self._send(lambda cid: ResumeModel(cid, "resumed from the console"), "resume model"))
        else:
            self._run(self._send(lambda cid: PauseModel(cid, "paused from the console"), "pause model"))

    def action_close_position(self) -> None:
        view = self.selected_view()
        preferred = view.proposal.symbol if view else None

        def close(request: CloseRequest | None) -> None:
            if request is None:
                return
            if not self.link.up:
                self.cannot("close_position", availability.OFFLINE)
                return
            symbol, qty = request.symbol, request.qty
            self._run(self._send(lambda cid: _close(cid, symbol, qty), f"close {request.words}"))

        self.app.push_screen(ClosePositionScreen(self.model.positions, preferred), close)

    def action_reenable_throttle(self) -> None:
        self._run(self._send(lambda cid: ReenableThrottle(cid, "re-enabled from the console"), "throttle"))

    def action_model_card(self) -> None:
        if self._info is not None:
            self.app.push_screen(ModelCardScreen(self._info.model_card))

    def action_performance(self) -> None:
        if self._info is not None:
            self.app.push_screen(PerformanceScreen(self._info.performance))

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(self.help_rows()))

    def action_quit(self) -> None:
        self.app.exit()

    # --- acknowledgments ---------------------------------------------------------------

    def offer_acknowledgments(self) -> None:
        """Open the acknowledgment the daemon waits for, once, when nothing else is on screen.

        Never while HALTED: the model does not propose then, and HALTED must stay in front of the operator.
        """
        status = self.model.status
        if not self.link.up or status is None or self.app.screen is not self:
            return
        if status.trading_state is TradingState.HALTED:
            return
        for kind in status.needs_acknowledgment:
            if kind not in self._ack_declined and kind not in self._ack_sending:
                self.open_acknowledgment(kind)
                return

    def open_acknowledgment(self, kind: AcknowledgmentKind, error: str = "") -> None:
        """Show an acknowledgment in plain words; the typed phrase goes to the daemon."""
        if any(isinstance(s, TypedConfirmScreen) and s.kind is not None for s in self.app.screen_stack):
            return

        def typed(text: str | None) -> None:
            if text is None:
                self._ack_declined.add(kind)
                self.notify("not recorded: open it again from the command palette (ctrl+p)", title=kind.value)
            else:
                self._ack_sending.add(kind)
                self._run(self._acknowledge(kind, text))

        self.app.push_screen(acknowledgment_screen(kind, self.model.status, self._operators, error), typed)

    async def _acknowledge(self, kind: AcknowledgmentKind, text: str) -> None:
        try:
            reply = await self._send(lambda cid: Acknowledge(cid, kind, text), f"acknowledge {kind.value}")
        finally:
            self._ack_sending.discard(kind)  # not offered again while the typed phrase is on its way
        if reply is not None and not reply.ok:
            self.open_acknowledgment(kind, reply.reason)

    # --- the command palette -----------------------------------------------------------

    def palette_commands(self) -> Iterator[SystemCommand]:
        """The palette's entries for this screen: every titled key, the throttle and the acknowledgments."""
        for b in Binding.make_bindings(self.BINDINGS):
            if b.show and b.tooltip:
                title, _, what = b.tooltip.partition("\n")
                action = parse_action(b.action)[1]
                yield SystemCommand(title, f"{what} ({self.app.get_key_display(b)})", partial(self._palette, action))
        throttle = partial(self._palette, "reenable_throttle")
        yield SystemCommand("Re-enable the order throttle", "after it tripped", throttle)
        yield SystemCommand(
            "Acknowledge the model's risks",
            "let the model propose (typed acknowledgment)",
            partial(self._palette, "acknowledge", AcknowledgmentKind.MODEL_PROPOSALS),
        )
        yield SystemCommand(
            "Acknowledge leverage above 5x",
            "what leverage does to liquidation (typed acknowledgment)",
            partial(self._palette, "acknowledge", AcknowledgmentKind.LEVERAGE),
        )

    def _palette(self, action: str, kind: AcknowledgmentKind | None = None) -> None:
        reason = self.why_not(action)
        if reason:
            self.cannot(action, reason)
        elif kind is not None:
            self._ack_declined.discard(kind)
            self.open_acknowledgment(kind)
        else:
            getattr(self, f"action_{action}")()


def _close(cid: str, symbol: str, qty: Decimal | None) -> ClosePosition:
    return ClosePosition(cid, symbol, qty, "closed from the console")
