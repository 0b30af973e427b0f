"""What the console's command parts (decisions, the other commands) share: how they reach the operator and the
daemon."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textual.screen import Screen

from guard.tui.acknowledgments import Run, Send
from guard.tui.model import ConsoleModel


@dataclass(frozen=True, slots=True)
class ConsoleHandles:
    """The console's handles a command part acts through."""

    push: Callable[[Screen[Any], Callable[[Any], None]], object]
    """Pushes a dialog with the callback that takes its answer (the app's `push_screen`)."""
    model: ConsoleModel
    """The daemon's state as last heard."""
    send: Send
    """Sends a command and shows the daemon's answer."""
    run: Run
    """Runs a coroutine as a worker of the screen that owns this."""
    link_up: Callable[[], bool]
    """Whether the daemon is connected now."""
    cannot: Callable[[str, str], None]
    """Says why something did not happen (action, reason)."""


class CommandPart:
    """A command part: its dialogs and what it sends, through the console's `ConsoleHandles`."""

    def __init__(self, handles: ConsoleHandles) -> None:
        self._push = handles.push
        self._model = handles.model
        self._send = handles.send
        self._run = handles.run
        self._link_up = handles.link_up
        self._cannot = handles.cannot
