"""`guard journal tail`: filtered by event type, closed bars left out unless asked for, and followed with the filter."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from guard.cli import main
from guard.domain import Bar, Fill, Liquidity, OrderPurpose, OrderRequest, OrderType, Side
from guard.events import (
    EVENT_TYPES,
    AccountFunded,
    BarRecorded,
    Event,
    OrderFilled,
    OrderSubmitted,
    SessionEnded,
)
from guard.journal.store import Journal

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_767_225_600_000
BTC = "BTC/USDT:USDT"


def _bar(i: int) -> BarRecorded:
    at = T0 + i * 60_000
    bar = Bar(
        symbol=BTC,
        timeframe="1m",
        open_time=at - 60_000,
        open=100_000.0,
        high=100_010.0,
        low=99_990.0,
        close=100_000.0 + i,
        volume=1.5,
    )
    return BarRecorded(at=at, bar=bar)


def _order(n: int) -> list[Event]:
    cid = f"gtest-P{n:06d}-E"
    request = OrderRequest(
        client_order_id=cid,
        symbol=BTC,
        side=Side.BUY,
        qty=Decimal("0.01"),
        order_type=OrderType.MARKET,
        purpose=OrderPurpose.ENTRY,
        proposal_id=f"P{n:06d}",
    )
    at = T0 + n * 60_000 + 1
    fill = Fill(
        client_order_id=cid,
        fill_id=f"{cid}-1",
        symbol=BTC,
        side=Side.BUY,
        qty=Decimal("0.01"),
        price=Decimal("100000.0"),
        fee=Decimal("0.5"),
        liquidity=Liquidity.TAKER,
        timestamp=at,
    )
    return [OrderSubmitted(at=at, request=request), OrderFilled(at=at, fill=fill, remaining=Decimal(0))]


def _append(path: Path, events: list[Event]) -> None:
    journal = Journal(path, threaded=False)
    journal.append(events, durable=True)
    journal.close()


@pytest.fixture
def journal_file(guard_home: Path) -> Path:
    """Funding, then bars with two orders among them, and more bars at the end: what a real journal looks like."""
    path = guard_home / "journal.db"
    events: list[Event] = [AccountFunded(at=T0, asset="USDT", amount=Decimal(10_000))]
    for i in range(1, 30):
        events.append(_bar(i))
        if i in (10, 20):
            events += _order(i)
    _append(path, events)
    return path


def _types(out: str) -> list[str]:
    return [line.split()[2] for line in out.splitlines()]


def test_tail_leaves_out_closed_bars_by_default(journal_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without a filter, tail prints the last events that are not closed bars, even when bars came last."""
    assert main(["journal", "tail", "-n", "3"]) == 0
    assert _types(capsys.readouterr().out) == ["OrderFilled", "OrderSubmitted", "OrderFilled"]


def test_tail_type_filters_case_insensitively_and_repeatably(
    journal_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--type takes any case and may be given more than once; -n counts the events that pass the filter."""
    assert main(["journal", "tail", "--type", "orderfilled", "-n", "5"]) == 0
    assert _types(capsys.readouterr().out) == ["OrderFilled", "OrderFilled"]
    assert main(["journal", "tail", "--type", "ORDERSUBMITTED", "--type", "AccountFunded", "-n", "5"]) == 0
    assert _types(capsys.readouterr().out) == ["AccountFunded", "OrderSubmitted", "OrderSubmitted"]


def test_tail_shows_bars_when_asked_by_type_or_all(journal_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--type BarRecorded shows only bars; --all shows everything, bars included."""
    assert main(["journal", "tail", "--type", "BarRecorded", "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert _types(out) == ["BarRecorded", "BarRecorded"] and '"close": 100029.0' not in out  # brief, not the bar
    assert main(["journal", "tail", "--all", "-n", "4"]) == 0
    assert _types(capsys.readouterr().out) == ["BarRecorded"] * 4
    assert main(["journal", "tail", "--all", "-n", "100"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 + 29 + 4


def test_tail_unknown_type_exits_2_naming_the_known_ones(
    journal_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A type that does not exist is bad input: exit 2, with every known type listed."""
    assert main(["journal", "tail", "--type", "OrderFiled"]) == 2
    err = capsys.readouterr().err
    assert "unknown event type 'OrderFiled'" in err
    assert all(name in err for name in EVENT_TYPES)


def test_tail_unknown_type_is_named_even_without_a_journal(
    guard_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The filter is checked before the journal is looked for, so the first error is the typo."""
    assert main(["journal", "tail", "--type", "nope"]) == 2
    assert "unknown event type 'nope'" in capsys.readouterr().err


def test_tail_all_and_type_together_are_refused(journal_file: Path) -> None:
    """--all and --type contradict each other: the parser refuses the pair (exit 2)."""
    with pytest.raises(SystemExit) as exited:
        main(["journal", "tail", "--all", "--type", "OrderFilled"])
    assert exited.value.code == 2


def test_tail_help_says_bars_are_left_out(capsys: pytest.CaptureFixture[str]) -> None:
    """The help says closed bars are left out by default and how to see them."""
    with pytest.raises(SystemExit):
        main(["journal", "tail", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "BarRecorded" in help_text and "--all" in help_text and "left out" in help_text


@pytest.fixture
def follower(journal_file: Path, guard_home: Path) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str]]]:
    """`guard journal tail -n 1 -f --type OrderFilled` in its own process; its lines arrive on a queue."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "guard", "journal", "tail", "-n", "1", "-f", "--type", "OrderFilled"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "GUARD_HOME": str(guard_home)},
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        yield proc, lines
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _next_line(proc: subprocess.Popen[str], lines: queue.Queue[str], seconds: float = 60) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            return lines.get(timeout=0.2)
        except queue.Empty:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    raise AssertionError("tail -f printed nothing in time")


def test_tail_follow_prints_only_new_events_that_pass_the_filter(
    journal_file: Path, follower: tuple[subprocess.Popen[str], queue.Queue[str]]
) -> None:
    """Following with --type prints each new matching event once, and none of the bars or other events around it."""
    proc, lines = follower
    past = _next_line(proc, lines)  # the last fill already there: it has read the journal and is following now
    assert past.split()[2] == "OrderFilled" and "P000020" in past
    _append(journal_file, [_bar(40), *_order(41), _bar(42)])
    first = _next_line(proc, lines)
    assert first.split()[0] == "37" and first.split()[2] == "OrderFilled" and "P000041" in first
    _append(journal_file, [_bar(43), _bar(44), SessionEnded(at=T0 + 45 * 60_000, reason="x"), *_order(46)])
    second = _next_line(proc, lines)
    assert second.split()[2] == "OrderFilled" and "P000046" in second
    assert lines.empty()


def test_read_entries_by_type_yields_only_those_and_last_seq_is_the_end(journal_file: Path) -> None:
    """Reading by type gives only those events, in order, after `after_seq`; `last_seq` is the last event's number
    whatever its type; an empty filter reads nothing."""
    from guard.journal.chain import last_seq, read_entries

    fills = [e.seq for e in read_entries(journal_file, types={"OrderFilled"})]
    assert fills == [13, 25]
    assert [e.seq for e in read_entries(journal_file, after_seq=13, types={"OrderFilled"})] == [25]
    assert list(read_entries(journal_file, types=())) == []
    assert last_seq(journal_file) == 34 and type(list(read_entries(journal_file))[-1].event) is BarRecorded


def test_tail_finds_old_events_far_behind_a_long_run_of_bars(
    guard_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The last matching events are found however far back they are (tail reads back from the end in growing
    windows), and -n larger than what matches prints all there is, in order."""
    path = guard_home / "journal.db"
    events: list[Event] = [AccountFunded(at=T0, asset="USDT", amount=Decimal(10_000)), *_order(1), *_order(2)]
    events += [_bar(i) for i in range(3, 2003)]
    _append(path, events)
    assert main(["journal", "tail", "-n", "3", "--type", "OrderFilled"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["3", "5"]
    assert main(["journal", "tail", "-n", "2"]) == 0
    assert _types(capsys.readouterr().out) == ["OrderSubmitted", "OrderFilled"]
    assert main(["journal", "tail", "-n", "3", "--all"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["2003", "2004", "2005"]
    assert main(["journal", "tail", "-n", "0", "--all"]) == 0
    assert capsys.readouterr().out == ""
