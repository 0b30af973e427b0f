"""`guard train` and `guard model show` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from guard.cli import main
from guard.domain import Bar, MarketKind, MarketSpec
from guard.feed.history import write_bars
from guard.markets import SpecRecord, spec_path, write_specs
from guard.model.artifact import load_model
from guard.model.synthetic import toy_bars
from tests.model.toy import TOY


def toy_spec(symbol: str, tick: str = "0.01") -> SpecRecord:
    """A market spec for a toy perpetual, as `guard history import --tick` would save it."""
    base, quote = symbol.split(":")[0].split("/")
    spec = MarketSpec(
        symbol=symbol,
        base=base,
        quote=quote,
        kind=MarketKind.LINEAR,
        tick_size=Decimal(tick),
        step_size=Decimal("0.001"),
        min_qty=Decimal("0.001"),
        min_notional=Decimal(5),
        maker_fee=Decimal("0.0002"),
        taker_fee=Decimal("0.0005"),
        max_leverage=Decimal(20),
    )
    return SpecRecord(spec=spec, source="tests", settle=quote)


@pytest.fixture
def history(tmp_path: Path) -> list[str]:
    """Two small history files in guard's format, each with its market spec saved beside it."""
    paths = []
    for i in range(2):
        path = tmp_path / f"toy{i}.csv"
        write_bars(path, toy_bars(f"T{i}/USDT:USDT", 3000, seed=i, **TOY))
        write_specs(spec_path(path), [toy_spec(f"T{i}/USDT:USDT")])
        paths.append(str(path))
    return paths


def test_cli_train_writes_a_loadable_model_and_show_prints_its_card(
    history: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], guard_home: Path
) -> None:
    """`guard train` writes an artifact whose card `guard model show` prints, with the command that made it."""
    out = tmp_path / "m"
    code = main(
        [
            "train",
            *history,
            "--out",
            str(out),
            "--epochs",
            "2",
            "--seed",
            "5",
            "--channels",
            "6",
            "--horizon-bars",
            "10",
            "--synthetic",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "training" in captured.err or "epoch" in captured.err  # the progress bar
    assert f"{out}: model m-" in captured.out
    model = load_model(out)
    config = model.info.config
    assert config["training"]["seed"] == 5
    assert [f["path"] for f in config["data_source"]["files"]] == history
    assert config["barrier"]["horizon_bars"] == 10
    assert main(["model", "show", str(out)]) == 0
    card = capsys.readouterr().out
    assert card.startswith("# Model card: m")
    assert "trained on synthetic data — a demonstration, not a trading edge." in card
    assert f"guard train {history[0]} {history[1]} --out {out} --epochs 2 --seed 5" in card


def test_cli_train_records_each_market_spec_and_the_card_shows_it(
    history: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], guard_home: Path
) -> None:
    """The spec beside each history (tick, quote, kind) is in the model's config and card, and printed."""
    out = tmp_path / "m"
    assert main(["train", *history, "--out", str(out), "--epochs", "1", "--channels", "4", "--horizon-bars", "10"]) == 0
    assert "market T0/USDT:USDT: linear perpetual settled in USDT, tick 0.01" in capsys.readouterr().err
    config = json.loads((out / "config.json").read_text())
    markets = {m["symbol"]: m for m in config["data_source"]["markets"]}
    assert set(markets) == {"T0/USDT:USDT", "T1/USDT:USDT"}
    assert (
        markets["T0/USDT:USDT"]["tick_size"],
        markets["T0/USDT:USDT"]["quote"],
        markets["T0/USDT:USDT"]["kind"],
    ) == ("0.01", "USDT", "linear")
    assert "- Market: T1/USDT:USDT: linear perpetual settled in USDT, tick 0.01" in (out / "README.md").read_text()


def test_cli_train_symbol_without_a_spec_is_refused_with_what_to_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], guard_home: Path
) -> None:
    """A symbol guard has no spec for is refused before training, naming --spec; with --spec it trains."""
    path = tmp_path / "x.csv"
    write_bars(path, toy_bars("X/USDT:USDT", 3000, seed=3, **TOY))
    out = tmp_path / "m"
    assert main(["train", str(path), "--out", str(out), "--epochs", "1", "--channels", "4"]) == 2
    err = capsys.readouterr().err
    assert "no market spec for X/USDT:USDT" in err and "--spec FILE" in err
    assert not out.exists()
    spec = write_specs(tmp_path / "x-spec.json", [toy_spec("X/USDT:USDT", tick="0.0001")])
    assert (
        main(
            [
                "train",
                str(path),
                "--out",
                str(out),
                "--epochs",
                "1",
                "--channels",
                "4",
                "--horizon-bars",
                "10",
                "--spec",
                str(spec),
            ]
        )
        == 0
    )
    config = json.loads((out / "config.json").read_text())
    assert config["data_source"]["markets"][0]["tick_size"] == "0.0001"
    assert f"--spec {spec}" in config["training"]["command"]


def test_cli_train_leaves_filled_bars_out(tmp_path: Path, capsys: pytest.CaptureFixture[str], guard_home: Path) -> None:
    """Bars filled flat by an import are not trained on: the run says so and the config counts them."""
    bars = toy_bars("T0/USDT:USDT", 3000, seed=0, **TOY)
    for i in range(1500, 1520):
        prev = bars[1499].close
        bars[i] = Bar(
            symbol=bars[i].symbol,
            timeframe="1m",
            open_time=bars[i].open_time,
            open=prev,
            high=prev,
            low=prev,
            close=prev,
            volume=0.0,
            complete=False,
        )
    path = tmp_path / "filled.csv"
    write_bars(path, bars)
    write_specs(spec_path(path), [toy_spec("T0/USDT:USDT")])
    out = tmp_path / "m"
    assert (
        main(["train", str(path), "--out", str(out), "--epochs", "1", "--channels", "4", "--horizon-bars", "10"]) == 0
    )
    assert "20 filled bars left out" in capsys.readouterr().err
    config = json.loads((out / "config.json").read_text())
    assert config["data_source"]["files"][0]["filled_dropped"] == 20
    assert "20 filled bars (gaps filled flat" in (out / "README.md").read_text()


def test_cli_model_show_refuses_a_damaged_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`guard model show` on a directory that is not a model exits 2 with the reason."""
    assert main(["model", "show", str(tmp_path)]) == 2
    assert "missing" in capsys.readouterr().err


def test_cli_train_unreadable_data_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing data file is bad input: exit code 2 and its name."""
    assert main(["train", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "m")]) == 2
    assert "nope.csv" in capsys.readouterr().err


def test_cli_import_does_not_load_torch() -> None:
    """Importing the CLI, features, proposals, tracker and health never imports torch."""
    code = (
        "import sys, guard, guard.cli, guard.features, guard.proposals.policy, guard.model.tracker, "
        "guard.model.health, guard.model.artifact; guard.cli.build_parser(); print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
