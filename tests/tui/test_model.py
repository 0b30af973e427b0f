"""The console's copy of the daemon's state: order, versions, removal, and time by the daemon's clock."""

from __future__ import annotations

import msgspec

from guard.api.protocol import EventsLogged, LoggedEvent, Prices, ProposalsChanged, StatusChanged
from guard.tui.model import LOG_LINES, Changed, ConsoleModel
from tests.tui import scenes


def test_model_queue_is_oldest_first_and_a_new_version_keeps_its_place() -> None:
    """Proposals sort by creation time whatever order they arrive in; a re-priced version stays put."""
    model = ConsoleModel()
    model.load(scenes.snapshot(), now=10.0)
    assert model.order == ["P000001", "P000002", "P000003", "P000004"]
    first = model.proposals["P000001"]
    v2 = msgspec.structs.replace(first, proposal=msgspec.structs.replace(first.proposal, version=2))
    late = scenes.proposal_view(
        9,
        scenes.SOL,
        first.proposal.side,
        "1",
        "1",
        "200",
        confidence=0.6,
        novelty=0.1,
        age_s=30,
        liquidation=None,
        distance=None,
        sigma=None,
        why="",
    )
    changed = model.apply(ProposalsChanged((v2, late), ("P000003",)), now=11.0)
    assert changed is Changed.PROPOSALS
    assert model.order == ["P000009", "P000001", "P000002", "P000004"]
    assert model.proposals["P000001"].proposal.version == 2
    assert model.index_of("P000004") == 3 and model.index_of("P000003") is None


def test_model_kill_removes_a_thousand_proposals_in_one_pass() -> None:
    """Removing every pending proposal at once (a kill) leaves an empty, consistent queue."""
    model = ConsoleModel()
    base = scenes.proposals()[0]
    views = tuple(
        msgspec.structs.replace(base, proposal=msgspec.structs.replace(base.proposal, id=f"P{i:06d}", created_at=i))
        for i in range(1000)
    )
    model.apply(ProposalsChanged(views, ()), now=0.0)
    assert len(model.order) == 1000 and model.index_of("P000500") == 500
    model.apply(ProposalsChanged((), tuple(v.proposal.id for v in views)), now=0.1)
    assert model.order == [] and model.proposals == {}


def test_model_time_left_runs_on_the_daemons_clock_not_the_local_one() -> None:
    """Time left is the daemon's last reported time plus local elapsed time; the local wall clock never enters."""
    model = ConsoleModel()
    model.load(scenes.snapshot(), now=500.0)
    view = model.proposals["P000001"]  # created 6 s before the daemon's NOW, 30 s to live
    assert model.seconds_left(view, now=500.0) == 24.0
    assert model.seconds_left(view, now=510.0) == 14.0
    model.apply(Prices(scenes.NOW + 20_000, {scenes.BTC: 1.0}), now=511.0)  # the daemon says 20 s passed
    assert model.seconds_left(view, now=511.0) == 4.0
    late = msgspec.structs.replace(scenes.status(), server_time=scenes.NOW + 40_000)
    model.apply(StatusChanged(late), now=512.0)
    assert model.seconds_left(view, now=512.0) == 0.0


def test_model_a_commit_of_a_thousand_events_keeps_the_newest_lines_in_order_without_bars() -> None:
    """One log frame per commit: routine bars stay out, and the pane keeps the newest lines, oldest first."""
    model = ConsoleModel()
    events = tuple(
        LoggedEvent(seq, seq, "BarRecorded" if seq % 2 else "ProposalKilled", f"event {seq}") for seq in range(2_000)
    )
    assert model.apply(EventsLogged(events), now=1.0) is Changed.LOG
    kept = [line.text for line in model.log]
    assert len(kept) == LOG_LINES
    assert kept[0].endswith(f"event {2_000 - 2 * LOG_LINES}") and kept[-1].endswith("event 1998")
    assert model.apply(EventsLogged((LoggedEvent(2_001, 1, "BarRecorded", "bar"),)), now=2.0) is Changed.NOTHING
