"""The limits screen (L): every limit that can change at run time, its value, what it allows and who changed it
last; Enter or e changes the chosen one.

A change that adds risk (the way `LimitView.riskier` says, e.g. a higher max leverage) asks for its own
confirmation (y) before it is sent with `confirm_risk_increase`, as an override that adds risk does. The daemon
validates the value like config.toml and refuses with the reason; the console only saves a round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from guard.api.desk_views import LimitView
from guard.api.protocol import SetRiskLimit
from guard.tui.screens.base import KILL_HINT, GuardModal
from guard.tui.screens.orders import ListScreen
from guard.tui.screens.override import parse_decimal
from guard.tui.widgets.field import TextField


@dataclass(frozen=True, slots=True)
class LimitChange:
    """What the operator typed for one limit."""

    key: str
    value: str
    reason: str


def adds_risk(limit: LimitView, typed: str) -> bool:
    """Whether `typed` moves the limit the way the daemon says adds risk (a number that is not one: no)."""
    old, new = parse_decimal(limit.value), parse_decimal(typed)
    if old is None or new is None:
        return False
    return new < old if limit.riskier == "lower" else new > old


def changed_words(limit: LimitView) -> str:
    """ "alice 03:50 UTC: calmer", or "as configured"."""
    if limit.changed_at is None:
        return "as configured"
    when = datetime.fromtimestamp(limit.changed_at / 1000, UTC).strftime("%H:%M UTC")
    return f"{limit.changed_by} {when}" + (f": {limit.reason}" if limit.reason else "")


def limit_row(limit: LimitView) -> str:
    """One line of the limits table: key, value, what it allows, the last change."""
    return f"{limit.key.removeprefix('risk.'):<22} {limit.value:>10}  {limit.allowed:<38} {changed_words(limit)}"


class SetLimitScreen(GuardModal[LimitChange | None]):
    """A new value and a reason for one limit: answers the change, or None to go back."""

    DEFAULT_CSS = (
        GuardModal.DEFAULT_CSS
        + """
    SetLimitScreen .row { height: 1; }
    SetLimitScreen .row Label { width: 7; }
    SetLimitScreen .row Input { width: 1fr; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "submit", "set", show=False, priority=True)]

    def __init__(self, limit: LimitView) -> None:
        super().__init__()
        self.limit = limit

    def compose(self) -> ComposeResult:
        limit = self.limit
        with Vertical(classes="dialog"):
            yield Static(f"Change {limit.key} (now {limit.value})", classes="title")
            yield Static(f"Allowed: {limit.allowed}. {limit.riskier.capitalize()} adds risk: it asks to confirm.")
            with Horizontal(classes="row"):
                yield Label("Value")
                yield TextField(placeholder=limit.value, id="value", compact=True)
            with Horizontal(classes="row"):
                yield Label("Why")
                yield TextField(placeholder="reason (journaled with your operator id)", id="reason", compact=True)
            yield Static("", id="problem", classes="error")
            yield Static(f"Tab: next field · Enter: set · Esc: back · {KILL_HINT}", classes="hint")

    def prepare(self) -> Widget | None:
        return self.query_one("#value", Input)

    def action_submit(self) -> None:
        self.submit_when_typed(self._answer)

    def _answer(self) -> None:
        value = self.query_one("#value", Input).value.strip()
        reason = self.query_one("#reason", Input).value.strip()
        problem = self.query_one("#problem", Static)
        if not value:
            problem.update("✗ type the new value")
        elif not reason:
            problem.update("✗ type why: the reason is journaled with the change")
        else:
            self.dismiss(LimitChange(self.limit.key, value, reason))


class ConfirmRiskScreen(GuardModal[bool]):
    """The change adds risk: y sends it with the confirmation, n or Esc goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "yes, add the risk", priority=True),
        Binding("n", "answer(False)", "no", priority=True),
    ]

    def __init__(self, words: str) -> None:
        super().__init__()
        self._words = words

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("This change adds risk", classes="title")
            yield Static(self._words)
            yield Static("y: confirm the increase and send it · n or Esc: go back", classes="phrase")
            yield Static(KILL_HINT, classes="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    def action_cancel(self) -> None:
        self.dismiss(False)


class LimitsScreen(ListScreen):
    """Every run-time limit, kept current from the daemon's status; Enter or e changes the chosen one.

    Args:
        model: The daemon's state as last heard.
        send: Sends a command and shows the daemon's answer.
        run: Runs a coroutine as a worker.
        link_up: Whether the daemon is connected now.
        clock: Local monotonic seconds.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter,e", "change", "change", priority=True),
        Binding("q,L", "close", "close", priority=True),
    ]

    _shown: tuple[LimitView, ...] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog info"):
            yield Static("Limits — what can change while the daemon runs", classes="title")
            yield Static(f"{'LIMIT (risk.)':<22} {'VALUE':>10}  {'ALLOWED':<38} LAST CHANGED", id="head")
            yield OptionList(id="limits")
            yield Static(f"↑↓: choose · Enter or e: change · Esc: close · {KILL_HINT}", classes="hint")

    def limits(self) -> tuple[LimitView, ...]:
        status = self._model.status
        return status.limits if status is not None else ()

    def sync(self) -> None:
        """Show the limits as the daemon lists them now, keeping the choice."""
        limits = self.limits()
        if limits == self._shown:
            return
        self._shown = limits
        table = self.query_one(OptionList)
        chosen = self.chosen()
        table.clear_options()
        table.add_options(Option(limit_row(v), id=v.key) for v in limits)
        keys = [v.key for v in limits]
        if keys:
            table.highlighted = keys.index(chosen.key) if chosen is not None and chosen.key in keys else 0

    def chosen(self) -> LimitView | None:
        option = self.query_one(OptionList).highlighted_option
        return next((v for v in self.limits() if option is not None and v.key == option.id), None)

    def action_change(self) -> None:
        self.sync()
        limit = self.chosen()
        if limit is None:
            self.refuse("change", "no limit chosen")
        else:
            self.app.push_screen(SetLimitScreen(limit), self._changed)

    def _changed(self, change: LimitChange | None) -> None:
        if change is None:
            return
        if not self._link_up():
            self.notify("not connected to the daemon: nothing sent", title="cannot change", severity="warning")
            return
        limit = next((v for v in self.limits() if v.key == change.key), None)
        if limit is not None and adds_risk(limit, change.value):
            words = f"{change.key} {limit.value} → {change.value}: {limit.riskier} adds risk.\nReason: {change.reason}"
            self.app.push_screen(ConfirmRiskScreen(words), lambda yes: self._send_change(change, True) if yes else None)
        else:
            self._send_change(change, False)

    def _send_change(self, change: LimitChange, confirm: bool) -> None:
        def make(cid: str) -> SetRiskLimit:
            return SetRiskLimit(cid, change.key, change.value, change.reason, confirm_risk_increase=confirm)

        self._run(self._send(make, f"set {change.key}"))
