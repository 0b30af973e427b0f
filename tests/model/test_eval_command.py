"""`guard model eval` from the command line: figures printed and in JSON, files written, bad input named."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from guard.cli import main
from guard.domain import Bar
from guard.feed.history import write_bars
from guard.model.synthetic import toy_bars
from tests.model.toy import TOY, Trained


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """A toy market the session's model has never seen."""
    path = tmp_path / "held-out.parquet"
    write_bars(path, toy_bars("E/USDT:USDT", 3000, seed=41, **TOY))
    return path


def test_cli_model_eval_prints_figures_and_writes_files(
    trained: Trained, history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], guard_home: Path
) -> None:
    """The summary names both ECEs, Brier baselines, break-even and novelty vs volatility; --out writes three files."""
    out = tmp_path / "eval"
    assert main(["model", "eval", str(history), "--model", str(trained.path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for phrase in (
        "ECE of directional calls",
        "all three outcomes",
        "predicting the training frequencies",
        "break-even after 12 bps round trip",
        "novelty AUROC",
        "against 60-bar volatility",
        "most volatile stretch",
    ):
        assert phrase in text
    report = json.loads((out / "report.json").read_text())
    table = pq.read_table(out / "bars.parquet")
    assert table.num_rows == report["metrics"]["scored"] == 3000 - 123
    assert {"p_down", "p_flat", "p_up", "novelty", "label", "in_regime"} <= set(table.column_names)
    assert (out / "reliability.png").read_bytes().startswith(b"\x89PNG")


def test_cli_model_eval_json_with_a_dated_regime(
    trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str], guard_home: Path
) -> None:
    """A regime given by dates is used as given, and a market 5x louder there is flagged above volatility's chance."""
    calm = toy_bars("R/USDT:USDT", 2000, seed=43, **TOY)
    loud = toy_bars(
        "R/USDT:USDT", 400, seed=44, vol_factor=5.0, start_ms=calm[-1].open_time + 60_000, price=calm[-1].close, **TOY
    )
    path = tmp_path / "shift.csv"
    write_bars(path, [*calm, *loud])
    start = "2026-01-02T09:20"  # bar 2000 of a 1m history opening 2026-01-01 00:00
    assert calm[-1].open_time + 60_000 == 1_767_225_600_000 + 2000 * 60_000
    code = main(
        [
            "model",
            "eval",
            str(path),
            "--model",
            str(trained.path),
            "--json",
            "--regime-start",
            start,
            "--regime-end",
            "2026-01-02",
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    n = data["metrics"]["novelty"]
    assert n["regimes"][0]["how"].startswith("given")
    assert n["regime_windows"] > 300 and n["novelty_auroc"] > 0.9
    assert isinstance(data["metrics"]["ece"], float) and "ece_directional" in data["metrics"]


def test_cli_model_eval_never_scores_filled_bars(
    trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str], guard_home: Path
) -> None:
    """Filled bars are left out of an evaluation: no window reaches across them, and a warning counts them."""
    bars = toy_bars("E/USDT:USDT", 3000, seed=41, **TOY)
    for i in range(1000, 1010):
        prev = bars[999].close
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
    out = tmp_path / "eval"
    assert main(["model", "eval", str(path), "--model", str(trained.path), "--json", "--out", str(out)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["metrics"]["bars"] == 3000 - 10
    assert data["metrics"]["scored"] == 3000 - 10 - 2 * 123  # warm-up after the start and after the gap
    assert any("10 filled bars left out" in w for w in data["warnings"])
    scored = pq.read_table(out / "bars.parquet").column("open_time").to_pylist()
    first_real_after = bars[1010].open_time
    assert min(t for t in scored if t > bars[999].open_time) == first_real_after + 123 * 60_000


def test_cli_model_eval_names_gaps_as_the_cause(
    trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str], guard_home: Path
) -> None:
    """History whose gaps leave no 124-bar run is refused with the gaps named, exit 2."""
    bars = toy_bars("G/USDT:USDT", 1000, seed=5)
    gapped = [
        Bar(b.symbol, b.timeframe, b.open_time + (i // 100) * 3_600_000, b.open, b.high, b.low, b.close, b.volume)
        for i, b in enumerate(bars)
    ]
    path = tmp_path / "gapped.csv"
    write_bars(path, gapped)
    assert main(["model", "eval", str(path), "--model", str(trained.path)]) == 2
    err = capsys.readouterr().err
    assert "9 gaps split its 1,000 bars into runs of at most 100 contiguous bars" in err
    assert "needs 124 contiguous bars" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--regime-start", "2026-01-02"], "go together"),
        (["--regime-start", "2026-01-03", "--regime-end", "2026-01-02"], "is before"),
        (["--regime-start", "yesterday", "--regime-end", "2026-01-02"], "expected a date"),
        (["--cost-bps", "-3"], "between 0 and 1000"),
    ],
)
def test_cli_model_eval_bad_options_exit_2(
    trained: Trained,
    history: Path,
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    guard_home: Path,
) -> None:
    """Half a regime, a regime ending before it starts, an unreadable date or a negative cost: exit 2, said why."""
    assert main(["model", "eval", str(history), "--model", str(trained.path), *args]) == 2
    assert message in capsys.readouterr().err


def test_cli_model_eval_refuses_a_model_with_the_old_novelty(
    trained: Trained, history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], guard_home: Path
) -> None:
    """A model whose novelty was fitted by an older method is refused with 'retrain', not misread."""
    import hashlib
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(trained.path, copy)
    config = json.loads((copy / "config.json").read_text())
    config["novelty"]["method"] = "embedding distance and disagreement"
    (copy / "config.json").write_text(json.dumps(config))
    sums = "".join(
        f"{hashlib.sha256((copy / n).read_bytes()).hexdigest()}  {n}\n"
        for n in ("weights.pt", "config.json", "README.md")
    )
    (copy / "sha256").write_text(sums)
    assert main(["model", "eval", str(history), "--model", str(copy)]) == 2
    assert "retrain the model with this version" in capsys.readouterr().err


def test_cli_model_eval_prefers_out_of_sample_ordinary_windows(
    trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str], guard_home: Path
) -> None:
    """Ordinary windows inside the model's own training data are left out when others exist."""
    series = trained.series[0]
    start = int(series.close_times[-1])  # the first bar after the training data
    later = toy_bars(series.symbol, 1500, seed=99, start_ms=start, price=float(series.closes[-1]), **TOY)
    earlier = toy_bars(series.symbol, 600, seed=98, start_ms=start - 10 * 86_400_000, **TOY)
    path = tmp_path / "both.csv"
    write_bars(path, [*earlier, *later])
    assert (
        main(
            [
                "model",
                "eval",
                str(path),
                "--model",
                str(trained.path),
                "--json",
                "--regime-start",
                str(later[1000].open_time),
                "--regime-end",
                str(later[-1].open_time),
            ]
        )
        == 0
    )
    m = json.loads(capsys.readouterr().out)["metrics"]
    assert m["novelty"]["ordinary_kind"] == "outside the model's training data"


def test_cli_model_eval_unwritable_out_is_bad_input(
    trained: Trained, history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], guard_home: Path
) -> None:
    """An --out that is a file, not a directory, is refused with its name, exit 2 (no traceback)."""
    blocker = tmp_path / "taken"
    blocker.write_text("a file")
    assert main(["model", "eval", str(history), "--model", str(trained.path), "--out", str(blocker)]) == 2
    assert "cannot write there" in capsys.readouterr().err


def test_cli_model_eval_leaves_out_a_series_without_windows(
    trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str], guard_home: Path
) -> None:
    """A symbol too short for a window is left out with a warning; the others are still measured."""
    path = tmp_path / "two.csv"
    write_bars(path, [*toy_bars("A/USDT:USDT", 1500, seed=61, **TOY), *toy_bars("B/USDT:USDT", 100, seed=62)])
    assert main(["model", "eval", str(path), "--model", str(trained.path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["metrics"]["scored"] == 1500 - 123
    assert any(w.startswith("B/USDT:USDT: no window to score") and w.endswith("left out") for w in data["warnings"])
