"""Close a position, all of it or part: a quantity ("0.4") or a percentage ("50%") of what is held.

The percentage becomes a quantity here, from the position the daemon last sent, and the dialog says
the exact quantity before anything goes: the command carries a quantity, never a percentage. The
daemon sends a reduce-only market order, never more than the position holds, rounded by the
exchange to its size step.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from guard.api.protocol import PositionView
from guard.domain import Position
from guard.tui import render
from guard.tui.screens.base import KILL_HINT, GuardModal
from guard.tui.screens.override import parse_decimal
from guard.tui.widgets.field import TextField

HUNDRED = Decimal(100)
AMOUNT_HELP = "all (empty), a quantity (0.4) or a percentage of the position (50%)"


@dataclass(frozen=True, slots=True)
class CloseRequest:
    """What to send: the symbol and the quantity to take off (None: all of it), and the same in words."""

    symbol: str
    qty: Decimal | None
    words: str


def close_amount(typed: str, position: Position) -> tuple[Decimal | None, str]:
    """The quantity to send for what was typed (None: all of it), or an error in words.

    Args:
        typed: "", "all", a quantity ("0.4") or a percentage ("50%", more than 0 and at most 100).
        position: The position as the daemon last sent it; a percentage is of its size.

    Returns:
        (quantity or None for all, "") when the amount is valid; (None, what is wrong) when not.
    """
    held = abs(position.qty)
    text = typed.strip().lower().replace(" ", "")
    if text in ("", "all"):
        return None, ""
    if text.endswith("%"):
        pct = parse_decimal(text[:-1])
        if pct is None or pct <= 0 or pct > HUNDRED:
            return None, f"a percentage must be more than 0% and at most 100%, not {typed.strip()!r}"
        return (None, "") if pct == HUNDRED else ((held * pct / HUNDRED).normalize(), "")
    qty = parse_decimal(text)
    if qty is None or qty <= 0:
        return None, f"not an amount: {typed.strip()!r} — type {AMOUNT_HELP}"
    if qty > held:
        return None, f"{render.quantity(qty)} is more than the position holds ({render.quantity(held)})"
    return (None, "") if qty == held else (qty, "")


def describe(position: Position, qty: Decimal | None) -> str:
    """The order in words: "SELL 0.4 of 0.8 ETH/USDT:USDT (50%)", or "all 0.8" when it closes everything."""
    held = abs(position.qty)
    side = "SELL" if position.qty > 0 else "BUY"
    if qty is None:
        return f"{side} all {render.quantity(held)} {position.symbol}"
    share = qty / held * HUNDRED
    return f"{side} {render.quantity(qty)} of {render.quantity(held)} {position.symbol} ({float(share):.4g}%)"


class ClosePositionScreen(GuardModal[CloseRequest | None]):
    """Pick a position and how much of it to close: answers the request, or None to go back."""

    DEFAULT_CSS = (
        GuardModal.DEFAULT_CSS
        + """
    ClosePositionScreen #amount-row { height: 1; margin-top: 1; }
    ClosePositionScreen #amount-row Label { width: 8; }
    ClosePositionScreen #amount-row Input { width: 1fr; }
    ClosePositionScreen #preview { margin-top: 1; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "submit", "close", show=False, priority=True)]

    def __init__(self, positions: tuple[PositionView, ...], preferred: str | None = None) -> None:
        super().__init__()
        self._shown = positions
        self._preferred = preferred
        self._latest = {v.position.symbol: v.position for v in positions}
        self._link_up = True

    def compose(self) -> ComposeResult:
        options = []
        for view in self._shown:
            p = view.position
            label = (
                f"{render.short_symbol(p.symbol):<10} {render.quantity(p.qty):>10} @ {render.price(p.entry_price)}"
                f"  {render.quantity(p.leverage)}x  PnL {render.signed(view.unrealized_pnl)}"
            )
            options.append(Option(label, id=p.symbol))
        with Vertical(classes="dialog"):
            yield Static("Close a position with a reduce-only market order", classes="title")
            yield OptionList(*options, id="positions")
            with Horizontal(id="amount-row"):
                yield Label("Amount")
                yield TextField(placeholder=AMOUNT_HELP, id="amount", compact=True)
            yield Static("", id="preview")
            yield Static(f"Enter: close · Tab: amount · Esc: back · {KILL_HINT}", classes="hint")

    def prepare(self) -> Widget | None:
        options = self.query_one(OptionList)
        symbols = [v.position.symbol for v in self._shown]
        if self._preferred in symbols:
            options.highlighted = symbols.index(self._preferred)
        self._refresh_preview()
        return options

    def follow(self, positions: tuple[PositionView, ...], link_up: bool) -> None:
        """The daemon's latest positions: a percentage is of the size held now."""
        self._latest = {v.position.symbol: v.position for v in positions}
        self._link_up = link_up
        if self.is_mounted:
            self._refresh_preview()

    def request(self) -> tuple[CloseRequest | None, str]:
        """What Enter would send, or why it would send nothing."""
        highlighted = self.query_one(OptionList).highlighted_option
        if highlighted is None or highlighted.id is None:
            return None, "no position chosen"
        symbol = highlighted.id
        if not self._link_up:
            return None, "not connected to the daemon: nothing can be sent now"
        position = self._latest.get(symbol)
        if position is None:
            return None, f"there is no open position in {symbol} any more"
        qty, error = close_amount(self.query_one("#amount", Input).value, position)
        if error:
            return None, error
        return CloseRequest(symbol, qty, describe(position, qty)), ""

    def _refresh_preview(self) -> None:
        request, problem = self.request()
        preview = self.query_one("#preview", Static)
        preview.set_class(request is None, "error")
        if request is None:
            preview.update(f"✗ {problem}")
        else:
            preview.update(f"Enter sends: reduce-only market {request.words} (the exchange rounds to its size step)")

    def on_input_changed(self, event: Input.Changed) -> None:
        self._refresh_preview()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._refresh_preview()

    def action_submit(self) -> None:
        self.submit_when_typed(self._answer)

    def _answer(self) -> None:
        request, problem = self.request()
        if request is None:
            self._refresh_preview()
            self.notify(problem, title="nothing sent", severity="warning")
            return
        self.dismiss(request)
