"""What the operator may do and the words for why not, from what the console knows."""

from __future__ import annotations

import dataclasses

from guard.domain import TradingState
from guard.tui.availability import Facts, why_not
from tests.tui import scenes


def facts(**changes: object) -> Facts:
    views = {v.proposal.id: v for v in scenes.proposals()}
    base = Facts(
        link_up=True,
        status=scenes.status(),
        view=views["P000001"],
        in_flight={},
        cursor_moved_by_itself=False,
        has_positions=True,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_availability_decisions_say_why_they_are_greyed_out() -> None:
    """Disconnected, in flight, just moved, not drawn yet, or blocked by the daemon: each greys a decision out with
    its reason; a reject waits for a proposal that slid under the cursor like any other decision (issue #17)."""
    views = {v.proposal.id: v for v in scenes.proposals()}
    assert why_not("approve", facts()) == ""
    assert "stale" in why_not("approve", facts(link_up=False))
    assert "on its way" in why_not("override", facts(in_flight={"P000001": "approval"}))
    assert "read it first" in why_not("approve", facts(cursor_moved_by_itself=True))
    assert "read it first" in why_not("reject", facts(cursor_moved_by_itself=True))
    assert "not on the screen yet" in why_not("reject", facts(on_screen=False))
    assert why_not("reject", facts(view=views["P000004"])) == ""  # what the daemon blocks can still be rejected
    assert "duplicates P000001" in why_not("approve", facts(view=views["P000004"]))


def test_availability_leverage_block_offers_the_acknowledgment_instead() -> None:
    """A proposal blocked only by the leverage acknowledgment keeps a available (it opens the acknowledgment)."""
    views = {v.proposal.id: v for v in scenes.proposals()}
    leveraged = facts(view=views["P000003"])
    assert why_not("approve", leveraged) == ""
    assert "leverage" in why_not("override", leveraged)
    halted = facts(status=scenes.status(TradingState.HALTED))
    assert "owns positions" in why_not("close_position", halted)
    assert why_not("rearm", halted) == "" and "already ACTIVE" in why_not("rearm", facts())
