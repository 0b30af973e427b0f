"""Fixtures for the console's tests: a real daemon in-process, and the console attached to it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from guard.api.client import ApiClient
from guard.config import Config
from guard.daemon import Daemon, running
from guard.events import Event
from guard.journal.chain import read_entries
from guard.tui.app import GuardApp
from tests.builders import daemon_config


def quiet_config(**sections: dict[str, Any]) -> Config:
    """A daemon config whose market runs in real time: Pilot waits for an idle process between keys."""
    return daemon_config(sim={"speed": 1.0}, **sections)


@pytest.fixture
async def daemon(guard_home: Path) -> AsyncIterator[Daemon]:
    async with running(quiet_config()) as d:
        yield d


@contextlib.asynccontextmanager
async def console(
    daemon: Daemon, operator: str = "alice", size: tuple[int, int] = (160, 48), **kw: Any
) -> AsyncIterator[tuple[GuardApp, Pilot[int]]]:
    """The console attached to `daemon` as `operator`, once it shows the daemon's live state."""
    kw.setdefault("selection_grace", 0.0)
    kw.setdefault("reconnect_grace", 0.0)
    app = GuardApp(ApiClient.from_config(daemon.config), operator, config=daemon.config, **kw)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.link_state.up and app.model.status is not None)
        yield app, pilot


async def until(pilot: Pilot[Any], condition: Callable[[], object], within: float = 10.0) -> None:
    """Let the app run until `condition` holds (it polls state the app owns, which has no event)."""
    async with asyncio.timeout(within):
        while not condition():
            await pilot.pause(0.02)


def journal(daemon: Daemon, kind: type[Event]) -> list[Any]:
    """Every event of this type the daemon journaled, oldest first."""
    return [e.event for e in read_entries(daemon.paths.journal) if isinstance(e.event, kind)]


def screen_text(app: GuardApp) -> str:
    """What the terminal shows right now, as plain text (the lines a person reads)."""
    import io

    from rich.console import Console

    width, height = app.size
    out = Console(width=width, height=height, file=io.StringIO(), record=True, legacy_windows=False)
    out.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return out.export_text()


_CHARACTER_KEYS = {
    " ": "space",
    "-": "minus",
    ".": "full_stop",
    ",": "comma",
    "%": "percent_sign",
    "?": "question_mark",
}
_KEY_CHARACTERS = {"enter": "\r", "tab": "\t", "backspace": "\x08", "escape": "\x1b"}


async def keys(pilot: Pilot[Any], *names: str) -> None:
    """Press keys the way a fast typist's terminal sends them: all at once, in order, no pause between; then wait.

    Pilot.press waits for an idle process after every key (with a daemon busy in the same process that is
    up to a second per key), which hides every race between a key and the screen it lands on. Here a key
    that opens a dialog or moves the focus has the next key right behind it, as in a real terminal.
    """
    from textual import events

    app = pilot.app
    for name in names:
        if len(name) == 1:
            key, character = (name if name.isalnum() else _CHARACTER_KEYS[name]), name
        else:
            key, character = name, _KEY_CHARACTERS.get(name)
        event = events.Key(key, character)
        event.set_sender(app)
        app.post_message(event)
    await pilot.pause()


async def type_text(pilot: Pilot[Any], text: str) -> None:
    """Type `text` into whatever has focus."""
    await keys(pilot, *text)
