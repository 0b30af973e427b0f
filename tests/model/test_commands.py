"""`guard train` and `guard model show` from the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from guard.cli import main
from guard.feed.history import write_bars
from guard.model.artifact import load_model
from guard.model.synthetic import toy_bars
from tests.model.toy import TOY


@pytest.fixture
def history(tmp_path: Path) -> list[str]:
    """Two small history files in guard's format."""
    paths = []
    for i in range(2):
        path = tmp_path / f"toy{i}.csv"
        write_bars(path, toy_bars(f"T{i}/USDT:USDT", 3000, seed=i, **TOY))
        paths.append(str(path))
    return paths


def test_cli_train_writes_a_loadable_model_and_show_prints_its_card(
    history: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], guard_home: Path
) -> None:
    """`guard train` writes an artifact whose card `guard model show` prints, with the command that made it."""
    out = tmp_path / "m"
    code = main(["train", *history, "--out", str(out), "--epochs", "2", "--seed", "5", "--channels", "6",
                 "--horizon-bars", "10", "--synthetic"])
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
        "import sys, guard, guard.cli, guard.features, guard.proposals, guard.model.tracker, "
        "guard.model.health, guard.model.artifact; guard.cli.build_parser(); print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
