"""Small modal dialogs: a typed phrase (re-arm, acknowledgments), novelty, reject, close a position.

Each is a `ModalScreen[T]` that answers with `dismiss()`; the app sends the command and shows
the daemon's reply. None of them sends anything itself, and none of them blocks the kill
switch: K and ctrl+k are priority bindings on the app, and `GuardInput` leaves K alone.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from guard.api.protocol import PositionView, ProposalView
from guard.tui import render

KILL_HINT = "K or ctrl+k: KILL, from anywhere"

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
"""


class GuardInput(Input):
    """A text input that leaves capital K to the kill switch (type a lowercase k instead).

    Textual lets a focused input swallow printable keys before app bindings see them; the kill
    key must work inside every dialog, so this input declines it.
    """

    def check_consume_key(self, key: str, character: str | None) -> bool:
        if key == "K" or character == "K":
            return False
        return super().check_consume_key(key, character)


class TypedConfirmScreen(ModalScreen[str | None]):
    """Read this, then type the phrase exactly: answers with what was typed, or None on escape."""

    DEFAULT_CSS = DIALOG_CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "not now"),
        Binding("pagedown,down", "read(1)", "read on", show=False),
        Binding("pageup,up", "read(-1)", "read back", show=False),
    ]

    def __init__(self, title: str, body: Text | str, phrase: str, error: str = "", submit: str = "record") -> None:
        super().__init__()
        self._title = title
        self._body = body
        self.phrase = phrase
        """The exact words the daemon waits for."""
        self._error = error
        self._submit = submit

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -fill"):
            yield Static(self._title, classes="title")
            with VerticalScroll():
                yield Static(self._body, id="body")
            yield Static(f"Type exactly:  {self.phrase}", classes="phrase")
            yield GuardInput(placeholder="type the phrase above (capitals optional)", id="typed")
            if self._error:
                yield Static(f"✗ {self._error}", classes="error")
            yield Static(
                f"Enter: {self._submit} (journaled with your operator id) · PgUp/PgDn: read · Esc: not now · "
                f"{KILL_HINT}",
                classes="hint",
            )

    def on_mount(self) -> None:
        self.query_one(GuardInput).focus()

    def action_read(self, pages: int) -> None:
        """Scroll the text while the phrase field keeps the focus (small terminals cannot show it all)."""
        body = self.query_one(VerticalScroll)
        body.scroll_to(y=body.scroll_y + pages * max(1, body.size.height - 1), animate=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class NoveltyScreen(ModalScreen[bool]):
    """The model is guessing: approve anyway? Answers True only on an explicit y."""

    DEFAULT_CSS = DIALOG_CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "yes, approve it"),
        Binding("n,escape", "answer(False)", "no"),
    ]

    def __init__(self, view: ProposalView) -> None:
        super().__init__()
        self._view = view

    def compose(self) -> ComposeResult:
        p = self._view.proposal
        with Vertical(classes="dialog"):
            yield Static(f"NOVEL — {p.id}: the model is guessing", classes="title")
            yield Static(
                f"{p.side.value.upper()} {render.quantity(p.qty)} {p.symbol} at {render.quantity(p.leverage)}x. "
                f"This market looks unlike anything the model trained on (novelty {p.novelty:.2f}). "
                "Its confidence was measured on data like its training data, so here it means little."
            )
            yield Static("y: confirm the novelty and send the decision · n or Esc: go back", classes="phrase")
            yield Static(KILL_HINT, classes="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class RejectScreen(ModalScreen[str | None]):
    """Reject with an optional reason: answers the reason ("" for none), or None to go back."""

    DEFAULT_CSS = DIALOG_CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "back")]

    def __init__(self, view: ProposalView) -> None:
        super().__init__()
        self._view = view

    def compose(self) -> ComposeResult:
        p = self._view.proposal
        with Vertical(classes="dialog"):
            yield Static(f"Reject {p.id}: {p.side.value.upper()} {render.quantity(p.qty)} {p.symbol}", classes="title")
            yield GuardInput(placeholder="reason (optional, journaled)", id="reason")
            yield Static(f"Enter: reject · Esc: back · {KILL_HINT}", classes="hint")

    def on_mount(self) -> None:
        self.query_one(GuardInput).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class ClosePositionScreen(ModalScreen[str | None]):
    """Pick a position to close with a reduce-only market order: answers its symbol, or None."""

    DEFAULT_CSS = DIALOG_CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "back")]

    def __init__(self, positions: tuple[PositionView, ...], preferred: str | None = None) -> None:
        super().__init__()
        self._positions = positions
        self._preferred = preferred

    def compose(self) -> ComposeResult:
        options = []
        for view in self._positions:
            p = view.position
            label = (
                f"{render.short_symbol(p.symbol):<10} {render.quantity(p.qty):>10} @ {render.price(p.entry_price)}"
                f"  {render.quantity(p.leverage)}x  PnL {render.signed(view.unrealized_pnl)}"
            )
            options.append(Option(label, id=p.symbol))
        with Vertical(classes="dialog"):
            yield Static("Close a position (a reduce-only market order, all of it)", classes="title")
            yield OptionList(*options, id="positions")
            yield Static(f"Enter: close it · Esc: back · {KILL_HINT}", classes="hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.focus()
        symbols = [v.position.symbol for v in self._positions]
        if self._preferred in symbols:
            options.highlighted = symbols.index(self._preferred)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
