"""The override form: size, leverage, stop, take-profit and limit price, validated as you type.

An edit that adds risk (more size, more leverage, a stop further from the price) shows its own
confirmation box, and the form will not submit until it is ticked. The daemon checks all of
this again and refuses with a reason if the form got it wrong; this form only saves a round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.validation import ValidationResult, Validator
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, Static

from guard.domain import HARD_LEVERAGE_CAP, ONE, OverrideEdits, Proposal
from guard.tui import render
from guard.tui.screens.base import KILL_HINT, DecisionDialog
from guard.tui.widgets.field import TextField

FIELDS = (
    ("qty", "Size"),
    ("leverage", "Leverage"),
    ("stop", "Stop"),
    ("take_profit", "Take-profit"),
    ("limit_price", "Limit price"),
)

NOTHING_CHANGED = "change a field to override, or go back and approve (a) as shown"


@dataclass(frozen=True, slots=True)
class OverrideRequest:
    """What the operator asked for: the edits, why, and whether they accepted added risk."""

    edits: OverrideEdits
    reason: str
    confirm_risk_increase: bool


class PositiveNumber(Validator):
    """A positive, finite decimal (empty keeps the proposal's value)."""

    def __init__(self, minimum: Decimal | None = None, maximum: Decimal | None = None) -> None:
        super().__init__()
        self.minimum = minimum
        self.maximum = maximum

    def validate(self, value: str) -> ValidationResult:
        if not value.strip():
            return self.success()
        number = parse_decimal(value)
        if number is None or number <= 0:
            return self.failure("must be a positive number")
        if self.minimum is not None and number < self.minimum:
            return self.failure(f"must be at least {self.minimum}")
        if self.maximum is not None and number > self.maximum:
            return self.failure(f"must be at most {self.maximum} (the hard cap)")
        return self.success()


def parse_decimal(text: str) -> Decimal | None:
    """A finite Decimal from what was typed ("1,000.5" allowed), or None."""
    try:
        value = Decimal(text.strip().replace(",", "").replace("_", ""))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def risk_increases(p: Proposal, edits: OverrideEdits) -> list[str]:
    """The edits that add risk, in words (the daemon asks for the same confirmation)."""
    out = []
    if edits.qty is not None and edits.qty > p.qty:
        out.append(f"size {render.quantity(p.qty)} → {render.quantity(edits.qty)}")
    if edits.leverage is not None and edits.leverage > p.leverage:
        out.append(f"leverage {render.quantity(p.leverage)}x → {render.quantity(edits.leverage)}x")
    if edits.stop is not None and p.stop is not None and abs(edits.stop - p.price) > abs(p.stop - p.price):
        out.append(f"wider stop {render.price(p.stop)} → {render.price(edits.stop)}")
    return out


class OverrideScreen(DecisionDialog[OverrideRequest | None]):
    """Edit a proposal before approving it. Answers the request, or None to go back."""

    DEFAULT_CSS = (
        DecisionDialog.DEFAULT_CSS
        + """
    OverrideScreen .row { height: 1; margin-bottom: 0; }
    OverrideScreen .row Label { width: 13; }
    OverrideScreen .row Input { width: 18; }
    OverrideScreen .row .was { width: 1fr; color: $text-muted; padding-left: 1; }
    OverrideScreen .row .was.-invalid { color: $error; text-style: bold; }
    OverrideScreen #risk { margin-top: 1; }
    OverrideScreen #risk.-hidden { display: none; }
    OverrideScreen #reason { margin-top: 1; }
    OverrideScreen #buttons { height: auto; margin-top: 1; }
    OverrideScreen #buttons Button { margin-right: 2; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "submit", "override", priority=True),
        Binding("enter", "enter", "override", show=False, priority=True),
    ]

    def compose(self) -> ComposeResult:
        p = self.view.proposal
        with Vertical(classes="dialog"):
            yield Static(
                f"Override {p.id} v{p.version}: {p.side.value.upper()} {render.quantity(p.qty)} {p.symbol} "
                f"at {render.price(p.price)}, {render.quantity(p.leverage)}x",
                classes="title",
            )
            for name, label in FIELDS:
                current = getattr(p, name)
                validator = PositiveNumber(ONE, HARD_LEVERAGE_CAP) if name == "leverage" else PositiveNumber()
                with Horizontal(classes="row"):
                    yield Label(label)
                    yield TextField(
                        value="" if current is None else render.quantity(current),
                        id=name,
                        compact=True,
                        validators=[validator],
                        validate_on=["changed", "submitted"],
                    )
                    was = "none" if current is None else render.quantity(current)
                    yield Static(f"was {was}", classes="was", id=f"{name}-note")
            yield Checkbox("", id="risk", classes="-hidden")
            yield TextField(placeholder="reason (optional, journaled)", id="reason", compact=True)
            yield Static("", classes="error", id="problem")
            yield self.stale_note()
            with Horizontal(id="buttons"):
                yield Button("Override (ctrl+s)", id="submit", variant="warning", compact=True)
                yield Button("Back (esc)", id="cancel", compact=True)
            yield Static(f"Empty keeps the proposal's value · {KILL_HINT}", classes="hint")

    def prepare(self) -> Widget | None:
        self._refresh_state()
        return self.query_one("#qty", Input)

    # --- reading the form ----------------------------------------------------------------

    def edits(self) -> tuple[OverrideEdits | None, list[str]]:
        """The edits as typed (unchanged fields left None) and any problems with them."""
        p = self.view.proposal
        values: dict[str, Decimal | None] = {}
        problems = []
        for name, label in FIELDS:
            field = self.query_one(f"#{name}", Input)
            result = field.validate(field.value)
            if result is not None and not result.is_valid:
                problems.append(f"{label.lower()} {'; '.join(result.failure_descriptions)}")
                continue
            value = parse_decimal(field.value) if field.value.strip() else None
            values[name] = value if value is not None and value != getattr(p, name) else None
        if problems:
            return None, problems
        edits = OverrideEdits(**values)
        if all(v is None for v in values.values()):
            return edits, [NOTHING_CHANGED]
        return edits, []

    def _refresh_state(self) -> None:
        edits, problems = self.edits()
        risky = risk_increases(self.view.proposal, edits) if edits is not None else []
        risk = self.query_one("#risk", Checkbox)
        risk.set_class(not risky, "-hidden")
        if risky:
            risk.label = "I accept the added risk: " + "; ".join(risky)
        else:
            risk.value = False
        problem = self.query_one("#problem", Static)
        unchanged = problems == [NOTHING_CHANGED]
        problem.set_class(unchanged, "hint")
        problem.set_class(not unchanged, "error")
        problem.update("" if not problems else ("" if unchanged else "✗ ") + "; ".join(problems))
        for name, _label in FIELDS:
            field = self.query_one(f"#{name}", Input)
            result = field.validate(field.value)
            note = self.query_one(f"#{name}-note", Static)
            failures = [] if result is None or result.is_valid else result.failure_descriptions
            note.set_class(bool(failures), "-invalid")
            current = getattr(self.view.proposal, name)
            was = "none" if current is None else render.quantity(current)
            note.update("✗ " + "; ".join(failures) if failures else f"was {was}")
        ready = not problems and (not risky or risk.value)
        self.query_one("#submit", Button).disabled = not ready

    def on_input_changed(self, event: Input.Changed) -> None:
        self._refresh_state()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self._refresh_state()

    def action_enter(self) -> None:
        """Enter presses a focused button, ticks a focused box, and submits from a field."""
        focused = self.focused
        if isinstance(focused, Button) and focused.id == "cancel":
            self.action_cancel()
        elif isinstance(focused, Checkbox):
            focused.toggle()
        else:
            self.action_submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "submit":
            self.action_submit()
        else:
            self.action_cancel()

    # --- answering -----------------------------------------------------------------------

    def action_submit(self) -> None:
        self.submit_when_typed(self._answer)

    def _answer(self) -> None:
        if self.refused():
            return
        self._refresh_state()
        edits, problems = self.edits()
        if edits is None or problems:
            return  # the form already says what is wrong
        risky = bool(risk_increases(self.view.proposal, edits))
        if risky and not self.query_one("#risk", Checkbox).value:
            self.query_one("#problem", Static).update("✗ tick the box to accept the added risk first")
            return
        reason = self.query_one("#reason", Input).value.strip()
        self.dismiss(OverrideRequest(edits, reason, confirm_risk_increase=risky))
