"""The key bar: every key on one line at 80 columns, greyed out when the action is not available.

Textual's Footer needs about 90 columns for these keys and recomposes itself on every binding
refresh; this bar is one line of text, redrawn only when what is available changes.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

KEYS = (
    ("K", "KILL", "kill"),
    ("a", "approve", "approve"),
    ("o", "override", "override"),
    ("r", "reject", "reject"),
    ("^r", "rearm", "rearm"),
    ("p", "pause", "pause_model"),
    ("c", "close", "close_position"),
    ("m", "card", "model_card"),
    ("l", "live", "performance"),
    ("?", "help", "help"),
    ("^p", "more", "command_palette"),
)


class KeyBar(Widget):
    """The main screen's keys; a greyed key's reason is on the decision card and in a toast."""

    DEFAULT_CSS = """
    KeyBar {
        height: 1;
        background: $footer-background;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def render(self) -> Text:
        app = self.app
        text = Text()
        for key, label, action in KEYS:
            enabled = bool(app.check_action(action, ()))
            if action == "kill":
                text.append(f"{key} {label}", "bold white on red")
            else:
                text.append(key, "bold reverse" if enabled else "dim reverse")
                text.append(label, "" if enabled else "dim")
            text.append(" ")
        text.right_crop(1)
        return text
