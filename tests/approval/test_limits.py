"""Run-time risk limits: named as the config names them, loosened only with a confirmation of its own, journaled
as plain numbers with who changed them last."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path

import pytest

from guard.approval.desk import ApprovalDesk
from guard.approval.limits import limit_text, risk_increase, runtime_limits
from guard.approval.state import GuardState
from guard.errors import InvalidCommand
from guard.events import CommandRefused, RiskLimitChanged
from guard.journal.chain import read_entries
from guard.journal.describe import describe_event
from tests.builders import close, make_config, make_desk


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[ApprovalDesk]:
    d = await make_desk(tmp_path / "journal.db")
    yield d
    close(d)


def journal(desk: ApprovalDesk) -> list:
    return [e.event for e in read_entries(desk.journal.path)]


async def test_a_key_with_its_section_is_the_same_limit_and_errors_name_it_once(desk: ApprovalDesk) -> None:
    """`risk.max_leverage` is the key `max_leverage`; a bad value's error says `risk.max_leverage`, never
    `risk.risk.max_leverage`."""
    assert (await desk.set_risk_limit("alice", "risk.max_leverage", 2.5, "calmer")).ok
    assert desk.limits().max_leverage == 2.5
    with pytest.raises(InvalidCommand) as error:
        await desk.set_risk_limit("alice", "risk.max_leverage", 50)
    assert "risk.max_leverage" in str(error.value) and "risk.risk" not in str(error.value)
    with pytest.raises(InvalidCommand) as unknown:
        await desk.set_risk_limit("alice", "risk.nope", 1)
    assert "risk.nope" in str(unknown.value) and "risk.risk" not in str(unknown.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_leverage", 5),
        ("max_order_notional", 50_000),
        ("max_position_notional", 60_000),
        ("max_gross_exposure", 200_000),
        ("daily_loss_limit", 2_000),
        ("max_orders_per_minute", 40),
        ("min_confidence", 0.5),
        ("liquidation_buffer", 0.01),
    ],
)
async def test_loosening_a_limit_needs_its_own_confirmation(desk: ApprovalDesk, key: str, value: object) -> None:
    """Every change that adds risk is refused (and the refusal journaled) until it is confirmed; then it applies."""
    before = getattr(desk.limits(), key)
    refused = await desk.set_risk_limit("alice", key, value, "more room")
    assert not refused.ok and "confirm the increase" in refused.reason and f"risk.{key}" in refused.reason
    assert getattr(desk.limits(), key) == before
    assert any(isinstance(e, CommandRefused) and e.command == "set_risk_limit" for e in journal(desk))
    confirmed = await desk.set_risk_limit("alice", key, value, "more room", confirm_risk_increase=True)
    assert confirmed.ok, confirmed.reason
    assert getattr(desk.limits(), key) == value


async def test_tightening_a_limit_needs_no_confirmation(desk: ApprovalDesk) -> None:
    """Less leverage, a smaller notional or a higher confidence floor take risk away: no confirmation asked."""
    for key, value in (("max_leverage", 2), ("max_order_notional", 1_000), ("min_confidence", 0.7)):
        assert (await desk.set_risk_limit("alice", key, value)).ok, key


async def test_a_notional_is_journaled_and_described_as_a_plain_number(desk: ApprovalDesk) -> None:
    """The journal keeps `50000`, not `"50000"`; the log line reads like the command that was typed."""
    assert (await desk.set_risk_limit("alice", "max_order_notional", "10000.50", "tighter")).ok
    change = next(e for e in journal(desk) if isinstance(e, RiskLimitChanged))
    assert (change.old, change.new) == ("25000", "10000.5")
    assert describe_event(change) == "risk.max_order_notional 25000 -> 10000.5 by alice: tighter"
    assert desk.limits().max_order_notional == D("10000.5")


def test_an_old_journal_quoted_value_still_reads_plainly() -> None:
    """Journals written before the fix kept quoted strings; the log line shows them without the quotes."""
    old = RiskLimitChanged(1, "alice", "max_order_notional", '"25000"', '"50000"', "")
    assert describe_event(old) == "risk.max_order_notional 25000 -> 50000 by alice"


async def test_the_limits_list_shows_value_range_and_who_changed_it_last(desk: ApprovalDesk) -> None:
    """Every [risk] limit is listed with its value, what it allows, which way adds risk, and its last change."""
    assert (await desk.set_risk_limit("alice", "max_leverage", 2, "calmer")).ok
    limits = {info.key: info for info in runtime_limits(desk.limits(), desk.state.limit_changes)}
    assert set(limits) >= {"risk.max_leverage", "risk.max_order_notional", "risk.daily_loss_limit"}
    leverage = limits["risk.max_leverage"]
    assert (leverage.value, leverage.riskier) == ("2", "higher")
    assert ">= 1" in leverage.allowed and "<= 20" in leverage.allowed
    assert leverage.last_change is not None and leverage.last_change.operator == "alice"
    assert limits["risk.min_confidence"].riskier == "lower"
    assert limits["risk.daily_loss_limit"].last_change is None


def test_limit_text_and_risk_increase_in_words() -> None:
    """Numbers print as typed; an increase says which limit, from what to what, and why it needs confirming."""
    assert [limit_text(v) for v in (D("5E+4"), 3.0, 0.55, 20)] == ["50000", "3", "0.55", "20"]
    assert risk_increase("max_leverage", 3.0, 5.0) == "risk.max_leverage 3 -> 5: higher adds risk"
    assert risk_increase("min_confidence", 0.55, 0.6) == ""


async def test_a_limit_with_every_digit_is_folded_back_exactly(desk: ApprovalDesk) -> None:
    """A notional with 17 significant digits is what the state holds live and what a replay of the journal
    rebuilds (a float would have rounded it)."""
    exact = D("999999999.12345678")
    assert (await desk.set_risk_limit("alice", "max_order_notional", exact, confirm_risk_increase=True)).ok
    assert desk.limits().max_order_notional == exact
    replayed = GuardState(desk.specs, make_config().risk)
    for event in journal(desk):
        replayed.apply(event)
    assert replayed.limits == desk.limits()
