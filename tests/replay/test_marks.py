"""Within a worked bar, only the marks that can do something go through the desk: the journal is the same."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from guard.approval.desk import ApprovalDesk
from guard.domain import Bar, MarketEvent, MarkPrice
from guard.model.artifact import LoadedModel
from guard.replay.history import SymbolHistory
from guard.replay.lean import Exposure
from guard.replay.marks import quiet_mark
from tests.replay.test_engine import _normalised, _replay


def _exposure(**fields: Any) -> Exposure:
    base: dict[str, Any] = {
        "bands": ((0, 90.0, 110.0),),
        "funding_group": -1,
        "positions": ((0, 2.0, 100.0),),
        "active": True,
        "daily_day": 0,
        "daily_realized": 0.0,
        "limit": 50.0,
        "margin": 1e-6,
    }
    return Exposure(**(base | fields))


def test_a_mark_inside_the_band_that_travels_inside_it_is_quiet() -> None:
    x = _exposure()
    assert quiet_mark(x, 0, None, 95.0, 0.0, 0.0)
    assert quiet_mark(x, 0, 105.0, 95.0, 0.0, 0.0)
    assert quiet_mark(x, 1, 50.0, 500.0, 0.0, 0.0)  # another symbol: no band of its own, no position


def test_a_mark_at_or_beyond_the_band_or_travelling_from_beyond_it_is_not_quiet() -> None:
    x = _exposure()
    assert not quiet_mark(x, 0, None, 90.0, 0.0, 0.0)
    assert not quiet_mark(x, 0, 95.0, 110.0, 0.0, 0.0)
    assert not quiet_mark(x, 0, 89.0, 95.0, 0.0, 0.0)  # the venue travels from below the band


def test_a_mark_that_can_bring_todays_loss_to_the_limit_is_not_quiet() -> None:
    x = _exposure(bands=())
    assert quiet_mark(x, 0, None, 80.0, -5.0, 0.0)  # 2 x -20 - 5 = -45 > -50
    assert not quiet_mark(x, 0, None, 80.0, -10.0, 0.0)  # -50: the limit
    assert not quiet_mark(x, 0, None, 90.0, 0.0, -31.0)  # the other positions count
    assert not quiet_mark(x, 0, None, 95.0, 0.0, math.nan)  # a position without a mark: nothing shown
    assert quiet_mark(_exposure(bands=(), active=False), 0, None, 10.0, -100.0, 0.0)  # no check unless ACTIVE


@pytest.mark.parametrize(
    "options",
    [{"leverage": Decimal(20), "stops": False, "resume_paused": True}, {}],
    ids=["liquidations-latches", "stops"],
)
async def test_a_single_symbols_worked_bars_send_fewer_marks_and_the_same_journal(
    tmp_path: Path,
    model: LoadedModel,
    crashes: list[SymbolHistory],
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, Any],
) -> None:
    marks = {"lean": 0, "full": 0}
    at_bars: dict[str, dict[int, dict[str, Decimal]]] = {"lean": {}, "full": {}}
    """The desk's marks as each closed bar reaches it: what it checks the daily loss at."""
    sent = ApprovalDesk.on_market
    run = ["lean"]

    async def counting(desk: ApprovalDesk, event: MarketEvent) -> None:
        marks[run[0]] += isinstance(event, MarkPrice)
        if isinstance(event, Bar):
            at_bars[run[0]][event.open_time] = dict(desk.marks)
        await sent(desk, event)

    monkeypatch.setattr(ApprovalDesk, "on_market", counting)
    lean, lean_events = await _replay(tmp_path, model, crashes[:1], "lean", **options)
    run[0] = "full"
    full, full_events = await _replay(tmp_path, model, crashes[:1], "full", lean=False, **options)
    assert lean.stats.take_profits > 0 and lean.stats.funding_payments > 0
    assert lean.stats.liquidations > 0 or lean.stats.stops > 0
    assert marks["lean"] < 2 * lean.stats.groups_worked  # of four per worked bar
    assert at_bars["lean"] and all(at_bars["full"][t] == m for t, m in at_bars["lean"].items())
    assert _normalised(lean_events) == _normalised(full_events)
    assert lean.final_equity == full.final_equity and lean.violations == full.violations == ()
