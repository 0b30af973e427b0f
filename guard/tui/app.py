"""The operator console: a Textual client of the daemon's control API.

The app owns what outlives any screen: the one link to the daemon (a reader worker posting typed
messages, see `DaemonLink`), the daemon's state as last heard (`ConsoleModel`), the kill switch and
notifications. The main screen (`ConsoleScreen`) owns the layout, the cursor and the
decisions. It renders what the daemon says and sends what the operator decides; it holds no
trading logic and never guesses an outcome: the banner turns red when the daemon echoes HALTED,
not when the kill key is pressed (that shows "KILL sent" at once), and every HALTED the daemon
echoes clears whatever dialog is on top, so the operator sees it.

Imports stay on the client side: protocol, client, domain, config — never torch, ccxt, or the
daemon's risk, approval, broker or journal code.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar

import structlog
from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from guard.api.client import ApiClient
from guard.api.protocol import Command, Reply
from guard.config import Config
from guard.domain import TradingState
from guard.errors import DaemonError
from guard.paths import StatePaths
from guard.tui.acknowledgments import Acknowledgments
from guard.tui.console import ConsoleScreen
from guard.tui.link import DaemonLink
from guard.tui.logfile import log_to_file
from guard.tui.model import Changed, ConsoleModel, LinkState, Notice
from guard.tui.screens.orders import ListScreen

log = structlog.get_logger(__name__)

SELECTION_GRACE = 0.6
"""After the proposal under the cursor changed by itself, decisions wait this long: look again."""
RECONNECT_GRACE = 1.0
"""After the console (re)connects, every key but the kill waits this long: the screen just changed."""
KILL_REASON = "kill switch pressed in the console"
FREEZE_EVERY = 200
"""Freeze the collector's view of long-lived objects again once this many more proposals are held."""
KILL_HELP = "KILL — halt, cancel, flatten\nno confirmation; works on every screen (inside a text field K is a letter)"

_KILL_NOTICE = Notice("KILL sent — waiting for the daemon to confirm…", "bold white on red", until_halted=True)


class GuardApp(App[int]):
    """The console.

    Args:
        client: How to reach the daemon; None runs the console with no daemon (snapshot tests post
            `DaemonLink` messages to it themselves).
        operator: The operator id every command is sent as.
        config: The local config (where the daemon is: its API and state dir; its rules come from the daemon).
        clock: Local monotonic seconds (tests freeze it).
        selection_grace: How long decisions stay greyed after the proposal under the cursor changed by itself.
        reconnect_grace: How long every key but the kill stays greyed after the console (re)connects.
        freeze_gc: Freeze long-lived views out of the cyclic collector (the real process; not tests).
    """

    TITLE = "guard"
    # The ignores: Textual annotates these so that mypy reads them as instance variables.
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (150, "-wide")]  # type: ignore[misc]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (36, "-tall")]  # type: ignore[misc]
    """Every screen gets these classes: the main screen's layout and where toasts go follow them."""
    CSS = """
    /* Toasts sit over the card's lower right, never over the positions summary or the keys (on every screen). */
    ToastRack { margin-bottom: 3; }
    Screen.-tall ToastRack { margin-bottom: 4; }
    Screen.-wide.-tall ToastRack { margin-bottom: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("K", "kill('K')", "KILL", priority=True, id="kill", tooltip=KILL_HELP),
        Binding("ctrl+k", "kill", "KILL", show=False, priority=True, id="kill-ctrl", tooltip=KILL_HELP),
    ]

    def __init__(
        self,
        client: ApiClient | None,
        operator: str,
        *,
        config: Config | None = None,
        clock: Callable[[], float] = time.monotonic,
        selection_grace: float = SELECTION_GRACE,
        reconnect_grace: float = RECONNECT_GRACE,
        freeze_gc: bool = False,
    ) -> None:
        super().__init__()
        self.operator = operator
        """Who this console speaks for; every command is journaled under this id."""
        self.config = config or Config()
        self.clock = clock
        """Local monotonic seconds: time left is the daemon's clock plus time since it last spoke."""
        self.model = ConsoleModel()
        """The daemon's state as last heard; the screens render from it."""
        self.link_state = LinkState()
        """Whether the daemon is connected; when not, everything shown is stale."""
        self._link: DaemonLink | None = None
        if client is not None:
            kill_client = ApiClient.from_config(self.config, timeout=1.0, operator=operator)
            paths = StatePaths(self.config.state_dir)
            self._link = DaemonLink(client, operator, self, kill_client=kill_client, paths=paths)
        self._freeze_gc = freeze_gc
        self._key_in_hand: str | None = None
        self._frozen_views = 0
        acknowledgments = Acknowledgments(self, self.model, self.send, self._run_command)
        self.main_screen = ConsoleScreen(
            self.model,
            self.send,
            acknowledgments=acknowledgments,
            info=client,
            key_in_hand=lambda: self._key_in_hand,
            clock=clock,
            selection_grace=selection_grace,
            reconnect_grace=reconnect_grace,
        )
        """The main screen, always at the bottom of the stack."""

    def get_default_screen(self) -> Screen[Any]:
        return self.main_screen

    def on_mount(self) -> None:
        if self._link is not None:
            self.run_worker(self._link.run(), name="daemon-link", group="link", exclusive=True)

    # --- what the daemon says ----------------------------------------------------------

    def on_daemon_link_connected(self, message: DaemonLink.Connected) -> None:
        was = self._trading_state()
        self.model.load(message.snapshot, self.clock())
        self._freeze_views()
        self.link_state = LinkState(up=True, reason="")
        self.main_screen.decisions.in_flight.clear()
        log.info("console_live", pending=len(self.model.order))
        self.main_screen.show_link(self.link_state)
        self._after_echo(was)

    def on_daemon_link_disconnected(self, message: DaemonLink.Disconnected) -> None:
        since = self.link_state.since if not self.link_state.up and self.link_state.since else self.clock()
        self.link_state = LinkState(False, message.reason, message.attempt, message.retry_in, since)
        self.main_screen.show_link(self.link_state)

    def on_daemon_link_pushed(self, message: DaemonLink.Pushed) -> None:
        was = self._trading_state()
        now = self.clock()
        changed = Changed.NOTHING
        for pushed in message.take():
            changed |= self.model.apply(pushed, now)
        if len(self.model.proposals) - self._frozen_views >= FREEZE_EVERY:
            self._freeze_views()
        self.main_screen.show(changed)
        self._after_echo(was)

    def on_daemon_link_prices_pushed(self, message: DaemonLink.PricesPushed) -> None:
        self.main_screen.show(self.model.apply(message.prices, self.clock()))

    def _trading_state(self) -> TradingState | None:
        status = self.model.status
        return status.trading_state if status is not None else None

    def _after_echo(self, was: TradingState | None) -> None:
        """The daemon says HALTED where it did not before: nothing may stand between it and the operator."""
        if was is not TradingState.HALTED and self._trading_state() is TradingState.HALTED:
            self.bring_halted_forward()

    def bring_halted_forward(self) -> None:
        """Close every dialog and info screen, unanswered: the main screen shows HALTED."""
        closed = [s for s in self.screen_stack if s is not self.main_screen]
        while self.screen is not self.main_screen and len(self.screen_stack) > 1:
            self.pop_screen()  # synchronous, and a popped dialog's answer callback is never called
        self.main_screen.acknowledgments.closed_unanswered(closed)
        if closed:
            log.info("halted_brought_forward", closed=[type(s).__name__ for s in closed])

    def _freeze_views(self) -> None:
        """Take the views held now out of the cyclic collector's sight.

        A thousand proposal views are ~100k long-lived objects; a full collection scanning them took
        20-35 ms, a stall a key press (or the kill's echo) can land on. Views hold no cycles, so
        reference counting still frees them when the daemon replaces them.
        """
        if self._freeze_gc:
            gc.freeze()
            self._frozen_views = len(self.model.proposals)

    # --- the kill switch -----------------------------------------------------------------

    async def on_event(self, event: events.Event) -> None:
        # The screens need to know when a binding is being checked for a key typed now (not to draw the key bar).
        if isinstance(event, events.Key) and not event.is_forwarded:
            self._key_in_hand = event.key
            try:
                await super().on_event(event)
            finally:
                self._key_in_hand = None
        else:
            await super().on_event(event)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """K is not the kill switch when typed right behind a refused dialog key (meant for its field; ctrl+k is)."""
        if action == "kill" and parameters == ("K",) and self.screen is self.main_screen and self._key_in_hand == "K":
            return None if self.main_screen.key_refused("kill", "") else True
        typed_k = action == "kill" and parameters == ("K",) and self._key_in_hand == "K"
        if typed_k and isinstance(self.screen, ListScreen):  # the orders and limits screens' refused c, e, Enter
            return None if self.screen.dropping_typed_keys() else True
        return True

    def action_kill(self, key: str = "") -> None:
        """The kill switch: no confirmation; the banner shows it was sent, the daemon's echo turns it red.

        Args:
            key: The key that pulled it ("K"; ctrl+k and the palette leave it empty).
        """
        self.main_screen.notice = _KILL_NOTICE
        log.warning("kill_pressed", operator=self.operator)
        self.run_worker(self._kill(), group="kill")

    async def _kill(self) -> None:
        console = self.main_screen
        if self._link is None:
            console.notice = Notice("KILL NOT SENT: this console has no daemon — run `guard kill`", "bold red")
            return
        outcome = await self._link.kill(KILL_REASON)
        halted = self._trading_state() is TradingState.HALTED
        if not outcome.ok:
            console.notice = Notice(f"KILL NOT CONFIRMED: {outcome.text}", "bold white on red")
            self.notify(outcome.text, title="KILL NOT CONFIRMED", severity="error", timeout=30)
            return
        if console.notice == _KILL_NOTICE:
            waiting = Notice(f"kill acknowledged ({outcome.text}): waiting for HALTED…", "bold red", until_halted=True)
            console.notice = None if halted else waiting
        if halted:
            self.bring_halted_forward()  # killed while already HALTED: no transition to wait for

    # --- sending -----------------------------------------------------------------------

    def _run_command(self, work: Awaitable[object]) -> None:
        self.run_worker(work, group="commands")

    async def send(self, make: Callable[[str], Command], label: str) -> Reply | None:
        """Send a command and show the daemon's answer; None when it never got one."""
        if self._link is None:
            self.notify(f"{label}: no daemon to send it to", severity="error")
            return None
        try:
            reply = await self._link.send(make)
        except DaemonError as e:
            self.notify(f"{label}: not confirmed — {e}", title="not confirmed", severity="error", timeout=15)
            return None
        log.info("command_answered", command=label, ok=reply.ok, reason=reply.reason)
        if reply.ok:
            self.notify(f"{label}: {reply.reason or 'done'}", timeout=5)
        else:
            self.notify(f"{label} refused: {reply.reason}", title="refused", severity="error", timeout=15)
        return reply

    # --- the command palette -----------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        title, _, what = KILL_HELP.partition("\n")
        yield SystemCommand(title, what, self.action_kill)
        yield from self.main_screen.palette_commands()


# --- entry points ----------------------------------------------------------------------


def run_tui(config: Config, operator: str) -> int:
    """Attach the console to the daemon `config` points at, as `operator`. Quitting leaves the daemon running."""
    log_to_file(StatePaths(config.state_dir))
    app = GuardApp(ApiClient.from_config(config, operator=operator), operator, config=config, freeze_gc=True)
    app.run()
    return app.return_code or 0
