"""`guard history fetch|import|resample` as a person runs them, and the progress bar fetch draws."""

from __future__ import annotations

import io
import math
from decimal import Decimal
from pathlib import Path

import backtesting
import pytest

from guard.cli import main
from guard.cli.history import ProgressBar
from guard.domain import MarketKind
from guard.feed.history import read_bars
from guard.markets import read_specs, spec_path
from tests.feed.files import walk_rows, write_csv


def test_a_progress_bar_left_short_ends_its_line_on_close() -> None:
    """On a terminal, a bar that never reached 100 % (the venue had fewer bars, or the fetch failed) is ended
    by close(), so the next output starts a line instead of running on from the bar."""
    terminal = _Terminal()
    bar = ProgressBar(terminal, "sim BTC/USDT:USDT 1m")
    bar(50, 150)
    bar.close()
    assert terminal.getvalue().endswith("50/150 bars\n")
    finished = _Terminal()
    bar = ProgressBar(finished, "sim BTC/USDT:USDT 1m")
    bar(150, 150)
    bar.close()
    assert finished.getvalue() == "\rsim BTC/USDT:USDT 1m [" + "#" * 30 + "] 100% 150/150 bars\n"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


# --- import, resample and fetch as a person runs them -------------------------------------------------


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["history", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_import_prints_what_it_did_and_writes_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An import says rows read, how timestamps and the symbol were read, every guess, and where the spec went."""
    rows = walk_rows(300, 0.002, 8, step_ms=300_000)
    src = write_csv(tmp_path / "TKN_BTC-5m.csv", rows, stamp=lambda ms: str(ms // 1000))
    out = tmp_path / "tkn.parquet"
    code, stdout, _ = _run(capsys, "import", str(src), "--out", str(out))
    assert code == 0
    assert "300 rows read" in stdout and "seconds since 1970" in stdout
    assert "symbol TKN/BTC read from the file name" in stdout
    assert "guessed: tick 0.00000001 guessed from the prices' decimals" in stdout
    assert f"spec: {out}.spec.json" in stdout and "300 TKN/BTC 5m bars" in stdout
    assert read_specs(spec_path(out))["TKN/BTC"].spec.tick_size == Decimal("0.00000001")
    assert len(read_bars(out)) == 300


def test_import_100x_wick_refused_then_dropped_with_skip_bad(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 100x high is refused (exit 2) with its line named and nothing written; --skip-bad drops and counts it."""
    rows = walk_rows(200, 0.5, 4)
    t, o, h, lo, c, v = rows[49]
    rows[49] = (t, o, f"{float(h) * 100:.4f}", lo, c, v)
    src = write_csv(tmp_path / "XRP_USDT_USDT-1m-futures.csv", rows)
    out = tmp_path / "xrp.csv"
    code, _, stderr = _run(capsys, "import", str(src), "--out", str(out))
    assert code == 2 and "line 51: bad tick?" in stderr and "1 bad tick; nothing written" in stderr
    assert not out.exists() and not spec_path(out).exists()
    code, stdout, _ = _run(capsys, "import", str(src), "--out", str(out), "--skip-bad", "--fill-gaps")
    assert code == 0 and "199 XRP/USDT:USDT 1m bars, 1 bad tick skipped, 1 gap filled with 1 flat bar" in stdout
    bars = read_bars(out)
    assert len(bars) == 200 and [b.complete for b in bars].count(False) == 1
    assert max(b.high for b in bars) < 1.0


def test_import_bad_tick_factor_keeps_a_real_spike(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A person who knows the spike was real keeps it with --bad-tick-factor 0 (the check off); a bad --tick is
    refused."""
    rows = walk_rows(100, 0.5, 4)
    t, o, h, lo, c, v = rows[30]
    rows[30] = (t, o, f"{float(h) * 1.5:.4f}", lo, c, v)
    src = write_csv(tmp_path / "XRPUSDT-1m.csv", rows)
    code, _, _ = _run(capsys, "import", str(src), "--out", str(tmp_path / "x.csv"), "--bad-tick-factor", "0")
    assert code == 0 and len(read_bars(tmp_path / "x.csv")) == 100
    code, _, stderr = _run(capsys, "import", str(src), "--out", str(tmp_path / "y.csv"), "--tick", "-1")
    assert code == 2 and "--tick -1: must be a positive number" in stderr


def test_resample_cli_aggregates_and_carries_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`guard history resample` writes 5m bars from 1m bars, copies the spec file, and says what it dropped."""
    src = write_csv(tmp_path / "ETHUSDT-1m.csv", walk_rows(23, 3_500.0, 2))
    imported = tmp_path / "eth.csv"
    assert _run(capsys, "import", str(src), "--out", str(imported))[0] == 0
    out = tmp_path / "eth5.csv"
    code, stdout, _ = _run(capsys, "resample", str(imported), "--to", "5m", "--out", str(out))
    assert code == 0 and "4 5m bars" in stdout
    assert "1 partial bucket dropped" in stdout and "3 of 5 source bars" in stdout
    assert [b.timeframe for b in read_bars(out)] == ["5m"] * 4
    assert read_specs(spec_path(out)) == read_specs(spec_path(imported))
    code, _, stderr = _run(capsys, "resample", str(out), "--to", "1m", "--out", str(tmp_path / "back.csv"))
    assert code == 2 and "finer than the source's 5m bars" in stderr


def test_fetch_saves_venue_spec_beside_bars(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`guard history fetch --exchange sim` saves the simulated venue's spec for the symbol beside the bars."""
    out = tmp_path / "btc.csv"
    code, stdout, _ = _run(
        capsys,
        "fetch",
        "--exchange",
        "sim",
        "--symbol",
        "BTC/USDT:USDT",
        "--timeframe",
        "5m",
        "--limit",
        "20",
        "--out",
        str(out),
    )
    assert code == 0 and f"spec: {out}.spec.json" in stdout
    record = read_specs(spec_path(out))["BTC/USDT:USDT"]
    assert record.source.startswith("sim via ccxt") and record.guesses == ()
    assert (record.spec.tick_size, record.spec.min_notional, record.spec.max_leverage) == (
        Decimal("0.1"),
        Decimal(100),
        Decimal(125),
    )


# --- backtesting.py's real series ---------------------------------------------------------------------


def _real(name: str) -> Path:
    return Path(backtesting.__file__).parent / "test" / name


def test_real_btcusd_monthly_import_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """backtesting.py's BTCUSD.csv (monthly, 2012-2024, ISO dates, pandas index header): refused as monthly; read as
    daily bars it imports every row, finds no bad tick in 2013's or 2017's real bubbles, guesses tick 0.01, and says
    so; its gaps fill to one bar a day."""
    code, _, stderr = _run(capsys, "import", str(_real("BTCUSD.csv")), "--out", str(tmp_path / "m.csv"))
    assert code == 2 and "calendar month apart" in stderr
    out = tmp_path / "btcusd.csv"
    code, stdout, _ = _run(capsys, "import", str(_real("BTCUSD.csv")), "--out", str(out), "--timeframe", "1d")
    assert code == 0, stdout
    assert "156 rows read" in stdout and "ISO-8601" in stdout and "read as UTC" in stdout
    assert "156 BTC/USD 1d bars, 155 gaps" in stdout and "bad" not in stdout
    record = read_specs(spec_path(out))["BTC/USD"]
    assert record.spec.kind is MarketKind.SPOT and record.spec.tick_size == Decimal("0.01")
    assert any("tick 0.01 guessed" in g for g in record.guesses)
    bars = read_bars(out)
    assert bars[0].open_time == 1_327_968_000_000 and bars[-1].close == 93_381.0  # 2012-01-31, 2024-12-31
    filled = tmp_path / "filled.parquet"
    args = ("import", str(_real("BTCUSD.csv")), "--out", str(filled), "--timeframe", "1d", "--fill-gaps")
    assert _run(capsys, *args)[0] == 0
    days = read_bars(filled)
    assert len(days) == (bars[-1].open_time - bars[0].open_time) // 86_400_000 + 1
    assert sum(b.complete for b in days) == 156


def test_real_eurusd_hourly_import_and_resample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """backtesting.py's EURUSD.csv (hourly, 5,000 rows) imports with no bad tick and tick 0.00001; resampled to 4h
    every complete bucket is the exact aggregate of its four hours."""
    out = tmp_path / "eur.csv"
    code, stdout, _ = _run(capsys, "import", str(_real("EURUSD.csv")), "--out", str(out))
    assert code == 0 and "5000 EUR/USD 1h bars" in stdout and "bad" not in stdout
    assert read_specs(spec_path(out))["EUR/USD"].spec.tick_size == Decimal("0.00001")
    hours = read_bars(out)
    four = tmp_path / "eur4h.csv"
    assert _run(capsys, "resample", str(out), "--to", "4h", "--out", str(four))[0] == 0
    by_time = {b.open_time: b for b in hours}
    resampled = read_bars(four)
    assert len(resampled) > 1_000
    for bar in resampled:
        group = [by_time[bar.open_time + k * 3_600_000] for k in range(4)]
        assert (bar.open, bar.close) == (group[0].open, group[-1].close)
        assert (bar.high, bar.low) == (max(b.high for b in group), min(b.low for b in group))
        assert bar.volume == math.fsum(b.volume for b in group)
