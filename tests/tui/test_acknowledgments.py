"""The acknowledgments the daemon waits for, offered by the console: once each, and never twice for one recording.

Two orderings a real console meets, which the tests against a live daemon (`test_console.py`,
`test_e2e_tmux.py`) hit only now and then: Enter closes the screen at once while its answer is
handled a turn later, and an offer (a status push, the once-a-second tick) can land in between; and
the daemon's reply and its pushed status travel separately (the reply is queued when the command
returns, the status when the journal's commit is heard), so the status pushed just before the
recording can arrive after the reply. Here the test plays the daemon's part, so that each ordering
happens every time: it answers the typed phrase and pushes each status in the order under test.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Input

from guard.api.protocol import Acknowledge, Command, Reply, StatusView
from guard.domain import AcknowledgmentKind
from guard.tui.acknowledgments import Acknowledgments
from guard.tui.model import ConsoleModel
from guard.tui.screens.dialogs import TypedConfirmScreen
from tests.tui import scenes
from tests.tui.conftest import type_text, until

MODEL = AcknowledgmentKind.MODEL_PROPOSALS
PHRASE = "i understand the model can be wrong"


def needing(*kinds: AcknowledgmentKind) -> StatusView:
    return msgspec.structs.replace(scenes.status(), needs_acknowledgment=kinds)


class BareConsole(App[None]):
    """A bare app that shows what the acknowledgments open, and answers for the daemon."""

    def __init__(self) -> None:
        super().__init__()
        self.model = ConsoleModel()
        self.sent: list[Command] = []
        self.acknowledgments = Acknowledgments(self, self.model, self.answer, self.run_worker)

    async def answer(self, make: Callable[[str], Command], label: str) -> Reply | None:
        command = make(f"c{len(self.sent)}")
        self.sent.append(command)
        return Reply(command.id, True, f"{label}: recorded")

    def ask(self, status: StatusView) -> None:
        """A status arrives and the console offers what it lists (as on every push and every second)."""
        self.model.status = status
        self.acknowledgments.offer()

    def asking(self) -> bool:
        """An acknowledgment screen is in front, its phrase field ready for typing."""
        return isinstance(self.screen, TypedConfirmScreen) and isinstance(self.focused, Input)

    def refusal(self) -> str:
        """The daemon's reason shown on the open acknowledgment screen ("" when none is open)."""
        return self.screen.error if isinstance(self.screen, TypedConfirmScreen) else ""


async def type_into_the_screen(app: BareConsole, pilot: Pilot[None], typed: str) -> None:
    """The daemon asks for the model's acknowledgment; the operator types `typed` and presses Enter."""
    app.ask(needing(MODEL))
    await until(pilot, app.asking)
    await type_text(pilot, typed)
    await pilot.press("enter")


async def test_acknowledgments_a_recorded_one_is_not_offered_again_by_the_status_pushed_before_it() -> None:
    """Typed and recorded; the status pushed before the recording arrives after the reply (and the second's offer
    runs): the screen stays shut. Once a status without it arrives, a later need opens it again."""
    app = BareConsole()
    async with app.run_test(size=(100, 32)) as pilot:
        await type_into_the_screen(app, pilot, PHRASE)
        await until(pilot, lambda: app.sent and not app.workers)
        (command,) = app.sent
        assert isinstance(command, Acknowledge) and (command.kind, command.text) == (MODEL, PHRASE)

        app.ask(needing(MODEL))  # pushed before the daemon recorded it, heard after its reply
        app.acknowledgments.offer()  # the once-a-second offer
        await pilot.pause(0.05)
        assert not app.asking()

        app.ask(needing())  # the daemon's status after the recording
        app.ask(needing(MODEL))  # later, the daemon waits for it anew (another model, say)
        await until(pilot, app.asking)


async def test_acknowledgments_an_offer_between_the_screen_closing_and_its_answer_opens_nothing() -> None:
    """Enter closes the screen at once and its answer is handled a turn later; a status push (or the second's
    offer) landing in between does not open a second screen, and the phrase is sent once."""
    app = BareConsole()
    async with app.run_test(size=(100, 32)) as pilot:
        app.ask(needing(MODEL))
        await until(pilot, app.asking)
        app.screen.dismiss(PHRASE)  # what Enter does: the screen leaves now, the answer follows on the next turn
        app.acknowledgments.offer()
        await until(pilot, lambda: app.sent and not app.workers)
        await pilot.pause(0.05)
        assert len(app.screen_stack) == 1 and len(app.sent) == 1


async def test_acknowledgments_a_screen_closed_unanswered_is_offered_again() -> None:
    """HALTED closes every screen without an answer; once trading is back, the acknowledgment is asked again."""
    app = BareConsole()
    async with app.run_test(size=(100, 32)) as pilot:
        app.ask(needing(MODEL))
        await until(pilot, app.asking)
        closed = app.screen
        app.pop_screen()
        app.acknowledgments.closed_unanswered([closed])
        app.ask(needing(MODEL))
        await until(pilot, app.asking)
        assert not app.sent


async def test_acknowledgments_a_refused_phrase_opens_the_screen_again_with_the_reason() -> None:
    """The daemon refuses the phrase: the screen opens again at once, with the daemon's reason."""

    class Refusing(BareConsole):
        async def answer(self, make: Callable[[str], Command], label: str) -> Reply | None:
            command = make("c0")
            self.sent.append(command)
            return Reply(command.id, False, 'type "I UNDERSTAND THE MODEL CAN BE WRONG" exactly')

    app = Refusing()
    async with app.run_test(size=(100, 32)) as pilot:
        await type_into_the_screen(app, pilot, "i understand")
        await until(pilot, lambda: "exactly" in app.refusal())


async def test_acknowledgments_after_a_reconnect_a_status_listing_a_recorded_one_opens_it() -> None:
    """Recorded, then the link drops and the new snapshot still lists it (the daemon restarted on another
    journal): the console asks again."""
    app = BareConsole()
    async with app.run_test(size=(100, 32)) as pilot:
        await type_into_the_screen(app, pilot, PHRASE)
        await until(pilot, lambda: app.sent and not app.workers and not app.asking())
        app.acknowledgments.reconnected()
        app.ask(needing(MODEL))
        await until(pilot, app.asking)
