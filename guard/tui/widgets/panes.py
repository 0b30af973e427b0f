"""The main screen's panes: positions (a table, or a two-line summary), price sparklines, the log.

Each is redrawn from the model at most a few times a second (the console batches), never per tick.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from guard.api.protocol import PositionView
from guard.tui import render
from guard.tui.model import ConsoleModel, LogLine

_LEVEL_STYLE = {"critical": "bold white on red", "warning": "bold yellow", "info": "cyan", "event": ""}


class PositionsPane(Widget):
    """Open positions with PnL and liquidation distance."""

    DEFAULT_CSS = """
    PositionsPane { height: auto; min-height: 3; max-height: 12; text-wrap: nowrap; text-overflow: ellipsis; }
    PositionsPane.-stale { color: $text-muted; }
    """

    positions: reactive[tuple[PositionView, ...]] = reactive(())
    """The daemon's positions, as last pushed."""
    stale: reactive[bool] = reactive(False, toggle_class="-stale")
    """True while disconnected."""

    def watch_positions(self, old: tuple[PositionView, ...], new: tuple[PositionView, ...]) -> None:
        if len(old) != len(new):
            self.refresh(layout=True)  # the pane's height follows its rows

    def render(self) -> Text:
        # Plain lines, not a rich Table: this pane redraws four times a second and a Table measures every cell
        # each time. Columns keep their usual widths (so they do not jitter as numbers change) and widen for a
        # longer value; one space always separates them.
        if not self.positions:
            return Text("no open positions", "dim")
        rows = [self._cells(view) for view in self.positions]
        widths = [max(least, *(len(row[i][0]) for row in rows)) for i, least in enumerate(_POSITION_WIDTHS)]
        lines = [_columns([(h, "bold") for h in _POSITION_HEADERS], widths)]
        lines += [_columns(row, widths) for row in rows]
        text = Text("\n").join(lines)
        text.no_wrap = True
        return text

    @staticmethod
    def _cells(view: PositionView) -> list[tuple[str, str]]:
        p = view.position
        distance = view.liquidation_distance_pct
        return [
            (render.short_symbol(p.symbol), ""),
            (
                f"{render.quantity(p.qty)} {render.quantity(p.leverage)}x".replace("-", "−"),
                "green" if p.qty > 0 else "magenta",
            ),
            (render.price(p.entry_price), ""),
            (render.price(view.mark), ""),
            (render.signed(view.unrealized_pnl), render.pnl_style(view.unrealized_pnl)),
            (render.price(p.liquidation_price), ""),
            (render.pct(distance), "bold red" if distance is not None and distance < 5 else ""),
        ]


_POSITION_HEADERS = ("SYMBOL", "QTY", "ENTRY", "MARK", "PnL", "LIQ", "DIST")
_POSITION_WIDTHS = (8, 11, 8, 8, 7, 9, 5)
"""Least widths: BTC/USDT, −0.003 1.1x, 84,365.8, −123.45, 160,420.3, 90.1%. 62 columns with the spaces."""


class PositionsSummary(Widget):
    """Open positions in two lines, for terminals too small for the table: the largest, then the rest (and how
    many orders rest, which the orders screen, O, lists)."""

    DEFAULT_CSS = """
    PositionsSummary { height: 2; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    PositionsSummary.-stale { color: $text-muted; }
    """

    positions: reactive[tuple[PositionView, ...]] = reactive(())
    """The daemon's positions, as last pushed."""
    resting: reactive[int] = reactive(0)
    """How many orders rest at the venue."""
    stale: reactive[bool] = reactive(False, toggle_class="-stale")
    """True while disconnected."""

    def render(self) -> Text:
        text = self._positions()
        if self.resting:
            lines = text.plain.split("\n")
            joint = "\n  " if len(lines) == 1 else " · " if lines[1].strip() else ""
            orders = f"{self.resting} resting order" + ("s" if self.resting > 1 else "")
            text.append_text(Text.assemble(joint, (orders, "bold"), (" (O: cancel or amend)", "dim")))
            text.no_wrap = True
            text.overflow = "ellipsis"
        return text

    def _positions(self) -> Text:
        views = sorted(self.positions, key=_notional, reverse=True)
        if not views:
            return Text.assemble(("Positions ", "bold"), ("none open", "dim"))
        largest, rest = views[0], views[1:]
        count = f"{len(views)} open" + (" (stale)" if self.stale else "")
        first = Text.assemble(("Positions ", "bold"), f"{count} · largest ")
        first.append_text(_brief(largest))
        second = Text("  ")
        for i, view in enumerate(rest):
            if i:
                second.append(" · ", "dim")
            second.append_text(_brief(view, short=True))
        text = Text("\n").join([first, second])
        text.no_wrap = True
        text.overflow = "ellipsis"
        return text


def _notional(view: PositionView) -> Decimal:
    p = view.position
    return abs(p.qty) * (view.mark if view.mark is not None else p.entry_price)


def _brief(view: PositionView, short: bool = False) -> Text:
    """ "ETH/USDT SHORT 0.8 2x PnL +40.00 liq 50.8% away" (short: "ETH SHORT 0.8 +40.00 liq 50.8%")."""
    p = view.position
    long = p.qty > 0
    distance = view.liquidation_distance_pct
    text = Text()
    text.append(render.base(p.symbol) if short else render.short_symbol(p.symbol), "bold")
    text.append(" LONG" if long else " SHORT", "green" if long else "magenta")
    text.append(f" {render.quantity(abs(p.qty))}")
    if not short:
        text.append(f" {render.quantity(p.leverage)}x PnL")
    text.append(" ")
    text.append(render.signed(view.unrealized_pnl), render.pnl_style(view.unrealized_pnl))
    if p.liquidation_price is None:
        text.append(" no liq", "dim")
        return text
    text.append(" liq ")
    text.append(render.pct(distance), "bold red" if distance is not None and distance < 5 else "")
    if not short:
        text.append(" away")
    return text


def _columns(cells: list[tuple[str, str]], widths: list[int]) -> Text:
    """One line: the first cell left-aligned, the rest right-aligned, a space between each."""
    line = Text()
    for i, ((text, style), width) in enumerate(zip(cells, widths, strict=True)):
        if i:
            line.append(" ")
        line.append(text.rjust(width) if i else text.ljust(width), style)
    return line


class PricesPane(Widget):
    """A sparkline per symbol, from the marks the daemon batches a few times a second."""

    DEFAULT_CSS = """
    PricesPane { height: auto; min-height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    PricesPane.-stale { color: $text-muted; }
    """

    stale: reactive[bool] = reactive(False, toggle_class="-stale")
    """True while disconnected."""

    def __init__(self, model: ConsoleModel, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._model = model
        self._rows = 0

    def update_prices(self) -> None:
        """New marks arrived: redraw (and re-measure when a symbol came or went)."""
        rows = len(self._model.prices)
        self.refresh(layout=rows != self._rows)
        self._rows = rows

    def render(self) -> Text:
        prices = self._model.prices
        if not prices:
            return Text("no prices yet", "dim")
        width = max(8, self.size.width - 30)
        lines = []
        for symbol, points in sorted(prices.items()):
            line = Text(f"{render.base(symbol):<6}", "bold")
            last = points[-1] if points else None
            line.append(f"{render.price(last):>12} ")
            if len(points) >= 2 and points[0]:
                change = (points[-1] / points[0] - 1) * 100
                line.append(f"{render.pct(change, 2, sign=True):>7} ", render.pnl_style(change))
            else:
                line.append(" " * 8)
            line.append(render.sparkline(points, width), "cyan")
            line.no_wrap = True
            lines.append(line)
        return Text("\n").join(lines)


class EventLog(Widget):
    """Alerts and journal events, newest at the bottom; critical alerts in red."""

    DEFAULT_CSS = """
    EventLog { height: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    EventLog.-stale { color: $text-muted; }
    """

    stale: reactive[bool] = reactive(False, toggle_class="-stale")
    """True while disconnected."""

    def __init__(self, model: ConsoleModel, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._model = model

    def render(self) -> Text:
        height = max(1, self.size.height)
        lines = list(self._model.log)[-height:]
        if not lines:
            return Text("no events yet", "dim")
        text = Text("\n").join(_line(line) for line in lines)
        text.no_wrap = True
        text.overflow = "ellipsis"
        return text


def _line(line: LogLine) -> Text:
    clock = dt.datetime.fromtimestamp(line.at / 1000, tz=dt.UTC).strftime("%H:%M:%S")
    style = _LEVEL_STYLE.get(line.level, "")
    label = line.level.upper() if line.level != "event" else line.kind
    return Text.assemble((clock + " ", "dim"), (f"{label} ", style or "bold"), (line.text, style))
