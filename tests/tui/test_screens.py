"""How the console looks, from a fixed daemon picture (no daemon, a frozen clock): snapshots and content."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from textual.pilot import Pilot

from guard.api.protocol import ProposalsChanged, Snapshot, StatusChanged
from guard.domain import TradingState
from guard.tui.app import GuardApp
from guard.tui.link import DaemonLink
from guard.tui.model import Notice
from guard.tui.screens.override import OverrideScreen
from tests.tui import scenes
from tests.tui.conftest import keys, screen_text, until

FROZEN = 1_000.0


def offline() -> GuardApp:
    """The console with no daemon and a frozen clock: only what the test posts reaches it."""
    return GuardApp(None, "alice", clock=lambda: FROZEN, selection_grace=0.0, reconnect_grace=0.0)


def showing(snapshot: Snapshot, *keys: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """A run_before hook: the daemon's snapshot arrives, then these keys are pressed."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, GuardApp)
        app.post_message(DaemonLink.Connected(snapshot))
        await until(pilot, lambda: app.main_screen.card.view is not None or not snapshot.proposals)
        if keys:
            await pilot.press(*keys)
        await pilot.pause()

    return run_before


def test_screen_main_80x24_snapshot(snap_compare: Any) -> None:
    """The main screen at 80×24: banner, the queue oldest first, the card, the keys."""
    assert snap_compare(offline(), terminal_size=(80, 24), run_before=showing(scenes.snapshot()))


def test_screen_main_160x48_snapshot(snap_compare: Any) -> None:
    """The main screen at 160×48: every check, positions, sparklines and the event log too."""
    assert snap_compare(offline(), terminal_size=(160, 48), run_before=showing(scenes.snapshot()))


def test_screen_override_modal_snapshot(snap_compare: Any) -> None:
    """The override form, with a larger size typed: the added risk shows its own confirmation box."""
    keys = ("o", "ctrl+u", "0", ".", "1")
    assert snap_compare(offline(), terminal_size=(100, 32), run_before=showing(scenes.snapshot(), *keys))


def test_screen_halted_snapshot(snap_compare: Any) -> None:
    """HALTED: red banner in colour and in words, nothing to approve, the kill in the log."""
    assert snap_compare(offline(), terminal_size=(160, 48), run_before=showing(scenes.halted()))


async def test_screen_80x24_shows_what_a_person_needs_without_scrolling() -> None:
    """At 80×24: trading state, the oldest proposal with confidence, novelty and liquidation distance, the keys."""
    app = offline()
    async with app.run_test(size=(80, 24)) as pilot:
        await showing(scenes.snapshot())(pilot)
        text = screen_text(app)
    lines = text.splitlines()
    assert len(lines) == 24
    assert "ACTIVE" in lines[0]
    oldest = next(line for line in lines if "BTC/USDT" in line and "▶" in line)
    assert "72%" in oldest and "0.41" in oldest and "−33.0%" in oldest  # confidence, novelty, liquidation
    assert "P000001" in text and "Liquidation 67,002.0 (−33.0%, 41.2σ)" in text
    for key in ("K KILL", "aapprove", "ooverride", "rreject", "^rrearm", "?help"):
        assert key in lines[-1]


async def test_screen_80x24_shows_the_open_positions_without_a_key() -> None:
    """At 80×24, under the card: how many positions are open, the largest (side, size, leverage, PnL, distance
    to liquidation) and the others in short, with the proposal card and the keys still whole."""
    app = offline()
    async with app.run_test(size=(80, 24)) as pilot:
        await showing(scenes.snapshot())(pilot)
        lines = screen_text(app).splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(" Positions "))
    assert lines[first].strip() == "Positions 3 open · largest ETH/USDT SHORT 0.8 2x PnL +40.00 liq 50.8% away"
    assert lines[first + 1].strip() == "SOL LONG 10 +100.00 liq 36.3% · BTC SHORT 0.003 −0.09 liq 90.1%"
    assert first + 2 == len(lines) - 1 and "K KILL" in lines[-1]
    assert any("Checks" in line for line in lines[:first])  # the card's last line is still on screen


async def test_screen_positions_keep_a_space_between_columns_whatever_the_numbers() -> None:
    """Each position's figures stay apart, even a six-figure liquidation price next to a small PnL."""
    app = offline()
    async with app.run_test(size=(160, 48)) as pilot:
        await showing(scenes.snapshot())(pilot)
        text = screen_text(app)
    header = next(line for line in text.splitlines() if "ENTRY" in line and "DIST" in line)
    assert header[header.rindex("SYMBOL") :].split() == ["SYMBOL", "QTY", "ENTRY", "MARK", "PnL", "LIQ", "DIST"]
    btc = next(line for line in text.splitlines() if "84,365.8" in line)
    assert btc[btc.rindex("BTC/USDT") :].split() == [
        "BTC/USDT",
        "−0.003",
        "1.1x",
        "84,365.8",
        "84,395.0",
        "−0.09",
        "160,420.3",
        "90.1%",
    ]


async def test_screen_override_form_validates_as_you_type() -> None:
    """Leverage past the hard cap and a non-number are refused in words before anything is sent."""
    app = offline()
    async with app.run_test(size=(100, 32)) as pilot:
        await showing(scenes.snapshot(), "o")(pilot)
        form = app.screen
        assert isinstance(form, OverrideScreen)
        await keys(pilot, "tab", "ctrl+u", *"21")
        assert "at most 20" in str(form.query_one("#leverage-note").render())
        await keys(pilot, "ctrl+u", *"0.5")
        assert "at least 1" in str(form.query_one("#leverage-note").render())
        await keys(pilot, "shift+tab", "ctrl+u", "x")
        assert "positive number" in str(form.query_one("#qty-note").render())
        assert form.query_one("#submit").disabled


async def test_screen_palette_offers_every_action_and_the_leverage_acknowledgment() -> None:
    """The command palette lists the keys' actions and the acknowledgment for leverage above the daemon's
    conservative limit (3x in the scene)."""
    app = offline()
    async with app.run_test(size=(100, 32)) as pilot:
        await showing(scenes.snapshot())(pilot)
        titles = [command.title for command in app.get_system_commands(app.screen)]
    for title in ("KILL — halt, cancel, flatten", "Approve the selected proposal", "Acknowledge leverage above 3x"):
        assert title in titles


async def test_screen_greyed_out_key_says_why_when_pressed() -> None:
    """a on a proposal the daemon blocks does nothing but say the daemon's reason."""
    app = offline()
    async with app.run_test(size=(100, 32)) as pilot:
        await showing(scenes.snapshot(), "end")(pilot)
        assert app.main_screen.queue.selected_id == "P000004" and app.main_screen.check_action("approve", ()) is None
        await pilot.press("a")
        assert [n.message for n in app._notifications] == [
            "blocked by risk checks: duplicate: duplicates P000001 (BTC/USDT:USDT buy), still pending"
        ]
        assert len(app.screen_stack) == 1


async def test_screen_approve_waits_the_moment_the_cursor_moves_by_itself() -> None:
    """When the proposal under the cursor leaves, approve greys out at once: a key already on its way
    (queued before the app hears of the move) cannot approve the proposal that slid under the cursor."""
    app = GuardApp(None, "alice", clock=lambda: FROZEN, selection_grace=10.0, reconnect_grace=0.0)
    async with app.run_test(size=(100, 32)) as pilot:
        await showing(scenes.snapshot())(pilot)
        first = app.main_screen.queue.selected_id
        assert first == "P000001"
        await pilot.press("j", "k")  # the operator moved the cursor there: approve is available
        assert app.main_screen.queue.selected_id == first and app.main_screen.check_action("approve", ()) is True
        app.model.apply(ProposalsChanged((), (first,)), FROZEN)
        app.main_screen.queue.sync()  # the cursor moves to the next proposal; its message is not handled yet
        assert app.main_screen.queue.selected_id != first
        assert app.main_screen.check_action("approve", ()) is None
        await pilot.press("a")
        assert "P000002" in app.model.proposals and not app.main_screen.decisions.in_flight


async def test_screen_the_daemons_halted_replaces_a_kill_notice_whichever_came_first() -> None:
    """The kill's reply can come before the HALTED it caused: "kill acknowledged … waiting for HALTED" goes when
    HALTED is heard, as "KILL sent" does; a notice that is not about a kill on its way stays."""
    halted = scenes.status(TradingState.HALTED, "kill switch pulled by alice")
    async with offline().run_test(size=(120, 40)) as pilot:
        app = pilot.app
        assert isinstance(app, GuardApp)
        app.post_message(DaemonLink.Connected(scenes.snapshot()))
        await until(pilot, lambda: app.main_screen.card.view is not None)
        for text in (
            "kill acknowledged (HALTED): waiting for HALTED…",
            "KILL sent — waiting for the daemon to confirm…",
        ):
            app.main_screen.notice = Notice(text, "bold red", until_halted=True)
            app.post_message(DaemonLink.Pushed(StatusChanged(halted)))
            await until(pilot, lambda: app.main_screen.notice is None)
            app.post_message(DaemonLink.Pushed(StatusChanged(scenes.status())))
            await pilot.pause()
        app.main_screen.notice = Notice("KILL NOT CONFIRMED: no answer", "bold white on red")
        app.post_message(DaemonLink.Pushed(StatusChanged(halted)))
        await pilot.pause(0.3)
        assert app.main_screen.notice is not None and app.main_screen.notice.text.startswith("KILL NOT CONFIRMED")
