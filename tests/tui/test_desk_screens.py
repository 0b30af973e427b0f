"""The orders screen (O) and the limits screen (L) against a real daemon, keys typed at full speed: a resting
limit placed from the override form, seen, amended and cancelled; a limit loosened (with its confirmation) and
tightened. The journal is the truth, not the screen."""

from __future__ import annotations

from decimal import Decimal

from textual.widgets import Input

from guard.daemon import Daemon
from guard.events import OrderAmendRequested, OrderCancelRequested, RiskLimitChanged
from guard.tui.app import GuardApp
from guard.tui.link import DaemonLink
from guard.tui.screens.limits import ConfirmRiskScreen, LimitsScreen, SetLimitScreen
from guard.tui.screens.orders import AmendOrderScreen, CancelOrderScreen, OrdersScreen
from tests.api.support import queue_proposal
from tests.tui import scenes
from tests.tui.conftest import console, journal, keys, screen_text, until

BTC = "BTC/USDT:USDT"


def toasts(app: object) -> list[str]:
    return [n.message for n in app._notifications]  # type: ignore[attr-defined]


async def _override_to_a_limit(daemon: Daemon, app: object, pilot: object) -> tuple[str, Decimal]:
    """o, four tabs to the limit price, a price 3% under the mark, Enter: all in one burst."""
    pid = await queue_proposal(daemon, qty="0.01")
    await until(pilot, lambda: app.main_screen.check_action("override", ()))  # type: ignore[attr-defined]
    price = (daemon.desk.marks[BTC] * Decimal("0.97")).quantize(Decimal(1))
    await keys(pilot, "o", "tab", "tab", "tab", "tab", *str(price), "enter")  # type: ignore[arg-type]
    await until(pilot, lambda: any(m.endswith(f"placed, resting at {price}") for m in toasts(app)))
    assert not any("refused" in m for m in toasts(app))
    return pid, price


async def test_console_resting_limit_seen_amended_and_cancelled_at_120x40(daemon: Daemon) -> None:
    """At 120x40 the main screen lists the resting limit; O e amends it and c cancels it, each with its reason,
    typed in one burst; the journal has who and why, and the venue has the replacement, then nothing."""
    async with console(daemon, size=(120, 40)) as (app, pilot):
        pid, price = await _override_to_a_limit(daemon, app, pilot)
        await until(pilot, lambda: "Resting orders (1)" in screen_text(app))
        text = screen_text(app)
        assert f"{pid}-E" in text and "limit entry" in text and "BUY 0.01 BTC/USDT" in text and "from mark" in text

        lower = price - 40
        await keys(pilot, "O", "e", *str(lower), "tab", *"0.005", "tab", *"lower it", "enter")
        await until(pilot, lambda: [o.request.limit_price for o in daemon.desk.resting_orders()] == [lower])
        assert isinstance(app.screen, OrdersScreen)
        [replacement] = daemon.desk.resting_orders()
        assert replacement.request.qty == Decimal("0.005")
        await until(pilot, lambda: f"{pid}-E-A1" in screen_text(app))

        await keys(pilot, "c", *"Keep it simple", "enter")
        await until(pilot, lambda: daemon.desk.resting_orders() == [])
        await until(pilot, lambda: "no resting orders" in screen_text(app))
    (amend,) = journal(daemon, OrderAmendRequested)
    assert (amend.operator, amend.reason, amend.new_price, amend.new_qty) == (
        "alice",
        "lower it",
        lower,
        Decimal("0.005"),
    )
    (cancel,) = journal(daemon, OrderCancelRequested)
    assert (cancel.operator, cancel.reason) == ("alice", "Keep it simple")  # the K was a letter, not a kill
    assert daemon.desk.state.trading_state.value == "ACTIVE"


async def test_console_orders_reachable_at_80x24_and_a_cancel_needs_a_reason(daemon: Daemon) -> None:
    """At 80x24 there is no room for the pane: the positions summary counts the order, O opens the orders screen,
    which lists it; Enter with no reason sends nothing and says why."""
    async with console(daemon, size=(80, 24)) as (app, pilot):
        pid, _ = await _override_to_a_limit(daemon, app, pilot)
        await until(pilot, lambda: "1 resting order (O: cancel or amend)" in screen_text(app))
        await keys(pilot, "O", "c", "enter")
        assert isinstance(app.screen, CancelOrderScreen)
        assert "type why" in screen_text(app)
        assert len(daemon.desk.resting_orders()) == 1
        await keys(pilot, "escape")
        await until(pilot, lambda: isinstance(app.screen, OrdersScreen))
        assert f"{pid}-E" in screen_text(app) and "limit entry" in screen_text(app)
        await keys(pilot, "e", "enter")
        assert isinstance(app.screen, AmendOrderScreen) and "type a new price" in screen_text(app)
        await keys(pilot, "escape", "escape")
        await until(pilot, lambda: app.screen is app.main_screen)


async def test_console_limit_loosened_with_confirmation_and_tightened_without(daemon: Daemon) -> None:
    """L lists the limits; raising max leverage asks y before it is sent with the confirmation; lowering the order
    notional is sent at once; the screen shows who changed what."""
    async with console(daemon, size=(120, 40)) as (app, pilot):
        await keys(pilot, "L", "enter", "5", "tab", *"more room", "enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRiskScreen))
        assert "risk.max_leverage 3 → 5: higher adds risk" in screen_text(app)
        assert not journal(daemon, RiskLimitChanged)
        await keys(pilot, "y")
        await until(pilot, lambda: daemon.desk.limits().max_leverage == 5)
        assert isinstance(app.screen, LimitsScreen)
        await keys(pilot, "down", "e", *"10000", "tab", *"tighter", "enter")
        await until(pilot, lambda: daemon.desk.limits().max_order_notional == 10_000)
        await until(pilot, lambda: "alice" in screen_text(app) and "tighter" in screen_text(app))
        assert "max_leverage" in screen_text(app) and ">= 1 and <= 20" in screen_text(app)
    first, second = journal(daemon, RiskLimitChanged)
    assert (first.key, first.old, first.new, first.operator, first.reason) == (
        "max_leverage",
        "3",
        "5",
        "alice",
        "more room",
    )
    assert (second.key, second.old, second.new) == ("max_order_notional", "25000", "10000")


async def test_console_limit_with_no_reason_is_not_sent(daemon: Daemon) -> None:
    """The reason is journaled with the change: without one the dialog says so and sends nothing."""
    async with console(daemon, size=(80, 24)) as (app, pilot):
        await keys(pilot, "L", "enter", "2", "enter")
        assert isinstance(app.screen, SetLimitScreen)
        assert app.screen.query_one("#value", Input).value == "2"
        assert "type why" in screen_text(app)
        assert not journal(daemon, RiskLimitChanged)


async def test_orders_screen_keys_typed_behind_a_refused_c_are_not_run_not_even_k() -> None:
    """No order rests: `O c OK` at full speed says why c did nothing and drops "OK" (meant for the reason field):
    no kill. Once the typing pauses, K kills again."""
    now = [1_000.0]
    app = GuardApp(None, "alice", clock=lambda: now[0], selection_grace=0.0, reconnect_grace=0.0)
    async with app.run_test(size=(80, 24)) as pilot:
        app.post_message(DaemonLink.Connected(scenes.snapshot()))
        await until(pilot, lambda: app.main_screen.card.drawn is not None)
        await keys(pilot, "O", "c", "O", "K")
        assert isinstance(app.screen, OrdersScreen) and app.main_screen.notice is None
        assert any("no resting order chosen" in m for m in toasts(app))
        now[0] += 1.0
        await keys(pilot, "K")
        assert app.main_screen.notice is not None and "KILL" in app.main_screen.notice.text
