"""The side panes of the main screen: positions, price sparklines, and the alert and event log.

Each is redrawn from the model at most a few times a second (the app batches), never per tick.
"""

from __future__ import annotations

import datetime as dt

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
            (f"{render.quantity(p.qty)} {render.quantity(p.leverage)}x".replace("-", "−"),
             "green" if p.qty > 0 else "magenta"),
            (render.price(p.entry_price), ""),
            (render.price(view.mark), ""),
            (render.signed(view.unrealized_pnl), render.pnl_style(view.unrealized_pnl)),
            (render.price(p.liquidation_price), ""),
            (render.pct(distance), "bold red" if distance is not None and distance < 5 else ""),
        ]


_POSITION_HEADERS = ("SYMBOL", "QTY", "ENTRY", "MARK", "PnL", "LIQ", "DIST")
_POSITION_WIDTHS = (8, 11, 8, 8, 7, 9, 5)
"""Least widths: BTC/USDT, −0.003 1.1x, 84,365.8, −123.45, 160,420.3, 90.1%. 62 columns with the spaces."""


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
