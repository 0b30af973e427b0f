"""Information screens: keys and screens (?), the model card (m), live performance vs claimed (l).

The card and the performance record are fetched over REST when the screen opens; the screen
says "loading" until they come and shows the error in words when they do not.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar, Protocol

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from guard.api.protocol import PerformanceView
from guard.errors import GuardError
from guard.tui import render
from guard.tui.screens.base import DIALOG_CSS, KILL_HINT, GuardModal


class InfoSource(Protocol):
    """What the information screens fetch from the daemon over REST."""

    async def model_card(self) -> str: ...

    async def performance(self) -> PerformanceView: ...


INFO_CSS = (
    DIALOG_CSS
    + """
.info { width: 95%; max-width: 120; height: 90%; }
.info VerticalScroll { height: 1fr; max-height: 100%; }
"""
)

SCREENS = (
    "The banner: trading state (ACTIVE / REDUCING / HALTED) in colour and words, equity and PnL, operators, "
    "feed and model health. DISCONNECTED means everything below is the last known state, not the live one.",
    "The queue: pending proposals, oldest first. Greyed rows cannot be approved now; the card says why.",
    "The card: the selected proposal — the model's why, its hit rate at this confidence, liquidation price and "
    "distance (% and σ), P(liquidation), fees, every risk check with its reason.",
    "Positions: under the card, how many are open, the largest in full (side, size, leverage, PnL, distance to "
    "liquidation) and the rest in short; from 150×36 the positions table, price sparklines and the event log.",
    "While DISCONNECTED, for a moment after the console reconnects, and right after a refused key that opens a "
    "text field, keys do nothing (what was typed then is not run); ctrl+k always kills.",
)


class InfoScreen(GuardModal[None]):
    """A read-only screen; Esc, q or its own key closes it."""

    DEFAULT_CSS = INFO_CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "cancel", "close", priority=True)]


class HelpScreen(InfoScreen):
    """Every key and what each screen shows.

    Args:
        keys: (keys, what they do) rows, made from the console's bindings.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("question_mark", "cancel", "close", priority=True)]

    def __init__(self, keys: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self._keys = keys

    def compose(self) -> ComposeResult:
        table = Table(box=None, padding=(0, 2), show_header=False)
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for keys, what in self._keys:
            table.add_row(keys, what)
        with Vertical(classes="dialog info"):
            yield Static("guard — keys and screens", classes="title")
            with VerticalScroll():
                yield Static(table)
                yield Static(Text("\n" + "\n".join(f"• {line}" for line in SCREENS)))
            yield Static(f"Esc: close · {KILL_HINT}", classes="hint")


class ModelCardScreen(InfoScreen):
    """The model card (markdown), fetched from the daemon."""

    def __init__(self, load: Callable[[], Awaitable[str]]) -> None:
        super().__init__()
        self._load = load

    def compose(self) -> ComposeResult:
        from textual.widgets import Markdown  # markdown-it is slow to import: only when the card is opened

        with Vertical(classes="dialog info"):
            yield Static("Model card", classes="title")
            with VerticalScroll():
                yield Markdown("*loading the model card from the daemon…*", id="card")
            yield Static(f"Esc: close · {KILL_HINT}", classes="hint")

    def on_mount(self) -> None:
        self.run_worker(self._fetch(), exclusive=True)

    async def _fetch(self) -> None:
        try:
            text = await self._load()
        except GuardError as e:
            text = f"**Could not load the model card:** {e}"
        from textual.widgets import Markdown

        await self.query_one("#card", Markdown).update(text)


class PerformanceScreen(InfoScreen):
    """The model's live hit rate and calibration beside what its card claimed, as bars."""

    def __init__(self, load: Callable[[], Awaitable[PerformanceView]]) -> None:
        super().__init__()
        self._load = load

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog info"):
            yield Static("Live performance vs claimed", classes="title")
            with VerticalScroll():
                yield Static("loading the live record from the daemon…", id="perf")
            yield Static(f"Esc: close · {KILL_HINT}", classes="hint")

    def on_mount(self) -> None:
        self.run_worker(self._fetch(), exclusive=True)

    async def _fetch(self) -> None:
        body: Text | Table
        try:
            body = performance_text(await self._load())
        except GuardError as e:
            body = Text(f"Could not load the live record: {e}", "bold red")
        self.query_one("#perf", Static).update(body)


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def performance_text(view: PerformanceView, width: int = 24) -> Text:
    """The live record as text and bars: overall, the pause test, then claimed vs live per bucket."""
    text = Text()
    text.append(f"Model {view.model_id or '(none)'}", "bold")
    text.append(f" — {view.recorded} proposals tracked since the daemon started, {view.scored} settled\n\n")
    text.append("Hit rate   live ")
    text.append(_rate(view.hit_rate), "bold")
    text.append(f"   claimed (mean confidence) {_rate(view.mean_confidence)}\n")
    brier = "—" if view.brier is None else f"{view.brier:.3f}"
    claimed_brier = "—" if view.claimed_brier is None else f"{view.claimed_brier:.3f}"
    text.append(f"Brier      live {brier}   claimed {claimed_brier}   (lower is better)\n")
    if view.threshold > 0:
        fraction = view.statistic / view.threshold
        style = "bold red" if fraction >= 1 else "yellow" if fraction >= 0.5 else "green"
        text.append("Evidence that live is below the claim ")
        text.append(render.bar(fraction, width), style)
        text.append(f" {view.statistic:.2f} of {view.threshold:.2f} (the model is paused at the end of the bar)\n")
    if view.paused:
        text.append(f"PAUSED: {view.pause_reason}\n", "bold red")
    elif view.pause_reason:
        text.append(f"{view.pause_reason}\n", "dim")
    text.append("\nPer confidence bucket: ")
    text.append("claimed", "cyan")
    text.append(" (held-out test) vs ")
    text.append("live", "bold magenta")
    text.append("\n")
    if not view.buckets:
        text.append("  no buckets yet: the model has no live record\n", "dim")
    for bucket in view.buckets:
        label = f"{bucket.lo:.0%}–{bucket.hi:.0%}"
        text.append(f"  {label:>9}  ")
        text.append(render.bar(bucket.claimed_hit_rate or 0.0, width), "cyan")
        text.append(f" {_rate(bucket.claimed_hit_rate):>4} (n {bucket.claimed_count})\n")
        text.append(" " * 13)
        text.append(render.bar(bucket.live_hit_rate or 0.0, width), "bold magenta")
        live = _rate(bucket.live_hit_rate) if bucket.live_count else "—"
        text.append(f" {live:>4} (n {bucket.live_count})\n")
    return text
