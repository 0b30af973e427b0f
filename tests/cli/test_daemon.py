"""`guard status` as text: what the daemon is doing, in the words the console's header uses."""

from __future__ import annotations

from guard.cli.daemon import describe_status
from guard.domain import TradingState
from tests.tui import scenes


def test_status_says_the_model_is_proposing_while_trading_is_active() -> None:
    assert "model    default-b5a14ef9b7, 1.2 days old — proposing" in describe_status(scenes.snapshot())


def test_status_says_a_healthy_model_does_not_propose_while_halted() -> None:
    text = describe_status(scenes.snapshot(TradingState.HALTED, "kill switch: drill"))
    assert "trading  HALTED (kill switch: drill)" in text
    assert "— not proposing while HALTED" in text and "— proposing" not in text
