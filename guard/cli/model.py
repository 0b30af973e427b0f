"""`guard train`, `guard model show` and `guard model eval`: train a model on history files, read its card, and
measure it on any history."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from guard import logs
from guard.config import load_config
from guard.errors import BadInput
from guard.model.build import DEFAULT_EPOCHS, DEFAULT_SEED, TrainRequest, run_training  # torch when it trains


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `guard train` and `guard model show`."""
    train_cmd = sub.add_parser("train", help="train a model on history files and write its artifact and card")
    train_cmd.add_argument("data", nargs="+", metavar="DATA", help="history files (CSV or Parquet, guard's format)")
    train_cmd.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
    train_cmd.add_argument(
        "--epochs", type=int, default=DEFAULT_EPOCHS, metavar="N", help="most epochs (early stopping)"
    )
    train_cmd.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, metavar="N", help="random seed: same data and seed, same model"
    )
    train_cmd.add_argument("--name", default="", help="model name (default: the directory's name)")
    train_cmd.add_argument("--horizon-bars", type=int, default=30, metavar="H", help="label horizon in bars")
    train_cmd.add_argument("--barrier-k", type=float, default=1.0, metavar="K", help="barriers at ±K·σ·√H")
    train_cmd.add_argument("--members", type=int, default=3, metavar="N", help="ensemble members (at least 3)")
    train_cmd.add_argument("--channels", type=int, default=24, metavar="N", help="hidden channels per member")
    train_cmd.add_argument("--threads", type=int, default=2, metavar="N", help="torch threads while training")
    train_cmd.add_argument("--source", default="", metavar="TEXT", help="where the data came from, for the card")
    train_cmd.add_argument("--synthetic", action="store_true", help="the data is simulated: the card says so")
    train_cmd.add_argument(
        "--spec",
        action="append",
        default=[],
        metavar="FILE",
        help="market spec file (guard.market-specs/1) for symbols with none saved beside their history; repeatable",
    )
    train_cmd.set_defaults(handler=train)
    model = sub.add_parser("model", help="inspect a trained model")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    show = model_sub.add_parser("show", help="verify a model directory and print its card")
    show.add_argument("dir", metavar="DIR")
    show.set_defaults(handler=model_show)
    mev = model_sub.add_parser(
        "eval",
        help="measure a model on any history: calibration, hit rates, novelty against volatility",
        description="ECE (all outcomes and directional calls), Brier against base rates, hit rates against the "
        "break-even after costs, and novelty AUROC for a regime window against 60-bar volatility.",
    )
    mev.add_argument("data", nargs="+", metavar="DATA", help="history files (CSV or Parquet, guard's format)")
    mev.add_argument("--model", default=None, metavar="DIR", help="model directory (default: model.path)")
    mev.add_argument(
        "--regime-start",
        default=None,
        metavar="DATE",
        help="first day (UTC) of the regime novelty should flag (default: each series' most volatile stretch)",
    )
    mev.add_argument("--regime-end", default=None, metavar="DATE", help="last day (UTC) of that regime")
    mev.add_argument(
        "--cost-bps",
        type=float,
        default=None,
        metavar="BPS",
        help="round-trip cost for the break-even hit rate (default: 2 x (paper taker fee + slippage))",
    )
    mev.add_argument("--json", action="store_true", help="print the figures as JSON")
    mev.add_argument("--out", default=None, metavar="DIR", help="write report.json, bars.parquet, reliability.png")
    mev.set_defaults(handler=model_eval)


def train(args: argparse.Namespace) -> int:
    """guard train DATA... --out DIR [--epochs N] [--seed N] [...]."""
    config = load_config(args.config)
    logs.configure(level="warning", fmt=config.log.format)
    request = TrainRequest(
        data=tuple(args.data),
        out=args.out,
        epochs=args.epochs,
        seed=args.seed,
        name=args.name,
        horizon_bars=args.horizon_bars,
        barrier_k=args.barrier_k,
        members=args.members,
        channels=args.channels,
        threads=args.threads,
        source=args.source,
        synthetic=args.synthetic,
        spec=tuple(args.spec),
    )
    info = run_training(
        request,
        stream=sys.stderr,
        novelty_threshold=config.model.novelty_threshold,
        cost_bps=2 * (config.paper.taker_fee_bps + config.paper.slippage_bps),
    )
    metrics = info.config["metrics"]
    print(f"{info.path}: model {info.model_id}")
    print(
        f"  test: accuracy {metrics['accuracy']:.3f} (base rate {metrics['base_rate']:.3f}), "
        f"Brier {metrics['brier']:.4f} (baseline {metrics['brier_baseline']:.4f}), ECE of directional calls "
        + ("– (no side named)" if metrics.get("ece_directional") is None else f"{metrics['ece_directional']:.4f}")
        + f" (all outcomes {metrics['ece']:.4f}), novelty AUROC {metrics['novelty_auroc']:.3f} (volatility ×5)"
    )
    print(f"  read its card: guard model show {info.path}")
    return 0


def model_show(args: argparse.Namespace) -> int:
    """guard model show DIR: verify the artifact's checksums and print its card."""
    from guard.model.artifact import verify_artifact

    info = verify_artifact(args.dir)
    sys.stdout.write(info.card if info.card.endswith("\n") else info.card + "\n")
    print(f"\n(model id {info.model_id}; sha256 of the checksum file {info.model_hash})")
    return 0


def _parse_time(text: str, option: str, end: bool) -> int:
    """A UTC date (a whole day; the end of it when `end`), an ISO date-time, or milliseconds."""
    from datetime import UTC, datetime

    value = text.strip()
    if value.isdigit():
        return int(value)
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        raise BadInput(
            f"{option} {text!r}: expected a date (2018-01-24), a UTC date-time (2018-01-24T09:00) "
            "or milliseconds since the epoch"
        ) from None
    stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
    ms = int(stamp.timestamp() * 1000)
    return ms + 86_400_000 - 1 if end and len(value) == 10 else ms


class EvalProgress:
    """Progress of a long evaluation on stderr: one updating line on a terminal, a line per series otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last = 0.0

    def note(self, text: str) -> None:
        self._stream.write(("\r" if self._tty else "") + text + ("   " if self._tty else "\n"))
        self._stream.flush()

    def __call__(self, symbol: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and (not self._tty or now - self._last < 0.1):
            return
        self._last = now
        self.note(f"scoring {symbol}: {done / max(total, 1):.0%} ({done:,} of {total:,} bars)")

    def done(self) -> None:
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()


def model_eval(args: argparse.Namespace) -> int:
    """guard model eval DATA... [--model DIR] [--json] [--out DIR]: the model's honesty figures on this data."""
    import json

    from guard.model.artifact import load_model
    from guard.model.assessment import assess, write_assessment
    from guard.model.data import read_history
    from guard.model.evaluation import RegimeWindow

    config = load_config(args.config)
    logs.configure(level="warning", fmt=config.log.format)
    if (args.regime_start is None) != (args.regime_end is None):
        raise BadInput("--regime-start and --regime-end go together")
    regime = None
    if args.regime_start is not None:
        start = _parse_time(args.regime_start, "--regime-start", end=False)
        end = _parse_time(args.regime_end, "--regime-end", end=True)
        if end < start:
            raise BadInput(f"--regime-end {args.regime_end} is before --regime-start {args.regime_start}")
        regime = RegimeWindow(start, end, f"given: {args.regime_start} to {args.regime_end}")
    cost_bps = (
        args.cost_bps if args.cost_bps is not None else 2 * (config.paper.taker_fee_bps + config.paper.slippage_bps)
    )
    if not 0 <= cost_bps <= 1000:
        raise BadInput(f"--cost-bps {cost_bps}: must be between 0 and 1000")
    model = load_model(args.model or config.model.path)
    progress = EvalProgress(sys.stderr)
    progress.note(f"reading {', '.join(args.data)} ...")
    history = read_history(args.data)  # filled bars left out: each is a gap, never a quiet bar to score
    threshold = config.model.novelty_threshold
    result = assess(
        model,
        history.series,
        regime=regime,
        cost=cost_bps / 1e4,
        novelty_threshold=threshold,
        on_progress=progress,
        notes=history.notes(),
    )
    progress.done()
    try:
        written = write_assessment(result, args.out) if args.out else []
    except OSError as e:
        raise BadInput(f"--out {args.out}: cannot write there: {e}") from e
    if args.json:
        print(
            json.dumps(
                {"metrics": result.metrics, "warnings": list(result.warnings), "files": [str(p) for p in written]},
                indent=2,
            )
        )
        return 0
    print(render_assessment(result.metrics, result.warnings))
    for path in written:
        print(f"  wrote {path}")
    return 0


def render_assessment(m: dict[str, Any], warnings: tuple[str, ...] | list[str]) -> str:
    """The terminal summary of `guard model eval`."""
    from guard.wording import utc_minute

    def pct(x: float | None) -> str:
        return "–" if x is None else f"{100 * x:.1f} %"

    d, n = m["directional"], m["novelty"]
    ece_dir = "– (no directional calls)" if m["ece_directional"] is None else f"{m['ece_directional']:.4f}"
    lines = [
        f"model {m['model_id']}: {m['scored']:,} of {m['bars']:,} bars scored ({pct(m['scored_share'])}), "
        f"{m['windows']:,} with a known outcome {m['horizon_bars']} bars later",
        f"  ECE of directional calls {ece_dir}; all three outcomes {m['ece']:.4f}",
        f"  Brier {m['brier']:.4f}: {m['brier_baseline']:.4f} predicting the {m['label_share_baseline']} frequencies, "
        f"{m['brier_base_rate']:.4f} predicting this data's own (lower is better)",
        f"  accuracy {pct(m['accuracy'])} against a base rate of {pct(m['base_rate'])}; outcomes "
        + ", ".join(f"{k} {pct(v)}" for k, v in m["label_share"].items()),
        f"  directional calls: {d['count']:,} ({pct(d['share'])} of windows), came true {pct(d['hit_rate'])}; "
        f"of the {d['decided']:,} that reached a barrier, {pct(d['decided_hit_rate'])} reached theirs first "
        f"(break-even after {d['cost_bps']:g} bps round trip: {pct(d['break_even_hit_rate'])})",
    ]
    if d["buckets"]:
        lines.append("  confidence    windows  mean conf.  hit rate")
        lines += [
            f"  {b['lo']:.2f}-{b['hi']:.2f}  {b['count']:>9,}  {pct(b['confidence']):>10}  {pct(b['hit_rate']):>8}"
            for b in d["buckets"]
        ]
    else:
        lines.append("  it named no side on any window: no hit rate to claim, nothing it would propose")
    if n["novelty_auroc"] is not None:
        lines.append(
            f"  novelty AUROC {n['novelty_auroc']:.3f} against 60-bar volatility {n['volatility_auroc']:.3f} "
            f"({n['regime_windows']:,} regime windows vs {n['ordinary_windows']:,} ordinary, "
            f"{n['ordinary_kind']})"
        )
    for r in n["regimes"]:
        lines.append(f"    regime {r['symbol']}: {utc_minute(r['start_ms'])} to {utc_minute(r['end_ms'])} ({r['how']})")
    lines.append(
        f"  novelty: median {n['median']:.2f}; {pct(n['flagged_share'])} of windows flagged novel "
        f"(>= {n['threshold']:g})"
    )
    lines += [f"  warning: {w}" for w in warnings]
    return "\n".join(lines)
