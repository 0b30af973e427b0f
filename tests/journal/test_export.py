"""`guard journal export --table ...`: typed tables of a journal the real desk wrote, read back by pyarrow."""

from __future__ import annotations

import asyncio
import csv
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from guard.cli import main
from guard.events import OrderFilled
from guard.journal.chain import read_entries
from guard.journal.export import ALL_TABLES, arrow_type
from guard.journal.tables import Kind
from tests.journal.stories import Day, write_day

UTC_MS = pa.timestamp("ms", tz="UTC")


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Day:
    """One trading day on the real desk, shared by the tests of this module (they only read it)."""
    return asyncio.run(write_day(tmp_path_factory.mktemp("day") / "journal.db"))


@pytest.fixture
def home(day: Day, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GUARD_HOME", str(day.path.parent))
    return day.path.parent


def _parquet(table: str, out: Path) -> pa.Table:
    assert main(["journal", "export", "--table", table, "--format", "parquet", "--out", str(out)]) == 0
    return pq.read_table(out)


def _fills(day: Day) -> list[OrderFilled]:
    return [e.event for e in read_entries(day.path) if isinstance(e.event, OrderFilled)]


def test_fills_parquet_reads_back_with_typed_columns_and_exact_values(home: Path, day: Day, tmp_path: Path) -> None:
    """Fills come back with timestamps as UTC timestamps, prices, quantities and fees as decimals equal to the
    journal's to the last digit, booleans as booleans and enums as their text."""
    table = _parquet("fills", tmp_path / "fills.parquet")
    schema = table.schema
    assert schema.field("time").type == UTC_MS and schema.field("fill_time").type == UTC_MS
    for name in ("qty", "price", "fee", "remaining"):
        assert pa.types.is_decimal(schema.field(name).type), name
    assert schema.field("reduce_only").type == pa.bool_() and schema.field("side").type == pa.string()
    assert schema.field("seq").type == pa.int64()
    fills = _fills(day)
    rows = table.to_pylist()
    assert [(r["price"], r["fee"], r["qty"]) for r in rows] == [(e.fill.price, e.fill.fee, e.fill.qty) for e in fills]
    assert [r["time"].timestamp() * 1000 for r in rows] == [e.at for e in fills]
    assert {r["side"] for r in rows} == {"buy", "sell"} and rows[0]["purpose"] == "entry"
    assert any(r["reduce_only"] for r in rows) and not rows[0]["reduce_only"]


def test_decimal_scale_fits_every_value_of_a_column(home: Path, day: Day, tmp_path: Path) -> None:
    """A decimal column's scale is the most decimals any of its values has: 2.50026250 and 0.12001000 both fit."""
    fees = [e.fill.fee for e in _fills(day)]
    scale = max(-f.as_tuple().exponent for f in fees)  # type: ignore[operator]
    table = _parquet("fills", tmp_path / "fills.parquet")
    assert table.schema.field("fee").type == pa.decimal128(38, scale)
    assert arrow_type(ALL_TABLES["fills"].columns[11], [Decimal("1E+30"), Decimal("0.1")]) == pa.decimal128(38, 1)
    wide = [Decimal("1" * 30 + ".123456789012")]
    assert arrow_type(ALL_TABLES["fills"].columns[11], wide) == pa.decimal256(76, 12)


def test_orders_have_one_row_each_with_their_final_state(home: Path, day: Day, tmp_path: Path) -> None:
    """One row per order: the take-profit proposal's entry and take-profit FILLED, its stop CANCELLED; the kill's
    flatten orders are there too, without a proposal."""
    rows = _parquet("orders", tmp_path / "orders.parquet").to_pylist()
    assert len({r["client_order_id"] for r in rows}) == len(rows)
    mine = {r["purpose"]: r for r in rows if r["proposal_id"] == day.filled_take_profit}
    statuses = {p: r["status"] for p, r in mine.items()}
    assert statuses == {"entry": "FILLED", "stop": "CANCELLED", "take_profit": "FILLED"}
    assert mine["stop"]["reason"] == "position closed" and mine["stop"]["trigger_price"] == Decimal("97000")
    assert mine["entry"]["filled_qty"] == Decimal("0.050") and mine["entry"]["fills"] == 1
    flatten = [r for r in rows if r["purpose"] == "flatten"]
    assert flatten and all(r["proposal_id"] is None and r["reduce_only"] for r in flatten)


def test_decisions_carry_who_what_and_the_first_of_two_approvals(home: Path, day: Day, tmp_path: Path) -> None:
    """One row per decision: operator, kind, reason, the four-eyes first approval, the override's diff and what
    it executes; a rejection executes nothing."""
    table = _parquet("decisions", tmp_path / "decisions.parquet")
    assert table.schema.field("confirmed_risk_increase").type == pa.bool_()
    by_id = {r["proposal_id"]: r for r in table.to_pylist()}
    tp = by_id[day.filled_take_profit]
    assert (tp["kind"], tp["operator"], tp["first_approval_by"]) == ("approve", "bob", "alice")
    override = by_id[day.overridden_stopped]
    assert override["kind"] == "override" and override["version"] == 2
    assert override["diff"] == "qty 0.040 -> 0.03; stop 103077.8 -> 104500"
    assert override["executes_qty"] == Decimal("0.03") and override["shown_qty"] == Decimal("0.040")
    rejected = by_id[day.rejected]
    assert rejected["reason"] == "too late in the day" and rejected["executes_qty"] is None
    assert day.expired not in by_id and day.killed not in by_id


def test_proposals_have_one_row_per_version_with_the_final_status(home: Path, day: Day, tmp_path: Path) -> None:
    """One row per version (queued, re-priced, overridden), each with the proposal's status at the end."""
    table = _parquet("proposals", tmp_path / "proposals.parquet")
    assert table.schema.field("confidence").type == pa.float64() and table.schema.field("novel").type == pa.bool_()
    assert table.schema.field("expires_at").type == UTC_MS
    rows = table.to_pylist()
    stopped = [
        (r["version"], r["cause"], r["final_status"]) for r in rows if r["proposal_id"] == day.overridden_stopped
    ]
    assert stopped == [(1, "queued", "FILLED"), (2, "repriced", "FILLED"), (3, "overridden", "FILLED")]
    status = {r["proposal_id"]: r["final_status"] for r in rows}
    assert status[day.rejected] == "REJECTED" and status[day.expired] == "EXPIRED" and status[day.killed] == "KILLED"
    assert Counter(r["proposal_id"] for r in rows)[day.rejected] == 1


def test_positions_have_one_row_per_lifecycle_with_how_it_ended(home: Path, day: Day, tmp_path: Path) -> None:
    """One row per position lifecycle: how each ended, and net PnL = realized - fees + funding - margin lost."""
    rows = _parquet("positions", tmp_path / "positions.parquet").to_pylist()
    ends = Counter(r["end"] for r in rows)
    assert ends == Counter({"take_profit": 1, "stopped": 1, "liquidated": 1, "reversed": 1, "killed": 2})
    for r in rows:
        assert r["net_pnl"] == r["realized_pnl"] - r["fees"] + r["funding"] - r["liquidation_loss"]
        assert r["closed_at"] is not None and r["qty"] == 0
    reversed_row = next(r for r in rows if r["end"] == "reversed")
    assert reversed_row["proposals"] == day.reversing and reversed_row["side"] == "long"


def test_csv_is_typed_text_that_pyarrow_reads_back_as_the_parquet(home: Path, day: Day, tmp_path: Path) -> None:
    """The CSV of a table writes exact fixed-point decimals, ISO 8601 UTC times and true/false; read with the
    table's types it equals the Parquet export."""
    for name in ("fills", "orders", "decisions", "proposals", "positions"):
        parquet = _parquet(name, tmp_path / f"{name}.parquet")
        out = tmp_path / f"{name}.csv"
        assert main(["journal", "export", "--table", name, "--out", str(out)]) == 0
        types = {f.name: f.type for f in parquet.schema}
        read = pacsv.read_csv(out, convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True))
        assert read.equals(parquet), name
    (row, *_) = csv.DictReader((tmp_path / "fills.csv").open())
    assert row["time"].endswith("Z") and row["reduce_only"] in ("true", "false") and "E" not in row["price"]


def test_export_table_names_are_case_insensitive_and_unknown_ones_refused(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--table FILLS` works; an unknown table exits 2 naming the tables there are."""
    assert main(["journal", "export", "--table", "FILLS", "--out", str(tmp_path / "f.csv")]) == 0
    assert main(["journal", "export", "--table", "trades"]) == 2
    err = capsys.readouterr().err
    assert "unknown table 'trades'" in err and "fills, orders, decisions, proposals, positions" in err


def test_events_table_stays_the_default_with_time_typed(home: Path, day: Day, tmp_path: Path) -> None:
    """Without --table the export is one row per event, as before; in Parquet its time is now a UTC timestamp."""
    table = _parquet("events", tmp_path / "e.parquet")
    assert table.column_names == ["seq", "time", "type", "payload", "prev_hash", "hash"]
    assert table.schema.field("time").type == UTC_MS
    assert table.num_rows == sum(1 for _ in read_entries(day.path))
    out = tmp_path / "e.csv"
    assert main(["journal", "export", "--out", str(out)]) == 0
    assert [r["seq"] for r in csv.DictReader(out.open())] == [str(s) for s in table.column("seq").to_pylist()]


def test_every_table_kind_maps_to_an_arrow_type() -> None:
    """Each column kind of each table has its pyarrow type (a decimal's scale from its values)."""
    for table in ALL_TABLES.values():
        for column in table.columns:
            kind_type = arrow_type(column, [Decimal("1.5")] if column.kind is Kind.DECIMAL else None)
            assert kind_type is not None


def test_export_of_an_empty_journal_writes_headers_only(guard_home: Path, tmp_path: Path) -> None:
    """A journal without fills exports a fills table with its typed columns and no rows."""
    from guard.events import AccountFunded
    from guard.journal.store import Journal

    journal = Journal(guard_home / "journal.db", threaded=False)
    journal.append([AccountFunded(at=1_767_225_600_000, asset="USDT", amount=Decimal(10_000))], durable=True)
    journal.close()
    table = _parquet("fills", tmp_path / "f.parquet")
    assert table.num_rows == 0 and table.schema.field("time").type == UTC_MS
    assert pa.types.is_decimal(table.schema.field("price").type)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_to_a_place_that_cannot_be_written_exits_2_naming_it(
    home: Path, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An --out in a directory that does not exist is bad input named in one line, not a traceback."""
    out = tmp_path / "missing" / f"fills.{fmt}"
    assert main(["journal", "export", "--table", "fills", "--format", fmt, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {out}" in err and "Traceback" not in err


def test_tables_read_only_the_event_types_they_need_and_miss_nothing(day: Day) -> None:
    """Each table built from only the event types it declares equals the table built from every event."""
    for table in ALL_TABLES.values():
        everything = list(table.rows(read_entries(day.path)))
        assert list(table.rows(read_entries(day.path, types=table.reads))) == everything, table.name
        assert everything or table.name == "events"


def test_positions_count_funding_paid_while_open(guard_home: Path, tmp_path: Path) -> None:
    """Funding the venue paid or charged while a position was open is in its row and in its net PnL."""
    from guard.domain import Fill, Liquidity, OrderPurpose, OrderRequest, OrderType, Side
    from guard.events import Event, FundingPaid, OrderSubmitted
    from guard.journal.store import Journal

    def order(cid: str, side: Side, at: int, price: str) -> list[Event]:
        request = OrderRequest(
            client_order_id=cid,
            symbol="BTC/USDT:USDT",
            side=side,
            qty=Decimal("0.1"),
            order_type=OrderType.MARKET,
            purpose=OrderPurpose.ENTRY if side is Side.BUY else OrderPurpose.CLOSE,
            reduce_only=side is Side.SELL,
        )
        fill = Fill(
            client_order_id=cid,
            fill_id=f"{cid}-1",
            symbol="BTC/USDT:USDT",
            side=side,
            qty=Decimal("0.1"),
            price=Decimal(price),
            fee=Decimal("1.25"),
            liquidity=Liquidity.TAKER,
            timestamp=at,
        )
        return [OrderSubmitted(at=at, request=request), OrderFilled(at=at, fill=fill, remaining=Decimal(0))]

    t0 = 1_767_225_600_000
    events = [
        *order("g1-E", Side.BUY, t0, "100000"),
        FundingPaid(
            at=t0 + 1, symbol="BTC/USDT:USDT", rate=Decimal("0.0001"), mark=Decimal("100000"), amount=Decimal("-1.00")
        ),
        *order("g1-C1", Side.SELL, t0 + 2, "100100"),
        FundingPaid(
            at=t0 + 3, symbol="BTC/USDT:USDT", rate=Decimal("0.0001"), mark=Decimal("100000"), amount=Decimal("-5.00")
        ),
    ]
    journal = Journal(guard_home / "journal.db", threaded=False)
    journal.append(events, durable=True)
    journal.close()
    (row,) = _parquet("positions", tmp_path / "p.parquet").to_pylist()
    assert (row["end"], row["funding"], row["realized_pnl"], row["fees"]) == ("closed", -1, 10, Decimal("2.50"))
    assert row["net_pnl"] == Decimal("6.50") and row["exit_price"] == Decimal("100100")
