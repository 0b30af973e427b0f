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
from typing import ClassVar

import structlog
from textual import events, on
from textual.app import ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen

from guard.api.protocol import ProposalView
from guard.domain import AcknowledgmentKind, TradingState
from guard.tui import availability
from guard.tui.acknowledgments import Acknowledgments, Send
from guard.tui.availability import Facts, needs_leverage_acknowledgment
from guard.tui.commands import Commands
from guard.tui.decisions import Decisions
from guard.tui.handles import ConsoleHandles
from guard.tui.keys import (
    CONSOLE_KEYS,
    TypedBehindRefusal,
    action_of_key,
    console_palette,
    help_rows,
    key_labels,
)
from guard.tui.model import Changed, ConsoleModel, LinkState, Notice
from guard.tui.screens.acknowledge import leverage_threshold
from guard.tui.screens.base import DecisionDialog
from guard.tui.screens.close import ClosePositionScreen
from guard.tui.screens.info import HelpScreen, InfoSource, ModelCardScreen, PerformanceScreen
from guard.tui.screens.limits import LimitsScreen
from guard.tui.screens.orders import OrdersScreen
from guard.tui.widgets.banner import Banner
from guard.tui.widgets.card import DecisionCard
from guard.tui.widgets.keybar import KeyBar
from guard.tui.widgets.orders import OrdersPane
from guard.tui.widgets.panes import EventLog, PositionsPane, PositionsSummary, PricesPane
from guard.tui.widgets.queue import ProposalQueue

log = structlog.get_logger(__name__)

REDRAW_SECONDS = 0.25
"""Batched redraws (positions, prices, log, the queue): four a second, never per tick."""
TOAST_AGAIN_AFTER = 3.0
"""The same "cannot" toast is not repeated within this many seconds (a typed phrase is one toast, not 30)."""


class ConsoleScreen(Screen[None]):
    """The console's main screen.

    Args:
        model: The daemon's state as last heard (the app applies what the daemon pushes).
        send: Sends a command and shows the daemon's answer (the app's `send`).
        acknowledgments: Opens the risk acknowledgments the daemon waits for.
        info: Where the model card and the live record come from (None: no daemon).
        key_in_hand: The key typed by the operator that the app is handling right now, if any.
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
    ConsoleScreen #orders { display: none; border-top: solid $primary; border-title-align: left; }
    ConsoleScreen.-tall #orders { display: block; }
    ConsoleScreen.-tall #orders.-empty { display: none; }
    """
    AUTO_FOCUS = None
    BINDINGS: ClassVar[list[BindingType]] = CONSOLE_KEYS
    _ACTION_OF_KEY: ClassVar[dict[str, str]] = action_of_key(CONSOLE_KEYS)
    """Key -> action (for saying why a greyed-out key did nothing)."""

    def __init__(
        self,
        model: ConsoleModel,
        send: Send,
        *,
        acknowledgments: Acknowledgments,
        info: InfoSource | None,
        key_in_hand: Callable[[], str | None],
        clock: Callable[[], float],
        selection_grace: float,
        reconnect_grace: float,
    ) -> None:
        super().__init__(id="console")
        self.model = model
        self.link = LinkState()
        """The connection to the daemon, as the app last told it."""
        self._send = send
        self._info = info
        self._key_in_hand = key_in_hand
        self._clock = clock
        self._selection_grace = selection_grace
        self._reconnect_grace = reconnect_grace
        self._connected_at: float | None = None
        handles = ConsoleHandles(
            lambda screen, answer: self.app.push_screen(screen, answer),
            model,
            send,
            self._run,
            link_up=lambda: self.link.up,
            cannot=self.cannot,
        )
        self.decisions = Decisions(handles, changed=self._show_selected)
        """The decisions on proposals: their dialogs, and the ones on their way to the daemon."""
        self.commands = Commands(handles)
        """The other commands on the desk (re-arm, the model, closing a position, the throttle)."""
        self._dirty = Changed.NOTHING
        self._enabled: tuple[bool, ...] = ()
        self._status_key: tuple[object, ...] = ()
        self._shown_version: tuple[str, int] | None = None
        self.acknowledgments = acknowledgments
        """The risk acknowledgments the daemon waits for."""
        self._toasts: dict[str, float] = {}
        self._typed_behind = TypedBehindRefusal(clock)
        self.banner = Banner(id="banner")
        self.queue = ProposalQueue(self.model, self._clock, id="queue")
        self.card = DecisionCard(id="card")
        self.summary = PositionsSummary(id="summary")
        self.positions = PositionsPane(id="positions")
        self.prices = PricesPane(self.model, id="prices")
        self.events = EventLog(self.model, id="log")
        self.orders_pane = OrdersPane(self.model, self._clock, id="orders")
        self.keys = KeyBar((), self._available, id="keys")

    # --- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield self.banner
        with Horizontal(id="body"):
            with Vertical(id="main"):
                yield self.queue
                yield self.card
                yield self.summary
                yield self.orders_pane
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
        self.keys.keys = key_labels(self.app, self.BINDINGS)
        self.set_focus(self.queue)
        self.set_interval(REDRAW_SECONDS, self._redraw)
        self.set_interval(1.0, self._tick)

    # --- what the daemon says (the app calls these) -------------------------------------

    def show_link(self, link: LinkState) -> None:
        """The connection changed: stale when down; on (re)connecting, keys wait a moment."""
        if link.up and not self.link.up:
            self._connected_at = self._clock()
            self.set_timer(self._reconnect_grace + 0.05, self._show_selected)
            self.acknowledgments.reconnected()
        self.link = link
        self._status_key = availability.status_key(self.model.status)
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
            # (Until the next frame after an urgent status the cursor may rest on a proposal that is gone: a key
            # then finds nothing selected and does nothing.)
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
            self.orders_pane.orders = status.orders if status else ()
            self.summary.resting = len(self.orders_pane.orders)
            self.card.leverage_acknowledged = status.leverage_acknowledged if status else True
            self.card.trading_state = status.trading_state if status else None
            self.card.sources = status.sources if status else ()
        if Changed.PROPOSALS in dirty or stale != self.queue.stale:
            self.queue.sync(stale)
        if Changed.POSITIONS in dirty:
            self.positions.positions = self.summary.positions = self.model.positions
        if Changed.PRICES in dirty:
            self.prices.update_prices()
        if Changed.LOG in dirty:
            self.events.refresh()
        for pane in (self.positions, self.summary, self.prices, self.events, self.orders_pane):
            pane.stale = stale
        if dirty & (Changed.PROPOSALS | Changed.STATUS):
            self._show_selected()
        if Changed.STATUS in dirty:
            self.offer_acknowledgments()

    def _show_status(self) -> None:
        banner = self.banner
        status = banner.status = self.model.status
        notice = banner.notice
        if (
            notice is not None
            and notice.until_halted
            and status is not None
            and status.trading_state is TradingState.HALTED
        ):
            banner.notice = None  # the daemon's echo replaces "KILL sent" and "waiting for HALTED"

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
            in_flight=self.decisions.in_flight,
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
        """Grey out (None) what cannot be done now; a key pressed for it says why (the card says it too)."""
        reason = self.why_not(action)
        key = self._key_in_hand()
        if key is not None and self._ACTION_OF_KEY.get(key) == action:  # Textual checking the binding of a typed key
            reason = self.key_refused(action, reason)
        return None if reason else True

    def key_refused(self, action: str, reason: str) -> str:
        """A key for `action` is being handled now: why it does nothing ("" when it may run).

        Called as the app reads the key, before the keys behind it: a refused key that opens a text field (r, o,
        c, ctrl+r) starts dropping what is typed right behind it, which was meant for that field — K included.
        """
        if self._typed_behind.active():
            self._typed_behind.dropped()
            return "typed right after a refused key"
        if reason:
            self.cannot(action, reason)
            if self._typed_behind.refused(action):
                self.cannot(action, "what was typed right after it is not run, K included (ctrl+k always kills)")
        return reason

    def dropping_typed_keys(self) -> bool:
        """True while keys typed right after a refused dialog key are dropped (they were meant for its field)."""
        return self._typed_behind.active()

    def _available(self, action: str) -> bool:
        # As it will be once the card has drawn the selection (a frame later): the bar does not flicker on every move.
        return not self.dropping_typed_keys() and not self._why_not(action, drawn=True)

    def _update_bindings(self) -> None:
        # Redraw the key bar only when what is available changed.
        enabled = tuple(self._available(k.action) for k in self.keys.keys)
        if enabled != self._enabled:
            self._enabled = enabled
            self.keys.refresh()

    def on_key(self, event: events.Key) -> None:
        """A key no binding took: a refused key (already explained), or one typed while typed keys are dropped."""
        if self.dropping_typed_keys():
            self._typed_behind.dropped()
            event.stop()
        elif event.key in self._ACTION_OF_KEY:
            event.stop()

    def cannot(self, action: str, reason: str) -> None:
        """Say why an action did not run (once per reason within a few seconds)."""
        now = self._clock()
        if now - self._toasts.get(reason, -TOAST_AGAIN_AFTER) < TOAST_AGAIN_AFTER:
            return
        self._toasts[reason] = now
        self.notify(reason, title=f"cannot {action.replace('_', ' ')}", severity="warning")

    # --- decisions (what the card showed, see `why_not`) ------------------------------------

    def action_approve(self) -> None:
        view = self.selected_view()
        status = self.model.status
        if view is not None and needs_leverage_acknowledgment(view, status.leverage_acknowledged if status else True):
            self.acknowledgments.open(AcknowledgmentKind.LEVERAGE)
        elif view is not None:
            self.decisions.approve(view)

    def action_override(self) -> None:
        if (view := self.selected_view()) is not None:
            self.decisions.override(view)

    def action_reject(self) -> None:
        if (view := self.selected_view()) is not None:
            self.decisions.reject(view)

    # --- other commands ------------------------------------------------------------------

    def _run(self, work: Awaitable[object]) -> None:
        self.run_worker(work, group="commands")

    def action_rearm(self) -> None:
        self.commands.rearm()

    def action_pause_model(self) -> None:
        self.commands.pause_model()

    def action_close_position(self) -> None:
        view = self.selected_view()
        self.commands.close_position(view.proposal.symbol if view else None)

    def action_reenable_throttle(self) -> None:
        self.commands.reenable_throttle()

    def action_orders(self) -> None:
        self.app.push_screen(OrdersScreen(self.model, self._send, self._run, lambda: self.link.up, self._clock))

    def action_limits(self) -> None:
        self.app.push_screen(LimitsScreen(self.model, self._send, self._run, lambda: self.link.up, self._clock))

    def action_model_card(self) -> None:
        if self._info is not None:
            self.app.push_screen(ModelCardScreen(self._info.model_card))

    def action_performance(self) -> None:
        if self._info is not None:
            self.app.push_screen(PerformanceScreen(self._info.performance))

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(help_rows(self.app, self.BINDINGS)))

    def action_quit(self) -> None:
        self.app.exit()

    def offer_acknowledgments(self) -> None:
        """Open an acknowledgment the daemon waits for, when connected and nothing else is in front."""
        if self.link.up and self.app.screen is self:
            self.acknowledgments.offer()

    # --- the command palette -----------------------------------------------------------

    def palette_commands(self) -> Iterator[SystemCommand]:
        """The palette's entries for this screen: every titled key, the throttle and the acknowledgments."""
        return console_palette(self.app, self.BINDINGS, leverage_threshold(self.model.status), self._palette)

    def _palette(self, action: str, kind: AcknowledgmentKind | None = None) -> None:
        reason = self.why_not(action)
        if reason:
            self.cannot(action, reason)
        elif kind is not None:
            self.acknowledgments.asked_for(kind)
        else:
            getattr(self, f"action_{action}")()
