"""History files: CSV and Parquet round trips, strict reading, and importing plain OHLCV CSVs."""

from __future__ import annotations

from pathlib import Path

import pytest

from guard.errors import BadInput, InvalidMarketData
from guard.feed.history import read_bars, write_bars
from guard.feed.importer import import_plain_csv
from guard.sim.process import generate_history

T0 = 1_767_225_600_000
SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT")


@pytest.mark.parametrize("name", ["bars.csv", "bars.parquet"])
def test_history_write_read_round_trip_exact(tmp_path: Path, name: str) -> None:
    """Bars written as CSV or Parquet read back identical, several symbols in one file."""
    history = generate_history(SYMBOLS, T0, 300)
    bars = [*history[SYMBOLS[0]], *history[SYMBOLS[1]]]
    write_bars(tmp_path / name, bars)
    assert read_bars(tmp_path / name) == bars


def test_history_read_bad_row_names_line(tmp_path: Path) -> None:
    """A bad row in a history CSV is reported with its line number and reason."""
    path = tmp_path / "bad.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume,symbol,timeframe\n"
        f"{T0},10,11,9,10,1,BTC/USDT:USDT,1m\n"
        f"{T0 + 60_000},10,9,11,10,1,BTC/USDT:USDT,1m\n"
    )
    with pytest.raises(InvalidMarketData, match="line 3: high < low"):
        read_bars(path)


def test_history_read_plain_csv_points_to_import(tmp_path: Path) -> None:
    """Reading a plain OHLCV CSV names the missing columns and suggests `guard history import`."""
    path = tmp_path / "plain.csv"
    path.write_text(f"timestamp,open,high,low,close,volume\n{T0},1,1,1,1,1\n")
    with pytest.raises(BadInput, match=r"missing column.*history import"):
        read_bars(path)


def test_history_unknown_extension_refused(tmp_path: Path) -> None:
    """Only .csv and .parquet are history files."""
    with pytest.raises(BadInput, match=r"\.csv or \.parquet"):
        write_bars(tmp_path / "bars.json", [])


def test_import_plain_csv_reports_every_bad_row(tmp_path: Path) -> None:
    """Import refuses each impossible row with its line number and keeps the good ones."""
    path = tmp_path / "BTCUSDT-1m.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        f"{T0},10,11,9,10.5,3\n"  # good
        f"{T0 + 60_000},10,11,9,nan,3\n"  # line 3: NaN
        f"{T0 + 120_000},10,11,9,12,3\n"  # line 4: close above high
        f"{T0 + 180_000},-1,11,9,10,3\n"  # line 5: negative
        f"{T0 + 180_000},10,11,9,10,3\n"  # good
        f"{T0 + 180_000},10,11,9,10,3\n"  # line 7: duplicate
        f"{T0 + 120_000},10,11,9,10,3\n"  # line 8: out of order
        "1767225600,10,11,9,10,3\n"  # line 9: seconds
        "oops\n"  # line 10: one field
        f"{T0 + 300_000},10,11,9,10,3\n"  # good, after a gap
    )
    result = import_plain_csv(path)
    assert result.symbol == "BTC/USDT:USDT" and result.timeframe == "1m"
    assert [b.open_time for b in result.bars] == [T0, T0 + 180_000, T0 + 300_000]
    lines = dict(result.errors)
    assert sorted(lines) == [3, 4, 5, 7, 8, 9, 10]
    assert lines[3] == "close is nan"
    assert lines[4] == "close outside [low, high]"
    assert lines[5] == "non-positive open"
    assert lines[7].startswith("duplicate timestamp")
    assert lines[8].startswith("out of order")
    assert "seconds instead of milliseconds" in lines[9]
    assert result.gaps == 2


def test_import_needs_symbol_when_name_says_nothing(tmp_path: Path) -> None:
    """Without --symbol and an uninformative file name, import asks for the symbol."""
    path = tmp_path / "data.csv"
    path.write_text(f"{T0},1,1,1,1,1\n{T0 + 60_000},1,1,1,1,1\n")
    with pytest.raises(BadInput, match="--symbol"):
        import_plain_csv(path)
    assert import_plain_csv(path, symbol="ETH/USDT:USDT").timeframe == "1m"
