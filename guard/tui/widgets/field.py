"""A text field whose editing keys run in the order they were typed.

Textual's `Input` inserts a printed character as it takes the key from its own queue, but its
editing keys (backspace, ctrl+u, arrows) are bindings, run only after the key has bubbled back up
to the app, by which time the characters typed after them are already in. `ctrl+u 2 1` typed at
full speed left "21" and then cleared it. This field runs its own bindings as it takes each key, in
the order typed. (Enter, Tab and Esc belong to the dialog, which runs them as the app reads them;
see `guard.tui.screens.base`.)
"""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.actions import parse as parse_action
from textual.binding import Binding
from textual.widgets import Input


class TextField(Input):
    """An `Input` that applies its editing keys in order with the characters around them."""

    _EDITING_KEYS: ClassVar[dict[str, str]] = {b.key: b.action for b in Binding.make_bindings(Input.BINDINGS)}
    """Key -> the Input action it runs (derived from Input's own bindings)."""

    async def _on_key(self, event: events.Key) -> None:
        action = None if event.is_printable else self._EDITING_KEYS.get(event.key)
        if action is not None and self.check_action(parse_action(action)[1], ()):
            event.stop()
            event.prevent_default()  # Input's own handler must not see it again
            await self.run_action(action)
