"""The resting-orders pane on the main screen: one line per order (limit entries, stops, take-profits) with its
proposal, price, distance to the mark and age. Hidden while nothing rests, and on short terminals (the orders
screen, `O`, lists them there)."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from guard.api.desk_views import OrderView, age
from guard.tui import render
from guard.tui.model import ConsoleModel


def order_line(order: OrderView, now_ms: float | None) -> Text:
    """ "P000004-E  limit entry BUY 0.05 BTC/USDT @ 99,000.0  −1.0% from mark  1m05s"."""
    buy = order.side.value == "buy"
    text = Text()
    text.append(f"{order.order_id:<13}", "bold")
    text.append(f"{order.kind:<12} ")
    text.append(order.side.value.upper(), "green" if buy else "magenta")
    text.append(f" {render.quantity(order.qty)} {render.short_symbol(order.symbol)} @ {render.price(order.price)}  ")
    text.append(render.pct(order.distance_pct, 2, sign=True), "cyan")
    text.append(" from mark", "dim")
    if now_ms is not None:
        text.append(f"  {age(int(now_ms) - order.placed_at)}", "dim")
    return text


class OrdersPane(Widget):
    """Resting orders, oldest first; the border title counts them.

    Args:
        model: The daemon's state as last heard (its status lists the orders).
        clock: Local monotonic seconds (ages are read on the daemon's clock through the model).
    """

    DEFAULT_CSS = """
    OrdersPane { height: auto; max-height: 6; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    OrdersPane.-stale { color: $text-muted; }
    """

    orders: reactive[tuple[OrderView, ...]] = reactive((), layout=True)
    """The resting orders, as the daemon last listed them."""
    stale: reactive[bool] = reactive(False, toggle_class="-stale")
    """True while disconnected."""

    def __init__(self, model: ConsoleModel, clock: Callable[[], float], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]  # Widget's keyword arguments (id, classes)
        self._model = model
        self._clock = clock

    def on_mount(self) -> None:
        self.set_interval(1.0, self.refresh)  # the ages

    def watch_orders(self, orders: tuple[OrderView, ...]) -> None:
        self.set_class(not orders, "-empty")
        self.border_title = f"Resting orders ({len(orders)}) — O: cancel or amend"

    def render(self) -> Text:
        if not self.orders:
            return Text("no resting orders", "dim")
        now = self._model.server_now_ms(self._clock())
        text = Text("\n").join(order_line(o, now) for o in self.orders)
        text.no_wrap = True
        return text
