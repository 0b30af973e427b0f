"""Build the default model, `models/default/`, from guard's simulated exchange — reproducibly.

    python -m guard.model.default [--out models/default] [--data data/default] [--end 2026-11-23]

Writes 30 days of 1-minute bars for BTC, ETH and SOL from the simulator (`guard.sim.process`),
twice (two seeds) in each of two scenarios — "calm" and "trend" — as history files under
`--data`, then trains on them exactly as `guard train` would, and adds one more held-out check: novelty
on the simulator's own "regime-shift" scenario (volatility ×5 for an hour). The same command
on the same code gives the same files, weights and checksums.

It is a demonstration: the data is synthetic and its card says so.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from guard import logs
from guard.model.build import TrainRequest, run_training

SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT")
SCENARIOS = (("calm", 7), ("calm", 17), ("trend", 8), ("trend", 18))
"""(scenario, seed) of each training set: two independent markets per scenario, so the
validation and test periods hold enough independent episodes to calibrate on."""
DAYS = 30
DEFAULT_END = "2026-11-23"
SHIFT_SEED = 9
SHIFT_BARS = 1440
"""Bars of the held-out regime-shift history; the shift starts at its middle bar."""
SHIFT_MIN_BARS = 15
"""A window counts as shifted once at least this many of its bars are in the shifted hour."""


def _end_ms(date: str) -> int:
    try:
        day = datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise SystemExit(f"--end {date!r}: expected YYYY-MM-DD") from None
    return int(day.timestamp() * 1000)


def note() -> str:
    """What there is to learn in the simulator's data, for the card."""
    from guard.sim import process

    # the simulator's own parameters, read rather than copied so the card follows them
    drift = getattr(process, "_TREND_DRIFT_SIGMAS", None)
    flip = getattr(process, "_P_TREND_FLIP", None)
    trend = (
        f"a drift of {drift:g} σ per bar whose direction flips about every {1 / flip / 60:g} hours"
        if drift and flip
        else "a persistent drift"
    )
    return (
        f'The simulator\'s "trend" scenario adds {trend}: that is the only direction there is to learn. '
        'The "calm" scenario has none; there, any call on direction is a guess.'
    )


def write_data(data_dir: Path, end_ms: int) -> list[str]:
    """Generate and write the training history files; return their paths."""
    from guard.feed.history import write_bars
    from guard.sim.process import generate_history

    bars = DAYS * 1440
    start_ms = end_ms - bars * 60_000
    data_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for scenario, seed in SCENARIOS:
        history = generate_history(SYMBOLS, start_ms, bars, "1m", seed=seed, scenario=scenario)
        for symbol, symbol_bars in history.items():
            path = data_dir / f"{symbol.split('/')[0]}-{scenario}-{seed}.parquet"
            write_bars(path, symbol_bars)
            paths.append(str(path))
    return paths


def scenario_breakdown(files: list[str]) -> Any:
    """A metric hook: test-split accuracy against the base rate, per simulator scenario."""

    def metric(result: Any) -> dict[str, Any]:
        from guard.features import build_series
        from guard.feed.history import read_bars
        from guard.model.calibration import ensemble_probs
        from guard.model.inference import forward_series
        from guard.model.labels import UNKNOWN, triple_barrier_labels

        test_start = result.splits["test"]["start_ms"]
        counts: dict[str, list[Any]] = {}
        for path in files:
            scenario = Path(path).stem.split("-")[1]
            series = build_series(read_bars(path))
            labels = triple_barrier_labels(
                series.highs, series.lows, series.closes, series.sigma, series.segment_starts, result.params.barrier
            )
            mask = series.ready & (labels != UNKNOWN) & (series.close_times >= test_start)
            logits, _ = forward_series(result.net, series.rows)
            predicted = ensemble_probs(logits[mask], result.temperature).argmax(axis=1)
            truth = labels[mask].astype(np.int64)
            entry = counts.setdefault(scenario, [0, 0, np.zeros(3)])
            entry[0] += int(mask.sum())
            entry[1] += int((predicted == truth).sum())
            entry[2] += np.bincount(truth, minlength=3)
        return {
            "by_group": {
                f'"{name}" scenario': {
                    "windows": n,
                    "accuracy": round(hits / n, 4),
                    "base_rate": round(float(shares.max() / n), 4),
                }
                for name, (n, hits, shares) in counts.items()
            }
        }

    return metric


def regime_shift_auroc(end_ms: int) -> Any:
    """A metric hook: novelty AUROC between the simulator's calm and regime-shifted windows."""

    def metric(result: Any) -> dict[str, float]:
        from guard.features import build_series
        from guard.model.calibration import auroc
        from guard.model.inference import NoveltyReference, forward_series, outputs
        from guard.sim.process import generate_history

        history = generate_history(SYMBOLS, end_ms, SHIFT_BARS, "1m", seed=SHIFT_SEED, scenario="regime-shift")
        onset = SHIFT_BARS // 2
        ref = NoveltyReference.of(result.net)
        calm, shifted = [], []
        for bars in history.values():
            series = build_series(bars)
            logits, _ = forward_series(result.net, series.rows)
            novelty = outputs(logits, ref.series(series), result.temperature, ref).novelty
            idx = np.arange(len(series))
            before = series.ready & (idx < onset)
            during = series.ready & (idx >= onset + SHIFT_MIN_BARS - 1) & (idx < onset + 60)
            calm.append(novelty[before])
            shifted.append(novelty[during])
        return {"novelty_auroc_simulator_regime_shift": round(auroc(np.concatenate(calm), np.concatenate(shifted)), 4)}

    return metric


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m guard.model.default", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="models/default", help="model directory (default models/default)")
    parser.add_argument("--data", default="data/default", help="where the history files go")
    parser.add_argument("--end", default=DEFAULT_END, help="last day of data, exclusive (YYYY-MM-DD)")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    logs.configure(level="warning")
    started = time.monotonic()
    end_ms = _end_ms(args.end)
    print(f"writing {DAYS} days of simulated 1m bars to {args.data}/ ...", file=sys.stderr)
    files = write_data(Path(args.data), end_ms)
    request = TrainRequest(
        data=tuple(files),
        out=args.out,
        epochs=args.epochs,
        seed=args.seed,
        name="default",
        source=(
            f"the guard simulator (guard.sim.process): {', '.join(SYMBOLS)}, {DAYS} days of 1m bars to {args.end}, "
            "scenarios " + ", ".join(f"{s} seed {seed}" for s, seed in SCENARIOS)
        ),
        synthetic=True,
        threads=1,
    )
    own = ["python", "-m", "guard.model.default", "--out", args.out, "--data", args.data]
    if args.end != DEFAULT_END:
        own += ["--end", args.end]
    if args.epochs != 60:
        own += ["--epochs", str(args.epochs)]
    if args.seed != 7:
        own += ["--seed", str(args.seed)]
    command = (
        " ".join(own) + "\n"
        f"# writes the simulator's history to {args.data}/ and then runs (this line alone gives the same weights):\n"
        + request.command()
    )
    breakdown, shift = scenario_breakdown(files), regime_shift_auroc(end_ms)
    info = run_training(
        request,
        stream=sys.stderr,
        extra_metrics=lambda result: {**breakdown(result), **shift(result)},
        command=command,
        source_note=note(),
    )
    m = info.config["metrics"]
    print(f"{info.path}: model {info.model_id}")
    print(
        f"  test: accuracy {m['accuracy']:.3f} (base rate {m['base_rate']:.3f}), Brier {m['brier']:.4f} "
        f"(baseline {m['brier_baseline']:.4f}), ECE {m['ece']:.4f}, novelty AUROC {m['novelty_auroc']:.3f} "
        f"(simulator regime shift {m['novelty_auroc_simulator_regime_shift']:.3f}), "
        f"built in {time.monotonic() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
