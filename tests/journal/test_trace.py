"""`guard journal show`: a proposal's whole story, read from a journal the real desk wrote."""

from __future__ import annotations

import asyncio
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from guard.cli import main
from guard.domain import DecisionKind, OrderPurpose, OrderStatus, ProposalStatus
from guard.errors import BadInput
from guard.journal import story
from guard.journal.positions import PositionEnd
from guard.journal.proposal_trace import OrderTrace, ProposalTrace
from guard.journal.trace import ProposalNotFound, parse_proposal_id, trace
from tests.journal.stories import MODEL_HASH, MODEL_ID, Day, write_day


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Day:
    """One trading day on the real desk, shared by the tests of this module (they only read it)."""
    return asyncio.run(write_day(tmp_path_factory.mktemp("day") / "journal.db"))


@pytest.fixture
def home(day: Day, monkeypatch: pytest.MonkeyPatch) -> Path:
    """GUARD_HOME pointing at the day's state directory, as an operator's shell would."""
    monkeypatch.setenv("GUARD_HOME", str(day.path.parent))
    return day.path.parent


def _order(t: ProposalTrace, purpose: OrderPurpose) -> OrderTrace:
    (order,) = [o for o in t.orders if o.request.purpose is purpose]
    return order


def test_show_filled_take_profit_tells_the_four_eyes_decision_orders_fills_and_the_position_end(day: Day) -> None:
    """A filled proposal's trace has who approved it (both of two), the entry filled, the take-profit filling,
    the stop cancelled, and the position closed by the take-profit with its PnL."""
    t = trace(day.path, day.filled_take_profit)
    assert t.status is ProposalStatus.FILLED
    assert [a.operator for a in t.approvals] == ["alice"]
    assert t.decision is not None and (t.decision.operator, t.decision.kind) == ("bob", DecisionKind.APPROVE)
    assert t.decision.reason == "agreed" and t.decision.shown.checks == t.first.checks
    entry = _order(t, OrderPurpose.ENTRY)
    assert entry.status is OrderStatus.FILLED and entry.filled == Decimal("0.050") and entry.fees > 0
    assert _order(t, OrderPurpose.TAKE_PROFIT).status is OrderStatus.FILLED
    stop = _order(t, OrderPurpose.STOP)
    assert stop.status is OrderStatus.CANCELLED and stop.reason == "position closed"
    (life,) = t.positions
    assert life.end is PositionEnd.TAKE_PROFIT and life.qty == 0 and life.closed_at is not None
    assert life.realized_pnl == (life.exit_price - life.entry_price) * Decimal("0.050")
    assert life.net_pnl == life.realized_pnl - life.fees
    line = story.outcome(t)
    assert line.startswith("FILLED: bought 0.050 BTC/USDT:USDT at ") and "approved by alice and bob" in line
    assert f"net {life.net_pnl:+.2f} USDT" in line and "take-profit" in line


def test_show_rejected_names_who_when_and_why_and_sent_nothing(day: Day) -> None:
    """A rejected proposal's trace names the operator, the time (UTC) and the reason; no order, no position."""
    t = trace(day.path, day.rejected)
    assert t.status is ProposalStatus.REJECTED and t.status_reason == "too late in the day"
    assert t.orders == () and t.positions == ()
    assert story.outcome(t) == f'REJECTED by bob at {_utc(t.status_at)}: "too late in the day"'


def test_show_killed_while_pending_names_the_kill_and_who_pulled_it(day: Day) -> None:
    """A proposal pending when the kill switch was pulled ends KILLED, with the kill's operator and reason."""
    t = trace(day.path, day.killed)
    assert t.status is ProposalStatus.KILLED
    assert t.kill is not None and (t.kill.operator, t.kill.reason) == ("dave", "drill: end of day")
    assert "KILL by dave: drill: end of day" in story.outcome(t) and t.orders == ()


def test_show_expired_says_no_answer_means_no(day: Day) -> None:
    """An unanswered proposal ends EXPIRED at its expiry sweep, with the reason."""
    t = trace(day.path, day.expired)
    assert t.status is ProposalStatus.EXPIRED and "no answer means no" in t.status_reason
    assert t.decision is None and t.orders == ()
    assert t.status_at > t.first.expires_at
    assert [s.kind for s in t.steps] == ["queued", "expired"]


def test_show_model_proposal_binds_the_model_hash_from_the_acknowledgment(day: Day) -> None:
    """A model proposal shows the model id and the hash its session's acknowledgment bound, and what the kill did
    to the position it opened."""
    t = trace(day.path, day.model)
    assert t.model is not None
    assert (t.model.model_id, t.model.model_hash, t.model.acknowledged_by) == (MODEL_ID, MODEL_HASH, "alice")
    assert t.model.consistent
    (life,) = t.positions
    assert life.end is PositionEnd.KILLED
    text = story.render(t)
    assert f"sha256 {MODEL_HASH}" in text and "three higher lows on rising volume" in text
    assert "flattened by the kill switch (KILL by dave: drill: end of day)" in text


def test_show_manual_proposal_says_there_is_no_model(day: Day) -> None:
    """An operator's own proposal is not dressed in the model's figures: it says there is no model."""
    t = trace(day.path, day.rejected)
    assert t.model is None
    assert "none: not a model proposal" in story.render(t)


def test_show_overridden_lists_each_version_the_refusal_the_diff_and_the_stop(day: Day) -> None:
    """Re-priced past the collar (the approval refused), then overridden: every version, the refusal, the diff,
    what was shown and what executed; the stop closed the position."""
    t = trace(day.path, day.overridden_stopped)
    assert [(v.proposal.version, v.cause) for v in t.versions] == [(1, "queued"), (2, "repriced"), (3, "overridden")]
    (refusal,) = t.refusals
    assert refusal.command == "approve" and "collar" in refusal.reason
    assert t.decision is not None and t.decision.kind is DecisionKind.OVERRIDE
    assert t.decision.shown.version == 2 and t.decision.diff == ("qty 0.040 -> 0.03", "stop 103077.8 -> 104500")
    assert _order(t, OrderPurpose.ENTRY).request.qty == Decimal("0.03")
    (life,) = t.positions
    assert life.end is PositionEnd.STOPPED and life.net_pnl < 0
    assert "stopped out by P000003's stop" in story.outcome(t)


def test_show_liquidated_counts_the_margin_lost(day: Day) -> None:
    """A position the venue liquidated ends LIQUIDATED, with the isolated margin lost in its net."""
    t = trace(day.path, day.liquidated)
    (life,) = t.positions
    assert life.end is PositionEnd.LIQUIDATED and life.liquidation_loss > 0
    assert life.net_pnl == -life.fees - life.liquidation_loss
    assert any(s.kind == "liquidated" for s in t.steps) and "LIQUIDATED" in story.outcome(t)


def test_show_follows_a_position_reversed_by_another_proposal(day: Day) -> None:
    """A long closed by another proposal's larger short is 'reversed by' it; the other proposal's trace shows
    both lifecycles its entry touched, and the fee of the reversing fill is shared exactly between them."""
    mine = trace(day.path, day.reversing)
    (life,) = mine.positions
    assert life.end is PositionEnd.REVERSED and f"reversed by {day.reversed_by}'s entry" in story.outcome(mine)
    theirs = trace(day.path, day.reversed_by)
    closed, opened = theirs.positions
    assert closed.number == life.number and opened.proposals == (day.reversed_by,)
    entry = _order(theirs, OrderPurpose.ENTRY)
    assert closed.changes[-1].fee + opened.changes[0].fee == entry.fees
    assert opened.changes[0].qty == Decimal("0.100") and opened.end is PositionEnd.KILLED


def test_show_times_are_utc_iso_8601(day: Day) -> None:
    """Every time in the printed story is ISO 8601 in UTC, to the millisecond."""
    text = story.render(trace(day.path, day.filled_take_profit))
    times = re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text)
    assert times and "times UTC" in text
    assert not re.search(r"\d\d:\d\d:\d\d(?!\.\d{3}Z)", text)


def test_show_cli_prints_the_story(home: Path, day: Day, capsys: pytest.CaptureFixture[str]) -> None:
    """`guard journal show ID` prints the outcome first and every section, exit 0."""
    assert main(["journal", "show", day.filled_take_profit]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].startswith("Outcome: FILLED")
    for section in ("Proposal, as first queued", "Decision", "Orders", "Position", "Timeline"):
        assert f"\n{section}" in out


def test_show_cli_json_is_one_object_with_the_story(home: Path, day: Day, capsys: pytest.CaptureFixture[str]) -> None:
    """`--json` prints one JSON object: status, outcome, the proposal, orders with fills, positions, timeline."""
    assert main(["journal", "show", day.model, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["proposal_id"] == day.model and data["status"] == "FILLED"
    assert data["model"]["model_hash"] == MODEL_HASH and data["proposal"]["source"] == "model"
    (entry,) = data["orders"]
    assert entry["request"]["purpose"] == "entry" and Decimal(entry["fills"][0]["price"]) > 0
    assert data["positions"][0]["end"] == "killed"
    assert [s["seq"] for s in data["timeline"]] == sorted(s["seq"] for s in data["timeline"])
    assert all(s["time"].endswith("Z") for s in data["timeline"])


@pytest.mark.parametrize("typed", ["p3", "3", " P000003 ", "P3"])
def test_show_cli_accepts_short_forms_of_an_id(
    home: Path, day: Day, typed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An id typed short or in lower case finds the same proposal."""
    assert main(["journal", "show", typed]) == 0
    assert capsys.readouterr().out.startswith(f"{day.overridden_stopped} ")


def test_show_cli_unknown_id_exits_2_naming_the_last_proposal(
    home: Path, day: Day, capsys: pytest.CaptureFixture[str]
) -> None:
    """A proposal id the journal does not hold is bad input: exit 2, naming the last proposal there is."""
    assert main(["journal", "show", "P000999"]) == 2
    err = capsys.readouterr().err
    assert "no proposal P000999" in err and f"the last proposal there is {day.killed}" in err


@pytest.mark.parametrize("typed", ["", "X12", "P-1", "P1;DROP TABLE events", "../journal.db", "P" + "9" * 40])
def test_show_cli_refuses_what_is_not_an_id(home: Path, typed: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Text that is not a proposal id is refused with exit 2 and what an id looks like."""
    assert main(["journal", "show", typed]) == 2
    assert "e.g. P000123" in capsys.readouterr().err


def test_parse_proposal_id_normalises_and_refuses() -> None:
    """Ids are normalised to P and six digits; anything else raises BadInput."""
    assert parse_proposal_id("p42") == "P000042" == parse_proposal_id("000042")
    with pytest.raises(BadInput):
        parse_proposal_id("P12a")


def test_trace_of_a_journal_without_proposals_says_so(guard_home: Path) -> None:
    """A journal that holds no proposal yet: the error says so rather than naming a last one."""
    from guard.events import AccountFunded
    from guard.journal.store import Journal

    path = guard_home / "journal.db"
    journal = Journal(path, threaded=False)
    journal.append([AccountFunded(at=1_767_225_600_000, asset="USDT", amount=Decimal(10_000))], durable=True)
    journal.close()
    with pytest.raises(ProposalNotFound, match="holds no proposal yet"):
        trace(path, "P000001")


def _utc(ms: int) -> str:
    from guard.journal.export import iso_time

    return iso_time(ms)


def test_trace_reads_only_its_event_types_and_misses_nothing(day: Day) -> None:
    """The story told from only the event types a trace reads equals the story told from every event."""
    from guard.journal.chain import read_entries
    from guard.journal.trace import _Tracer

    for pid in (day.filled_take_profit, day.overridden_stopped, day.liquidated, day.reversed_by, day.killed):
        tracer = _Tracer(pid)
        tracer.feed(read_entries(day.path))
        assert tracer.result(day.path) == trace(day.path, pid)


async def test_show_makes_hostile_text_visible_instead_of_obeying_it(
    guard_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A reason or a source's "why" carrying a newline, an escape sequence or a bidi override cannot add a line
    to the story, clear the auditor's screen or reorder what follows: it is printed escaped, on its own line."""
    from tests.builders import close, make_desk, request

    desk = await make_desk(guard_home / "journal.db")
    try:
        result = await desk.propose(request(why="buy\u202eyllaer\u202c\x9b2J"))
        assert result.proposal is not None
        pid = result.proposal.id
        assert (await desk.reject(pid, "mallory", reason='ok"\nOutcome: FILLED\x1b[2J')).ok
    finally:
        close(desk)
    assert main(["journal", "show", pid]) == 0
    out = capsys.readouterr().out
    (outcome_line,) = [line for line in out.splitlines() if line.startswith("Outcome:")]
    assert outcome_line.startswith("Outcome: REJECTED by mallory") and "\\nOutcome: FILLED\\x1b[2J" in outcome_line
    assert not any(ch in out for ch in "\x1b\x9b\u202e\u202c")
    assert "buy\\u202eyllaer\\u202c\\x9b2J" in out
    assert main(["journal", "tail", "-n", "5"]) == 0
    assert not any(ch in capsys.readouterr().out for ch in "\x1b\x9b\u202e\u202c")
    assert main(["journal", "show", pid, "--json"]) == 0
    data = capsys.readouterr().out
    assert data.isascii() and json.loads(data)["decision"]["reason"] == 'ok"\nOutcome: FILLED\x1b[2J'
