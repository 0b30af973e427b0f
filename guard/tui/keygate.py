"""Keys typed while a screen opens wait for it, so they land where the operator meant them.

A terminal delivers a fast typist's keys in one burst. Textual hands each key to whatever has
focus when the app reads it, and a dialog pushed by one key only focuses its field a few
messages later: `r` then `OK` typed at full speed would put `O` on the main screen and take `K`
as the kill switch, never reaching the reason field. The gate holds keys from the moment a
screen that has not taken its focus yet is on top until it says it is ready (`ScreenReady`),
then lets them through in the order typed, as if the screen had appeared at once.

The kill keys are never held when they cannot be text: ctrl+k always goes straight through.
Keys held for a screen that something else closed (the daemon's HALTED echo clears every
dialog) are dropped, never replayed onto the screen underneath, except a K that was held for a
screen with no text field: that K could only have meant the kill switch, and a kill is never lost.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from textual import events
from textual.message import Message
from textual.screen import Screen

HOLD_LIMIT = 1.0
"""Seconds a key waits for a screen that never says it is ready; then it goes to whatever is on top."""


class ScreenReady(Message):
    """A screen has mounted and focused where typing belongs: keys held for it may go in."""


def is_ready(screen: Screen[object]) -> bool:
    """Whether `screen` takes keys now: guard's screens say so once focused; others always do."""
    return bool(getattr(screen, "keys_ready", True))


def takes_text(screen: Screen[object]) -> bool:
    """Whether typing on `screen` goes into a text field (a K there is a letter, not the kill switch)."""
    return bool(getattr(screen, "TAKES_TEXT", False))


@dataclass
class KeyGate:
    """The keys held for a screen that is still opening, oldest first."""

    passthrough: frozenset[str]
    """Keys never held (the kill keys that cannot be typed into a field)."""
    held: deque[tuple[events.Key, bool]] = field(default_factory=deque)
    """Each held key, and whether the screen it waits for takes text."""
    held_since: float | None = None
    """Monotonic seconds when the oldest held key arrived (None when none is held)."""

    def should_hold(self, key: events.Key, screen: Screen[object]) -> bool:
        """Whether this key must wait: its screen is not ready, or keys before it are still waiting."""
        if key.key in self.passthrough:
            return False
        return bool(self.held) or not is_ready(screen)

    def hold(self, key: events.Key, screen: Screen[object], now: float) -> None:
        """Keep `key` for `screen`, which is still opening."""
        if not self.held:
            self.held_since = now
        self.held.append((key, takes_text(screen)))

    def overdue(self, now: float) -> bool:
        """Whether the oldest held key waited past `HOLD_LIMIT` (the screen never got ready)."""
        return self.held_since is not None and now - self.held_since >= HOLD_LIMIT

    def take(self) -> events.Key | None:
        """The oldest held key, or None."""
        key = self.held.popleft()[0] if self.held else None
        if not self.held:
            self.held_since = None
        return key

    def drop(self, kill_keys: frozenset[str]) -> tuple[int, bool]:
        """Forget every held key (their screen was closed by something else).

        Returns:
            How many were dropped, and whether one was a kill key held where it could not have been text.
        """
        count = len(self.held)
        kill = any(key.key in kill_keys and not text for key, text in self.held)
        self.held.clear()
        self.held_since = None
        return count, kill
