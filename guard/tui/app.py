"""The operator console: a Textual client of the daemon's control API.

It renders what the daemon says and sends what the operator decides; it holds no trading logic
and never guesses an outcome: the banner turns red when the daemon echoes HALTED, not when the
kill key is pressed (that shows "KILL sent" at once). One reader worker (`DaemonLink`) posts
typed messages; the app applies them to a `ConsoleModel` and pushes the result down into the
widgets, redrawing at most a few times a second except for what the operator must see now
(status, the selected proposal, the connection).

Imports stay on the client side: protocol, client, domain, config — never torch, ccxt, or the
daemon's risk, approval, broker or journal code.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, ClassVar

import structlog
from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen

from guard.api.client import ApiClient
from guard.api.protocol import (
    Acknowledge,
    Approve,
    ClosePosition,
    Command,
    Override,
    PauseModel,
    ProposalView,
    Rearm,
    ReenableThrottle,
    Reject,
    Reply,
    ResumeModel,
)
from guard.config import Config
from guard.domain import AcknowledgmentKind, TradingState
from guard.errors import DaemonError
from guard.paths import StatePaths
from guard.tui import availability
from guard.tui.availability import Facts, needs_leverage_acknowledgment
from guard.tui.link import DaemonLink
from guard.tui.logfile import log_to_file
from guard.tui.model import Changed, ConsoleModel, LinkState, Notice
from guard.tui.screens.acknowledge import acknowledgment_screen, rearm_screen
from guard.tui.screens.dialogs import ClosePositionScreen, NoveltyScreen, RejectScreen
from guard.tui.screens.info import HelpScreen, ModelCardScreen, PerformanceScreen
from guard.tui.screens.override import OverrideRequest, OverrideScreen
from guard.tui.widgets.banner import Banner
from guard.tui.widgets.card import DecisionCard
from guard.tui.widgets.keybar import KeyBar
from guard.tui.widgets.panes import EventLog, PositionsPane, PricesPane
from guard.tui.widgets.queue import ProposalQueue

log = structlog.get_logger(__name__)

REDRAW_SECONDS = 0.25
"""Batched redraws (positions, prices, log, the queue): four a second, never per tick."""
SELECTION_GRACE = 0.6
"""After the cursor moved by itself (the selected proposal left), approve waits this long: look again."""
KILL_REASON = "kill switch pressed in the console"
FREEZE_EVERY = 200
"""Freeze the collector's view of long-lived objects again once this many more proposals are held."""

_KILL_NOTICE = Notice("KILL sent — waiting for the daemon to confirm…", "bold white on red")


class GuardApp(App[int]):
    """The console.

    Args:
        client: How to reach the daemon; None runs the console with no daemon (snapshot tests post
            `DaemonLink` messages to it themselves).
        operator: The operator id every command is sent as.
        config: The local config (the dead-man policy the acknowledgment explains; the state dir).
        clock: Local monotonic seconds (tests freeze it).
        selection_grace: How long approve stays greyed after the cursor moved by itself.
        freeze_gc: Freeze long-lived views out of the cyclic collector (the real process; not tests).
    """

    TITLE = "guard"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (150, "-wide")]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (36, "-tall")]
    CSS = """
    #body { height: 1fr; }
    #main { width: 1fr; min-width: 84; }
    #side { display: none; width: 40%; max-width: 72; }
    #queue { height: 8; }
    #card { height: 1fr; }
    Screen.-wide.-tall #side { display: block; }
    Screen.-tall #queue { height: 2fr; border-top: solid $primary; border-title-align: left; }
    Screen.-tall #card { height: 3fr; border-top: solid $primary; }
    #side > * { border-top: solid $primary; }
    #positions { height: auto; max-height: 14; }
    #prices { height: auto; max-height: 14; }
    #log { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("K", "kill", "KILL", priority=True, id="kill"),
        Binding("ctrl+k", "kill", "KILL", show=False, priority=True, id="kill-ctrl"),
        Binding("a", "approve", "approve"),
        Binding("o", "override", "override"),
        Binding("r", "reject", "reject"),
        Binding("ctrl+r", "rearm", "re-arm"),
        Binding("p", "pause_model", "pause/resume"),
        Binding("c", "close_position", "close"),
        Binding("m", "model_card", "card"),
        Binding("l", "performance", "live"),
        Binding("question_mark", "help", "help"),
        Binding("q", "quit", "quit", show=False),
        Binding("down,j", "cursor(1)", "next", show=False),
        Binding("up,k", "cursor(-1)", "previous", show=False),
        Binding("pagedown", "cursor(10)", show=False),
        Binding("pageup", "cursor(-10)", show=False),
        Binding("home", "cursor_to(0)", show=False),
        Binding("end", "cursor_to(-1)", show=False),
    ]

    def __init__(
        self,
        client: ApiClient | None,
        operator: str,
        *,
        config: Config | None = None,
        clock: Callable[[], float] = time.monotonic,
        selection_grace: float = SELECTION_GRACE,
        freeze_gc: bool = False,
    ) -> None:
        super().__init__()
        self.operator = operator
        """Who this console speaks for; every command is journaled under this id."""
        self.config = config or Config()
        self.clock = clock
        """Local monotonic seconds: time left is the daemon's clock plus time since it last spoke."""
        self.model = ConsoleModel()
        """The daemon's state as last heard; the widgets render from it."""
        self.link_state = LinkState()
        """Whether the daemon is connected; when not, everything shown is stale."""
        self._client = client
        self._link: DaemonLink | None = None
        if client is not None:
            kill_client = ApiClient.from_config(self.config, timeout=1.0, operator=operator)
            paths = StatePaths(self.config.state_dir)
            self._link = DaemonLink(client, operator, self, kill_client=kill_client, paths=paths)
        self._grace = selection_grace
        self._freeze_gc = freeze_gc
        self._frozen_views = 0
        self._in_flight: dict[str, str] = {}
        self._dirty = Changed.NOTHING
        self._ack_open = False
        self._ack_declined: set[AcknowledgmentKind] = set()
        self._enabled: tuple[bool, ...] = ()
        self._status_key: tuple[object, ...] = ()
        # The main screen's widgets, made once: the app pushes state down into them.
        self.banner = Banner(id="banner")
        self.queue = ProposalQueue(self.model, self.clock, id="queue")
        self.card = DecisionCard(id="card")
        self.positions = PositionsPane(id="positions")
        self.prices = PricesPane(self.model, id="prices")
        self.events = EventLog(self.model, id="log")
        self.keys = KeyBar(id="keys")

    # --- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield self.banner
        with Horizontal(id="body"):
            with Vertical(id="main"):
                yield self.queue
                yield self.card
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
        self.queue.focus()
        if self._link is not None:
            self.run_worker(self._link.run(), name="daemon-link", group="link", exclusive=True)
        self.set_interval(REDRAW_SECONDS, self._redraw)
        self.set_interval(1.0, self._tick)

    # --- what the daemon says ----------------------------------------------------------

    def on_daemon_link_connected(self, message: DaemonLink.Connected) -> None:
        self.model.load(message.snapshot, self.clock())
        self._freeze_views()
        self.link_state = LinkState(up=True, reason="")
        self._in_flight.clear()
        log.info("console_live", pending=len(self.model.order))
        self._redraw(Changed.EVERYTHING)

    def on_daemon_link_disconnected(self, message: DaemonLink.Disconnected) -> None:
        since = self.link_state.since if not self.link_state.up and self.link_state.since else self.clock()
        self.link_state = LinkState(False, message.reason, message.attempt, message.retry_in, since)
        self._redraw(Changed.EVERYTHING)

    def on_daemon_link_pushed(self, message: DaemonLink.Pushed) -> None:
        selected = self.queue.selected_id
        now = self.clock()
        changed = Changed.NOTHING
        for pushed in message.take():
            changed |= self.model.apply(pushed, now)
        self._dirty |= changed
        # What the operator must see now: a change of state (not of equity), or of the proposal under the cursor.
        status_key = availability.status_key(self.model.status)
        if status_key != self._status_key:
            self._status_key = status_key
            # The banner alone in the next frame (HALTED in red as soon as possible); the rest in the one after.
            self._show_status()
            self.call_after_refresh(self._redraw)
        elif Changed.PROPOSALS in changed and (
            selected is None or self.model.proposals.get(selected) != self.card.view
        ):
            self._redraw()

    def on_daemon_link_prices_pushed(self, message: DaemonLink.PricesPushed) -> None:
        self._dirty |= self.model.apply(message.prices, self.clock())

    def _redraw(self, extra: Changed = Changed.NOTHING) -> None:
        """Push what changed down into the widgets (the 4 Hz batch, or at once for what is urgent)."""
        dirty, self._dirty = self._dirty | extra, Changed.NOTHING
        stale = not self.link_state.up
        banner = self.banner
        banner.link = self.link_state
        if Changed.STATUS in dirty:
            status = self.model.status
            self._show_status()
            self.card.leverage_acknowledged = status.leverage_acknowledged if status else True
            self.card.trading_state = status.trading_state if status else None
            self.call_after_refresh(self._offer_acknowledgments)
        if Changed.PROPOSALS in dirty or stale != self.queue.stale:
            self.queue.sync(stale)
            if len(self.model.proposals) - self._frozen_views >= FREEZE_EVERY:
                self._freeze_views()
        if Changed.POSITIONS in dirty:
            self.positions.positions = self.model.positions
        if Changed.PRICES in dirty:
            self.prices.update_prices()
        if Changed.LOG in dirty:
            self.events.refresh()
        for pane in (self.positions, self.prices, self.events):
            pane.stale = stale
        if dirty & (Changed.PROPOSALS | Changed.STATUS):
            self._show_selected()

    def _show_status(self) -> None:
        banner = self.banner
        status = banner.status = self.model.status
        if status is not None and status.trading_state is TradingState.HALTED and banner.notice == _KILL_NOTICE:
            banner.notice = None  # the daemon's echo replaces "KILL sent"

    def _freeze_views(self) -> None:
        """Take the views held now out of the cyclic collector's sight.

        A thousand proposal views are ~100k long-lived objects; a full collection scanning them took
        20-35 ms, a stall a key press (or the kill's echo) can land on. Views hold no cycles, so
        reference counting still frees them when the daemon replaces them.
        """
        if self._freeze_gc:
            gc.freeze()
            self._frozen_views = len(self.model.proposals)

    def _tick(self) -> None:
        """Once a second: time left, "down for N s", and the end of the selection grace."""
        if not self.link_state.up:
            self.banner.clock = self.clock()
        if self.model.order:
            self.queue.refresh()
        self._show_selected()
        self._offer_acknowledgments()

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
        """The proposal under the cursor left: approve waits a moment, so nobody approves what they did not read."""
        if message.proposal_id is not None:
            self.set_timer(self._grace + 0.05, self._show_selected)
        self._show_selected()

    def selected_view(self) -> ProposalView | None:
        """The proposal under the cursor, as the daemon last described it."""
        return self.queue.view()

    def _show_selected(self) -> None:
        card = self.card
        view = self.selected_view()
        card.view = view
        card.stale = not self.link_state.up
        card.blocker = self.why_not("approve") if view is not None else ""
        self._update_bindings()

    # --- what may be done now ----------------------------------------------------------

    def why_not(self, action: str) -> str:
        """Why an action is greyed out now, in words ("" when it is available)."""
        facts = Facts(
            link_up=self.link_state.up,
            status=self.model.status,
            view=self.selected_view(),
            in_flight=self._in_flight,
            cursor_moved_by_itself=self._moved_recently(),
            has_positions=bool(self.model.positions),
            has_daemon=self._client is not None,
        )
        return availability.why_not(action, facts)

    def _moved_recently(self) -> bool:
        moved_at = self.queue.moved_by_itself_at
        return moved_at is not None and self.clock() - moved_at < self._grace

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Grey out (None) what cannot be done now; the card and a key press say why."""
        return None if self.why_not(action) else True

    def _update_bindings(self) -> None:
        # Redraw the key bar only when what is available changed.
        enabled = tuple(not self.why_not(a) for a in availability.KEYED)
        if enabled != self._enabled:
            self._enabled = enabled
            self.keys.refresh()

    def on_key(self, event: Any) -> None:
        """A greyed-out key says why instead of doing nothing."""
        action = {
            "a": "approve",
            "o": "override",
            "r": "reject",
            "ctrl+r": "rearm",
            "p": "pause_model",
            "c": "close_position",
        }.get(event.key)
        if action is not None and len(self.screen_stack) == 1:
            reason = self.why_not(action)
            if reason:
                self.notify(reason, title=f"cannot {action.replace('_', ' ')}", severity="warning")

    # --- sending -----------------------------------------------------------------------

    async def send(self, make: Callable[[str], Command], label: str, proposal_id: str | None = None) -> Reply | None:
        """Send a command and show the daemon's answer; None when it never got one."""
        if self._link is None:
            self.notify(f"{label}: no daemon to send it to", severity="error")
            return None
        try:
            reply = await self._link.send(make)
        except DaemonError as e:
            self.notify(f"{label}: not confirmed — {e}", title="not confirmed", severity="error", timeout=15)
            return None
        finally:
            if proposal_id is not None:
                self._in_flight.pop(proposal_id, None)
                self._show_selected()
        log.info("command_answered", command=label, ok=reply.ok, reason=reply.reason)
        if reply.ok:
            self.notify(f"{label}: {reply.reason or 'done'}", timeout=5)
        else:
            self.notify(f"{label} refused: {reply.reason}", title="refused", severity="error", timeout=15)
        return reply

    def _decide(self, make: Callable[[str], Command], label: str, view: ProposalView, what: str) -> None:
        pid = view.proposal.id
        self._in_flight[pid] = what
        self._show_selected()
        self.run_worker(self.send(make, label, pid), group="commands")

    # --- actions -----------------------------------------------------------------------

    def action_kill(self) -> None:
        """The kill switch: no confirmation; the banner shows it was sent, the daemon's echo turns it red."""
        self.banner.notice = _KILL_NOTICE
        log.warning("kill_pressed", operator=self.operator)
        self.run_worker(self._kill(), group="kill")

    async def _kill(self) -> None:
        if self._link is None:
            self.banner.notice = Notice("KILL NOT SENT: this console has no daemon — run `guard kill`", "bold red")
            return
        outcome = await self._link.kill(KILL_REASON)
        status = self.model.status
        if not outcome.ok:
            self.banner.notice = Notice(f"KILL NOT CONFIRMED: {outcome.text}", "bold white on red")
            self.notify(outcome.text, title="KILL NOT CONFIRMED", severity="error", timeout=30)
        elif self.banner.notice == _KILL_NOTICE and status is not None and status.trading_state is TradingState.HALTED:
            self.banner.notice = None
        elif self.banner.notice == _KILL_NOTICE:
            self.banner.notice = Notice(f"kill acknowledged ({outcome.text}): waiting for HALTED…", "bold red")

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
            self.push_screen(NoveltyScreen(view), lambda yes: approve(True) if yes else None)
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
                self.push_screen(NoveltyScreen(view), lambda yes: send(request, True) if yes else None)
            else:
                send(request, False)

        self.push_screen(OverrideScreen(view), edited)

    def action_reject(self) -> None:
        view = self.selected_view()
        if view is None:
            return
        p = view.proposal

        def reject(reason: str | None) -> None:
            if reason is not None:
                self._decide(lambda cid: Reject(cid, p.id, reason), f"reject {p.id}", view, "rejection")

        self.push_screen(RejectScreen(view), reject)

    def action_rearm(self) -> None:
        self._open_rearm()

    def _open_rearm(self, error: str = "") -> None:
        def typed(text: str | None) -> None:
            if text is not None:
                self.run_worker(self._rearm(text), group="commands")

        self.push_screen(rearm_screen(self.model.status, error), typed)

    async def _rearm(self, text: str) -> None:
        reply = await self.send(lambda cid: Rearm(cid, text, "re-armed from the console"), "re-arm")
        if reply is not None and not reply.ok and "type" in reply.reason:
            self._open_rearm(reply.reason)

    def action_pause_model(self) -> None:
        status = self.model.status
        if status is not None and status.model.paused:
            self.run_worker(self.send(lambda cid: ResumeModel(cid, "resumed from the console"), "resume model"))
        else:
            self.run_worker(self.send(lambda cid: PauseModel(cid, "paused from the console"), "pause model"))

    def action_close_position(self) -> None:
        view = self.selected_view()
        preferred = view.proposal.symbol if view else None

        def close(symbol: str | None) -> None:
            if symbol:
                make = partial(_close, symbol=symbol)
                self.run_worker(self.send(make, f"close {symbol}"), group="commands")

        self.push_screen(ClosePositionScreen(self.model.positions, preferred), close)

    def action_reenable_throttle(self) -> None:
        self.run_worker(self.send(lambda cid: ReenableThrottle(cid, "re-enabled from the console"), "throttle"))

    def action_model_card(self) -> None:
        assert self._client is not None
        self.push_screen(ModelCardScreen(self._client.model_card))

    def action_performance(self) -> None:
        assert self._client is not None
        self.push_screen(PerformanceScreen(self._client.performance))

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    # --- acknowledgments ---------------------------------------------------------------

    def _offer_acknowledgments(self) -> None:
        """Open the acknowledgment the daemon waits for, once, when nothing else is on screen."""
        status = self.model.status
        if not self.link_state.up or status is None or self._ack_open or len(self.screen_stack) > 1:
            return
        for kind in status.needs_acknowledgment:
            if kind not in self._ack_declined:
                self.open_acknowledgment(kind)
                return

    def open_acknowledgment(self, kind: AcknowledgmentKind, error: str = "") -> None:
        """Show an acknowledgment in plain words; the typed phrase goes to the daemon."""
        if self._ack_open:
            return
        self._ack_open = True

        def typed(text: str | None) -> None:
            self._ack_open = False
            if text is None:
                self._ack_declined.add(kind)
                self.notify("not recorded: open it again from the command palette (ctrl+p)", title=kind.value)
            else:
                self.run_worker(self._acknowledge(kind, text), group="commands")

        self.push_screen(acknowledgment_screen(kind, self.model.status, self.config.operators, error), typed)

    async def _acknowledge(self, kind: AcknowledgmentKind, text: str) -> None:
        reply = await self.send(lambda cid: Acknowledge(cid, kind, text), f"acknowledge {kind.value}")
        if reply is not None and not reply.ok:
            self.open_acknowledgment(kind, reply.reason)

    # --- the command palette -----------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help_text, action in (
            ("KILL — halt, cancel, flatten", "the kill switch (K, ctrl+k); no confirmation", "kill"),
            ("Approve the selected proposal", "as shown (a)", "approve"),
            ("Override the selected proposal", "edit size, leverage, stop, take-profit, limit (o)", "override"),
            ("Reject the selected proposal", "with an optional reason (r)", "reject"),
            ("Re-arm trading", "leave HALTED or REDUCING; type RE-ARM (ctrl+r)", "rearm"),
            ("Pause or resume the model", "stop or restart model proposals (p)", "pause_model"),
            ("Close a position", "reduce-only market order (c)", "close_position"),
            ("Model card", "what the model is and its limits (m)", "model_card"),
            ("Live performance vs claimed", "hit rate and calibration per confidence bucket (l)", "performance"),
            ("Re-enable the order throttle", "after it tripped", "reenable_throttle"),
            ("Help", "keys and screens (?)", "help"),
        ):
            yield SystemCommand(title, help_text, partial(self._palette, action))
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
            self.notify(reason, title=f"cannot {action.replace('_', ' ')}", severity="warning")
        elif kind is not None:
            self._ack_declined.discard(kind)
            self.open_acknowledgment(kind)
        else:
            getattr(self, f"action_{action}")()


def _close(cid: str, symbol: str) -> ClosePosition:
    return ClosePosition(cid, symbol, None, "closed from the console")


# --- entry points ----------------------------------------------------------------------


def run_tui(config: Config, operator: str) -> int:
    """Attach the console to the daemon `config` points at, as `operator`. Quitting leaves the daemon running."""
    log_to_file(StatePaths(config.state_dir))
    app = GuardApp(ApiClient.from_config(config, operator=operator), operator, config=config, freeze_gc=True)
    app.run()
    return app.return_code or 0
