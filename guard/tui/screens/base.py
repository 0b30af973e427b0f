"""What every guard dialog shares: keys taken in the order typed, and a decision bound to what was shown.

Keys that move focus or close a dialog (tab, shift+tab, Enter, Esc) are priority bindings: the app
runs them as it reads them, before the next key is handed to a field, so `0.3⇥4⇥2450` typed at
full speed fills three fields, never one. A field takes its characters from its own queue, a
moment later: Enter therefore takes the focus away at once (what is typed after it reaches no
field, and K after it is the kill switch again) and answers once every field has taken what was
typed before it (`submit_when_typed`). A dialog focuses its first field while it mounts, and
the app reads no key until a pushed screen has mounted: `r` then `OK` typed at once puts "OK" in
the reason field (a field that got the focus a message later would leave `K` to the kill switch).

A decision dialog is about one proposal, as it was on screen when the key was pressed. If that
proposal leaves the queue, gets a new version, or the daemon goes out of reach while the dialog is
open, the dialog says so and sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, TypeVar

from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Static

from guard.api.protocol import ProposalView
from guard.tui.widgets.field import TextField

KILL_HINT = "ctrl+k: KILL (K too, outside text fields)"

DIALOG_CSS = """
ModalScreen { align: center middle; }
.dialog {
    width: 90%;
    max-width: 100;
    height: auto;
    max-height: 95%;
    border: thick $accent;
    background: $surface;
    padding: 0 1;
}
.dialog .title { text-style: bold; margin-bottom: 1; }
.dialog .error { color: $error; text-style: bold; }
.dialog .hint { color: $text-muted; }
.dialog .phrase { text-style: bold; color: $warning; margin-top: 1; }
.dialog VerticalScroll { height: auto; max-height: 16; }
.dialog.-fill { height: 95%; max-height: 40; }
.dialog.-fill VerticalScroll { height: 1fr; max-height: 100%; }
.dialog #stale-note { display: none; }
.dialog #stale-note.-shown { display: block; }
"""

ResultT = TypeVar("ResultT")


class GuardModal(ModalScreen[ResultT]):
    """A dialog whose structural keys run in the order typed and whose first field has the focus from the start."""

    DEFAULT_CSS = DIALOG_CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "back", priority=True),
        Binding("tab", "app.focus_next", show=False, priority=True),
        Binding("shift+tab", "app.focus_previous", show=False, priority=True),
    ]

    def prepare(self) -> Widget | None:
        """Set the dialog up once mounted; returns the widget typing belongs in (None: the dialog itself)."""
        return None

    def on_mount(self) -> None:
        target = self.prepare()
        if target is not None:
            # Screen.set_focus, not Widget.focus: the latter waits in the app's queue, behind the keys already typed.
            self.set_focus(target)

    _submitting = False

    def submit_when_typed(self, submit: Callable[[], None]) -> None:
        """Run `submit` once every field has taken the keys typed before this moment; none typed after reach them.

        If `submit` leaves the dialog open (it refused), the focus goes back where it was.
        """
        if self._submitting:
            return  # Enter twice: one answer
        self._submitting = True
        focused = self.focused
        self.set_focus(None)
        fields = list(self.query(TextField))
        remaining = len(fields)

        def answer() -> None:
            self._submitting = False
            if self.app.screen is not self:
                return  # closed meanwhile (Esc, or the daemon's HALTED)
            submit()
            if self.app.screen is self and self.focused is None:
                self.set_focus(focused)

        def field_done() -> None:
            nonlocal remaining
            remaining -= 1
            if remaining == 0:
                answer()

        if not fields:
            answer()
        for field in fields:
            field.call_later(field_done)  # after the keys already in that field's queue

    def action_cancel(self) -> None:
        self.dismiss(None)


class DecisionDialog(GuardModal[ResultT]):
    """A dialog about one proposal version: it refuses to answer once that version is no longer pending."""

    def __init__(self, view: ProposalView) -> None:
        super().__init__()
        self.view = view
        """The proposal as it was on screen when the dialog opened; the decision names this id and version."""
        self.problem = ""
        """Why nothing can be sent now ("" when the proposal is still pending as shown and the daemon is connected)."""

    def stale_note(self) -> Static:
        """The line that says why nothing will be sent (hidden while there is no reason)."""
        note = Static(f"✗ {self.problem}" if self.problem else "", id="stale-note", classes="error")
        note.set_class(bool(self.problem), "-shown")
        return note

    def follow(self, current: ProposalView | None, link_up: bool) -> None:
        """The console's latest word on this dialog's proposal (None: it left the queue) and on the link."""
        p = self.view.proposal
        if not link_up:
            problem = "not connected to the daemon: nothing can be sent now"
        elif current is None:
            problem = f"{p.id} left the queue (expired, or decided elsewhere): nothing will be sent"
        elif current.proposal.version != p.version:
            problem = (
                f"{p.id} changed to v{current.proposal.version} while this was open (you saw v{p.version}): "
                "nothing will be sent — go back and look again"
            )
        else:
            problem = ""
        self.problem = problem
        if self.is_mounted:
            note = self.query_one("#stale-note", Static)
            note.update(f"✗ {problem}" if problem else "")
            note.set_class(bool(problem), "-shown")

    def refused(self) -> bool:
        """True (and the dialog says why) when the proposal is no longer as shown."""
        if self.problem:
            self.notify(self.problem, title="nothing sent", severity="warning")
        return bool(self.problem)
