"""The risk acknowledgments the daemon waits for: offered once each, the typed phrase sent as typed.

The daemon decides which acknowledgments it needs and checks the phrase; the console opens the
screen that explains it, sends what the operator typed, and opens it again with the daemon's
reason when the phrase was wrong. An acknowledgment the operator put off (Esc) is not offered again
by itself; the command palette opens it.

An acknowledgment the daemon recorded is not offered again until the daemon's status stops listing
it: the status it pushed just before recording can reach the console after the reply, and must not
open the screen a second time over the proposals the operator has just allowed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from textual.app import App
from textual.screen import Screen

from guard.api.protocol import Acknowledge, Command, Reply
from guard.domain import AcknowledgmentKind, TradingState
from guard.tui.model import ConsoleModel
from guard.tui.screens.acknowledge import acknowledgment_screen
from guard.tui.screens.dialogs import TypedConfirmScreen

Send = Callable[[Callable[[str], Command], str], Awaitable[Reply | None]]
Run = Callable[[Awaitable[object]], None]


class Acknowledgments:
    """Opens the acknowledgments the daemon waits for and sends the typed phrases.

    Args:
        app: Where the screens are pushed.
        model: The daemon's state as last heard (which acknowledgments it waits for, their phrases, and the
            rules they explain).
        send: Sends a command and shows the daemon's answer.
        run: Runs a coroutine as a worker of the screen that owns this.
    """

    def __init__(self, app: App[Any], model: ConsoleModel, send: Send, run: Run) -> None:
        self._app = app
        self._model = model
        self._send = send
        self._run = run
        self._declined: set[AcknowledgmentKind] = set()
        self._in_hand: set[AcknowledgmentKind] = set()
        """On screen, or typed and on its way: the screen's answer is handled a turn after it closes, and an offer
        in between must not open it a second time."""
        self._recorded: set[AcknowledgmentKind] = set()
        """Recorded by the daemon, and still listed by the last status heard (pushed before it recorded them)."""

    def offer(self) -> None:
        """Open the first acknowledgment the daemon waits for that was not put off, is not on screen or on its way,
        and was not just recorded.

        The caller offers only while connected and with nothing else in front. Never while HALTED: the model
        does not propose then, and HALTED must stay in front of the operator.
        """
        status = self._model.status
        if status is None:
            return
        self._recorded.intersection_update(status.needs_acknowledgment)
        if status.trading_state is TradingState.HALTED:
            return
        for kind in status.needs_acknowledgment:
            if kind not in self._declined and kind not in self._in_hand and kind not in self._recorded:
                self.open(kind)
                return

    def open(self, kind: AcknowledgmentKind, error: str = "") -> None:
        """Show an acknowledgment in plain words (one at a time); the typed phrase goes to the daemon."""
        if any(isinstance(s, TypedConfirmScreen) and s.kind is not None for s in self._app.screen_stack):
            return

        def typed(text: str | None) -> None:
            if text is None:
                self._in_hand.discard(kind)
                self._declined.add(kind)
                self._app.notify("not recorded: open it again from the command palette (ctrl+p)", title=kind.value)
            else:
                self._run(self._acknowledge(kind, text))

        self._in_hand.add(kind)
        self._app.push_screen(acknowledgment_screen(kind, self._model.status, error), typed)

    def closed_unanswered(self, screens: Iterable[Screen[Any]]) -> None:
        """These screens were closed without an answer (HALTED brought forward): what they asked is not in hand."""
        for screen in screens:
            if isinstance(screen, TypedConfirmScreen) and screen.kind is not None:
                self._in_hand.discard(screen.kind)

    def reconnected(self) -> None:
        """A fresh snapshot says anew what the daemon waits for (it may have restarted on another journal)."""
        self._recorded.clear()

    def asked_for(self, kind: AcknowledgmentKind) -> None:
        """The operator asked for this acknowledgment (the palette): open it, even if put off before."""
        self._declined.discard(kind)
        self.open(kind)

    async def _acknowledge(self, kind: AcknowledgmentKind, text: str) -> None:
        try:
            reply = await self._send(lambda cid: Acknowledge(cid, kind, text), f"acknowledge {kind.value}")
        finally:
            self._in_hand.discard(kind)
        if reply is not None and reply.ok:
            self._recorded.add(kind)
        elif reply is not None:
            self.open(kind, reply.reason)
