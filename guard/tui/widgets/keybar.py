"""The key bar: every key on one line at 80 columns, greyed out when the action is not available.

Textual's Footer needs about 90 columns for these keys and recomposes itself on every binding
refresh; this bar is one line of text, redrawn only when what is available changes. What it shows
comes from the bindings (see `ConsoleScreen.key_labels`), never from a list of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget


@dataclass(frozen=True, slots=True)
class KeyLabel:
    """One key as the bar shows it."""

    key: str
    """The key as displayed ("K", "^r", "?")."""
    label: str
    action: str
    alarm: bool = False
    """Drawn in red and never greyed: the kill switch."""


class KeyBar(Widget):
    """The main screen's keys; a greyed key's reason is on the decision card and in a toast.

    Args:
        keys: The keys, in order.
        available: Whether an action can run now (the screen's `check_action`).
    """

    DEFAULT_CSS = """
    KeyBar {
        height: 1;
        background: $footer-background;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, keys: Sequence[KeyLabel], available: Callable[[str], bool], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]  # Widget's keyword arguments (id, classes)
        self.keys = tuple(keys)
        self._available = available

    def render(self) -> Text:
        text = Text()
        for key in self.keys:
            if key.alarm:
                text.append(f"{key.key} {key.label}", "bold white on red")
            else:
                enabled = self._available(key.action)
                text.append(key.key, "bold reverse" if enabled else "dim reverse")
                text.append(key.label, "" if enabled else "dim")
            text.append(" ")
        text.right_crop(1)
        return text
