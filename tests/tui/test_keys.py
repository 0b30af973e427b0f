"""Keys typed at full speed, as a terminal delivers a fast typist's burst: each lands where it was meant.

No daemon here: the daemon's picture is posted to the console, the clock is the test's, and every
burst is posted in one go (no pause between keys), so any key that outruns a dialog, a focus
change or a change of the queue shows up as a wrong result.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from guard.api.protocol import ProposalsChanged, StatusChanged
from guard.domain import TradingState
from guard.tui.app import GuardApp
from guard.tui.link import DaemonLink
from guard.tui.screens.close import ClosePositionScreen
from guard.tui.screens.dialogs import NoveltyScreen, RejectScreen, TypedConfirmScreen
from guard.tui.screens.info import HelpScreen
from guard.tui.screens.override import OverrideScreen
from tests.tui import scenes
from tests.tui.conftest import keys, screen_text, until


class Clock:
    """The console's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def offline(clock: Clock, selection_grace: float = 0.0, reconnect_grace: float = 0.0) -> GuardApp:
    return GuardApp(None, "alice", clock=clock, selection_grace=selection_grace, reconnect_grace=reconnect_grace)


async def connect(pilot: Pilot[Any]) -> GuardApp:
    """The daemon's snapshot arrives; returns once the card shows the oldest proposal."""
    app = pilot.app
    assert isinstance(app, GuardApp)
    app.post_message(DaemonLink.Connected(scenes.snapshot()))
    await until(pilot, lambda: app.main_screen.card.drawn is not None)
    return app


def pushed(*messages: Any) -> DaemonLink.Pushed:
    batch = DaemonLink.Pushed(messages[0])
    for message in messages[1:]:
        batch.add(message)
    return batch


def kill_sent(app: GuardApp) -> bool:
    """A kill was pressed (with no daemon, the console says it could not send it)."""
    notice = app.main_screen.notice
    return notice is not None and "KILL" in notice.text


async def test_keys_capital_k_typed_into_a_reason_is_a_letter_not_the_kill_switch() -> None:
    """`r` then `OK` at full speed: the reject dialog opens, its reason reads "OK", and no kill is sent."""
    clock = Clock()
    async with offline(clock).run_test(size=(100, 32)) as pilot:
        app = await connect(pilot)
        await keys(pilot, "r", "O", "K")
        assert isinstance(app.screen, RejectScreen)
        assert app.screen.query_one("#reason", Input).value == "OK"
        assert not kill_sent(app)


async def test_keys_capital_k_typed_as_a_phrase_screen_opens_goes_into_the_phrase() -> None:
    """ctrl+r then `KO` at once: the re-arm phrase field has the focus from the start (its text above it is a
    focusable scroll area that would otherwise take the K as the kill switch)."""
    clock = Clock()
    async with offline(clock).run_test(size=(100, 32)) as pilot:
        app = await connect(pilot)
        app.post_message(pushed(StatusChanged(scenes.status(TradingState.REDUCING, "daily loss limit"))))
        await until(pilot, lambda: app.main_screen.check_action("rearm", ()))
        await keys(pilot, "ctrl+r", "K", "O")
        assert isinstance(app.screen, TypedConfirmScreen)
        assert app.screen.query_one("#typed", Input).value == "KO"
        assert not kill_sent(app)


async def test_keys_capital_k_outside_a_text_field_kills_on_every_screen() -> None:
    """K on the main screen, in the help screen and on the override form's Back button pulls the kill switch."""
    clock = Clock()
    async with offline(clock).run_test(size=(100, 32)) as pilot:
        app = await connect(pilot)
        for opening in (("K",), ("question_mark", "K"), ("o", "shift+tab", "K")):
            app.main_screen.notice = None
            await keys(pilot, *opening)
            assert kill_sent(app), opening
            if app.screen is not app.main_screen:
                await keys(pilot, "escape")
                await until(pilot, lambda: app.screen is app.main_screen)


async def test_keys_ctrl_k_kills_from_inside_a_text_field_and_types_nothing() -> None:
    """ctrl+k in the override form's size field sends the kill and leaves the field as it was."""
    clock = Clock()
    async with offline(clock).run_test(size=(100, 32)) as pilot:
        app = await connect(pilot)
        await keys(pilot, "o", "ctrl+k")
        assert isinstance(app.screen, OverrideScreen)
        assert app.screen.query_one("#qty", Input).value == "0.05"
        assert kill_sent(app)


async def test_keys_override_fields_keep_what_was_typed_at_full_speed() -> None:
    """`0.3⇥4⇥2450` typed in one burst fills size, leverage and stop — not the size with 0.342450."""
    clock = Clock()
    async with offline(clock).run_test(size=(100, 32)) as pilot:
        app = await connect(pilot)
        await keys(pilot, "o", *"0.3", "tab", "4", "tab", *"2450")
        form = app.screen
        assert isinstance(form, OverrideScreen)
        typed = {name: form.query_one(f"#{name}", Input).value for name in ("qty", "leverage", "stop")}
        assert typed == {"qty": "0.3", "leverage": "4", "stop": "2450"}


async def test_keys_enter_answers_with_everything_typed_before_it_and_k_after_it_kills() -> None:
    """`c ⇥ 50% ⏎ K` in one burst: the close answers for 50% (not "all": the field had not taken the
    characters yet when Enter was read), and the K after Enter is the kill switch, not a letter."""
    clock = Clock()
    async with offline(clock).run_test(size=(100, 32)) as pilot:
        app = await connect(pilot)
        await keys(pilot, "c", "tab", *"50%", "enter", "K")
        assert app.screen is app.main_screen
        sent = [n.message for n in app._notifications if n.message.startswith("close ")]
        assert sent == ["close BUY 0.0015 of 0.003 BTC/USDT:USDT (50%): no daemon to send it to"]
        assert kill_sent(app)


async def test_keys_editing_keys_apply_in_order_with_the_characters_around_them() -> None:
    """ctrl+u clears what was in the field before it, backspace takes the character before it: in order."""
    clock = Clock()
    async with offline(clock).run_test(size=(100, 32)) as pilot:
        app = await connect(pilot)
        await keys(pilot, "o", "tab", "ctrl+u", *"21", "backspace", "tab", "ctrl+u", *"99000")
        form = app.screen
        assert isinstance(form, OverrideScreen)
        assert form.query_one("#leverage", Input).value == "2"
        assert form.query_one("#stop", Input).value == "99000"


async def test_keys_a_burst_while_disconnected_runs_nothing() -> None:
    """A typed phrase while the daemon is out of reach opens nothing, decides nothing and moves nothing."""
    clock = Clock()
    async with offline(clock).run_test(size=(100, 32)) as pilot:
        app = await connect(pilot)
        screen = app.main_screen
        app.post_message(DaemonLink.Disconnected("the daemon closed the connection", 1, 0.25))
        await until(pilot, lambda: not screen.link.up)
        await keys(pilot, *"i understand the model can be wrong", "a", "o", "r", "c", "p", "m", "l", "j", "q")
        assert app.screen is screen and app.is_running
        assert screen.queue.selected_id == "P000001" and not screen.decisions.in_flight
        assert not kill_sent(app)
        assert {n.title for n in app._notifications} <= {
            "cannot approve",
            "cannot quit",
            "cannot cursor",
            "cannot override",
            "cannot reject",
            "cannot close position",
            "cannot pause model",
            "cannot model card",
            "cannot performance",
        }


async def test_keys_typed_as_the_console_reconnects_wait_until_the_operator_has_looked() -> None:
    """Keys arriving right behind the snapshot of a reconnect run nothing; a moment later they work again."""
    clock = Clock()
    async with offline(clock, reconnect_grace=1.0).run_test(size=(100, 32)) as pilot:
        app = await connect(pilot)
        screen = app.main_screen
        clock.now += 5
        app.post_message(DaemonLink.Disconnected("the daemon closed the connection", 1, 0.25))
        app.post_message(DaemonLink.Connected(scenes.snapshot()))
        await keys(pilot, "question_mark")  # right behind the snapshot: nothing but help and the kill switch
        assert isinstance(app.screen, HelpScreen)
        await keys(pilot, "escape", *"a model", "j", "a", "o", "r")
        assert app.screen is screen and screen.queue.selected_id == "P000001" and not screen.decisions.in_flight
        clock.now += 1.1  # past the grace, and a pause in the typing
        await keys(pilot, "r")
        assert isinstance(app.screen, RejectScreen)


async def test_keys_reject_as_the_selected_proposal_expires_opens_nothing_for_the_next() -> None:
    """`r` right behind the news that the selected proposal left: no dialog for the one that slid under the cursor."""
    clock = Clock()
    async with offline(clock, selection_grace=0.6).run_test(size=(100, 32)) as pilot:
        app = await connect(pilot)
        screen = app.main_screen
        clock.now += 1.0  # past the grace of the first selection: the operator has read P000001
        app.post_message(pushed(ProposalsChanged((), ("P000001",))))
        await keys(pilot, "r")
        assert app.screen is screen and screen.queue.selected_id == "P000002"
        assert any("changed by itself" in n.message for n in app._notifications)
        clock.now += 0.7  # the grace is over: now r is about what the operator sees
        await pilot.pause()
        await keys(pilot, "r")
        assert isinstance(app.screen, RejectScreen) and app.screen.view.proposal.id == "P000002"


async def test_keys_a_decision_waits_until_the_card_has_drawn_the_proposal() -> None:
    """With no grace at all, `j a` in one burst approves nothing: P000002 was not on screen when a was pressed."""
    clock = Clock()
    async with offline(clock).run_test(size=(100, 32)) as pilot:
        app = await connect(pilot)
        screen = app.main_screen
        await keys(pilot, "j", "a")
        assert app.screen is screen and not screen.decisions.in_flight  # no novelty dialog, nothing sent
        assert any("not on the screen yet" in n.message for n in app._notifications)
        await until(pilot, lambda: screen.card.drawn is not None and screen.card.drawn.proposal.id == "P000002")
        await keys(pilot, "a")
        assert isinstance(app.screen, NoveltyScreen) and app.screen.view.proposal.id == "P000002"


async def test_keys_a_re_priced_proposal_makes_every_decision_wait() -> None:
    """A new version of the proposal under the cursor counts as a change by itself: a, o and r wait."""
    clock = Clock()
    async with offline(clock, selection_grace=0.6).run_test(size=(100, 32)) as pilot:
        app = await connect(pilot)
        screen = app.main_screen
        clock.now += 1.0  # past the grace of the first selection: the operator has read P000001
        app.post_message(pushed(ProposalsChanged((scenes.oldest(version=2),), ())))
        await until(pilot, lambda: screen.card.drawn == scenes.oldest(version=2))  # v2 is on screen ...
        await keys(pilot, "a", "o", "r")  # ... but the operator was reading v1 a moment ago
        assert app.screen is screen and not screen.decisions.in_flight
        assert any("changed by itself" in n.message for n in app._notifications)
        clock.now += 0.7
        await pilot.pause()
        await keys(pilot, "r")
        assert isinstance(app.screen, RejectScreen) and app.screen.view.proposal.version == 2


@pytest.mark.parametrize("change", ["left", "repriced", "disconnected"])
async def test_keys_an_open_decision_dialog_sends_nothing_once_its_proposal_changed(change: str) -> None:
    """The reject dialog names the version it opened on; if that version is gone, Enter sends nothing and says why."""
    clock = Clock()
    async with offline(clock).run_test(size=(100, 32)) as pilot:
        app = await connect(pilot)
        await keys(pilot, "r", *"late")
        dialog = app.screen
        assert isinstance(dialog, RejectScreen)
        if change == "left":
            app.post_message(pushed(ProposalsChanged((), ("P000001",))))
        elif change == "repriced":
            app.post_message(pushed(ProposalsChanged((scenes.oldest(version=2),), ())))
        else:
            app.post_message(DaemonLink.Disconnected("gone", 1, 0.25))
        await until(pilot, lambda: bool(dialog.problem))
        await keys(pilot, "enter")
        assert app.screen is dialog  # still open, nothing sent
        assert not app.main_screen.decisions.in_flight
        note = str(dialog.query_one("#stale-note").render())
        assert {"left": "left the queue", "repriced": "changed to v2", "disconnected": "not connected"}[change] in note


@pytest.mark.parametrize(
    "opening",
    [("o",), ("r",), ("question_mark",), ("c",), ("j", "a"), ("j", "j", "a"), ("ctrl+r",), ("ctrl+p",)],
    ids=["override", "reject", "help", "close", "novelty", "leverage-ack", "rearm", "palette"],
)
async def test_keys_halted_from_the_daemon_closes_whatever_is_on_top(opening: tuple[str, ...]) -> None:
    """Whatever dialog or screen is open, the daemon's HALTED clears it: the operator sees HALTED."""
    clock = Clock()
    async with offline(clock).run_test(size=(100, 32)) as pilot:
        app = await connect(pilot)
        screen = app.main_screen
        if opening == ("ctrl+r",):  # re-arm needs REDUCING or HALTED to open
            reducing = scenes.status(TradingState.REDUCING, "daily loss limit")
            app.post_message(pushed(StatusChanged(reducing)))
            await until(pilot, lambda: screen.check_action("rearm", ()))
        for key in opening:  # one at a time: each must be drawn before the next (a decision waits for the card)
            await until(pilot, lambda: screen.card.drawn == screen.selected_view())
            await keys(pilot, key)
        assert app.screen is not screen
        expected = {"o": OverrideScreen, "r": RejectScreen, "question_mark": HelpScreen, "c": ClosePositionScreen}
        if opening[-1] in expected:
            assert isinstance(app.screen, expected[opening[-1]])
        halted = scenes.status(TradingState.HALTED, "kill switch pulled by bob", pending=0)
        everything = tuple(v.proposal.id for v in scenes.proposals())
        app.post_message(pushed(StatusChanged(halted), ProposalsChanged((), everything)))
        await until(pilot, lambda: app.screen is screen)
        await pilot.pause()
        text = screen_text(app)
        assert "HALTED" in text.splitlines()[0] and "kill switch pulled by bob" in text


def test_keys_typed_confirm_screen_is_what_the_acknowledgment_opens() -> None:
    """The acknowledgment screen is a typed confirmation that knows its kind (the console finds it by that)."""
    from guard.domain import AcknowledgmentKind
    from guard.tui.screens.acknowledge import acknowledgment_screen

    screen = acknowledgment_screen(AcknowledgmentKind.LEVERAGE, scenes.status())
    assert isinstance(screen, TypedConfirmScreen) and screen.kind is AcknowledgmentKind.LEVERAGE


async def test_keys_typed_after_a_refused_reject_are_not_run_not_even_k() -> None:
    """`r` refused (the proposal just changed by itself) then `OK approve` at once: no dialog, no kill, no approval;
    once the typing pauses, K is the kill switch again (and ctrl+k always was)."""
    clock = Clock()
    async with offline(clock, selection_grace=0.6).run_test(size=(100, 32)) as pilot:
        app = await connect(pilot)
        screen = app.main_screen
        clock.now += 1.0
        app.post_message(pushed(ProposalsChanged((), ("P000001",))))
        await keys(pilot, "r", *"OK approve", "enter")
        assert app.screen is screen and not screen.decisions.in_flight and not kill_sent(app)
        assert any("typed right after it is not run, K included" in n.message for n in app._notifications)
        await keys(pilot, "ctrl+k")
        assert kill_sent(app)
        screen.notice = None
        clock.now += 0.6  # the typing paused
        await keys(pilot, "K")
        assert kill_sent(app)
