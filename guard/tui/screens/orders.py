"""The orders screen (O): every resting order, and the operator's cancel (c) or amend (e) of the one chosen.

Each change asks for a reason first (journaled with the operator's id) and names the order as it was on
screen: if that order no longer rests when the dialog answers (filled, cancelled elsewhere, killed) or the
daemon is out of reach, nothing is sent and the screen says why. The daemon decides everything else (an
amend may lower a quantity, never raise it) and its answer is shown as a toast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from guard.api.desk_views import HEADERS, OrderView, order_rows
from guard.api.protocol import AmendOrder, CancelOrder
from guard.tui.acknowledgments import Run, Send
from guard.tui.keys import TypedBehindRefusal
from guard.tui.model import ConsoleModel
from guard.tui.screens.base import KILL_HINT, GuardModal
from guard.tui.screens.info import INFO_CSS
from guard.tui.screens.override import parse_decimal
from guard.tui.widgets.field import TextField
from guard.tui.widgets.orders import order_line

WIDTHS = (13, 8, 12, 4, 8, 10, 6, 9, 14)
"""Column widths of the orders table (HEADERS' order)."""


def table_row(cells: tuple[str, ...]) -> str:
    """One line of the orders table, its cells padded to WIDTHS."""
    return " ".join(cell.ljust(width) for cell, width in zip(cells, WIDTHS, strict=True)).rstrip()


@dataclass(frozen=True, slots=True)
class AmendRequest:
    """What the operator typed: a new price and/or quantity (None keeps it), and why."""

    price: Decimal | None
    qty: Decimal | None
    reason: str


class _OrderDialog(GuardModal[object]):
    """A dialog about one resting order, as it was on screen; Enter answers once every field has its keys."""

    DEFAULT_CSS = (
        GuardModal.DEFAULT_CSS
        + """
    _OrderDialog .row { height: 1; }
    _OrderDialog .row Label { width: 9; }
    _OrderDialog .row Input { width: 1fr; }
    _OrderDialog #problem { margin-top: 1; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "submit", "send", show=False, priority=True)]

    def __init__(self, order: OrderView) -> None:
        super().__init__()
        self.order = order

    def prepare(self) -> Widget | None:
        return self.query(Input).first()

    def action_submit(self) -> None:
        self.submit_when_typed(self._answer)

    def _answer(self) -> None:
        raise NotImplementedError

    def problem(self, text: str) -> None:
        self.query_one("#problem", Static).update(f"✗ {text}")


class CancelOrderScreen(_OrderDialog):
    """Cancel one resting order: answers the reason, or None to go back."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"Cancel {order_line(self.order, None)}", classes="title")
            if self.order.kind == "stop":
                yield Static(
                    "This stop protects a position: without it only liquidation limits the loss.", classes="phrase"
                )
            yield TextField(placeholder="why (journaled with your operator id)", id="reason")
            yield Static("", id="problem", classes="error")
            yield Static(f"Enter: cancel the order · Esc: back · {KILL_HINT}", classes="hint")

    def _answer(self) -> None:
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            self.problem("type why: the reason is journaled with the cancel")
            return
        self.dismiss(reason)


class AmendOrderScreen(_OrderDialog):
    """A new price and/or a lower quantity for one resting order: answers an AmendRequest, or None to go back."""

    def compose(self) -> ComposeResult:
        order = self.order
        with Vertical(classes="dialog"):
            yield Static(f"Amend {order_line(order, None)}", classes="title")
            for name, label, now in (("price", "Price", order.price), ("qty", "Quantity", order.qty)):
                with Horizontal(classes="row"):
                    yield Label(label)
                    yield TextField(placeholder=f"{now} (empty keeps it)", id=name, compact=True)
            with Horizontal(classes="row"):
                yield Label("Why")
                yield TextField(placeholder="reason (journaled with your operator id)", id="reason", compact=True)
            yield Static("", id="problem", classes="error")
            yield Static(
                f"Tab: next field · Enter: cancel and replace · Esc: back · {KILL_HINT}\n"
                "A quantity may only go down (for more, propose again).",
                classes="hint",
            )

    def _answer(self) -> None:
        values: dict[str, Decimal | None] = {}
        for name in ("price", "qty"):
            typed = self.query_one(f"#{name}", Input).value.strip()
            number = parse_decimal(typed) if typed else None
            if typed and (number is None or number <= 0):
                self.problem(f"{name}: {typed!r} is not a positive number")
                return
            values[name] = number
        if values["price"] is None and values["qty"] is None:
            self.problem("type a new price, a new quantity or both")
            return
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            self.problem("type why: the reason is journaled with the amend")
            return
        self.dismiss(AmendRequest(values["price"], values["qty"], reason))


class ListScreen(GuardModal[None]):
    """A screen that is a list to choose from, whose keys open dialogs that are typed into.

    Its arrow keys move the cursor as they are read, so a key typed right behind them (c, e, Enter: priority
    bindings) acts on the row they moved to. A key that opens a dialog and is refused (nothing to choose) drops
    what is typed right behind it, K included, until the typing pauses: it was meant for the dialog's field
    (the app asks `dropping_typed_keys` before K kills; ctrl+k always kills).

    Args:
        model: The daemon's state as last heard.
        send: Sends a command and shows the daemon's answer.
        run: Runs a coroutine as a worker.
        link_up: Whether the daemon is connected now.
        clock: Local monotonic seconds.
    """

    DEFAULT_CSS = INFO_CSS + "ListScreen #head { color: $text-muted; text-style: bold; padding-left: 2; }"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,j", "move(1)", show=False, priority=True),
        Binding("up,k", "move(-1)", show=False, priority=True),
    ]

    def __init__(
        self, model: ConsoleModel, send: Send, run: Run, link_up: Callable[[], bool], clock: Callable[[], float]
    ) -> None:
        super().__init__()
        self._model = model
        self._send = send
        self._run = run
        self._link_up = link_up
        self._clock = clock
        self._typed_behind = TypedBehindRefusal(clock)

    def prepare(self) -> Widget | None:
        self.sync()
        self.set_interval(0.25, self.sync)
        return self.query_one(OptionList)

    def sync(self) -> None:
        """Show the list as the daemon has it now, keeping the choice."""
        raise NotImplementedError

    def dropping_typed_keys(self) -> bool:
        """True (and the burst goes on) while keys typed right after a refused key are dropped."""
        if self._typed_behind.active():
            self._typed_behind.dropped()
            return True
        return False

    def refuse(self, what: str, why: str) -> None:
        """Say why `what` did nothing, and drop what is typed right behind it."""
        self.notify(
            f"{why}; what was typed right after it is not run, K included", title=f"cannot {what}", severity="warning"
        )
        self._typed_behind.dropped()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Greyed while typed keys are dropped (Esc still goes back); the key then reaches `on_key`, which drops it.
        return None if action != "cancel" and self._typed_behind.active() else True

    def on_key(self, event: events.Key) -> None:
        if self.dropping_typed_keys():
            event.stop()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_move(self, rows: int) -> None:
        table = self.query_one(OptionList)
        if rows > 0:
            table.action_cursor_down()
        else:
            table.action_cursor_up()


class OrdersScreen(ListScreen):
    """Every resting order, kept current from the daemon's status; c cancels, e amends the chosen one.

    Args:
        model: The daemon's state as last heard.
        send: Sends a command and shows the daemon's answer.
        run: Runs a coroutine as a worker.
        link_up: Whether the daemon is connected now.
        clock: Local monotonic seconds (ages are on the daemon's clock, through the model).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "cancel_order", "cancel", priority=True),
        Binding("e", "amend_order", "amend", priority=True),
        Binding("q,O", "close", "close", priority=True),
    ]

    _shown: tuple[tuple[str, ...], ...] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog info"):
            yield Static("Resting orders — limits, stops and take-profits at the venue", classes="title")
            yield Static(table_row(HEADERS), id="head")
            yield OptionList(id="orders")
            yield Static(
                f"↑↓: choose · c: cancel · e: amend price or quantity · Esc: close · {KILL_HINT}", classes="hint"
            )

    def orders(self) -> tuple[OrderView, ...]:
        status = self._model.status
        return status.orders if status is not None else ()

    def sync(self) -> None:
        """Show the orders the daemon lists now, keeping the choice on the same order."""
        now = self._model.server_now_ms(self._clock())
        orders = self.orders()
        rows = tuple(order_rows(orders, int(now) if now is not None else 0))
        if rows == self._shown:
            return
        self._shown = rows
        table = self.query_one(OptionList)
        chosen = self.chosen()
        table.clear_options()
        if not orders:
            table.add_option(Option("no resting orders", id="", disabled=True))
            return
        table.add_options(Option(table_row(row), id=o.order_id) for row, o in zip(rows, orders, strict=True))
        ids = [o.order_id for o in orders]
        table.highlighted = ids.index(chosen.order_id) if chosen is not None and chosen.order_id in ids else 0

    def chosen(self) -> OrderView | None:
        """The order under the cursor, as the daemon last listed it."""
        option = self.query_one(OptionList).highlighted_option
        if option is None or not option.id:
            return None
        return next((o for o in self.orders() if o.order_id == option.id), None)

    def action_cancel_order(self) -> None:
        if (order := self._pick("cancel")) is not None:
            self.app.push_screen(CancelOrderScreen(order), lambda reason: self._cancel(order, reason))

    def action_amend_order(self) -> None:
        if (order := self._pick("amend")) is not None:
            self.app.push_screen(AmendOrderScreen(order), lambda request: self._amend(order, request))

    def _pick(self, what: str) -> OrderView | None:
        self.sync()  # the list as the daemon has it now, not as it was at the last redraw
        order = self.chosen()
        if order is None:
            self.refuse(what, "no resting order chosen")
        return order

    def _still_resting(self, order: OrderView, what: str) -> bool:
        """The order is still listed and the daemon connected; else say why nothing is sent."""
        if not self._link_up():
            why = "not connected to the daemon: nothing sent"
        elif order.order_id not in {o.order_id for o in self.orders()}:
            why = f"{order.order_id} no longer rests (filled, cancelled or killed): nothing sent"
        else:
            return True
        self.notify(why, title=f"cannot {what}", severity="warning")
        return False

    def _cancel(self, order: OrderView, reason: object) -> None:
        if isinstance(reason, str) and self._still_resting(order, "cancel"):
            self._run(self._send(lambda cid: CancelOrder(cid, order.order_id, reason), f"cancel {order.order_id}"))

    def _amend(self, order: OrderView, request: object) -> None:
        if isinstance(request, AmendRequest) and self._still_resting(order, "amend"):

            def make(cid: str) -> AmendOrder:
                return AmendOrder(cid, order.order_id, request.price, request.qty, request.reason)

            self._run(self._send(make, f"amend {order.order_id}"))
