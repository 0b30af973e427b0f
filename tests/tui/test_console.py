"""The console against a real daemon (embedded sim, desk, journal, API): decisions, kill, re-arm.

Every test drives the console with keys, as a person would, and checks the journal: what the
daemon recorded is the truth, not what the screen says.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from textual.widgets import Input, Static

from guard.daemon import Daemon, running
from guard.domain import AcknowledgmentKind, DecisionKind, OrderPurpose, TradingState
from guard.events import (
    AcknowledgmentRecorded,
    CommandRefused,
    DecisionRecorded,
    KillRequested,
    ModelPaused,
    ModelResumed,
    OrderSubmitted,
    ProposalRepriced,
    TradingStateChanged,
)
from guard.markets.ticks import beyond_collar
from guard.tui.app import GuardApp
from guard.tui.screens.close import ClosePositionScreen
from guard.tui.screens.dialogs import NoveltyScreen, RejectScreen, TypedConfirmScreen
from guard.tui.screens.info import PerformanceScreen
from guard.tui.screens.override import FIELDS, OverrideScreen
from guard.tui.widgets.banner import Banner
from tests.api.support import queue_proposal
from tests.builders import ETH
from tests.tui.conftest import console, journal, keys, quiet_config, screen_text, type_text, until

MODELS = Path(__file__).resolve().parents[2] / "models"


async def test_console_approve_sends_the_shown_version_and_novel_needs_confirmation(daemon: Daemon) -> None:
    """a approves the selected proposal as shown; a novel one asks first; the journal names the operator."""
    async with console(daemon, selection_grace=0.3) as (app, pilot):
        screen = app.main_screen
        plain = await queue_proposal(daemon)
        novel = await queue_proposal(daemon, symbol=ETH, qty="1", novel=True, novelty=0.99)
        await until(pilot, lambda: screen.queue.selected_id == plain and screen.check_action("approve", ()))
        await pilot.press("a")
        await until(pilot, lambda: plain not in app.model.proposals and screen.queue.selected_id == novel)
        await until(pilot, lambda: screen.check_action("approve", ()))
        await pilot.press("a")
        assert isinstance(app.screen, NoveltyScreen)
        await pilot.press("y")
        await until(pilot, lambda: novel not in app.model.proposals)
    decisions = journal(daemon, DecisionRecorded)
    assert [(d.proposal_id, d.kind, d.operator, d.shown.version) for d in decisions] == [
        (plain, DecisionKind.APPROVE, "alice", 1),
        (novel, DecisionKind.APPROVE, "alice", 1),
    ]


async def test_console_override_risk_increase_needs_its_own_confirmation(daemon: Daemon) -> None:
    """o opens the form; more size shows a confirmation box and nothing goes until it is ticked."""
    async with console(daemon) as (app, pilot):
        pid = await queue_proposal(daemon, qty="0.05", leverage="3")
        await until(pilot, lambda: app.main_screen.check_action("override", ()))
        await pilot.press("o")
        form = app.screen
        assert isinstance(form, OverrideScreen)
        await keys(pilot, "tab", "ctrl+u", *"25")  # leverage: past the hard cap
        assert form.query_one("#submit").disabled
        assert "at most 20" in str(form.query_one("#leverage-note").render())
        await keys(pilot, "ctrl+u", "2", "shift+tab", "ctrl+u", *"0.08")  # less leverage, more size
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, OverrideScreen)  # the added size is not confirmed yet
        await pilot.click("#risk")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: pid not in app.model.proposals)
    (decision,) = journal(daemon, DecisionRecorded)
    assert (decision.kind, decision.operator) == (DecisionKind.OVERRIDE, "alice")
    assert decision.confirmed_risk_increase
    assert decision.edits.qty == Decimal("0.08") and decision.edits.leverage == Decimal(2)
    assert decision.diff == ("qty 0.050 -> 0.08", "leverage 3 -> 2")


async def test_console_reject_records_the_typed_reason(daemon: Daemon) -> None:
    """r asks for an optional reason and the journal keeps it with the operator."""
    async with console(daemon, operator="carol") as (app, pilot):
        pid = await queue_proposal(daemon)
        await until(pilot, lambda: app.main_screen.check_action("reject", ()))
        await pilot.press("r")
        assert isinstance(app.screen, RejectScreen)
        await type_text(pilot, "too late in the move")
        await pilot.press("enter")
        await until(pilot, lambda: pid not in app.model.proposals)
    (decision,) = journal(daemon, DecisionRecorded)
    assert (decision.kind, decision.operator, decision.reason) == (DecisionKind.REJECT, "carol", "too late in the move")


async def test_console_header_says_why_the_model_is_not_proposing(daemon: Daemon) -> None:
    """With model.enabled = false, the header reads "model disabled by model.enabled = false" (it once read
    "model model proposals are disabled ...")."""
    async with console(daemon) as (app, pilot):
        await until(pilot, lambda: app.model.status is not None)
        header = app.query_one(Banner).render().plain
    assert "· model disabled by model.enabled = false" in header
    assert "model model" not in header


async def test_console_refused_approval_shows_the_new_version(guard_home: Path) -> None:
    """A price past the collar: the daemon refuses, re-prices, and the card shows the new version."""
    async with (
        running(quiet_config(approval={"collar_bps": 0.01})) as daemon,
        console(daemon) as (app, pilot),
    ):
        screen = app.main_screen
        pid = await queue_proposal(daemon)
        await until(pilot, lambda: screen.check_action("approve", ()))
        spec = daemon.desk.recorder.state.specs["BTC/USDT:USDT"]
        await until(  # past the collar by more than rounding to the tick explains
            pilot,
            lambda: beyond_collar(
                spec, screen.selected_view().proposal.price, daemon.desk.marks["BTC/USDT:USDT"], 0.01
            ),
        )
        await pilot.press("a")
        await until(pilot, lambda: screen.selected_view() is not None and screen.selected_view().proposal.version == 2)
        await until(pilot, lambda: screen.card.shown[0] == f"{pid} v2")
    assert not journal(daemon, DecisionRecorded)
    assert [e.proposal.version for e in journal(daemon, ProposalRepriced)] == [2]
    (refused,) = journal(daemon, CommandRefused)
    assert refused.proposal_id == pid and "version 2" in refused.reason


async def test_console_kill_key_halts_at_once_then_rearm_needs_the_phrase(daemon: Daemon) -> None:
    """K halts with no dialog (banner red on the daemon's echo); ctrl+r re-arms only with RE-ARM typed."""
    async with console(daemon) as (app, pilot):
        pid = await queue_proposal(daemon)
        await until(pilot, lambda: pid in app.model.proposals)
        await pilot.press("K")
        await until(pilot, lambda: app.query_one(Banner).shown[0] == "HALTED")
        assert app.query_one(Banner).has_class("-halted")
        assert not app.main_screen.check_action("approve", ()) and pid not in app.model.proposals
        await pilot.press("ctrl+r")
        assert isinstance(app.screen, TypedConfirmScreen)
        await type_text(pilot, "rearm")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, TypedConfirmScreen) and "RE-ARM" in app.screen.error)
        await type_text(pilot, "re-arm")
        await pilot.press("enter")
        await until(pilot, lambda: app.query_one(Banner).shown[0] == "ACTIVE")
    kill = journal(daemon, KillRequested)
    assert [(k.operator, k.reason) for k in kill] == [("alice", "kill switch pressed in the console")]
    states = [(e.state, e.operator) for e in journal(daemon, TradingStateChanged)]
    assert states == [(TradingState.HALTED, "alice"), (TradingState.ACTIVE, "alice")]
    assert len(journal(daemon, CommandRefused)) == 1


async def test_console_kill_works_inside_every_modal_and_types_nothing(daemon: Daemon) -> None:
    """K on the override form's buttons (outside a text field), and ctrl+k inside the reject dialog's reason
    field, both reach the daemon; neither types anything, and the daemon's HALTED closes the dialog."""
    async with console(daemon) as (app, pilot):
        screen = app.main_screen
        await queue_proposal(daemon)
        await until(pilot, lambda: screen.check_action("override", ()))
        await pilot.press("o")
        form = app.screen
        assert isinstance(form, OverrideScreen)
        fields = [form.query_one(f"#{name}", Input) for name, _label in FIELDS]
        before = [field.value for field in fields]
        await keys(pilot, "shift+tab", "K")  # from the size field round to the Back button, then K
        await until(pilot, lambda: app.model.status.trading_state is TradingState.HALTED)
        assert [field.value for field in fields] == before  # the K went to the kill switch, not a field
        await until(pilot, lambda: app.screen is screen)  # HALTED is in front of the operator
        await pilot.press("ctrl+r")
        await type_text(pilot, "re-arm")
        await pilot.press("enter")
        await until(pilot, lambda: app.model.status.trading_state is TradingState.ACTIVE)
        await queue_proposal(daemon)
        await until(pilot, lambda: screen.check_action("reject", ()))
        await pilot.press("r")
        await type_text(pilot, "partial reason")
        reason = app.screen.query_one("#reason", Input)
        await pilot.press("ctrl+k")
        await until(pilot, lambda: app.model.status.trading_state is TradingState.HALTED)
        assert reason.value == "partial reason"
        await until(pilot, lambda: app.screen is screen)
    assert [e.state for e in journal(daemon, TradingStateChanged)] == [
        TradingState.HALTED,
        TradingState.ACTIVE,
        TradingState.HALTED,
    ]
    assert not journal(daemon, DecisionRecorded)


async def test_console_leverage_acknowledgment_is_offered_when_it_blocks(daemon: Daemon) -> None:
    """A proposal above 5x is blocked until the leverage acknowledgment is typed; a offers it, then approves."""
    async with console(daemon) as (app, pilot):
        screen = app.main_screen
        pid = await queue_proposal(daemon, qty="0.01", leverage="8")
        await until(pilot, lambda: screen.selected_view() is not None and not screen.selected_view().can_approve)
        assert "leverage acknowledgment" in str(screen.card.render())
        await pilot.press("a")
        assert isinstance(app.screen, TypedConfirmScreen)
        await type_text(pilot, "i understand leverage can liquidate me")
        await pilot.press("enter")
        await until(pilot, lambda: screen.selected_view() is not None and screen.selected_view().can_approve)
        await pilot.press("a")
        await until(pilot, lambda: pid not in app.model.proposals)
    (ack,) = journal(daemon, AcknowledgmentRecorded)
    assert (ack.kind, ack.operator) == (AcknowledgmentKind.LEVERAGE, "alice")
    (decision,) = journal(daemon, DecisionRecorded)
    assert decision.shown.leverage == Decimal(8)


async def test_console_model_acknowledgment_screen_opens_and_records_the_typed_phrase(guard_home: Path) -> None:
    """A loaded model with no acknowledgment: the console asks at once; only the phrase records it; p pauses."""
    models = MODELS / "default"
    async with (
        running(quiet_config(model={"enabled": True, "path": str(models)})) as daemon,
        console(daemon) as (app, pilot),
    ):
        await until(pilot, lambda: isinstance(app.screen, TypedConfirmScreen) and app.screen.query("#body"))
        body = str(app.screen.query_one("#body").render())
        for words in ("does not know", "backtest is not proof", "At 20x a 5% move liquidates", "dead-man switch"):
            assert words in body
        await type_text(pilot, "i understand")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, TypedConfirmScreen) and app.screen.error)
        await type_text(pilot, "i understand the model can be wrong")
        await pilot.press("enter")
        await until(pilot, lambda: not app.model.status.needs_acknowledgment)
        assert len(app.screen_stack) == 1
        await pilot.press("p")
        await until(pilot, lambda: app.model.status.model.paused)
        await pilot.press("p")
        await until(pilot, lambda: not app.model.status.model.paused)
        await pilot.press("l")  # the live record beside the card's claims, fetched from the daemon
        await until(pilot, lambda: isinstance(app.screen, PerformanceScreen) and "loading" not in perf_text(app))
        assert perf_text(app).startswith("Model default-") and "claimed" in perf_text(app)
    assert [e.operator for e in journal(daemon, ModelPaused)] == ["alice"]
    assert [e.operator for e in journal(daemon, ModelResumed)] == ["alice"]
    (ack,) = journal(daemon, AcknowledgmentRecorded)
    assert (ack.kind, ack.operator) == (AcknowledgmentKind.MODEL_PROPOSALS, "alice")
    (refused,) = journal(daemon, CommandRefused)
    assert "I UNDERSTAND THE MODEL CAN BE WRONG" in refused.reason


async def test_console_close_key_closes_the_chosen_position_reduce_only(daemon: Daemon) -> None:
    """c lists the open positions; Enter closes the highlighted one with a reduce-only order in the operator's name."""
    async with console(daemon) as (app, pilot):
        pid = await queue_proposal(daemon)
        await until(pilot, lambda: app.main_screen.check_action("approve", ()))
        await pilot.press("a")
        await until(pilot, lambda: pid not in app.model.proposals and len(app.model.positions) == 1)
        await until(pilot, lambda: app.main_screen.check_action("close_position", ()))
        await pilot.press("c")
        assert isinstance(app.screen, ClosePositionScreen)
        await pilot.press("enter")
        await until(pilot, lambda: not app.model.positions)
    (close,) = [e.request for e in journal(daemon, OrderSubmitted) if e.request.purpose is OrderPurpose.CLOSE]
    assert close.reduce_only and close.symbol == "BTC/USDT:USDT"


def perf_text(app: GuardApp) -> str:
    return str(app.screen.query_one("#perf", Static).render())


async def test_console_ok_typed_as_a_reject_reason_rejects_without_a_kill(daemon: Daemon) -> None:
    """`r`, `OK`, Enter at full speed: the journal has a rejection with the reason "OK", and no kill."""
    async with console(daemon) as (app, pilot):
        pid = await queue_proposal(daemon)
        await until(pilot, lambda: app.main_screen.check_action("reject", ()))
        await keys(pilot, "r", "O", "K", "enter")
        await until(pilot, lambda: pid not in app.model.proposals)
        assert app.model.status.trading_state is TradingState.ACTIVE
    (decision,) = journal(daemon, DecisionRecorded)
    assert (decision.proposal_id, decision.kind, decision.reason) == (pid, DecisionKind.REJECT, "OK")
    assert not journal(daemon, KillRequested)


async def test_console_kill_from_the_acknowledgment_screen_ends_with_halted_in_front(daemon: Daemon) -> None:
    """In the acknowledgment's phrase field K is a letter; ctrl+k there halts, and the acknowledgment text gives
    way to the main screen showing HALTED."""
    async with console(daemon, size=(80, 24)) as (app, pilot):
        screen = app.main_screen
        await queue_proposal(daemon, qty="0.01", leverage="8")
        await until(pilot, lambda: screen.selected_view() is not None and screen.check_action("approve", ()))
        await pilot.press("a")
        ack = app.screen
        assert isinstance(ack, TypedConfirmScreen) and ack.kind is AcknowledgmentKind.LEVERAGE
        await keys(pilot, *"I UNDERSTAND K")
        assert ack.query_one("#typed", Input).value == "I UNDERSTAND K" and not journal(daemon, KillRequested)
        await keys(pilot, "ctrl+k")
        await until(pilot, lambda: app.screen is screen and screen.banner.shown[0] == "HALTED")
        assert "HALTED" in screen_text(app).splitlines()[0]
    assert [(k.operator, k.reason) for k in journal(daemon, KillRequested)] == [
        ("alice", "kill switch pressed in the console")
    ]
    assert not journal(daemon, AcknowledgmentRecorded)


async def test_console_close_key_takes_a_percentage_or_a_quantity(daemon: Daemon) -> None:
    """c then 40% closes 40% of the position (the quantity computed and sent), then c 0.01 closes that much."""
    async with console(daemon) as (app, pilot):
        screen = app.main_screen
        pid = await queue_proposal(daemon, qty="0.05")
        await until(pilot, lambda: screen.check_action("approve", ()))
        await pilot.press("a")
        await until(pilot, lambda: pid not in app.model.proposals and len(app.model.positions) == 1)
        await until(pilot, lambda: screen.check_action("close_position", ()))
        await keys(pilot, "c", "tab", *"40%")
        dialog = app.screen
        assert isinstance(dialog, ClosePositionScreen)
        assert "SELL 0.02 of 0.05 BTC/USDT:USDT (40%)" in str(dialog.query_one("#preview").render())
        await keys(pilot, "enter")
        await until(pilot, lambda: app.model.positions and app.model.positions[0].position.qty == Decimal("0.03"))
        await keys(pilot, "c", "tab", *"0.01", "enter")
        await until(pilot, lambda: app.model.positions and app.model.positions[0].position.qty == Decimal("0.02"))
    closes = [e.request for e in journal(daemon, OrderSubmitted) if e.request.purpose is OrderPurpose.CLOSE]
    assert [(c.qty, c.reduce_only, c.side.value) for c in closes] == [
        (Decimal("0.02"), True, "sell"),
        (Decimal("0.01"), True, "sell"),
    ]
