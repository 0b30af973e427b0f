"""The operator's commands on the desk beyond decisions: re-arm, pause or resume the model, close a position,
re-enable the throttle.

Each opens its dialog if it has one and sends what the operator typed; the daemon checks it. A re-arm
phrase typed wrong opens the dialog again with the daemon's reason.
"""

from __future__ import annotations

from decimal import Decimal

from guard.api.protocol import ClosePosition, PauseModel, Rearm, ReenableThrottle, ResumeModel
from guard.tui import availability
from guard.tui.handles import CommandPart
from guard.tui.screens.acknowledge import rearm_screen
from guard.tui.screens.close import ClosePositionScreen, CloseRequest


class Commands(CommandPart):
    """Opens the commands' dialogs and sends what the operator typed."""

    def rearm(self, error: str = "") -> None:
        def typed(text: str | None) -> None:
            if text is not None:
                self._run(self._rearm(text))

        self._push(rearm_screen(self._model.status, error), typed)

    async def _rearm(self, text: str) -> None:
        reply = await self._send(lambda cid: Rearm(cid, text, "re-armed from the console"), "re-arm")
        if reply is not None and not reply.ok and "type" in reply.reason:
            self.rearm(reply.reason)

    def pause_model(self) -> None:
        status = self._model.status
        if status is not None and status.model.paused:
            self._run(self._send(lambda cid: ResumeModel(cid, "resumed from the console"), "resume model"))
        else:
            self._run(self._send(lambda cid: PauseModel(cid, "paused from the console"), "pause model"))

    def close_position(self, preferred: str | None) -> None:
        """Open the close dialog on the positions, `preferred` (the selected proposal's symbol) first."""

        def close(request: CloseRequest | None) -> None:
            if request is None:
                return
            if not self._link_up():
                self._cannot("close_position", availability.OFFLINE)
                return
            symbol, qty = request.symbol, request.qty
            self._run(self._send(lambda cid: _close(cid, symbol, qty), f"close {request.words}"))

        self._push(ClosePositionScreen(self._model.positions, preferred), close)

    def reenable_throttle(self) -> None:
        self._run(self._send(lambda cid: ReenableThrottle(cid, "re-enabled from the console"), "throttle"))


def _close(cid: str, symbol: str, qty: Decimal | None) -> ClosePosition:
    return ClosePosition(cid, symbol, qty, "closed from the console")
