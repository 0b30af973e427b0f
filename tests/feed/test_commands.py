"""`guard history fetch|import` as a user runs them: real processes, real files, exit codes."""

from __future__ import annotations

import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest

from guard.cli import main
from guard.config import SimSection
from guard.feed.history import read_bars, write_bars
from guard.sim.process import generate_history
from guard.wording import utc_minute

CONFIG_SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT")
"""The default config's symbols: the embedded simulator's price process depends on them."""


def guard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "guard", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_history_fetch_sim_round_trips_served_bars(tmp_path: Path) -> None:
    """`guard history fetch --exchange sim` writes exactly the bars the simulator's process made."""
    out = tmp_path / "eth.csv"
    done = guard(
        "history",
        "fetch",
        "--exchange",
        "sim",
        "--symbol",
        "ETH/USDT:USDT",
        "--timeframe",
        "1m",
        "--since",
        "2020-01-01",
        "--limit",
        "1500",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "1500 new bars" in done.stdout
    fetched = read_bars(out)
    sim = SimSection()  # what the embedded simulator plays by default
    expected = generate_history(CONFIG_SYMBOLS, fetched[0].open_time, 1500, seed=sim.seed, scenario=sim.scenario)
    assert fetched == expected["ETH/USDT:USDT"]


def test_history_fetch_resumes_and_writes_parquet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A second fetch into the same file continues after its last bar; Parquet output works the same."""
    out = tmp_path / "btc.parquet"
    args = [
        "history",
        "fetch",
        "--exchange",
        "sim",
        "--symbol",
        "BTC/USDT:USDT",
        "--timeframe",
        "5m",
        "--since",
        "2020-01-01",
        "--out",
        str(out),
    ]
    assert main([*args, "--limit", "40"]) == 0
    first = read_bars(out)
    assert main([*args, "--limit", "100"]) == 0
    assert "(resumed)" in capsys.readouterr().out
    both = read_bars(out)
    assert both[:40] == first and len(both) == 100
    times = [b.open_time for b in both]
    assert all(b - a == 300_000 for a, b in pairwise(times))
    assert not (tmp_path / "btc.parquet.partial.csv").exists()


def test_history_fetch_says_why_it_holds_fewer_bars_than_asked(tmp_path: Path) -> None:
    """Asked for more bars than the venue has, the fetch writes what there is and says where the venue's
    history starts, on its own line after the progress bar."""
    (tmp_path / "config.toml").write_text("[sim]\nhistory_bars = 100\n")
    out = tmp_path / "btc.csv"
    done = guard(
        "history",
        "fetch",
        "--exchange",
        "sim",
        "--symbol",
        "BTC/USDT:USDT",
        "--timeframe",
        "1m",
        "--limit",
        "150",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    held = len(read_bars(out))
    assert 0 < held < 150  # 100 bars of history, and one more if a minute turned during the fetch
    first = utc_minute(read_bars(out)[0].open_time)
    assert f"{held} of the 150 bars asked for: sim has none before {first}" in done.stdout


def test_history_fetch_live_venue_offline_one_line_error(tmp_path: Path) -> None:
    """With no network, a live exchange id exits 1 with one clear line, not a traceback."""
    done = guard(
        "history",
        "fetch",
        "--exchange",
        "binanceusdm",
        "--symbol",
        "BTC/USDT:USDT",
        "--timeframe",
        "1m",
        "--limit",
        "10",
        "--out",
        str(tmp_path / "x.csv"),
        cwd=tmp_path,
    )
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip() and "%" not in line]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("guard: cannot reach binanceusdm") and "--exchange sim" in lines[0]
    assert "Traceback" not in done.stderr


def test_history_fetch_unknown_exchange_and_bad_since(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown exchange id exits 1 and a bad --since exits 2, each with a clear message."""
    out = str(tmp_path / "x.csv")
    assert main(["history", "fetch", "--exchange", "nope", "--symbol", "A/B", "--timeframe", "1m", "--out", out]) == 1
    assert "not a ccxt exchange id" in capsys.readouterr().err
    assert (
        main(
            [
                "history",
                "fetch",
                "--exchange",
                "sim",
                "--symbol",
                "BTC/USDT:USDT",
                "--timeframe",
                "1m",
                "--since",
                "yesterday",
                "--out",
                out,
            ]
        )
        == 2
    )
    assert "--since 'yesterday'" in capsys.readouterr().err


def test_history_import_bad_rows_exit_2_with_line_numbers(tmp_path: Path) -> None:
    """`guard history import` lists bad rows by line and exits 2, writing nothing."""
    src = tmp_path / "SOLUSDT-1m.csv"
    src.write_text("1767225600000,10,11,9,10,1\n1767225660000,10,11,9,NaN,1\n1767225720000,10,8,9,10,1\n")
    out = tmp_path / "sol.csv"
    done = guard("history", "import", str(src), "--out", str(out), cwd=tmp_path)
    assert done.returncode == 2
    assert "line 2: close is nan" in done.stderr and "line 3: high < low" in done.stderr
    assert "2 bad rows; nothing written" in done.stderr
    assert not out.exists()


def test_history_import_writes_guard_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A clean plain CSV imports into guard's format; --skip-bad keeps the good rows of a dirty one."""
    bars = generate_history(("SOL/USDT:USDT",), 1_767_225_600_000, 30)["SOL/USDT:USDT"]
    src = tmp_path / "plain.csv"
    src.write_text("".join(f"{b.open_time},{b.open},{b.high},{b.low},{b.close},{b.volume}\n" for b in bars) + "x,1\n")
    out = tmp_path / "sol.parquet"
    assert main(["history", "import", str(src), "--out", str(out), "--symbol", "SOL/USDT:USDT", "--skip-bad"]) == 0
    assert read_bars(out) == bars
    assert "1 bad row skipped" in capsys.readouterr().out
    write_bars(tmp_path / "again.csv", read_bars(out))
    assert read_bars(tmp_path / "again.csv") == bars
