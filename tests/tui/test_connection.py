"""The console and the daemon's lifetime: disconnect, reconnect, and quitting (which stops nothing)."""

from __future__ import annotations

import time
from pathlib import Path

from guard.api.client import ApiClient
from guard.daemon import Daemon, running
from guard.domain import DecisionKind, TradingState
from guard.events import DecisionRecorded, KillRequested, ModelPaused
from tests.api.support import queue_proposal, wait_until
from tests.tui.conftest import console, journal, keys, quiet_config, until


async def test_console_daemon_restart_goes_stale_at_once_then_resyncs(guard_home: Path) -> None:
    """The daemon stops: DISCONNECTED at once, actions greyed, panes stale; back: a fresh snapshot, live again."""
    config = quiet_config()
    first = running(config)
    daemon = await first.__aenter__()
    async with console(daemon) as (app, pilot):
        screen = app.main_screen
        old = await queue_proposal(daemon)
        await until(pilot, lambda: screen.check_action("approve", ()))
        await first.__aexit__(None, None, None)
        stopped = time.monotonic()
        await until(pilot, lambda: screen.banner.shown[0] == "DISCONNECTED", within=5)
        assert time.monotonic() - stopped < 2.0
        assert screen.check_action("approve", ()) is None and screen.check_action("reject", ()) is None
        assert screen.queue.stale and screen.card.stale and screen.positions.stale and screen.banner.has_class("-down")
        assert "STALE" in str(screen.card.render()) and "STALE" in screen.queue.render_line(0).text
        await pilot.press("K")  # no daemon to reach: the console says so instead of pretending
        await until(pilot, lambda: screen.banner.notice is not None and "NOT CONFIRMED" in screen.banner.notice.text)

        async with running(config) as second:
            await until(pilot, lambda: app.link_state.up, within=15)
            await until(pilot, lambda: screen.banner.shown[0] == "ACTIVE")
            assert old not in app.model.proposals  # the snapshot replaced the stale queue (it expired at stop)
            assert not screen.queue.stale and not screen.card.stale
            new = await queue_proposal(second)
            await until(pilot, lambda: screen.queue.selected_id == new and screen.check_action("approve", ()))
            await pilot.press("a")
            await until(pilot, lambda: new not in app.model.proposals)
            decisions = journal(second, DecisionRecorded)
    assert [(d.proposal_id, d.kind, d.operator) for d in decisions] == [(new, DecisionKind.APPROVE, "alice")]
    assert not journal(second, KillRequested)


async def test_console_quitting_leaves_the_daemon_running(daemon: Daemon) -> None:
    """q closes the console; the daemon keeps running, ACTIVE, and only notes the operator left."""
    async with console(daemon) as (_app, pilot):
        assert daemon.hub.clients == 1
        await pilot.press("q")
    await wait_until(lambda: daemon.hub.clients == 0)
    health = await ApiClient.from_config(daemon.config).health()
    assert health is not None and health["trading_state"] == TradingState.ACTIVE.value
    assert not journal(daemon, KillRequested)


PHRASE = "i understand the model can be wrong so approve or reject"


async def test_console_keys_typed_while_reconnecting_execute_nothing(guard_home: Path) -> None:
    """A phrase typed again and again while the daemon is away, and right as the console reconnects, opens no
    screen and decides nothing; once the operator has had a moment to look, keys work again."""
    config = quiet_config()
    first = running(config)
    daemon = await first.__aenter__()
    async with console(daemon, reconnect_grace=5.0) as (app, pilot):
        screen = app.main_screen
        await first.__aexit__(None, None, None)
        await until(pilot, lambda: not app.link_state.up, within=5)
        async with running(config) as second:
            pid = await queue_proposal(second)  # something a stray a or r would decide
            while not app.link_state.up:
                await keys(pilot, *PHRASE)
            await keys(pilot, *PHRASE)  # right behind the snapshot
            assert app.screen is screen and not screen.decisions.in_flight
            await until(pilot, lambda: screen.check_action("approve", ()), within=15)
            await pilot.press("a")
            await until(pilot, lambda: pid not in app.model.proposals)
            decisions = journal(second, DecisionRecorded)
            models = journal(second, ModelPaused)
    assert [(d.proposal_id, d.kind) for d in decisions] == [(pid, DecisionKind.APPROVE)]
    assert not models and not journal(second, KillRequested)
