"""The operator's decisions on proposals: approve, override, reject, each bound to the version shown.

A decision names the proposal version the operator saw. Its dialogs (novelty, override, reject)
hold that version and refuse to answer once it is gone; when they answer, the decision is sent only
if that version is still the pending one and the daemon is connected, and it is marked as on its
way until the daemon replies (so the same key cannot send it twice).
"""

from __future__ import annotations

from collections.abc import Callable

from guard.api.protocol import Approve, Command, Override, ProposalView, Reject
from guard.tui.handles import CommandPart, ConsoleHandles
from guard.tui.screens.dialogs import NoveltyScreen, RejectScreen
from guard.tui.screens.override import OverrideRequest, OverrideScreen


class Decisions(CommandPart):
    """Opens the decision dialogs and sends what the operator decided.

    Args:
        handles: The console's handles (its model tells whether the version shown is still the pending one).
        changed: Called when a decision starts or ends its way to the daemon (what is available changed).
    """

    def __init__(self, handles: ConsoleHandles, changed: Callable[[], None]) -> None:
        super().__init__(handles)
        self._changed = changed
        self.in_flight: dict[str, str] = {}
        """Proposal id -> the decision sent on it and not yet answered ("approval", "override", "rejection")."""

    def approve(self, view: ProposalView) -> None:
        """Approve `view` as shown; a novel one asks first."""
        p = view.proposal

        def approve(confirm_novel: bool) -> None:
            label = f"approve {p.id} v{p.version}"
            self._decide(lambda cid: Approve(cid, p.id, p.version, "", confirm_novel), label, view, "approval")

        if p.novel:
            self._push(NoveltyScreen(view), lambda yes: approve(True) if yes else None)
        else:
            approve(False)

    def override(self, view: ProposalView) -> None:
        """Open the override form on `view`; a novel one asks before the edits are sent."""
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
                self._push(NoveltyScreen(view), lambda yes: send(request, True) if yes else None)
            else:
                send(request, False)

        self._push(OverrideScreen(view), edited)

    def reject(self, view: ProposalView) -> None:
        """Ask for an optional reason, then reject `view`."""
        p = view.proposal

        def reject(reason: str | None) -> None:
            if reason is not None:
                self._decide(lambda cid: Reject(cid, p.id, reason), f"reject {p.id} v{p.version}", view, "rejection")

        self._push(RejectScreen(view), reject)

    def _decide(self, make: Callable[[str], Command], label: str, view: ProposalView, what: str) -> None:
        """Send a decision on `view`, if it is still pending at the version the operator saw."""
        pid = view.proposal.id
        current = self._model.proposals.get(pid)
        if current is None or current.proposal.version != view.proposal.version or not self._link_up():
            self._cannot(what, f"{pid} v{view.proposal.version} is no longer pending as shown: nothing sent")
            return
        self.in_flight[pid] = what
        self._changed()
        self._run(self._send_decision(make, label, pid))

    async def _send_decision(self, make: Callable[[str], Command], label: str, pid: str) -> None:
        try:
            await self._send(make, label)
        finally:
            self.in_flight.pop(pid, None)
            self._changed()
