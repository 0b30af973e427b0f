"""What the operator may do and the words for why not, from what the console knows."""

from __future__ import annotations

import dataclasses

import msgspec

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
    """Disconnected, in flight, just moved, or blocked by the daemon: each greys approve out with its reason."""
    views = {v.proposal.id: v for v in scenes.proposals()}
    assert why_not("approve", facts()) == ""
    assert "stale" in why_not("approve", facts(link_up=False))
    assert "on its way" in why_not("override", facts(in_flight={"P000001": "approval"}))
    assert "read it first" in why_not("approve", facts(cursor_moved_by_itself=True))
    assert why_not("reject", facts(cursor_moved_by_itself=True)) == ""  # saying no never waits
    assert "duplicates P000001" in why_not("approve", facts(view=views["P000004"]))


def test_availability_leverage_block_offers_the_acknowledgment_instead() -> None:
    """A proposal blocked only by the leverage acknowledgment keeps a available (it opens the acknowledgment)."""
    views = {v.proposal.id: v for v in scenes.proposals()}
    leveraged = facts(view=views["P000003"])
    assert why_not("approve", leveraged) == ""
    assert "leverage" in why_not("override", leveraged)
    halted = facts(status=msgspec.structs.replace(scenes.status(), trading_state=TradingState.HALTED))
    assert "owns positions" in why_not("close_position", halted)
    assert why_not("rearm", halted) == "" and "already ACTIVE" in why_not("rearm", facts())
