"""`guard.feed.importer`: other people's OHLCV CSVs, every timestamp unit, headers, tick and step guesses."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from guard.domain import MarketKind
from guard.errors import BadInput
from guard.feed.history import read_bars, write_bars
from guard.feed.importer import ImportOptions, import_plain_csv
from guard.markets.files import spec_path, write_specs
from tests.feed.files import T0_MS, walk_rows, write_csv


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


@pytest.mark.parametrize(
    ("unit", "stamp"),
    [
        ("seconds", lambda ms: str(ms // 1000)),
        ("seconds", lambda ms: f"{ms / 1000:.1f}"),
        ("milliseconds", str),
        ("microseconds", lambda ms: str(ms * 1000)),
        ("nanoseconds", lambda ms: str(ms * 1_000_000)),
        ("ISO", _iso),
        ("ISO", lambda ms: _iso(ms).replace(" ", "T") + "Z"),
        ("ISO", lambda ms: datetime.fromtimestamp(ms / 1000, UTC).astimezone().isoformat()),
    ],
)
def test_import_every_timestamp_unit_gives_same_bars(tmp_path: Path, unit: str, stamp: object) -> None:
    """Seconds (whole or decimal), ms, µs, ns and ISO text (naive, Z or an offset) give the very same bars."""
    rows = walk_rows(50, 3_500.0, 2)
    (tmp_path / "ref").mkdir()
    reference = import_plain_csv(write_csv(tmp_path / "ref" / "ETHUSDT-1m.csv", rows))
    result = import_plain_csv(write_csv(tmp_path / "ETHUSDT-1m.csv", rows, stamp=stamp))  # type: ignore[arg-type]
    assert result.errors == [] and result.bars == reference.bars and result.timeframe == "1m"
    assert any(unit in note for note in result.notes)


def test_import_seconds_row_in_ms_file_refused_by_line(tmp_path: Path) -> None:
    """One row in another unit than the rest is refused with its line, the others kept."""
    rows = walk_rows(20, 100.0, 2)
    path = write_csv(tmp_path / "SOLUSDT-1m.csv", rows)
    lines = path.read_text().splitlines()
    lines[5] = ",".join([str(rows[4][0] // 1000), *rows[4][1:]])
    path.write_text("\n".join(lines) + "\n")
    result = import_plain_csv(path)
    assert [line for line, _ in result.errors] == [6]
    assert "seconds instead of milliseconds" in result.errors[0][1]
    assert len(result.bars) == 19


def test_import_two_rows_in_seconds_tell_the_timeframe(tmp_path: Path) -> None:
    """Timestamps in seconds no longer fail with "cannot tell the timeframe": the spacing is read in ms."""
    rows = walk_rows(3, 0.5, 4, step_ms=300_000)
    result = import_plain_csv(write_csv(tmp_path / "XRPUSDT.csv", rows, stamp=lambda ms: str(ms // 1000)))
    assert result.timeframe == "5m" and len(result.bars) == 3


@pytest.mark.parametrize(
    "header",
    [
        "Date,Open,High,Low,Close,Volume",
        ",Open,High,Low,Close,Volume",
        "open_time,open,high,low,close,volume,close_time,quote_volume",
        "time,o,h,l,c,v",
    ],
)
def test_import_headers_found_by_name(tmp_path: Path, header: str) -> None:
    """Headers are read by column name, whatever the case; extra columns are ignored and said so."""
    rows = walk_rows(30, 3_500.0, 2)
    extra = header.count(",") - 5
    path = write_csv(tmp_path / "ETHUSDT-1m.csv", [(*r, *(["1"] * extra)) for r in rows], header=header)  # type: ignore[misc]
    result = import_plain_csv(path)
    assert result.errors == [] and len(result.bars) == 30
    assert ("ignored" in " ".join(result.notes)) == bool(extra)


def test_import_binance_dump_without_header_takes_first_six(tmp_path: Path) -> None:
    """Binance's 12-field dumps without a header: the first six fields are the bar, the rest are said ignored."""
    rows = walk_rows(30, 3_500.0, 2)
    path = write_csv(
        tmp_path / "ETHUSDT-1m-2026-01.csv",
        [(*r, "9", "9", "9", "9", "9", "0") for r in rows],  # type: ignore[misc]
        header=None,
    )
    result = import_plain_csv(path)
    assert result.errors == [] and len(result.bars) == 30 and "first six" in " ".join(result.notes)


def test_import_header_without_volume_refused_naming_it(tmp_path: Path) -> None:
    """A header without a column guard needs is refused, naming it and what the file has."""
    path = tmp_path / "ETHUSDT.csv"
    path.write_text(f"time,open,high,low,close\n{T0_MS},1,1,1,1\n")
    with pytest.raises(BadInput, match="no volume column"):
        import_plain_csv(path)


def test_import_guard_format_file_reads_symbol_and_timeframe(tmp_path: Path) -> None:
    """A file in guard's own format imports again (to fill its gaps, say), its symbol and timeframe from its
    columns and its spec from the spec file beside it."""
    rows = walk_rows(20, 0.5, 4)
    first = import_plain_csv(
        write_csv(tmp_path / "x.csv", rows),
        symbol="XRP/USDT:USDT",
        options=ImportOptions(tick=Decimal("0.0001"), step=Decimal("0.1")),
    )
    own = tmp_path / "own.csv"
    write_bars(own, first.bars)
    write_specs(spec_path(own), [first.spec])
    again = import_plain_csv(own)
    assert again.symbol == "XRP/USDT:USDT" and again.timeframe == "1m" and again.bars == first.bars
    assert again.spec == first.spec


def test_import_tick_of_a_token_priced_0_002(tmp_path: Path) -> None:
    """A BTC-quoted token at 0.002 written with 8 decimals gets tick 0.00000001, said as a guess — not 0.0001."""
    rows = walk_rows(400, 0.002, 8, step_ms=3_600_000)
    result = import_plain_csv(write_csv(tmp_path / "TKN_BTC-1h.csv", rows))
    spec = result.spec.spec
    assert result.symbol == "TKN/BTC" and spec.kind is MarketKind.SPOT and spec.quote == "BTC"
    assert spec.tick_size == Decimal("0.00000001")
    assert any("tick 0.00000001 guessed from the prices' decimals" in g for g in result.spec.guesses)
    assert spec.step_size == Decimal("0.001") and spec.max_leverage == 1 and spec.tiers == ()


def test_import_tick_of_eth_btc_not_eth_usdt(tmp_path: Path) -> None:
    """ETH/BTC 5m gets its own tick from its prices (0.00001), not ETH/USDT's 0.01."""
    rows = walk_rows(300, 0.05123, 5, step_ms=300_000)
    result = import_plain_csv(write_csv(tmp_path / "ETH_BTC-5m.csv", rows))
    assert result.symbol == "ETH/BTC" and result.timeframe == "5m"
    assert result.spec.spec.tick_size == Decimal("0.00001")


def test_import_float_noise_tick_from_price_level(tmp_path: Path) -> None:
    """Prices written with float noise say nothing by their decimals: the tick is guessed from the price level."""
    rows = [(t, *(repr(float(x) / 3) for x in (o, h, lo, c)), v) for t, o, h, lo, c, v in walk_rows(100, 3_000.0, 2)]
    result = import_plain_csv(write_csv(tmp_path / "ETH_USD-1m.csv", rows))
    assert result.spec.spec.tick_size == Decimal("0.01")  # five significant digits at about 1,000
    assert any("price level" in g for g in result.spec.guesses)


def test_import_options_win_over_guesses_and_builtin(tmp_path: Path) -> None:
    """--tick/--step/--kind/--quote settle the spec; a built-in symbol uses guard's spec and says when the
    prices are finer than its tick."""
    rows = walk_rows(50, 0.6, 4)
    path = write_csv(tmp_path / "XRPEUR-1m.csv", rows)
    result = import_plain_csv(
        path, options=ImportOptions(quote="EUR", kind=MarketKind.LINEAR, tick=Decimal("0.0005"), step=Decimal(1))
    )
    spec = result.spec.spec
    assert result.symbol == "XRP/EUR:EUR" and (spec.tick_size, spec.step_size) == (Decimal("0.0005"), Decimal(1))
    assert not any("guessed from" in g for g in result.spec.guesses)
    btc = import_plain_csv(write_csv(tmp_path / "BTCUSDT-1m.csv", walk_rows(50, 100_000.0, 2)))
    assert btc.spec.spec.tick_size == Decimal("0.1")
    assert any("finer than the tick 0.1" in g for g in btc.spec.guesses)
    with pytest.raises(BadInput, match="contradicts"):
        import_plain_csv(path, symbol="XRP/EUR", options=ImportOptions(kind=MarketKind.LINEAR))


def test_import_monthly_rows_refused_unless_daily_asked(tmp_path: Path) -> None:
    """Month-end rows (28-31 days apart) are no fixed timeframe: refused, saying how to read them as daily."""
    path = tmp_path / "BTCUSD.csv"
    path.write_text(
        "Date,Open,High,Low,Close,Volume\n2024-01-31,1,2,1,2,5\n2024-02-29,2,3,1,2,5\n2024-03-31,2,3,2,3,5\n"
    )
    with pytest.raises(BadInput, match=r"calendar month apart.*--timeframe 1d"):
        import_plain_csv(path)
    assert import_plain_csv(path, timeframe="1d").gaps == 2


def test_import_name_timeframe_used_for_sparse_rows(tmp_path: Path) -> None:
    """Rows 10 minutes apart in a file named -5m are 5m bars with gaps; a name that contradicts the rows is refused."""
    rows = walk_rows(20, 100.0, 2, step_ms=600_000)
    assert import_plain_csv(write_csv(tmp_path / "SOL_USDT-5m.csv", rows)).timeframe == "5m"
    with pytest.raises(BadInput, match="says 15m"):
        import_plain_csv(write_csv(tmp_path / "SOL_USDT-15m.csv", rows))


def test_import_100x_high_is_a_bad_tick_named_by_line(tmp_path: Path) -> None:
    """A 100x high is not a bar to learn from: it is refused as a bad tick with its line, and left out of the bars."""
    rows = walk_rows(200, 0.5, 4)
    t, o, h, lo, c, v = rows[99]
    rows[99] = (t, o, f"{float(h) * 100:.4f}", lo, c, v)
    result = import_plain_csv(write_csv(tmp_path / "XRP_USDT_USDT-1m-futures.csv", rows))
    assert [line for line, _ in result.bad_ticks] == [101]  # header + 100th row
    assert "bad tick" in result.bad_ticks[0][1] and result.errors == []
    assert len(result.bars) == 199 and result.gaps == 1


def test_import_fill_gaps_marks_filled_bars_in_file(tmp_path: Path) -> None:
    """--fill-gaps adds flat incomplete bars; written and read back (CSV and Parquet) they stay marked filled."""
    rows = walk_rows(30, 100.0, 2)
    del rows[10:13]
    result = import_plain_csv(write_csv(tmp_path / "SOLUSDT-1m.csv", rows), options=ImportOptions(fill_gaps=True))
    assert (result.gaps, result.filled) == (1, 3) and len(result.bars) == 30
    assert [b.complete for b in result.bars].count(False) == 3
    for name in ("out.csv", "out.parquet"):
        write_bars(tmp_path / name, result.bars)
        assert read_bars(tmp_path / name) == result.bars
    assert (tmp_path / "out.csv").read_text().splitlines()[0].endswith(",filled")


def test_import_without_fill_keeps_format_unchanged(tmp_path: Path) -> None:
    """Files without filled bars carry no filled column: guard's format is what it was."""
    result = import_plain_csv(write_csv(tmp_path / "SOLUSDT-1m.csv", walk_rows(10, 100.0, 2)))
    write_bars(tmp_path / "out.csv", result.bars)
    assert (tmp_path / "out.csv").read_text().splitlines()[0] == "timestamp,open,high,low,close,volume,symbol,timeframe"


@pytest.mark.parametrize(
    ("stamp", "why"),
    [
        ("9000000000000", "after 2200"),
        ("1e30", "nanoseconds instead of milliseconds"),
        ("5", "before 2000"),
        ("oops", "neither"),
    ],
)
def test_import_absurd_timestamps_refused_by_line(tmp_path: Path, stamp: str, why: str) -> None:
    """A timestamp no unit makes a time between 2000 and 2200, or no time at all, is refused with its line."""
    rows = walk_rows(5, 100.0, 2)
    path = write_csv(tmp_path / "SOLUSDT-1m.csv", rows)
    lines = path.read_text().splitlines()
    lines[3] = ",".join([stamp, *rows[2][1:]])
    path.write_text("\n".join(lines) + "\n")
    result = import_plain_csv(path)
    assert [line for line, _ in result.errors] == [4] and why in result.errors[0][1]
    assert len(result.bars) == 4
