"""The main screen's keys, as Textual bindings, and everything made from them.

The bindings are the one key map: the key bar, the help screen, the command palette and the words
a greyed-out key gives are all derived from them here, never listed a second time.

Every key is a priority binding: the app runs it as it reads it, in the order typed, so a key that
opens a dialog has opened it before the next key arrives (a non-priority binding runs only once
the key has bubbled back up to the app, after the keys typed behind it were handed on).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

from textual.actions import parse as parse_action
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType

from guard.domain import AcknowledgmentKind
from guard.tui.widgets.keybar import KeyLabel


def console_key(keys: str, action: str, label: str = "", tooltip: str = "", *, show: bool = True) -> Binding:
    """A console key; its tooltip reads "Title\\nwhat it does" (the palette's title and help, the help screen)."""
    return Binding(keys, action, label, show=show, priority=True, tooltip=tooltip)


ORDERS_HELP = "Resting orders\nlimits, stops and take-profits: cancel or amend one"
LIMITS_HELP = "Limits\nthe risk limits in force; change one (more risk asks to confirm)"

CONSOLE_KEYS: list[BindingType] = [
    console_key("a", "approve", "approve", "Approve the selected proposal\nas shown; a novel one asks to confirm"),
    console_key(
        "o",
        "override",
        "override",
        "Override the selected proposal\nedit size, leverage, stop, take-profit or limit price, then approve",
    ),
    console_key("r", "reject", "reject", "Reject the selected proposal\nwith an optional reason"),
    console_key("ctrl+r", "rearm", "rearm", "Re-arm trading\nleave HALTED or REDUCING (type RE-ARM)"),
    console_key("p", "pause_model", "pause", "Pause or resume the model\nstop or restart the model's proposals"),
    console_key(
        "c",
        "close_position",
        "close",
        "Close a position\nall of it, a quantity or a percentage (reduce-only market order)",
    ),
    # Not in the bar (it is full at 80 columns): the help screen and the palette list them; the positions summary
    # counts resting orders.
    console_key("O", "orders", "orders", ORDERS_HELP, show=False),
    console_key("L", "limits", "limits", LIMITS_HELP, show=False),
    console_key("m", "model_card", "card", "Model card\nwhat the model is, what it was trained on, its limits"),
    console_key(
        "l", "performance", "live", "Live performance vs claimed\nhit rate and calibration per confidence bucket"
    ),
    console_key("question_mark", "help", "help", "Help\nkeys and screens"),
    console_key(
        "q",
        "quit",
        "quit",
        "Quit the console\nthe daemon keeps running (ctrl+q quits even while disconnected)",
        show=False,
    ),
    console_key(
        "down,j", "cursor(1)", "next", "Next proposal\nthe queue is oldest first; pgdn pgup home end jump", show=False
    ),
    console_key("up,k", "cursor(-1)", "previous", "Previous proposal\ntowards the oldest", show=False),
    console_key("pagedown", "cursor(10)", show=False),
    console_key("pageup", "cursor(-10)", show=False),
    console_key("home", "cursor_to(0)", show=False),
    console_key("end", "cursor_to(-1)", show=False),
]
"""The main screen's keys (the kill keys are the app's: they work on every screen)."""


def action_of_key(bindings: Iterable[BindingType]) -> dict[str, str]:
    """Key -> the name of the action it runs ("cursor(1)" -> "cursor")."""
    return {b.key: parse_action(b.action)[1] for b in Binding.make_bindings(bindings)}


def _palette_binding(app: App[Any]) -> Binding:
    return Binding(app.COMMAND_PALETTE_BINDING, "command_palette", "more")


def key_labels(app: App[Any], screen_bindings: Iterable[BindingType]) -> tuple[KeyLabel, ...]:
    """The key bar: the app's kill key first, then the screen's shown keys, then the command palette."""
    labels = [
        KeyLabel(app.get_key_display(b), b.description, b.action, alarm=True)
        for b in Binding.make_bindings(app.BINDINGS)
        if b.show and parse_action(b.action)[1] == "kill"
    ]
    labels += [
        KeyLabel(app.get_key_display(b), b.description, b.action)
        for b in Binding.make_bindings(screen_bindings)
        if b.show
    ]
    palette = _palette_binding(app)
    labels.append(KeyLabel(app.get_key_display(palette), palette.description, palette.action))
    return tuple(labels)


def help_rows(app: App[Any], screen_bindings: Iterable[BindingType]) -> list[tuple[str, str]]:
    """The help screen: each action's keys, then what it does (from the tooltips)."""
    rows: dict[str, tuple[list[str], str]] = {}
    for b in [*Binding.make_bindings(app.BINDINGS), *Binding.make_bindings(screen_bindings)]:
        if b.tooltip and not b.system:
            keys, _ = rows.setdefault(parse_action(b.action)[1], ([], b.tooltip.replace("\n", ": ")))
            keys.append(app.get_key_display(b))
    out = [("  ".join(keys), what) for keys, what in rows.values()]
    palette = app.get_key_display(_palette_binding(app))
    out.append((palette, "command palette: every action, and the risk acknowledgments"))
    return out


def palette_entries(app: App[Any], bindings: Iterable[BindingType]) -> Iterator[tuple[str, str, str]]:
    """(title, help, action name) for every shown key with a tooltip: the palette offers what the keys do."""
    for b in Binding.make_bindings(bindings):
        if b.show and b.tooltip:
            title, _, what = b.tooltip.partition("\n")
            yield title, f"{what} ({app.get_key_display(b)})", parse_action(b.action)[1]


def console_palette(
    app: App[Any], bindings: Iterable[BindingType], leverage: str, run: Callable[..., None]
) -> Iterator[SystemCommand]:
    """The main screen's palette: every titled key, the orders and limits screens, the throttle and the
    acknowledgments (`leverage`: the daemon's threshold in words). An entry calls `run(action)`, or
    `run("acknowledge", kind)`."""
    for title, what, action in palette_entries(app, bindings):
        yield SystemCommand(title, what, partial(run, action))
    for action, words in (("orders", ORDERS_HELP), ("limits", LIMITS_HELP)):
        title, _, what = words.partition("\n")
        yield SystemCommand(title, f"{what} ({action[0].upper()})", partial(run, action))
    throttle = partial(run, "reenable_throttle")
    yield SystemCommand("Re-enable the order throttle", "after it tripped", throttle)
    yield SystemCommand(
        "Acknowledge the model's risks",
        "let the model propose (typed acknowledgment)",
        partial(run, "acknowledge", AcknowledgmentKind.MODEL_PROPOSALS),
    )
    yield SystemCommand(
        f"Acknowledge leverage {leverage}",
        "what leverage does to liquidation (typed acknowledgment)",
        partial(run, "acknowledge", AcknowledgmentKind.LEVERAGE),
    )


TYPING_PAUSE = 0.5
"""After a refused key that opens a text field, what is typed with no pause this long is dropped, K included."""
TEXT_OPENERS = frozenset({"reject", "override", "close_position", "rearm", "orders", "limits"})
"""Actions whose dialog is typed into: `r` then `OK` typed at once must not become a kill when `r` is refused."""


class TypedBehindRefusal:
    """Keys typed right behind a refused key that opens a text field: meant for that field, so none of them runs.

    `r` refused (its proposal just expired) then `OK` typed in the same breath would otherwise take K as the kill
    switch and the other letters as commands. They are dropped until the typing pauses; ctrl+k always kills.

    Args:
        clock: Monotonic seconds.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._until = float("-inf")

    def active(self) -> bool:
        """Whether a key typed now is dropped."""
        return self._clock() < self._until

    def refused(self, action: str) -> bool:
        """A key for `action` was refused: if it opens a text field, drop what follows. True when that started."""
        if action in TEXT_OPENERS:
            self._until = self._clock() + TYPING_PAUSE
            return True
        return False

    def dropped(self) -> None:
        """A key was dropped: the burst goes on, and so does the dropping."""
        self._until = self._clock() + TYPING_PAUSE
