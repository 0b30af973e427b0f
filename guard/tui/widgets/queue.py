"""The proposal queue, oldest first, drawn line by line.

Only the rows on screen are rendered (Textual's line API), so a thousand pending proposals cost
no more per frame than twenty: a DataTable re-renders itself whole on every cell update.
The selection follows a proposal's id, never a row number, so a proposal arriving or leaving
never moves the cursor onto a different trade behind the operator's back; when the selected one
leaves, the cursor moves and says so (`Selected`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from guard.api.protocol import ProposalView
from guard.domain import Side, Verdict
from guard.tui import render
from guard.tui.model import ConsoleModel

_HEADER = Style(bold=True, underline=True)
_CURSOR = Style(reverse=True, bold=True)
_STALE = Style(dim=True)


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    width: int
    cell: Callable[[ProposalView, float | None], Text]
    justify: str = "left"
    wide_only: bool = False


def _side(v: ProposalView, _left: float | None) -> Text:
    side = v.proposal.side
    return Text(side.value.upper(), "green" if side is Side.BUY else "magenta")


def _confidence(v: ProposalView, _left: float | None) -> Text:
    p = v.proposal
    if v.source is not None:
        return _source(v)
    return render.confidence_bar(p.confidence, 4) if render.from_model(p) else Text(render.NO_MODEL, "dim")


def _novelty(v: ProposalView, _left: float | None) -> Text:
    p = v.proposal
    if not render.from_model(p):
        return Text("—", "dim")
    return Text("NOVEL", "bold magenta") if p.novel else Text(f"{p.novelty:.2f}")


def _liq(v: ProposalView, _left: float | None) -> Text:
    d = v.liquidation_distance_pct
    return Text(render.pct(d, sign=True) if d is not None else "—", "red" if d is not None and abs(d) < 5 else "")


def _left(v: ProposalView, left: float | None) -> Text:
    return Text(render.seconds(left), "bold red" if left is not None and left < 10 else "")


def _checks(v: ProposalView, _left: float | None) -> Text:
    counts = {verdict: 0 for verdict in Verdict}
    for check in v.proposal.checks:
        counts[check.verdict] += 1
    text = Text()
    for verdict in (Verdict.BLOCK, Verdict.WARN, Verdict.PASS):
        if counts[verdict]:
            mark, style = render.VERDICT_MARK[verdict]
            text.append(f"{mark}{counts[verdict]} ", style)
    if v.needs_two_approvals:
        text.append(f"4-eyes {len(v.approvals)}/2", "yellow")
    return text


def _source(v: ProposalView) -> Text:
    """A source's proposal: its name where the model's confidence would be, and its claim (uncalibrated) if any."""
    assert v.source is not None
    confidence = v.proposal.confidence
    if confidence <= 0:
        return Text(v.source.name[:9], "cyan")
    return Text.assemble((f"{v.source.name[:5]:<5}", "cyan"), (f"{confidence:4.0%}", "yellow"))


COLUMNS = (
    Column("ID", 8, lambda v, _: Text(v.proposal.id, "dim"), wide_only=True),
    Column("SYMBOL", 9, lambda v, _: Text(render.short_symbol(v.proposal.symbol))),
    Column("SIDE", 4, _side),
    Column("SIZE", 7, lambda v, _: Text(render.quantity(v.proposal.qty)), "right"),
    Column("LEV", 4, lambda v, _: Text(f"{render.quantity(v.proposal.leverage)}x"), "right"),
    Column("CONF", 9, _confidence),
    Column("NOVEL", 5, _novelty, "right"),
    Column("P(LIQ)", 6, lambda v, _: Text(render.probability(v.proposal.p_liquidation)), "right"),
    Column("LIQ", 7, _liq, "right"),
    Column("LEFT", 5, _left, "right"),
    Column("CHECKS", 9, _checks),
)
WIDE = 96
"""From this width on, the queue shows proposal ids."""


class ProposalQueue(Widget, can_focus=True):
    """Pending proposals, oldest first, with a cursor; one line per proposal."""

    DEFAULT_CSS = """
    ProposalQueue { height: 1fr; }
    """

    class Selected(Message):
        """The selected proposal changed by itself: the one under the cursor left the queue."""

        def __init__(self, proposal_id: str | None) -> None:
            super().__init__()
            self.proposal_id = proposal_id

    def __init__(self, model: ConsoleModel, clock: Callable[[], float], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._model = model
        self._clock = clock
        self.selected_id: str | None = None
        """The proposal under the cursor (an id, so it never slides onto another proposal)."""
        self.moved_by_itself_at: float | None = None
        """When the cursor last moved without the operator (its proposal left); None once they move it. Set as
        it moves, not when `Selected` is handled: a key already queued behind that message must see it."""
        self.stale = False
        """True while disconnected: rows are dimmed and time left is unknown."""
        self._top = 0
        self._index = 0
        self._text_console = Console(width=400, color_system="truecolor", legacy_windows=False)
        self.rendered_at = 0.0
        """perf_counter of the last line render (benchmarks wait on it)."""

    # --- data in -------------------------------------------------------------------------

    def sync(self, stale: bool = False) -> None:
        """The model's queue changed: keep the cursor on its proposal, or move it and say so."""
        self.stale = stale
        model = self._model
        index = model.index_of(self.selected_id)
        if index is None:
            index = min(self._index, len(model.order) - 1)
            new_id = model.order[index] if index >= 0 else None
            index = max(index, 0)
            if new_id != self.selected_id:
                self.selected_id = new_id
                self.moved_by_itself_at = self._clock() if new_id is not None else None
                self.post_message(self.Selected(new_id))
        self._index = index
        self._scroll_to_cursor()
        self.refresh()

    # --- the cursor (the app moves it on the operator's keys) ------------------------------

    def move(self, delta: int) -> bool:
        """Move the cursor by `delta` rows; True if another proposal is now selected."""
        return self.select(self._index + delta)

    def select(self, index: int) -> bool:
        """Put the cursor on the row at `index` (clamped); True if another proposal is now selected."""
        order = self._model.order
        if not order:
            return False
        old_index, old_top = self._index, self._top
        self._index = max(0, min(len(order) - 1, index))
        self._scroll_to_cursor()
        if self._top == old_top:
            # Only the two rows the cursor left and reached change (and the position in the header).
            width = self.size.width
            rows = {0, old_index - self._top + 1, self._index - self._top + 1}
            self.refresh(*(Region(0, y, width, 1) for y in rows))
        else:
            self.refresh()
        new_id = order[self._index]
        if new_id == self.selected_id:
            return False
        self.selected_id = new_id
        self.moved_by_itself_at = None
        return True

    def _scroll_to_cursor(self) -> None:
        rows = max(1, self.size.height - 1)
        if self._index < self._top:
            self._top = self._index
        elif self._index >= self._top + rows:
            self._top = self._index - rows + 1
        self._top = max(0, min(self._top, max(0, len(self._model.order) - rows)))

    def on_resize(self) -> None:
        self._scroll_to_cursor()

    # --- drawing -------------------------------------------------------------------------

    def _columns(self) -> list[Column]:
        wide = self.size.width >= WIDE
        return [c for c in COLUMNS if wide or not c.wide_only]

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        self.rendered_at = time.perf_counter()
        columns = self._columns()
        if y == 0:
            return self._strip(self._header(columns), width, _HEADER)
        order = self._model.order
        row = self._top + y - 1
        if row >= len(order):
            if not order and y == 1:
                return self._strip(Text("  no pending proposals", "dim italic"), width)
            return Strip.blank(width)
        view = self._model.proposals[order[row]]
        left = None if self.stale else self._model.seconds_left(view, self._clock())
        text = Text("▶ " if row == self._index else "  ")
        for column in columns:
            cell = column.cell(view, left)
            cell.truncate(column.width, overflow="ellipsis", pad=True)
            if column.justify == "right":
                cell.rstrip()
                cell.pad_left(column.width - cell.cell_len)
            text.append_text(cell)
            text.append(" ")
        style = _CURSOR if row == self._index and self.has_focus else None
        if self.stale:
            style = _STALE + style if style else _STALE
        elif not view.can_approve and row != self._index:
            style = Style(dim=True)
        return self._strip(text, width, style)

    def _header(self, columns: list[Column]) -> Text:
        if self.stale:
            count = len(self._model.order)
            return Text(f"  STALE — disconnected: the queue as last seen ({count}), not live", "bold red")
        text = Text("  ")
        for column in columns:
            title = Text(column.title)
            title.truncate(column.width, pad=True)
            if column.justify == "right":
                title.rstrip()
                title.pad_left(column.width - title.cell_len)
            text.append_text(title)
            text.append(" ")
        count = len(self._model.order)
        position = f"{self._index + 1}/{count}"
        room = self.size.width - text.cell_len - 1  # and a space before the pane beside it
        if count and room >= len(position):
            text.append(position.rjust(room))
        return text

    def _strip(self, text: Text, width: int, style: Style | None = None) -> Strip:
        text.no_wrap = True
        segments = list(text.render(self._text_console))
        strip = Strip(segments).adjust_cell_length(width)
        if style is not None:
            strip = strip.apply_style(style)
        return strip

    def view(self) -> ProposalView | None:
        """The selected proposal's latest view."""
        return self._model.proposals.get(self.selected_id) if self.selected_id else None
