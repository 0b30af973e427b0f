"""Small modal dialogs: a typed phrase (re-arm, acknowledgments), novelty, reject.

Each answers with `dismiss()`; the console sends the command and shows the daemon's reply. None of
them sends anything itself, and none of them blocks the kill switch: ctrl+k is a priority binding on
the app, and K kills too wherever the focus is not in a text field (inside one, K is a letter).
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Input, Static

from guard.domain import AcknowledgmentKind
from guard.tui import render
from guard.tui.screens.base import KILL_HINT, DecisionDialog, GuardModal
from guard.tui.widgets.field import TextField


class TypedConfirmScreen(GuardModal[str | None]):
    """Read this, then type the phrase exactly: answers with what was typed, or None on escape."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "submit", "record", show=False, priority=True),
        Binding("pagedown,down", "read(1)", "read on", show=False, priority=True),
        Binding("pageup,up", "read(-1)", "read back", show=False, priority=True),
    ]

    def __init__(
        self,
        title: str,
        body: Text | str,
        phrase: str,
        error: str = "",
        submit: str = "record",
        kind: AcknowledgmentKind | None = None,
    ) -> None:
        super().__init__()
        self._title = title
        self._body = body
        self.phrase = phrase
        """The exact words the daemon waits for."""
        self.error = error
        """Why the last attempt was refused ("" on the first)."""
        self._submit = submit
        self.kind = kind
        """The acknowledgment this screen records (None: not an acknowledgment, e.g. re-arm)."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -fill"):
            yield Static(self._title, classes="title")
            with VerticalScroll():
                yield Static(self._body, id="body")
            yield Static(f"Type exactly:  {self.phrase}", classes="phrase")
            yield TextField(placeholder="type the phrase above (capitals optional)", id="typed")
            if self.error:
                yield Static(f"✗ {self.error}", classes="error")
            yield Static(
                f"Enter: {self._submit} (journaled with your operator id) · PgUp/PgDn: read · Esc: not now · "
                f"{KILL_HINT}",
                classes="hint",
            )

    def prepare(self) -> Widget | None:
        return self.query_one(Input)

    def action_read(self, pages: int) -> None:
        """Scroll the text while the phrase field keeps the focus (small terminals cannot show it all)."""
        body = self.query_one(VerticalScroll)
        body.scroll_to(y=body.scroll_y + pages * max(1, body.size.height - 1), animate=False)

    def action_submit(self) -> None:
        self.submit_when_typed(self._answer)

    def _answer(self) -> None:
        typed = self.query_one(Input).value
        if typed.strip():
            self.dismiss(typed)


class NoveltyScreen(DecisionDialog[bool]):
    """The model is guessing: approve anyway? Answers True only on an explicit y."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "yes, approve it", priority=True),
        Binding("n", "answer(False)", "no", priority=True),
    ]

    def compose(self) -> ComposeResult:
        p = self.view.proposal
        with Vertical(classes="dialog"):
            yield Static(f"NOVEL — {p.id} v{p.version}: the model is guessing", classes="title")
            yield Static(
                f"{p.side.value.upper()} {render.quantity(p.qty)} {p.symbol} at {render.quantity(p.leverage)}x. "
                f"This market looks unlike anything the model trained on (novelty {p.novelty:.2f}). "
                "Its confidence was measured on data like its training data, so here it means little."
            )
            yield self.stale_note()
            yield Static("y: confirm the novelty and send the decision · n or Esc: go back", classes="phrase")
            yield Static(KILL_HINT, classes="hint")

    def action_answer(self, yes: bool) -> None:
        if yes and self.refused():
            return
        self.dismiss(yes)

    def action_cancel(self) -> None:
        self.dismiss(False)


class RejectScreen(DecisionDialog[str | None]):
    """Reject with an optional reason: answers the reason ("" for none), or None to go back."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "submit", "reject", show=False, priority=True)]

    def compose(self) -> ComposeResult:
        p = self.view.proposal
        with Vertical(classes="dialog"):
            yield Static(
                f"Reject {p.id} v{p.version}: {p.side.value.upper()} {render.quantity(p.qty)} {p.symbol}",
                classes="title",
            )
            yield TextField(placeholder="reason (optional, journaled)", id="reason")
            yield self.stale_note()
            yield Static(f"Enter: reject · Esc: back · {KILL_HINT}", classes="hint")

    def prepare(self) -> Widget | None:
        return self.query_one(Input)

    def action_submit(self) -> None:
        self.submit_when_typed(self._answer)

    def _answer(self) -> None:
        if not self.refused():
            self.dismiss(self.query_one(Input).value.strip())
